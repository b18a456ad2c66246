package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/acme/idemcheckout/ddblocal/ddbtest"
	"github.com/acme/idemcheckout/ddblocal/localddb"
	"github.com/acme/idemcheckout/local/devstack"
	"github.com/acme/idemcheckout/local/devstack/gateway"
	"github.com/acme/idemcheckout/local/devstack/template"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// shopSite serves the storefront (web/) on an origin the checkout and
// slow stacks allow (added to the template's AllowedOrigins); foreignSite
// on one they do not. The pages take the API's URL and a token in their
// query.
var shopSite, foreignSite *httptest.Server

// checkout serves the project's template.yaml; flaky serves
// testdata/template.yaml; slow serves template.yaml with a payment
// provider that takes 1 s (PaymentProviderLatencyMs=1000), its functions'
// output caught in slowOutput. All are started as `make dev` starts a
// stack.
var (
	checkout, flaky, slow *devstack.Stack
	slowOutput            = &ddbtest.Buffer{}
	// checkoutLog holds the checkout stack's own log (one line per request
	// and per event source batch).
	checkoutLog = &ddbtest.Buffer{}
)

func TestMain(m *testing.M) {
	flag.Parse()
	os.Exit(run(m))
}

func run(m *testing.M) int {
	root, err := filepath.Abs("../..")
	if err != nil {
		return ddbtest.Fail(err)
	}
	var out io.Writer = io.Discard
	if testing.Verbose() {
		out = os.Stderr
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	web := func() *httptest.Server {
		return httptest.NewServer(devstack.StorefrontHandler(filepath.Join(root, "web"), func() devstack.StorefrontConfig { return devstack.StorefrontConfig{} }))
	}
	shopSite, foreignSite = web(), web()
	defer shopSite.Close()
	defer foreignSite.Close()
	tm, err := template.Load(filepath.Join(root, "template.yaml"), nil, "us-east-1")
	if err != nil {
		return ddbtest.Fail(err)
	}
	origins := tm.Parameters["AllowedOrigins"] + "," + shopSite.URL // make dev's storefront stays allowed
	cors := map[string]string{"AllowedOrigins": origins}
	var states []string // removed after the stacks stop (deferred before them)
	defer func() {
		for _, d := range states {
			os.RemoveAll(d)
		}
	}()
	start := func(template string, instances int, params map[string]string, logOut, fnOut io.Writer) (*devstack.Stack, error) {
		state, err := os.MkdirTemp("", "e2e-state-")
		if err != nil {
			return nil, err
		}
		states = append(states, state)
		return devstack.Start(ctx, devstack.Config{
			Root: root, Template: filepath.Join(root, template), Instances: instances, StateDir: state,
			ParameterOverrides: params,
			Logger:             log.New(logOut, "devstack: ", log.Lmicroseconds), FunctionOutput: fnOut,
		})
	}
	if checkout, err = start("template.yaml", 4, cors, io.MultiWriter(out, checkoutLog), out); err != nil {
		return ddbtest.Fail(fmt.Errorf("start the checkout stack: %w", err))
	}
	defer checkout.Close()
	if flaky, err = start("local/e2e/testdata/template.yaml", 2, nil, out, out); err != nil {
		return ddbtest.Fail(fmt.Errorf("start the fixture stack: %w", err))
	}
	defer flaky.Close()
	if slow, err = start("template.yaml", 4, map[string]string{"PaymentProviderLatencyMs": "1000", "AllowedOrigins": origins}, out, io.MultiWriter(out, slowOutput)); err != nil {
		return ddbtest.Fail(fmt.Errorf("start the slow-provider stack: %w", err))
	}
	defer slow.Close()
	return m.Run()
}

// token is a JWT the local authorizer accepts for subject sub (the template's
// default issuer and audience; signatures are not verified locally).
func token(sub string) string {
	return gateway.UnsignedJWT(map[string]any{
		"iss": "https://issuer.example.com/", "aud": "checkout-api", "sub": sub,
		"exp": time.Now().Add(time.Hour).Unix(),
	})
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) json(t *testing.T) map[string]any {
	t.Helper()
	var v map[string]any
	if err := json.Unmarshal(r.body, &v); err != nil {
		t.Fatalf("body %q: %v", r.body, err)
	}
	return v
}

var client = &http.Client{Timeout: 30 * time.Second}

// post sends one request; an empty tok sends no Authorization header, an
// empty key no Idempotency-Key.
func post(t *testing.T, s *devstack.Stack, path, tok, key, body string) response {
	t.Helper()
	return postWith(t, s, path, tok, key, body, nil)
}

// postWith is post with extra request headers.
func postWith(t *testing.T, s *devstack.Stack, path, tok, key, body string, extra http.Header) response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, s.URL()+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range extra {
		req.Header[k] = v
	}
	req.Header.Set("Content-Type", "application/json")
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Error(err)
		return response{}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Error(err)
	}
	return response{resp.StatusCode, resp.Header, b}
}

func newKey(t *testing.T) string { return ddbtest.UniqueName(strings.ReplaceAll(t.Name(), "/", "-")) }

// createOrder makes a PENDING order of 2 × 250000 INR for sub.
func createOrder(t *testing.T, sub string) map[string]any {
	t.Helper()
	return createOrderOn(t, checkout, sub)
}

// createOrderOn is createOrder on stack s.
func createOrderOn(t *testing.T, s *devstack.Stack, sub string) map[string]any {
	t.Helper()
	r := post(t, s, "/orders", token(sub), newKey(t),
		`{"currency":"INR","items":[{"sku":"SKU-1","quantity":2,"unit_price":250000}]}`)
	if r.status != http.StatusCreated {
		t.Fatalf("create order: %d %s", r.status, r.body)
	}
	return r.json(t)
}

func paymentBody(order map[string]any, amount any) string {
	return fmt.Sprintf(`{"order_id":%q,"amount":%v,"currency":"INR","payment_method":"card_visa"}`, order["order_id"], amount)
}

// ledger returns the authorization records of an order in the payments table.
func ledger(t *testing.T, orderID string) []map[string]types.AttributeValue {
	t.Helper()
	db := localddb.NewClient(checkout.EngineEndpoint())
	out, err := db.Scan(context.Background(), &dynamodb.ScanInput{
		TableName:                 aws.String(checkout.TableName("PaymentsTable")),
		FilterExpression:          aws.String("begins_with(pk, :auth) AND order_id = :o"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":auth": &types.AttributeValueMemberS{Value: "AUTH#"}, ":o": &types.AttributeValueMemberS{Value: orderID}},
		ConsistentRead:            aws.Bool(true),
	})
	if err != nil {
		t.Fatal(err)
	}
	return out.Items
}

func captured(items []map[string]types.AttributeValue) int {
	n := 0
	for _, it := range items {
		if s, ok := it["status"].(*types.AttributeValueMemberS); ok && s.Value == "CAPTURED" {
			n++
		}
	}
	return n
}

// TestPayNowClickedThreeTimes is the user story: three clicks with one key,
// one charge, three identical 201s; then the same key with another amount is
// refused and the ledger is unchanged.
func TestPayNowClickedThreeTimes(t *testing.T) {
	order := createOrder(t, "alice")
	key := newKey(t)
	var first response
	for click := 1; click <= 3; click++ {
		r := post(t, checkout, "/payments", token("alice"), key, paymentBody(order, 500000))
		if r.status != http.StatusCreated {
			t.Fatalf("click %d: %d %s", click, r.status, r.body)
		}
		if click == 1 {
			first = r
			if r.header.Get("Idempotent-Replayed") != "" {
				t.Fatal("first click marked as replayed")
			}
			continue
		}
		if !bytes.Equal(r.body, first.body) || r.header.Get("Idempotent-Replayed") != "true" {
			t.Fatalf("click %d: body %s replayed=%q, want %s replayed", click, r.body, r.header.Get("Idempotent-Replayed"), first.body)
		}
	}
	if p := first.json(t); p["status"] != "CAPTURED" || p["order_id"] != order["order_id"] {
		t.Fatalf("payment %v", p)
	}
	items := ledger(t, order["order_id"].(string))
	if len(items) != 1 || captured(items) != 1 {
		t.Fatalf("ledger has %d records (%d captured), want exactly one CAPTURED", len(items), captured(items))
	}
	r := post(t, checkout, "/payments", token("alice"), key, paymentBody(order, 1))
	if r.status != http.StatusUnprocessableEntity || !strings.HasPrefix(r.header.Get("Content-Type"), "application/problem+json") {
		t.Fatalf("same key, other amount: %d %s", r.status, r.body)
	}
	if after := ledger(t, order["order_id"].(string)); len(after) != 1 {
		t.Fatalf("ledger changed by a mismatched request: %d records", len(after))
	}
}

// TestFiftyParallelPayments: 50 identical POST /payments at once through the
// gateway and the function pools; one charge; every answer is the 201 (fresh
// or replayed, byte-identical) or a 409 with Retry-After.
func TestFiftyParallelPayments(t *testing.T) {
	order := createOrder(t, "bob")
	key, body, tok := newKey(t), paymentBody(order, 500000), token("bob")
	const n = 50
	results := make([]response, n)
	var wg sync.WaitGroup
	startGun := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-startGun
			results[i] = post(t, checkout, "/payments", tok, key, body)
		}()
	}
	close(startGun)
	wg.Wait()
	var created []byte
	counts := map[int]int{}
	for i, r := range results {
		counts[r.status]++
		switch r.status {
		case http.StatusCreated:
			if created == nil {
				created = r.body
			} else if !bytes.Equal(created, r.body) {
				t.Fatalf("response %d differs: %s vs %s", i, r.body, created)
			}
		case http.StatusConflict:
			if ra, err := strconv.Atoi(r.header.Get("Retry-After")); err != nil || ra < 1 {
				t.Fatalf("409 without a valid Retry-After: %q", r.header.Get("Retry-After"))
			}
		default:
			t.Fatalf("response %d: %d %s", i, r.status, r.body)
		}
	}
	t.Logf("50 parallel: %v", counts)
	if counts[http.StatusCreated] == 0 {
		t.Fatal("no 201 at all")
	}
	if items := ledger(t, order["order_id"].(string)); len(items) != 1 || captured(items) != 1 {
		t.Fatalf("ledger has %d records, want one CAPTURED", len(items))
	}
}

func TestContractErrors(t *testing.T) {
	order := createOrder(t, "carol")
	body := paymentBody(order, 500000)

	r := post(t, checkout, "/payments", token("carol"), "", body)
	if r.status != http.StatusBadRequest || !strings.Contains(string(r.body), "idempotency-key-missing") {
		t.Fatalf("missing key: %d %s", r.status, r.body)
	}
	r = post(t, checkout, "/payments", "", newKey(t), body)
	if r.status != http.StatusUnauthorized || string(r.body) != `{"message":"Unauthorized"}` {
		t.Fatalf("no token: %d %s", r.status, r.body)
	}
	key := newKey(t)
	if r = post(t, checkout, "/payments", token("carol"), key, body); r.status != http.StatusCreated {
		t.Fatalf("payment: %d %s", r.status, r.body)
	}
	r = post(t, checkout, "/payments", token("carol"), key, strings.Replace(body, "card_visa", "card_amex", 1))
	if r.status != http.StatusUnprocessableEntity {
		t.Fatalf("mismatch: %d %s", r.status, r.body)
	}
}

// TestTenantIsolation: two callers using the same key get independent
// results, and one can neither see nor pay the other's order.
func TestTenantIsolation(t *testing.T) {
	key := newKey(t)
	body := `{"currency":"INR","items":[{"sku":"SKU-9","quantity":1,"unit_price":100}]}`
	a := post(t, checkout, "/orders", token("dave"), key, body)
	b := post(t, checkout, "/orders", token("erin"), key, body)
	if a.status != http.StatusCreated || b.status != http.StatusCreated {
		t.Fatalf("orders: %d %s / %d %s", a.status, a.body, b.status, b.body)
	}
	if b.header.Get("Idempotent-Replayed") != "" || a.json(t)["order_id"] == b.json(t)["order_id"] {
		t.Fatalf("erin received dave's response: %s", b.body)
	}
	r := post(t, checkout, "/payments", token("erin"), newKey(t), paymentBody(a.json(t), 100))
	if r.status != http.StatusNotFound {
		t.Fatalf("paying another customer's order: %d %s", r.status, r.body)
	}
}

// TestCrashAndTimeoutRecover: the first invocation dies (process exit, or
// runs past the template's 2 s timeout) → 502; while its lease lasts the key
// answers 409 with Retry-After; once the lease has passed, the same request
// is processed, with the resource id fixed at the first claim.
func TestCrashAndTimeoutRecover(t *testing.T) {
	for _, mode := range []string{"crash", "timeout"} {
		t.Run(mode, func(t *testing.T) {
			tok, key := token("frank"), newKey(t)
			r := post(t, flaky, "/flaky/"+mode, tok, key, `{"n":1}`)
			if r.status != http.StatusBadGateway || string(r.body) != `{"message":"Internal server error"}` {
				t.Fatalf("first attempt: %d %s, want 502", r.status, r.body)
			}
			deadline := time.Now().Add(20 * time.Second)
			conflicts := 0
			for {
				r = post(t, flaky, "/flaky/"+mode, tok, key, `{"n":1}`)
				if r.status != http.StatusConflict {
					break
				}
				conflicts++
				wait, err := strconv.Atoi(r.header.Get("Retry-After"))
				if err != nil || wait < 1 || time.Now().Add(time.Duration(wait)*time.Second).After(deadline) {
					t.Fatalf("409 Retry-After %q", r.header.Get("Retry-After"))
				}
				time.Sleep(time.Duration(wait) * time.Second) // what a client does with Retry-After
			}
			if r.status != http.StatusCreated {
				t.Fatalf("retry: %d %s", r.status, r.body)
			}
			got := r.json(t)
			if got["attempt"] != float64(2) || got["taken_over"] != true {
				t.Fatalf("retry body %v: want the second attempt, on a taken-over lease", got)
			}
			if conflicts == 0 {
				t.Fatal("the lease of the dead invocation was not honoured (no 409 before the retry)")
			}
		})
	}
}
