package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/acme/idemcheckout/ddblocal/localddb"
	"github.com/acme/idemcheckout/local/devstack"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
)

// get sends one GET with a token and no Idempotency-Key.
func get(t *testing.T, path, tok string) response {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, checkout.URL()+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{resp.StatusCode, resp.Header, b}
}

// problemType is the type of a problem answer.
func (r response) problemType() string {
	var p struct{ Type string }
	_ = json.Unmarshal(r.body, &p)
	return strings.TrimPrefix(p.Type, "https://docs.acme.dev/problems/")
}

// alreadyPaid returns the payment a 200 already_paid answer names (the
// 201's JSON shape plus "already_paid": true, and Location to it), "" for
// any other answer.
func (r response) alreadyPaid() string {
	var p struct {
		PaymentID   string `json:"payment_id"`
		Status      string `json:"status"`
		AlreadyPaid bool   `json:"already_paid"`
	}
	if r.status != http.StatusOK || json.Unmarshal(r.body, &p) != nil || !p.AlreadyPaid || p.Status != "CAPTURED" ||
		p.PaymentID == "" || r.header.Get("Location") != "/payments/"+p.PaymentID || r.header.Get("Retry-After") != "" {
		return ""
	}
	return p.PaymentID
}

// paymentOf returns the payment_id of a 201 (or 200) payment answer.
func (r response) paymentOf() string {
	var p struct {
		PaymentID string `json:"payment_id"`
	}
	_ = json.Unmarshal(r.body, &p)
	return p.PaymentID
}

// scanStack returns every item of one of stack s's tables.
func scanStack(t *testing.T, s *devstack.Stack, logicalID string) []map[string]any {
	t.Helper()
	db := localddb.NewClient(s.EngineEndpoint())
	var items []map[string]any
	in := &dynamodb.ScanInput{TableName: aws.String(s.TableName(logicalID)), ConsistentRead: aws.Bool(true)}
	for {
		out, err := db.Scan(context.Background(), in)
		if err != nil {
			t.Fatal(err)
		}
		var page []map[string]any
		if err := attributevalue.UnmarshalListOfMaps(out.Items, &page); err != nil {
			t.Fatal(err)
		}
		items = append(items, page...)
		if len(out.LastEvaluatedKey) == 0 {
			return items
		}
		in.ExclusiveStartKey = out.LastEvaluatedKey
	}
}

// wantOneCharge checks, in the stack's tables, that each order has exactly
// one CAPTURED authorization and one payment record made from it, and is
// PAID with it; and that no CAPTURED authorization of these orders lacks a
// payment record.
func wantOneCharge(t *testing.T, orderIDs ...string) {
	t.Helper()
	wantOneChargeOn(t, checkout, orderIDs...)
}

// wantOneChargeOn is wantOneCharge on stack s.
func wantOneChargeOn(t *testing.T, s *devstack.Stack, orderIDs ...string) {
	t.Helper()
	want := map[string]bool{}
	for _, id := range orderIDs {
		want[id] = true
	}
	captured, pays := map[string][]map[string]any{}, map[string][]map[string]any{}
	for _, it := range scanStack(t, s, "PaymentsTable") {
		order, _ := it["order_id"].(string)
		if !want[order] {
			continue
		}
		switch pk, _ := it["pk"].(string); {
		case strings.HasPrefix(pk, "AUTH#") && it["status"] == "CAPTURED":
			captured[order] = append(captured[order], it)
		case strings.HasPrefix(pk, "PAY#"):
			pays[order] = append(pays[order], it)
		}
	}
	orders := map[string]map[string]any{}
	for _, it := range scanStack(t, s, "OrdersTable") {
		orders[it["order_id"].(string)] = it
	}
	for _, id := range orderIDs {
		c, p, o := captured[id], pays[id], orders[id]
		if len(c) != 1 || len(p) != 1 || p[0]["authorization_id"] != c[0]["authorization_id"] {
			t.Fatalf("order %s: %d CAPTURED authorizations, %d payment records (%v / %v); want one capture and its payment", id, len(c), len(p), c, p)
		}
		if o["status"] != "PAID" || o["payment_id"] != p[0]["payment_id"] {
			t.Fatalf("order %s: %v, want PAID with %v", id, o, p[0]["payment_id"])
		}
	}
}

// TestFiftyOrdersTwentyKeys: through the local stack (gateway, Lambda
// emulators, moto), 50 orders each paid by 20 parallel requests with 20
// distinct keys: exactly one 201 and one capture per order, every other
// answer a 409 payment-in-progress with Retry-After or a 200 already_paid
// naming the 201's payment, and no capture without its payment.
func TestFiftyOrdersTwentyKeys(t *testing.T) {
	const orders, payers, wave = 50, 20, 10
	tok := token("grace")
	ids := make([]string, orders)
	for i := range ids {
		ids[i] = createOrder(t, "grace")["order_id"].(string)
	}
	answers := make([][]response, orders)
	for first := 0; first < orders; first += wave {
		var wg sync.WaitGroup
		gun := make(chan struct{})
		for i := first; i < first+wave; i++ {
			answers[i] = make([]response, payers)
			body := paymentBody(map[string]any{"order_id": ids[i]}, 500000)
			for j := range payers {
				key := fmt.Sprintf("%s-%d-%d", newKey(t), i, j)
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-gun
					answers[i][j] = post(t, checkout, "/payments", tok, key, body)
				}()
			}
		}
		close(gun)
		wg.Wait()
	}
	counts := map[string]int{}
	for i := range orders {
		created, named := 0, map[string]bool{}
		for _, r := range answers[i] {
			switch {
			case r.status == http.StatusCreated:
				created++
				counts["201"]++
				named[r.paymentOf()] = true
			case r.alreadyPaid() != "":
				counts["200 already_paid"]++
				named[r.alreadyPaid()] = true
			case r.status == http.StatusConflict && r.problemType() == "payment-in-progress" && r.header.Get("Retry-After") != "":
				counts["409 "+r.problemType()]++
			default:
				t.Fatalf("order %d: %d %v %s", i, r.status, r.header, r.body)
			}
		}
		if created != 1 || len(named) != 1 {
			t.Fatalf("order %d: %d answers 201, payments named %v; want exactly one 201, every 200 naming its payment", i, created, named)
		}
	}
	t.Logf("%d orders x %d keys through the stack: %v", orders, payers, counts)
	wantOneCharge(t, ids...)
}

// TestDeclineThenNewKey: a declined card, then a new key with a good card:
// the order is PAID, its history shows the decline, the ledger one
// DECLINED and one CAPTURED authorization.
func TestDeclineThenNewKey(t *testing.T) {
	order := createOrder(t, "heidi")
	id := order["order_id"].(string)
	tok := token("heidi")
	declined := strings.Replace(paymentBody(order, 500000), "card_visa", "card_declined", 1)
	if r := post(t, checkout, "/payments", tok, newKey(t), declined); r.status != http.StatusPaymentRequired {
		t.Fatalf("decline: %d %s", r.status, r.body)
	}
	if r := post(t, checkout, "/payments", tok, newKey(t), paymentBody(order, 500000)); r.status != http.StatusCreated {
		t.Fatalf("good card: %d %s", r.status, r.body)
	}
	wantOneCharge(t, id)
	if items := ledger(t, id); len(items) != 2 || captured(items) != 1 {
		t.Fatalf("ledger has %d records (%d captured), want one DECLINED and one CAPTURED", len(items), captured(items))
	}
	o := get(t, "/orders/"+id, tok).json(t)
	hist, _ := o["attempts"].([]any)
	if o["status"] != "PAID" || o["attempt"] != float64(2) || len(hist) != 1 || hist[0].(map[string]any)["outcome"] != "DECLINED" {
		t.Fatalf("order %v, want PAID by attempt 2 after a declined attempt 1", o)
	}
}

// TestGetRoutes: GET /orders/{id} and GET /payments/{id} through the stack,
// without an Idempotency-Key: the owner gets 200 with the stored state;
// another caller and an unknown id get the same 404.
func TestGetRoutes(t *testing.T) {
	order := createOrder(t, "ivan")
	id := order["order_id"].(string)
	owner, other := token("ivan"), token("judy")
	if o := get(t, "/orders/"+id, owner).json(t); o["status"] != "PENDING" || o["order_id"] != id || o["amount"] != float64(500000) {
		t.Fatalf("GET new order: %v", o)
	}
	unknown := get(t, "/orders/ord_unknown", owner)
	if unknown.status != http.StatusNotFound || unknown.problemType() != "order-not-found" {
		t.Fatalf("unknown order: %d %s", unknown.status, unknown.body)
	}
	if r := get(t, "/orders/"+id, other); r.status != http.StatusNotFound || string(r.body) != string(unknown.body) {
		t.Fatalf("another caller's order: %d %s, want %s", r.status, r.body, unknown.body)
	}

	paid := post(t, checkout, "/payments", owner, newKey(t), paymentBody(order, 500000))
	if paid.status != http.StatusCreated {
		t.Fatalf("payment: %d %s", paid.status, paid.body)
	}
	pay := paid.json(t)
	if o := get(t, "/orders/"+id, owner).json(t); o["status"] != "PAID" || o["payment_id"] != pay["payment_id"] {
		t.Fatalf("GET paid order: %v", o)
	}
	loc := paid.header.Get("Location")
	if r := get(t, loc, owner); r.status != http.StatusOK || string(r.body) != string(paid.body) {
		t.Fatalf("GET %s: %d %s, want %s", loc, r.status, r.body, paid.body)
	}
	unknownPay := get(t, "/payments/pay_unknown", owner)
	if unknownPay.status != http.StatusNotFound || unknownPay.problemType() != "payment-not-found" {
		t.Fatalf("unknown payment: %d %s", unknownPay.status, unknownPay.body)
	}
	if r := get(t, loc, other); r.status != http.StatusNotFound || string(r.body) != string(unknownPay.body) {
		t.Fatalf("another caller's payment: %d %s", r.status, r.body)
	}
}
