package checkout_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/acme/idemcheckout/ddblocal/ddbstream"
	"github.com/acme/idemcheckout/ddblocal/ddbstreamtest"
	"github.com/acme/idemcheckout/ddblocal/ddbtest"
	"github.com/acme/idemcheckout/internal/checkout"
	"github.com/acme/idemcheckout/pkg/idemddb"
	"github.com/acme/idemcheckout/pkg/idemddb/batch"
	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// fulfilEnv is env with the orders table's stream on (as template.yaml
// has it), a receipts table, and the fulfilment on a store of its own
// behind fdb, a counting client, without a replay cache so that every
// replay shows on the wire.
type fulfilEnv struct {
	*env
	stream, receipts string
	fdb              *ddbtest.Client
	handler          batch.StreamBatchHandler
	orders           *checkout.Orders // with ReceiptsTable
}

func newFulfilEnv(t *testing.T) *fulfilEnv {
	t.Helper()
	e := newEnv(t)
	f := &fulfilEnv{env: e, fdb: ddbtest.Wrap(e.raw)}
	f.stream = ddbstreamtest.Enable(t, e.raw, e.ordersTable)
	f.receipts = ddbtest.NewTable(t, e.raw, "receipt_id")
	store, err := idemddb.New(f.fdb, idemddb.Config{
		Table: e.idemTable, Now: e.clk.Now, DefaultLease: testLease, LeaseMargin: testMargin, Logger: quietLogger(),
	})
	if err != nil {
		t.Fatal(err)
	}
	ful, err := checkout.NewFulfilment(checkout.FulfilmentConfig{Store: store, ReceiptsTable: f.receipts, Now: e.clk.Now, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	f.handler = ful.Handler(batch.WithLogger(quietLogger()), batch.WithMetrics(nil), batch.WithClock(e.clk.Now))
	f.orders, err = checkout.NewOrders(checkout.OrdersConfig{DB: e.db, Table: e.ordersTable, ReceiptsTable: f.receipts, Now: e.clk.Now, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// paidOrder creates an order for alice and pays it; it returns the order
// and its payment.
func (f *fulfilEnv) paidOrder(t *testing.T, key string) (checkout.Order, checkout.Payment) {
	t.Helper()
	o := f.createOrder(t, alice, "order-"+key, orderBody)
	r, p := f.pay(t, alice, "pay-"+key, paymentBody(o.OrderID, orderAmount, "INR", "card_visa"))
	if r.Status != 201 {
		t.Fatalf("pay: %d %+v", r.Status, p)
	}
	return o, r.Payment
}

// records returns the stream's records of the orders in ids (all records
// when none is given), oldest first, as Lambda delivers them.
func (f *fulfilEnv) records(t *testing.T, ids ...string) []events.DynamoDBEventRecord {
	t.Helper()
	all, err := ddbstream.ReadAll(context.Background(), ddbstreamtest.NewClient(engine.Endpoint), f.stream)
	if err != nil {
		t.Fatal(err)
	}
	var out []events.DynamoDBEventRecord
	for _, r := range all {
		if len(ids) == 0 || slices.Contains(ids, r.Change.Keys["order_id"].String()) {
			out = append(out, r)
		}
	}
	return out
}

// paidRecord is the stream's one PAID transition of order id.
func (f *fulfilEnv) paidRecord(t *testing.T, id string) events.DynamoDBEventRecord {
	t.Helper()
	var paid []events.DynamoDBEventRecord
	for _, r := range f.records(t, id) {
		if checkout.PaidTransition(r) {
			paid = append(paid, r)
		}
	}
	if len(paid) != 1 {
		t.Fatalf("order %s: %d PAID transitions on the stream, want 1", id, len(paid))
	}
	return paid[0]
}

// deliver runs one batch through the handler and returns the sequence
// numbers it reports.
func (f *fulfilEnv) deliver(t *testing.T, recs ...events.DynamoDBEventRecord) []string {
	t.Helper()
	// Through JSON, as Lambda delivers them.
	b, err := json.Marshal(events.DynamoDBEvent{Records: recs})
	if err != nil {
		t.Fatal(err)
	}
	var ev events.DynamoDBEvent
	if err := json.Unmarshal(b, &ev); err != nil {
		t.Fatal(err)
	}
	resp, err := f.handler(context.Background(), ev)
	if err != nil {
		t.Fatalf("batch: %v", err)
	}
	ids := []string{}
	for _, x := range resp.BatchItemFailures {
		ids = append(ids, x.ItemIdentifier)
	}
	return ids
}

func (f *fulfilEnv) receiptsByOrder(t *testing.T) map[string][]checkout.Receipt {
	t.Helper()
	out := map[string][]checkout.Receipt{}
	for _, it := range f.scan(t, f.receipts) {
		b, _ := json.Marshal(it)
		var r checkout.Receipt
		if err := json.Unmarshal(b, &r); err != nil {
			t.Fatal(err)
		}
		out[r.OrderID] = append(out[r.OrderID], r)
	}
	return out
}

// getOrder is GET /orders/{id} by alice, decoded.
func (f *fulfilEnv) getOrder(t *testing.T, id string) map[string]any {
	t.Helper()
	ev := event(t, "GET /orders/{id}", "", "", alice)
	ev.PathParameters = map[string]string{"id": id}
	r, err := f.orders.GetOrder(context.Background(), ev)
	if err != nil || r.StatusCode != 200 {
		t.Fatalf("GET /orders/%s: %d %s %v", id, r.StatusCode, r.Body, err)
	}
	var v map[string]any
	if err := json.Unmarshal([]byte(r.Body), &v); err != nil {
		t.Fatal(err)
	}
	return v
}

// A payment's PAID transition, read from the real stream, makes one
// receipt holding the order, its payment and its customer, at 2 DynamoDB
// requests (claim, and the completion transaction with the receipt); the
// order's other changes in the same batch cost nothing. GET /orders/{id}
// shows the receipt id once the receipt exists.
func TestFulfilPaidOrderMakesOneReceipt(t *testing.T) {
	f := newFulfilEnv(t)
	o, pay := f.paidOrder(t, "1")
	if v := f.getOrder(t, o.OrderID); v["status"] != "PAID" || v["receipt_id"] != nil {
		t.Fatalf("paid order before its receipt: %v", v)
	}
	recs := f.records(t, o.OrderID)
	if len(recs) != 3 || recs[0].EventName != "INSERT" || recs[2].EventSourceArn != f.stream {
		t.Fatalf("stream of the order: %+v, want INSERT, PENDING -> PAYING, PAYING -> PAID", recs)
	}
	f.fdb.Reset()
	if failed := f.deliver(t, recs...); len(failed) != 0 {
		t.Fatalf("reported %v", failed)
	}
	counts := f.fdb.Reset()
	got := f.receiptsByOrder(t)[o.OrderID]
	want := checkout.Receipt{
		ReceiptID: checkout.ReceiptID(o.OrderID, pay.PaymentID), OrderID: o.OrderID, PaymentID: pay.PaymentID,
		CustomerID: alice, Amount: orderAmount, Currency: "INR", PaidAt: pay.CreatedAt,
		CreatedAt: f.clk.Now().UTC().Format("2006-01-02T15:04:05.000Z07:00"),
	}
	if len(got) != 1 || got[0] != want {
		t.Fatalf("receipts %+v, want %+v", got, want)
	}
	if counts["PutItem"] != 1 || counts["TransactWriteItems"] != 1 || len(counts) != 2 {
		t.Errorf("requests %v, want the claim PutItem and one TransactWriteItems", counts)
	}
	t.Logf("DynamoDB requests for a first delivery: %v", counts)
	if v := f.getOrder(t, o.OrderID); v["receipt_id"] != want.ReceiptID {
		t.Errorf("GET after the receipt: %v, want receipt_id %s", v, want.ReceiptID)
	}
}

// The same PAID event twice in one batch, again in a later batch, and
// duplicated under another event id and sequence number: one receipt,
// one execution (one TransactWriteItems), each replay one request.
func TestFulfilDuplicatesMakeOneReceipt(t *testing.T) {
	f := newFulfilEnv(t)
	o, _ := f.paidOrder(t, "1")
	paid := f.paidRecord(t, o.OrderID)
	f.fdb.Reset()
	if failed := f.deliver(t, paid, paid); len(failed) != 0 {
		t.Fatalf("one batch with the event twice: reported %v", failed)
	}
	if c := f.fdb.Reset(); c["TransactWriteItems"] != 1 || c["PutItem"] != 2 || len(c) != 2 {
		t.Fatalf("requests %v: want one execution (claim + transaction) and one replay (a claim PutItem)", c)
	}
	dup := paid
	dup.EventID, dup.Change.SequenceNumber = "another-event-id", paid.Change.SequenceNumber+"9"
	for i, batch := range [][]events.DynamoDBEventRecord{{paid}, {dup}} {
		if failed := f.deliver(t, batch...); len(failed) != 0 {
			t.Fatalf("batch %d: reported %v", i, failed)
		}
		c := f.fdb.Reset()
		if c["PutItem"] != 1 || len(c) != 1 {
			t.Fatalf("batch %d: requests %v, want one replay (one PutItem)", i, c)
		}
		t.Logf("DynamoDB requests for a replay: %v", c)
	}
	if got := f.receiptsByOrder(t)[o.OrderID]; len(got) != 1 {
		t.Fatalf("receipts %+v, want one", got)
	}
}

// Changes that are not the transition to PAID (a new order, its lock, a
// decline back to PENDING) make no receipt, are not reported, and cost
// no request.
func TestFulfilIgnoresOtherChanges(t *testing.T) {
	f := newFulfilEnv(t)
	o := f.createOrder(t, alice, "o1", orderBody)
	if r, _ := f.pay(t, alice, "declined", paymentBody(o.OrderID, orderAmount, "INR", checkout.DeclinedPaymentMethod)); r.Status != 402 {
		t.Fatalf("decline: %d %s", r.Status, r.Body)
	}
	recs := f.records(t, o.OrderID)
	if len(recs) != 3 {
		t.Fatalf("stream: %+v, want INSERT, PENDING -> PAYING, PAYING -> PENDING", recs)
	}
	for _, r := range recs {
		if checkout.PaidTransition(r) {
			t.Fatalf("PaidTransition(%s %v)", r.EventName, r.Change.NewImage["status"])
		}
	}
	f.fdb.Reset()
	if failed := f.deliver(t, recs...); len(failed) != 0 {
		t.Fatalf("reported %v", failed)
	}
	if n := f.fdb.Total(); n != 0 {
		t.Errorf("%d requests for changes that are not payments: %v", n, f.fdb.Counts())
	}
	if got := f.receiptsByOrder(t); len(got) != 0 {
		t.Errorf("receipts %v, want none", got)
	}
}

// In a batch of three paid orders, a record whose completion fails
// (DynamoDB unavailable) and one that is not a paid order are the only
// ones reported; the others get their receipt. Lambda's retry of the
// failed record, once its lease has passed, makes its receipt, and the
// later records replay.
func TestFulfilFailureReportedForItsRecordOnly(t *testing.T) {
	f := newFulfilEnv(t)
	var orders []checkout.Order
	var paid []events.DynamoDBEventRecord
	for _, k := range []string{"1", "2", "3"} {
		o, _ := f.paidOrder(t, k)
		orders = append(orders, o)
		paid = append(paid, f.paidRecord(t, o.OrderID))
	}
	poison := paid[2]
	poison.Change.SequenceNumber += "0"
	poison.Change.NewImage = maps.Clone(poison.Change.NewImage)
	poison.Change.Keys = map[string]events.DynamoDBAttributeValue{"order_id": events.NewStringAttribute("ord_poison")}
	poison.Change.NewImage["order_id"] = events.NewStringAttribute("ord_poison")
	delete(poison.Change.NewImage, "payment_id")

	broken := orders[1].OrderID
	f.fdb.Before(func(op string, in any) error {
		if tx, ok := in.(*dynamodb.TransactWriteItemsInput); ok && op == "TransactWriteItems" {
			for _, w := range tx.TransactItems {
				if w.Put != nil && aws.ToString(w.Put.TableName) == f.receipts {
					if id, _ := w.Put.Item["order_id"].(*types.AttributeValueMemberS); id != nil && id.Value == broken {
						return ddbtest.ErrInjected
					}
				}
			}
		}
		return nil
	})
	failed := f.deliver(t, paid[0], paid[1], paid[2], poison)
	if want := []string{paid[1].Change.SequenceNumber, poison.Change.SequenceNumber}; !slices.Equal(failed, want) {
		t.Fatalf("reported %v, want %v (the unavailable one and the poison one)", failed, want)
	}
	got := f.receiptsByOrder(t)
	if len(got[orders[0].OrderID]) != 1 || len(got[orders[2].OrderID]) != 1 || len(got[broken]) != 0 || len(got) != 2 {
		t.Fatalf("receipts %v, want orders 1 and 3 only", got)
	}

	// Lambda retries from the lowest reported sequence number. The
	// failed completion's outcome was unknown, so its claim holds until
	// its lease ends; then the retry takes it over.
	f.fdb.Before(nil)
	if failed := f.deliver(t, paid[1], paid[2], poison); !slices.Equal(failed, []string{paid[1].Change.SequenceNumber, poison.Change.SequenceNumber}) {
		t.Fatalf("retry within the lease: reported %v, want the record in progress and the poison one", failed)
	}
	f.clk.Advance(testLease + time.Second)
	if failed := f.deliver(t, paid[1], paid[2], poison); !slices.Equal(failed, []string{poison.Change.SequenceNumber}) {
		t.Fatalf("retry after the lease: reported %v, want the poison record only", failed)
	}
	got = f.receiptsByOrder(t)
	for _, o := range orders {
		if len(got[o.OrderID]) != 1 {
			t.Errorf("order %s: receipts %v, want one", o.OrderID, got[o.OrderID])
		}
	}
}

// The stream is an outbox of committed changes only: a transaction
// cancelled after the engine applied its order update (here by a later
// item's condition) leaves no record on the stream, so no receipt can be
// made for a payment that did not commit.
func TestOutboxHoldsOnlyCommittedChanges(t *testing.T) {
	f := newFulfilEnv(t)
	ctx := context.Background()
	o := f.createOrder(t, alice, "o1", orderBody)
	blocker := map[string]types.AttributeValue{"receipt_id": &types.AttributeValueMemberS{Value: "taken"}}
	if _, err := f.raw.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(f.receipts), Item: blocker}); err != nil {
		t.Fatal(err)
	}
	before := len(f.records(t))
	_, err := f.raw.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: []types.TransactWriteItem{
		{Update: &types.Update{
			TableName: aws.String(f.ordersTable), Key: map[string]types.AttributeValue{"order_id": &types.AttributeValueMemberS{Value: o.OrderID}},
			UpdateExpression:          aws.String("SET #s = :paid"),
			ExpressionAttributeNames:  map[string]string{"#s": "status"},
			ExpressionAttributeValues: map[string]types.AttributeValue{":paid": &types.AttributeValueMemberS{Value: string(checkout.OrderPaid)}},
		}},
		{Put: &types.Put{TableName: aws.String(f.receipts), Item: blocker, ConditionExpression: aws.String("attribute_not_exists(receipt_id)")}},
	}})
	var tce *types.TransactionCanceledException
	if !errors.As(err, &tce) {
		t.Fatalf("transaction: %v, want it cancelled", err)
	}
	if after := f.records(t); len(after) != before {
		t.Fatalf("the cancelled transaction left %d stream records: %+v", len(after)-before, after[before:])
	}
	if st, _ := f.order(t, o.OrderID); st.Status != checkout.OrderPending {
		t.Fatalf("order %+v, want PENDING", st)
	}
}

// The fulfilment refuses a configuration without a store or table.
func TestNewFulfilmentNeedsStoreAndTable(t *testing.T) {
	if _, err := checkout.NewFulfilment(checkout.FulfilmentConfig{ReceiptsTable: "r"}); err == nil {
		t.Error("no store: accepted")
	}
	s, err := idemddb.New(engine.Client(), idemddb.Config{Table: "t", Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := checkout.NewFulfilment(checkout.FulfilmentConfig{Store: s}); err == nil {
		t.Error("no receipts table: accepted")
	}
}
