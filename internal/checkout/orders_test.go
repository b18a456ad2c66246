package checkout_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/acme/idemcheckout/internal/checkout"
	"github.com/acme/idemcheckout/pkg/idemddb"
	"github.com/acme/idemcheckout/pkg/idemddb/apigw"
	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

func TestCreateOrder(t *testing.T) {
	e := newEnv(t)
	r := e.mustDirect(t, e.orders.CreateOrder, event(t, "POST /orders", orderBody, "k1", alice))
	if r.StatusCode != 201 || r.Headers["Content-Type"] != "application/json" {
		t.Fatalf("got %d %v %s", r.StatusCode, r.Headers, r.Body)
	}
	var body map[string]any
	if err := json.Unmarshal([]byte(r.Body), &body); err != nil {
		t.Fatal(err)
	}
	keys := make([]string, 0, len(body))
	for k := range body {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	if want := []string{"amount", "created_at", "currency", "items", "order_id", "status"}; !slices.Equal(keys, want) {
		t.Fatalf("body members %v, want %v", keys, want)
	}
	var o checkout.Order
	if err := json.Unmarshal([]byte(r.Body), &o); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(o.OrderID, checkout.OrderIDPrefix) || o.Status != "PENDING" || o.Amount != orderAmount || o.Currency != "INR" || len(o.Items) != 2 {
		t.Fatalf("order %+v", o)
	}
	if r.Headers["Location"] != "/orders/"+o.OrderID {
		t.Fatalf("Location %q", r.Headers["Location"])
	}
	created, err := time.Parse(time.RFC3339, o.CreatedAt)
	if err != nil || created.Location() != time.UTC || !strings.HasSuffix(o.CreatedAt, "Z") || !created.Equal(e.clk.Now().Truncate(time.Second)) {
		t.Fatalf("created_at %q (%v), want RFC 3339 UTC of the clock", o.CreatedAt, err)
	}
	stored, ok := e.order(t, o.OrderID)
	if !ok {
		t.Fatal("the order was not written with the completion")
	}
	if stored.CustomerID != alice || stored.Amount != orderAmount || stored.Status != "PENDING" || len(stored.Items) != 2 || stored.Items[0] != o.Items[0] {
		t.Fatalf("stored order %+v", stored)
	}

	// The same key again is a replay: same body, no second order.
	r2 := e.mustDirect(t, e.orders.CreateOrder, event(t, "POST /orders", orderBody, "k1", alice))
	if r2.Body != r.Body || r2.StatusCode != 201 {
		t.Fatalf("replay %d %s, want the first response", r2.StatusCode, r2.Body)
	}
	if n := len(e.scan(t, e.ordersTable)); n != 1 {
		t.Fatalf("%d orders after a replay, want 1", n)
	}
}

// TestCreateOrderValidation: every invalid body is a 400 problem naming the
// field, stored like any deterministic 4xx, and writes nothing.
func TestCreateOrderValidation(t *testing.T) {
	e := newEnv(t)
	item := func(sku string, q, p any) string {
		return fmt.Sprintf(`{"sku":%q,"quantity":%v,"unit_price":%v}`, sku, q, p)
	}
	order := func(items ...string) string {
		return `{"currency":"INR","items":[` + strings.Join(items, ",") + `]}`
	}
	many := make([]string, checkout.MaxOrderItems+1)
	for i := range many {
		many[i] = item("SKU", 1, 1)
	}
	half := int64(math.MaxInt64/2 + 1)
	cases := []struct {
		name, body string
		fields     []string
	}{
		{"empty body", ``, []string{"body"}},
		{"malformed JSON", `{"currency":"INR",`, []string{"body"}},
		{"syntax error", `{"currency":INR}`, []string{"body"}},
		{"trailing data", orderBody + ` {}`, []string{"body"}},
		{"not an object", `[1,2]`, []string{"body"}},
		{"unknown field", `{"currency":"INR","coupon":"FREE","items":[` + item("A", 1, 1) + `]}`, []string{"coupon"}},
		{"unknown item field", order(`{"sku":"A","quantity":1,"unit_price":1,"discount":5}`), []string{"items[0].discount"}},
		{"missing currency", `{"items":[` + item("A", 1, 1) + `]}`, []string{"currency"}},
		{"lower-case currency", `{"currency":"inr","items":[` + item("A", 1, 1) + `]}`, []string{"currency"}},
		{"four-letter currency", `{"currency":"INRX","items":[` + item("A", 1, 1) + `]}`, []string{"currency"}},
		{"not an ISO 4217 code", `{"currency":"ABC","items":[` + item("A", 1, 1) + `]}`, []string{"currency"}},
		{"metal is not money", `{"currency":"XAU","items":[` + item("A", 1, 1) + `]}`, []string{"currency"}},
		{"currency not a string", `{"currency":356,"items":[` + item("A", 1, 1) + `]}`, []string{"currency"}},
		{"no items member", `{"currency":"INR"}`, []string{"items"}},
		{"null items", `{"currency":"INR","items":null}`, []string{"items"}},
		{"empty items", order(), []string{"items"}},
		{"items not an array", `{"currency":"INR","items":{"sku":"A"}}`, []string{"items"}},
		{"item not an object", order(`5`), []string{"items[0]"}},
		{"too many items", order(many...), []string{"items"}},
		{"zero quantity", order(item("A", 0, 100)), []string{"items[0].quantity"}},
		{"negative quantity", order(item("A", 1, 100), item("B", -3, 100)), []string{"items[1].quantity"}},
		{"missing quantity", order(`{"sku":"A","unit_price":100}`), []string{"items[0].quantity"}},
		{"fractional quantity", order(item("A", 1.5, 100)), []string{"items[0].quantity"}},
		{"quantity as string", order(item("A", `"2"`, 100)), []string{"items[0].quantity"}},
		{"quantity beyond int64", order(item("A", "100000000000000000000", 100)), []string{"items[0].quantity"}},
		{"negative price", order(item("A", 1, 100), item("B", 1, -1)), []string{"items[1].unit_price"}},
		{"missing price", order(`{"sku":"A","quantity":1}`), []string{"items[0].unit_price"}},
		{"fractional price", order(item("A", 1, 99.5)), []string{"items[0].unit_price"}},
		{"empty sku", order(item("", 1, 100)), []string{"items[0].sku"}},
		{"blank sku", order(item("   ", 1, 100)), []string{"items[0].sku"}},
		{"missing sku", order(`{"quantity":1,"unit_price":100}`), []string{"items[0].sku"}},
		{"sku too long", order(item(strings.Repeat("S", checkout.MaxSKUBytes+1), 1, 100)), []string{"items[0].sku"}},
		{"sku with control character", order(item("A\tB", 1, 100)), []string{"items[0].sku"}},
		{"line amount overflows", order(item("A", 2, half)), []string{"items[0]"}},
		{"largest line is fine, the sum overflows", order(item("A", 1, half), item("B", 1, half)), []string{"items"}},
		{"total zero", order(item("A", 1, 0)), []string{"items"}},
		{"several fields", `{"currency":"rupees","items":[` + item("", 0, -1) + `]}`,
			[]string{"currency", "items[0].quantity", "items[0].sku", "items[0].unit_price"}},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := e.mustDirect(t, e.orders.CreateOrder, event(t, "POST /orders", tc.body, fmt.Sprint("v", i), alice))
			p := wantProblem(t, r, 400, checkout.ProblemValidation.Type())
			if got := p.fields(); !slices.Equal(got, tc.fields) {
				t.Fatalf("fields %v, want %v (%s)", got, tc.fields, r.Body)
			}
			for _, f := range p.Errors {
				if f.Detail == "" {
					t.Fatalf("field %s has no detail", f.Field)
				}
			}
		})
	}
	if n := len(e.scan(t, e.ordersTable)); n != 0 {
		t.Fatalf("invalid requests wrote %d orders", n)
	}
	// 400s are deterministic: stored, so a retry is a replay.
	for _, s := range e.idemStatuses(t) {
		if s != idemddb.StatusCompleted {
			t.Fatalf("idempotency record status %s, want every 400 stored", s)
		}
	}
}

// TestParseOrderRequestLimits: the largest representable total is accepted.
func TestParseOrderRequestLimits(t *testing.T) {
	body := fmt.Sprintf(`{"currency":"JPY","items":[{"sku":"A","quantity":1,"unit_price":%d},{"sku":"B","quantity":1,"unit_price":0}]}`, int64(math.MaxInt64))
	in, err := checkout.ParseOrderRequest([]byte(body))
	if err != nil || in.Amount != math.MaxInt64 {
		t.Fatalf("%+v %v", in, err)
	}
	_, err = checkout.ParseOrderRequest([]byte(`{"currency":"JPY","items":[]}`))
	var ve *checkout.ValidationError
	if !errors.Is(err, checkout.ErrValidation) || !errors.As(err, &ve) || ve.Fields[0].Field != "items" {
		t.Fatalf("err %v, want a ValidationError on items", err)
	}
}

func TestCreateOrderRequestShape(t *testing.T) {
	e := newEnv(t)
	t.Run("base64 body", func(t *testing.T) {
		ev := event(t, "POST /orders", base64.StdEncoding.EncodeToString([]byte(orderBody)), "b64", alice)
		ev.IsBase64Encoded = true
		if r := e.mustDirect(t, e.orders.CreateOrder, ev); r.StatusCode != 201 {
			t.Fatalf("%d %s", r.StatusCode, r.Body)
		}
	})
	t.Run("invalid base64", func(t *testing.T) {
		ev := event(t, "POST /orders", "%%%", "b64bad", alice)
		ev.IsBase64Encoded = true
		p := wantProblem(t, e.mustDirect(t, e.orders.CreateOrder, ev), 400, checkout.ProblemValidation.Type())
		if !slices.Equal(p.fields(), []string{"body"}) {
			t.Fatal(p.fields())
		}
	})
	t.Run("not JSON", func(t *testing.T) {
		ev := event(t, "POST /orders", orderBody, "ct", alice)
		ev.Headers["content-type"] = "text/plain"
		wantProblem(t, e.mustDirect(t, e.orders.CreateOrder, ev), 415, checkout.ProblemUnsupportedMediaType.Type())
	})
	t.Run("too large: the wrapper's 413, before any request", func(t *testing.T) {
		createOrder, _ := e.wrapped()
		e.db.Reset()
		r := serve(t, createOrder, event(t, "POST /orders", strings.Repeat(" ", checkout.MaxBodyBytes+1), "big", alice))
		wantProblem(t, r, 413, apigw.DefaultProblemBase+apigw.ProblemBodyTooLarge)
		if n := e.db.Total(); n != 0 {
			t.Fatalf("%d DynamoDB requests for a refused body", n)
		}
	})
}

func TestCreateOrderUnauthenticated(t *testing.T) {
	e := newEnv(t)
	wantProblem(t, e.mustDirect(t, e.orders.CreateOrder, event(t, "POST /orders", orderBody, "k", "")), 401, checkout.ProblemUnauthenticated.Type())
	ev := event(t, "POST /orders", orderBody, "k2", alice)
	ev.RequestContext.Authorizer = nil
	wantProblem(t, e.mustDirect(t, e.orders.CreateOrder, ev), 401, checkout.ProblemUnauthenticated.Type())
	if n := len(e.scan(t, e.ordersTable)); n != 0 {
		t.Fatalf("%d orders written", n)
	}
}

// TestHandlersWithoutClaim: outside the wrapper a handler answers 500 and
// never panics.
func TestHandlersWithoutClaim(t *testing.T) {
	e := newEnv(t)
	for name, h := range map[string]handler{"orders": e.orders.CreateOrder, "payments": e.payments.CreatePayment} {
		t.Run(name, func(t *testing.T) {
			r, err := h(context.Background(), event(t, "POST /orders", orderBody, "k", alice))
			if err != nil {
				t.Fatal(err)
			}
			wantProblem(t, r, 500, checkout.ProblemInternal.Type())
		})
	}
}

// TestCreateOrderAtomicity: the order is written only by the completion
// transaction, so when that transaction fails no order is left behind, and
// the retry creates it under the same id.
func TestCreateOrderAtomicity(t *testing.T) {
	t.Run("transaction not sent", func(t *testing.T) {
		e := newEnv(t)
		var sent *dynamodb.TransactWriteItemsInput
		e.db.Before(func(op string, in any) error {
			if op == "TransactWriteItems" {
				sent = in.(*dynamodb.TransactWriteItemsInput)
				return errInjected
			}
			return nil
		})
		ev := event(t, "POST /orders", orderBody, "atom", alice)
		_, _, err := e.runDirect(t, e.orders.CreateOrder, ev)
		if !errors.Is(err, idemddb.ErrUnavailable) || !errors.Is(err, errInjected) {
			t.Fatalf("err = %v, want the injected failure as ErrUnavailable", err)
		}
		if sent == nil || len(sent.TransactItems) != 2 || sent.TransactItems[0].Put == nil || aws.ToString(sent.TransactItems[0].Put.TableName) != e.ordersTable {
			t.Fatalf("the completion should carry the order Put: %+v", sent)
		}
		if n := len(e.scan(t, e.ordersTable)); n != 0 {
			t.Fatalf("%d orders left behind by a failed completion", n)
		}
		if e.db.Count("PutItem") != 1 { // the claim; the order is never put on its own
			t.Fatalf("PutItem count %d, want only the claim", e.db.Count("PutItem"))
		}
		wantID := sent.TransactItems[0].Put.Item["order_id"].(*types.AttributeValueMemberS).Value

		// Outcome unknown, so the key stays claimed; after the lease the
		// retry takes over and reuses the order id.
		e.db.Before(nil)
		e.db.After(nil)
		e.clk.Advance(testLease + time.Second)
		o := e.createOrder(t, alice, "atom", orderBody)
		if o.OrderID != wantID {
			t.Fatalf("retry created %s, want the first attempt's id %s", o.OrderID, wantID)
		}
		if n := len(e.scan(t, e.ordersTable)); n != 1 {
			t.Fatalf("%d orders, want 1", n)
		}
	})

	t.Run("transaction cancelled by DynamoDB", func(t *testing.T) {
		// The first attempt's lease lapses and a retry takes over; the
		// first attempt's completion is then refused by DynamoDB (its fence
		// fails), and its order Put, in the same transaction, with it.
		e := newEnv(t)
		ctx := context.Background()
		ev := event(t, "POST /orders", orderBody, "fenced", alice)
		req := idemddb.Request{Key: "fenced", Fingerprint: []byte(ev.Body)}
		c1, _, err := e.store.Begin(ctx, req)
		if err != nil || c1 == nil {
			t.Fatal(err)
		}
		r1, _ := e.orders.CreateOrder(idemddb.WithClaim(ctx, c1), ev)
		if r1.StatusCode != 201 || len(c1.Writes()) != 1 {
			t.Fatalf("%d %s writes=%d", r1.StatusCode, r1.Body, len(c1.Writes()))
		}
		e.clk.Advance(testLease + time.Second)
		c2, _, err := e.store.Begin(ctx, req)
		if err != nil || c2 == nil || !c2.TakenOver || c2.ResourceID != c1.ResourceID {
			t.Fatalf("takeover: %+v %v", c2, err)
		}
		if _, err := e.store.Complete(ctx, c1, []byte(r1.Body)); !errors.Is(err, idemddb.ErrFenced) {
			t.Fatalf("stale completion: %v, want ErrFenced", err)
		}
		if n := len(e.scan(t, e.ordersTable)); n != 0 {
			t.Fatalf("the cancelled transaction left %d orders", n)
		}
		r2, _ := e.orders.CreateOrder(idemddb.WithClaim(ctx, c2), ev)
		if _, err := e.store.Complete(ctx, c2, []byte(r2.Body)); err != nil {
			t.Fatal(err)
		}
		orders := e.scan(t, e.ordersTable)
		if len(orders) != 1 || orders[0]["order_id"] != checkout.OrderID(c1) {
			t.Fatalf("orders %v, want the one order %s", orders, checkout.OrderID(c1))
		}
	})

	t.Run("order id taken", func(t *testing.T) {
		// The order Put is conditional on a new id: if it exists, the whole
		// completion is cancelled, the existing order is untouched and the
		// key is released.
		e := newEnv(t)
		ctx := context.Background()
		ev := event(t, "POST /orders", orderBody, "dup", alice)
		c, _, err := e.store.Begin(ctx, idemddb.Request{Key: "dup", Fingerprint: []byte(ev.Body)})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.raw.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(e.ordersTable), Item: map[string]types.AttributeValue{
			"order_id": &types.AttributeValueMemberS{Value: checkout.OrderID(c)}, "customer_id": &types.AttributeValueMemberS{Value: bob},
		}}); err != nil {
			t.Fatal(err)
		}
		r, _ := e.orders.CreateOrder(idemddb.WithClaim(ctx, c), ev)
		_, err = e.store.Complete(ctx, c, []byte(r.Body))
		var tce *idemddb.TransactionCanceledError
		if !errors.As(err, &tce) || tce.Index != 0 || tce.Reasons[0].Code != "ConditionalCheckFailed" {
			t.Fatalf("err = %v, want a cancellation by write 0", err)
		}
		if o, _ := e.order(t, checkout.OrderID(c)); o.CustomerID != bob || o.Status != "" {
			t.Fatalf("existing order changed: %+v", o)
		}
		if st := e.idemStatuses(t); len(st) != 0 {
			t.Fatalf("idempotency records %v, want the key released", st)
		}
	})
}

// TestHandleNamesAnEventWithoutRoute: an event with no routeKey (an empty
// or hand-made payload sent to the function) is answered 500 with a detail
// that names the event, not the template; a route the function does not
// serve still blames the wiring.
func TestHandleNamesAnEventWithoutRoute(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct{ route, detail string }{
		{"", "the event is not an API Gateway HTTP API request"},
		{"DELETE /orders", "this route is not served by this function"},
	} {
		r, err := e.orders.Handle(context.Background(), events.APIGatewayV2HTTPRequest{RouteKey: tc.route})
		if err != nil {
			t.Fatal(err)
		}
		p := wantProblem(t, r, 500, checkout.ProblemInternal.Type())
		if p.Detail != tc.detail {
			t.Errorf("route %q: detail %q, want %q", tc.route, p.Detail, tc.detail)
		}
	}
}
