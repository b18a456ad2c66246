package checkout_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/acme/idemcheckout/ddblocal/ddbtest"
	"github.com/acme/idemcheckout/ddblocal/localddb"
	"github.com/acme/idemcheckout/internal/checkout"
	"github.com/acme/idemcheckout/internal/checkout/stripetest"
	"github.com/acme/idemcheckout/pkg/idemddb"
	"github.com/acme/idemcheckout/pkg/idemddb/apigw"
	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// engine is the single-threaded moto server this package's tests share.
var engine *localddb.Engine

func TestMain(m *testing.M) {
	os.Exit(ddbtest.Main(m, ddbtest.StartMoto, &engine))
}

// Callers (JWT sub claims).
const (
	alice = "7d0e5f3a-1c2b-4d8e-9f6a-0b1c2d3e4f50" // the fixture's sub
	bob   = "b0b0b0b0-0000-4000-8000-000000000001"
)

const orderBody = `{"currency":"INR","items":[{"sku":"SKU-1","quantity":2,"unit_price":250000},{"sku":"SKU-2","quantity":1,"unit_price":1999}]}`

// orderAmount is orderBody's total.
const orderAmount = 2*250000 + 1999

// errInjected is the fault the hooks inject: a network failure, not a
// DynamoDB answer, so its outcome is unknown to the caller.
var errInjected = ddbtest.ErrInjected

// Lease settings of the test store: a claim without deadline lasts
// testLease, so advancing the clock past it lets a retry take over.
const (
	testLease  = 10 * time.Second
	testMargin = time.Second
)

// env is the three tables of template.yaml on the engine, the store and
// the handlers through one fault-injecting, counting client (db), and the
// provider (the ledger) through another (pdb), so the requests of each can
// be told apart.
type env struct {
	raw                                *dynamodb.Client
	db, pdb                            *ddbtest.Client
	clk                                *ddbtest.Clock
	idemTable, ordersTable, paymentsTb string
	store                              *idemddb.Store
	orders                             *checkout.Orders
	payments                           *checkout.Payments
	ledger                             *checkout.Ledger
	// provider and report are what the handlers and the reconciler use:
	// the ledger, or a StripeProvider on stripe (a stripetest double).
	provider checkout.Provider
	report   checkout.CaptureReport
	stripe   *stripetest.Server
}

// Providers the one-charge-per-order tests run against (eachProvider).
const (
	providerLedger = "ledger"
	providerStripe = "stripe"
)

// eachProvider runs f as a subtest per provider.
func eachProvider(t *testing.T, f func(t *testing.T, kind string)) {
	t.Helper()
	for _, kind := range []string{providerLedger, providerStripe} {
		t.Run(kind, func(t *testing.T) { f(t, kind) })
	}
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func newEnv(t *testing.T) *env {
	t.Helper()
	return newEnvLease(t, testLease)
}

// newEnvLease is newEnv with claims (and so payment attempts) lasting
// lease. The test clock stands still, but a claim's work context gets a
// real deadline one LeaseMargin before its lease: a test that runs for
// longer than testLease needs a longer lease.
func newEnvLease(t *testing.T, lease time.Duration) *env {
	t.Helper()
	return newEnvProvider(t, lease, providerLedger)
}

// newEnvProvider is newEnvLease with the payments on the provider kind:
// the ledger, or a StripeProvider (without retries of its own, so every
// fault reaches the state machine) on a stripetest double sharing the
// test clock.
func newEnvProvider(t *testing.T, lease time.Duration, kind string) *env {
	t.Helper()
	raw := engine.Client()
	e := &env{
		raw:         raw,
		db:          ddbtest.Wrap(raw),
		pdb:         ddbtest.Wrap(raw),
		clk:         ddbtest.NewClock(time.Now().Truncate(time.Millisecond)),
		idemTable:   ddbtest.NewTable(t, raw, "id"),
		ordersTable: ddbtest.NewTable(t, raw, "order_id"),
		paymentsTb:  ddbtest.NewTable(t, raw, "pk"),
	}
	var err error
	e.store, err = idemddb.New(e.db, idemddb.Config{
		Table: e.idemTable, Now: e.clk.Now, DefaultLease: lease, LeaseMargin: testMargin, Logger: quietLogger(),
	})
	if err != nil {
		t.Fatal(err)
	}
	e.orders, err = checkout.NewOrders(checkout.OrdersConfig{DB: e.db, Table: e.ordersTable, Now: e.clk.Now, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	e.ledger, err = checkout.NewLedger(checkout.LedgerConfig{DB: e.pdb, Table: e.paymentsTb, Now: e.clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	e.provider, e.report = e.ledger, e.ledger
	if kind == providerStripe {
		e.stripe = stripetest.New(t, e.clk.Now)
		sp, err := checkout.NewStripeProvider(checkout.StripeConfig{SecretKey: "sk_test_checkout", URL: e.stripe.URL, Retries: -1})
		if err != nil {
			t.Fatal(err)
		}
		e.provider, e.report = sp, sp
	}
	e.payments, err = checkout.NewPayments(checkout.PaymentsConfig{
		DB: e.db, OrdersTable: e.ordersTable, PaymentsTable: e.paymentsTb, Provider: e.provider, Now: e.clk.Now, Logger: quietLogger(),
	})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// failProvider makes every provider request fail before it reaches the
// provider (on), or ends that (off).
func (e *env) failProvider(on bool) {
	switch {
	case e.stripe != nil && on:
		e.stripe.Before(func(stripetest.Request) stripetest.Fault { return stripetest.FailBefore })
	case e.stripe != nil:
		e.stripe.Before(nil)
	case on:
		e.pdb.Before(func(op string, in any) error { return errInjected })
	default:
		e.pdb.Before(nil)
	}
}

// loseAuthorizeReplies makes the provider apply the next n authorizations
// and lose their replies.
func (e *env) loseAuthorizeReplies(n int) {
	if e.stripe == nil {
		e.pdb.LoseReplies("PutItem", n)
		return
	}
	var mu sync.Mutex
	e.stripe.Before(func(r stripetest.Request) stripetest.Fault {
		mu.Lock()
		defer mu.Unlock()
		if r.Route == "POST /v1/payment_intents" && n > 0 {
			n--
			return stripetest.LoseReply
		}
		return stripetest.Pass
	})
}

// beforeAuthorize runs f before each authorization reaches the provider
// (nil: nothing).
func (e *env) beforeAuthorize(f func()) {
	if e.stripe == nil {
		if f == nil {
			e.pdb.Before(nil)
			return
		}
		e.pdb.Before(func(op string, in any) error {
			if op == "PutItem" {
				f()
			}
			return nil
		})
		return
	}
	if f == nil {
		e.stripe.OnArrival(nil)
		return
	}
	e.stripe.OnArrival(func(r stripetest.Request) {
		if r.Route == "POST /v1/payment_intents" {
			f()
		}
	})
}

// resetProviderCounts zeroes the provider's request counts.
func (e *env) resetProviderCounts() {
	e.pdb.Reset()
	if e.stripe != nil {
		e.stripe.Reset()
	}
}

// providerCounts are the provider's requests since the last reset: the
// ledger's DynamoDB requests, or the Stripe requests per route.
func (e *env) providerCounts() map[string]int {
	if e.stripe != nil {
		return e.stripe.Requests()
	}
	return e.pdb.Counts()
}

// event is the fixture (a real HTTP API payload 2.0 with a JWT authorizer)
// turned into a request for route ("POST /orders") with body, the given
// Idempotency-Key and sub ("" removes the claim).
func event(t *testing.T, route, body, key, sub string) events.APIGatewayV2HTTPRequest {
	t.Helper()
	raw, err := os.ReadFile("testdata/http-api-v2-jwt.json")
	if err != nil {
		t.Fatal(err)
	}
	var ev events.APIGatewayV2HTTPRequest
	if err := json.Unmarshal(raw, &ev); err != nil {
		t.Fatal(err)
	}
	method, path, _ := strings.Cut(route, " ")
	ev.RouteKey, ev.RequestContext.RouteKey = route, route
	ev.RawPath, ev.RequestContext.HTTP.Path, ev.RequestContext.HTTP.Method = path, path, method
	ev.Body = body
	ev.Headers["idempotency-key"] = `"` + key + `"`
	if key == "" {
		delete(ev.Headers, "idempotency-key")
	}
	if sub == "" {
		delete(ev.RequestContext.Authorizer.JWT.Claims, "sub")
		delete(ev.RequestContext.Authorizer.JWT.Claims, "username")
	} else {
		ev.RequestContext.Authorizer.JWT.Claims["sub"] = sub
		ev.RequestContext.Authorizer.JWT.Claims["username"] = sub
	}
	return ev
}

type handler = func(context.Context, events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error)

// errNotStored: the response's status is one the wrapper does not store.
var errNotStored = errors.New("test: status not stored")

// runDirect runs h under Store.Run the way the apigw wrapper does, without
// the HTTP contract: the key is scoped by route and sub, the fingerprint is
// the body, statuses outside apigw.DefaultStorePolicy release the key, and a
// replay decodes the stored response. It returns Store.Run's error, if any.
func (e *env) runDirect(t *testing.T, h handler, ev events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, idemddb.Result, error) {
	t.Helper()
	ctx := context.Background()
	key := directKey(ev)
	var fresh events.APIGatewayV2HTTPResponse
	res, err := e.store.Run(ctx, idemddb.Request{Key: key, Fingerprint: []byte(ev.Body)}, func(ctx context.Context, c *idemddb.Claim) ([]byte, error) {
		r, err := h(ctx, ev)
		if err != nil {
			return nil, err
		}
		fresh = r
		if !apigw.DefaultStorePolicy(r.StatusCode) {
			return nil, errNotStored
		}
		return json.Marshal(r)
	})
	switch {
	case errors.Is(err, errNotStored):
		return fresh, res, nil
	case err != nil:
		return events.APIGatewayV2HTTPResponse{}, res, err
	case res.Replayed:
		var r events.APIGatewayV2HTTPResponse
		if err := json.Unmarshal(res.Data, &r); err != nil {
			t.Fatal(err)
		}
		return r, res, nil
	}
	return fresh, res, nil
}

// directKey is the record key runDirect uses for ev.
func directKey(ev events.APIGatewayV2HTTPRequest) string {
	sub, _ := checkout.CallerID(ev)
	return ev.RouteKey + "\n" + sub + "\n" + ev.Headers["idempotency-key"]
}

// mustDirect is runDirect that fails the test on a Store.Run error.
func (e *env) mustDirect(t *testing.T, h handler, ev events.APIGatewayV2HTTPRequest) events.APIGatewayV2HTTPResponse {
	t.Helper()
	r, _, err := e.runDirect(t, h, ev)
	if err != nil {
		t.Fatalf("Store.Run: %v", err)
	}
	return r
}

// createOrder creates an order for sub directly and returns it.
func (e *env) createOrder(t *testing.T, sub, key, body string) checkout.Order {
	t.Helper()
	r := e.mustDirect(t, e.orders.CreateOrder, event(t, "POST /orders", body, key, sub))
	if r.StatusCode != 201 {
		t.Fatalf("create order: %d %s", r.StatusCode, r.Body)
	}
	var o checkout.Order
	if err := json.Unmarshal([]byte(r.Body), &o); err != nil {
		t.Fatal(err)
	}
	return o
}

func paymentBody(orderID string, amount int64, currency, method string) string {
	b, _ := json.Marshal(map[string]any{"order_id": orderID, "amount": amount, "currency": currency, "payment_method": method})
	return string(b)
}

// problem is a decoded problem+json body.
type problem struct {
	Type        string                `json:"type"`
	Title       string                `json:"title"`
	Status      int                   `json:"status"`
	Detail      string                `json:"detail"`
	Errors      []checkout.FieldError `json:"errors"`
	OrderID     string                `json:"order_id"`
	PaymentID   string                `json:"payment_id"`
	DeclineCode string                `json:"decline_code"`
}

// wantProblem checks r is a problem+json of status and type and returns it.
func wantProblem(t *testing.T, r events.APIGatewayV2HTTPResponse, status int, typ string) problem {
	t.Helper()
	if r.StatusCode != status {
		t.Fatalf("status %d, want %d: %s", r.StatusCode, status, r.Body)
	}
	if ct := r.Headers["Content-Type"]; ct != "application/problem+json" {
		t.Fatalf("Content-Type %q, want application/problem+json", ct)
	}
	var p problem
	dec := json.NewDecoder(strings.NewReader(r.Body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		t.Fatalf("problem body %s: %v", r.Body, err)
	}
	if p.Type != typ || p.Status != status || p.Title == "" {
		t.Fatalf("problem %+v, want type %s status %d", p, typ, status)
	}
	return p
}

// wantAlreadyPaid checks the 200 answer to a payment of an order another
// key paid: the payment in the 201's shape with "already_paid": true and
// its Location, naming paymentID. It returns the payment.
func wantAlreadyPaid(t *testing.T, r events.APIGatewayV2HTTPResponse, paymentID string) checkout.Payment {
	t.Helper()
	if r.StatusCode != 200 || r.Headers["Content-Type"] != "application/json" || r.Headers["Location"] != "/payments/"+paymentID {
		t.Fatalf("%d %v %s, want 200 already_paid naming %s", r.StatusCode, r.Headers, r.Body, paymentID)
	}
	var a checkout.PaymentAnswer
	dec := json.NewDecoder(strings.NewReader(r.Body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&a); err != nil || !a.AlreadyPaid || a.PaymentID != paymentID || a.Status != checkout.PaymentCaptured {
		t.Fatalf("body %s (%v), want already_paid naming %s", r.Body, err, paymentID)
	}
	if _, ok := r.Headers["Retry-After"]; ok {
		t.Fatal("a final answer carries Retry-After")
	}
	return a.Payment
}

// fields lists a problem's field names, sorted.
func (p problem) fields() []string {
	var out []string
	for _, f := range p.Errors {
		out = append(out, f.Field)
	}
	sort.Strings(out)
	return out
}

// scan returns every item of a table, decoded into maps.
func (e *env) scan(t *testing.T, table string) []map[string]any {
	t.Helper()
	out, err := e.raw.Scan(context.Background(), &dynamodb.ScanInput{TableName: aws.String(table), ConsistentRead: aws.Bool(true)})
	if err != nil {
		t.Fatal(err)
	}
	var items []map[string]any
	if err := attributevalue.UnmarshalListOfMaps(out.Items, &items); err != nil {
		t.Fatal(err)
	}
	return items
}

// ledger returns the AUTH# and PAY# items of the payments table.
func (e *env) ledgerItems(t *testing.T) (auths, pays []map[string]any) {
	t.Helper()
	for _, it := range e.scan(t, e.paymentsTb) {
		pk, _ := it["pk"].(string)
		switch {
		case strings.HasPrefix(pk, checkout.AuthorizationKeyPrefix):
			auths = append(auths, it)
		case strings.HasPrefix(pk, checkout.PaymentKeyPrefix):
			pays = append(pays, it)
		default:
			t.Fatalf("unexpected payments item %v", it)
		}
	}
	return auths, pays
}

// order reads an order straight from the table.
func (e *env) order(t *testing.T, id string) (checkout.Order, bool) {
	t.Helper()
	out, err := e.raw.GetItem(context.Background(), &dynamodb.GetItemInput{
		TableName: aws.String(e.ordersTable), ConsistentRead: aws.Bool(true),
		Key: map[string]types.AttributeValue{"order_id": &types.AttributeValueMemberS{Value: id}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if out.Item == nil {
		return checkout.Order{}, false
	}
	var o checkout.Order
	if err := attributevalue.UnmarshalMap(out.Item, &o); err != nil {
		t.Fatal(err)
	}
	return o, true
}

// idemRecord reads an idempotency record's status ("" when absent).
func (e *env) idemStatuses(t *testing.T) []string {
	t.Helper()
	var out []string
	for _, it := range e.scan(t, e.idemTable) {
		s, _ := it["status"].(string)
		out = append(out, s)
	}
	sort.Strings(out)
	return out
}

type (
	eventV2    = events.APIGatewayV2HTTPRequest
	responseV2 = events.APIGatewayV2HTTPResponse
)
