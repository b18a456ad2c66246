package e2e

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/acme/idemcheckout/ddblocal/ddbstream"
	"github.com/acme/idemcheckout/ddblocal/ddbstreamtest"
	"github.com/acme/idemcheckout/ddblocal/localddb"
	domain "github.com/acme/idemcheckout/internal/checkout"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// The fulfilment's event source mapping, as the local stack names it.
const (
	fulfilFunction = "FulfilOrderFunction"
	fulfilMapping  = fulfilFunction + ".FulfilOrderOnPayment"
)

// paid is an order paid through the stack, and when its 201 arrived.
type paid struct {
	orderID, paymentID string
	answered           time.Time
}

// payOrders creates n orders for sub and pays each, with up to 8 requests
// at once, through the checkout stack.
func payOrders(t *testing.T, sub string, n int) []paid {
	t.Helper()
	out := make([]paid, n)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for i := range out {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			r := post(t, checkout, "/orders", token(sub), newKey(t), `{"currency":"INR","items":[{"sku":"SKU-1","quantity":1,"unit_price":1000}]}`)
			if r.status != http.StatusCreated {
				t.Errorf("order %d: %d %s", i, r.status, r.body)
				return
			}
			order := r.json(t)
			p := post(t, checkout, "/payments", token(sub), newKey(t), paymentBody(order, 1000))
			if p.status != http.StatusCreated {
				t.Errorf("payment %d: %d %s", i, p.status, p.body)
				return
			}
			out[i] = paid{order["order_id"].(string), p.json(t)["payment_id"].(string), time.Now()}
		}()
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	return out
}

// receipts returns the receipts table's items of these orders, by order id.
func receipts(t *testing.T, orders []paid) map[string][]map[string]any {
	t.Helper()
	out := map[string][]map[string]any{}
	for _, it := range scanStack(t, checkout, "ReceiptsTable") {
		id, _ := it["order_id"].(string)
		if slices.ContainsFunc(orders, func(p paid) bool { return p.orderID == id }) {
			out[id] = append(out[id], it)
		}
	}
	return out
}

// receiptsPresent counts the orders' receipts by their ids, with strongly
// consistent batch reads.
func receiptsPresent(t *testing.T, orders []paid) int {
	t.Helper()
	db := localddb.NewClient(checkout.EngineEndpoint())
	table := checkout.TableName("ReceiptsTable")
	n := 0
	for chunk := range slices.Chunk(orders, 100) {
		var keys []map[string]types.AttributeValue
		for _, p := range chunk {
			keys = append(keys, map[string]types.AttributeValue{"receipt_id": &types.AttributeValueMemberS{Value: domain.ReceiptID(p.orderID, p.paymentID)}})
		}
		req := map[string]types.KeysAndAttributes{table: {Keys: keys, ConsistentRead: aws.Bool(true), ProjectionExpression: aws.String("receipt_id")}}
		for len(req) > 0 {
			out, err := db.BatchGetItem(context.Background(), &dynamodb.BatchGetItemInput{RequestItems: req})
			if err != nil {
				t.Fatal(err)
			}
			n += len(out.Responses[table])
			req = out.UnprocessedKeys
		}
	}
	return n
}

// waitReceipts polls until every order has its receipt, failing after
// limit; it returns how long that took.
func waitReceipts(t *testing.T, orders []paid, limit time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for receiptsPresent(t, orders) < len(orders) {
		if time.Since(start) > limit {
			t.Fatalf("after %s only %d of %d receipts", limit, receiptsPresent(t, orders), len(orders))
		}
		time.Sleep(20 * time.Millisecond) // polling the table for the expected state
	}
	return time.Since(start)
}

// wantOneReceiptEach checks that each order has exactly one receipt, the
// one its payment derives, for its amount and customer.
func wantOneReceiptEach(t *testing.T, orders []paid, sub string) {
	t.Helper()
	got := receipts(t, orders)
	for _, p := range orders {
		rs := got[p.orderID]
		if len(rs) != 1 {
			t.Errorf("order %s: %d receipts, want 1: %v", p.orderID, len(rs), rs)
			continue
		}
		r := rs[0]
		if r["receipt_id"] != domain.ReceiptID(p.orderID, p.paymentID) || r["payment_id"] != p.paymentID ||
			r["customer_id"] != sub || r["amount"] != float64(1000) || r["currency"] != "INR" || r["created_at"] == "" {
			t.Errorf("order %s: receipt %v", p.orderID, r)
		}
	}
}

// TestPaymentMakesOneReceipt: an order paid through the stack gets exactly
// one receipt within a few seconds, from the orders stream through the
// fulfilment's event source mapping; GET /orders/{id} then shows its id,
// and the unknown-order answer is unchanged.
func TestPaymentMakesOneReceipt(t *testing.T) {
	orders := payOrders(t, "rita", 1)
	took := waitReceipts(t, orders, 5*time.Second)
	wantOneReceiptEach(t, orders, "rita")
	o := get(t, "/orders/"+orders[0].orderID, token("rita")).json(t)
	if o["status"] != "PAID" || o["receipt_id"] != domain.ReceiptID(orders[0].orderID, orders[0].paymentID) {
		t.Errorf("GET the paid order: %v", o)
	}
	unknown := get(t, "/orders/ord_unknown", token("rita"))
	other := get(t, "/orders/"+orders[0].orderID, token("sam"))
	if unknown.status != http.StatusNotFound || other.status != http.StatusNotFound || string(other.body) != string(unknown.body) {
		t.Errorf("another caller's paid order: %d %s, unknown: %d %s", other.status, other.body, unknown.status, unknown.body)
	}
	if !strings.Contains(checkoutLog.String(), "event source "+fulfilMapping+" (stream ") {
		t.Errorf("no batch line of %s in the stack's log", fulfilMapping)
	}
	t.Logf("receipt %s after the payment's 201", took.Round(time.Millisecond))
}

// TestConsumerKilledMidBatch: with the mapping paused, 20 orders are paid;
// once it resumes and the first receipts of the batch exist, the
// consumer's emulator process is killed while its invocation still runs.
// The mapping retries (the records that were in flight are held by their
// lease, then taken over) and every order ends with exactly one receipt.
func TestConsumerKilledMidBatch(t *testing.T) {
	for round := 1; ; round++ {
		if err := checkout.SetEventSourceEnabled(fulfilMapping, false); err != nil {
			t.Fatal(err)
		}
		orders := payOrders(t, "kim", 20)
		restarts := checkout.Restarts(fulfilFunction)
		if err := checkout.SetEventSourceEnabled(fulfilMapping, true); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(30 * time.Second)
		before := 0
		for before == 0 {
			if time.Now().After(deadline) {
				t.Fatal("no receipt 30 s after the mapping resumed")
			}
			if before = receiptsPresent(t, orders); before == 0 {
				time.Sleep(10 * time.Millisecond) // polling the table for the expected state
			}
		}
		killed := checkout.KillRunning(fulfilFunction)
		if killed == 0 || before == len(orders) {
			// The batch finished before the kill: nothing was cut short.
			if round == 3 {
				t.Fatalf("in 3 rounds the batch always ended before the kill (last: %d of %d receipts, %d killed)", before, len(orders), killed)
			}
			waitReceipts(t, orders, time.Minute)
			continue
		}
		took := waitReceipts(t, orders, time.Minute)
		wantOneReceiptEach(t, orders, "kim")
		if n := checkout.Restarts(fulfilFunction) - restarts; n < 1 {
			t.Errorf("%d emulator restarts after the kill, want the killed one replaced", n)
		}
		if log := checkoutLog.String(); !strings.Contains(log, fulfilMapping) || !strings.Contains(log, "function error") {
			t.Errorf("the stack's log has no failed batch of %s", fulfilMapping)
		}
		t.Logf("round %d: killed %d instance(s) with %d of %d receipts made; all %d receipts %s later, one each", round, killed, before, len(orders), len(orders), took.Round(time.Millisecond))
		return
	}
}

// TestHundredOrdersPaidConcurrently: 100 orders paid 8 at a time through
// the stack get 100 receipts, one each. It reports the delay from each
// payment's commit (its PAID change's time on the orders stream) to its
// receipt's created_at: p50 and p99.
func TestHundredOrdersPaidConcurrently(t *testing.T) {
	orders := payOrders(t, "lee", 100)
	waitReceipts(t, orders, time.Minute)
	wantOneReceiptEach(t, orders, "lee")

	ctx := context.Background()
	d, err := localddb.NewClient(checkout.EngineEndpoint()).DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(checkout.TableName("OrdersTable"))})
	if err != nil {
		t.Fatal(err)
	}
	recs, err := ddbstream.ReadAll(ctx, ddbstreamtest.NewClient(checkout.EngineEndpoint()), aws.ToString(d.Table.LatestStreamArn))
	if err != nil {
		t.Fatal(err)
	}
	committed := map[string]time.Time{}
	for _, r := range recs {
		if domain.PaidTransition(r) {
			committed[r.Change.Keys["order_id"].String()] = r.Change.ApproximateCreationDateTime.Time
		}
	}
	var delays, fromAnswer []time.Duration
	for id, rs := range receipts(t, orders) {
		created, err := time.Parse(time.RFC3339Nano, rs[0]["created_at"].(string))
		at, ok := committed[id]
		if err != nil || !ok {
			t.Fatalf("order %s: receipt created_at %v (%v), commit on the stream %v", id, rs[0]["created_at"], err, ok)
		}
		delays = append(delays, created.Sub(at))
		i := slices.IndexFunc(orders, func(p paid) bool { return p.orderID == id })
		fromAnswer = append(fromAnswer, created.Sub(orders[i].answered))
	}
	slices.Sort(delays)
	slices.Sort(fromAnswer)
	pct := func(l []time.Duration, p int) time.Duration { return l[(len(l)-1)*p/100].Round(time.Millisecond) }
	t.Logf("payment commit -> receipt over %d orders: p50 %s, p99 %s, max %s (from the payment's 201: p50 %s, p99 %s)",
		len(delays), pct(delays, 50), pct(delays, 99), pct(delays, 100), pct(fromAnswer, 50), pct(fromAnswer, 99))
	if delays[0] < 0 {
		t.Errorf("a receipt made before its payment committed: %s", delays[0])
	}
}
