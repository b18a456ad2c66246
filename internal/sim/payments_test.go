package sim_test

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/acme/idemcheckout/internal/checkout"
	"github.com/acme/idemcheckout/internal/sim"
	"github.com/acme/idemcheckout/pkg/idemddb"
	"github.com/acme/idemcheckout/pkg/idemddb/apigw"
	"github.com/acme/idemcheckout/pkg/idemddb/batch"
	"github.com/acme/idemcheckout/pkg/idemddb/ddbmem"
	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

var paySchedulesFlag = flag.String("pay-schedules", "1000", "how many payment schedules TestSimPayments runs (from -start)")

// The payments deployment: tables as template.yaml defines them.
const (
	ordersTable   = "orders"
	paymentsTable = "payments"
	receiptsTable = "receipts"
	nPayers       = 4
	nOrders       = 2
	voidAfter     = 10 * time.Second
	grace         = 2 * time.Second
	customer      = "7d0e5f3a-1c2b-4d8e-9f6a-0b1c2d3e4f50" // the fixture's sub
	orderBody     = `{"currency":"INR","items":[{"sku":"SKU-1","quantity":2,"unit_price":250000}]}`
)

// fixture is the HTTP API payload 2.0 event internal/checkout's tests use.
func fixture(t *testing.T) []byte {
	t.Helper()
	raw, err := os.ReadFile("../checkout/testdata/http-api-v2-jwt.json")
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func newEvent(raw []byte, route, body, key string) (events.APIGatewayV2HTTPRequest, error) {
	var ev events.APIGatewayV2HTTPRequest
	if err := json.Unmarshal(raw, &ev); err != nil {
		return ev, err
	}
	method, path, _ := strings.Cut(route, " ")
	ev.RouteKey, ev.RequestContext.RouteKey = route, route
	ev.RawPath, ev.RequestContext.HTTP.Path, ev.RequestContext.HTTP.Method = path, path, method
	ev.Body = body
	ev.Headers["idempotency-key"] = `"` + key + `"`
	return ev, nil
}

var errNotStored = errors.New("sim: status not stored")

// serve runs h under the store the way the apigw wrapper does (key scoped
// by route and caller, body as fingerprint, only DefaultStorePolicy
// statuses stored, replays decoded).
func serve(ctx context.Context, s *idemddb.Store, h func(context.Context, events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error), ev events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	sub, _ := checkout.CallerID(ev)
	var fresh events.APIGatewayV2HTTPResponse
	res, err := s.Run(ctx, idemddb.Request{Key: ev.RouteKey + "\n" + sub + "\n" + ev.Headers["idempotency-key"], Fingerprint: []byte(ev.Body)},
		func(ctx context.Context, c *idemddb.Claim) ([]byte, error) {
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
		return fresh, nil
	case err != nil:
		return events.APIGatewayV2HTTPResponse{}, err
	case res.Replayed:
		var r events.APIGatewayV2HTTPResponse
		err := json.Unmarshal(res.Data, &r)
		return r, err
	}
	return fresh, nil
}

func createTable(db *ddbmem.Engine, name, key string) error {
	_, err := db.CreateTable(context.Background(), &dynamodb.CreateTableInput{TableName: aws.String(name),
		AttributeDefinitions: []types.AttributeDefinition{{AttributeName: aws.String(key), AttributeType: types.ScalarAttributeTypeS}},
		KeySchema:            []types.KeySchemaElement{{AttributeName: aws.String(key), KeyType: types.KeyTypeHash}}})
	return err
}

func sAttr(it map[string]types.AttributeValue, name string) string {
	if v, ok := it[name].(*types.AttributeValueMemberS); ok {
		return v.Value
	}
	return ""
}

// allowed are the order transitions attempt.go documents ("" = absent).
var allowed = map[[2]string]bool{
	{"", string(checkout.OrderPending)}:                            true,
	{string(checkout.OrderPending), string(checkout.OrderPaying)}:  true,
	{string(checkout.OrderPaying), string(checkout.OrderPaying)}:   true,
	{string(checkout.OrderPaying), string(checkout.OrderPaid)}:     true,
	{string(checkout.OrderPaying), string(checkout.OrderPending)}:  true,
	{string(checkout.OrderPending), string(checkout.OrderPending)}: true,
	{string(checkout.OrderPaid), string(checkout.OrderPaid)}:       true,
}

// runPayments runs one payments schedule: payers racing two keys per
// order, the reconciler running meanwhile, then, every fault gone and
// VoidAfter past, two reconciler runs; it returns the violations.
func runPayments(t *testing.T, raw []byte, seed uint64, faults, outcomes *sim.Tally) []string {
	var violations []string
	synctest.Test(t, func(t *testing.T) {
		w := &world{start: time.Now(), successes: map[string][]string{}}
		db := ddbmem.New()
		if err := db.CreateIdempotencyTable(table); err != nil {
			t.Fatal(err)
		}
		if err := createTable(db, ordersTable, "order_id"); err != nil {
			t.Fatal(err)
		}
		if err := createTable(db, paymentsTable, "pk"); err != nil {
			t.Fatal(err)
		}
		g := &gate{arrived: make(chan struct{}, 1)}
		ft := &faulty{db: db, gate: g, faults: faults, violate: w.violate}
		if *traceFlag {
			ft.trace = func(format string, args ...any) {
				t.Logf("%8v "+format, append([]any{time.Since(w.start)}, args...)...)
			}
		}
		if err := createTable(db, receiptsTable, "receipt_id"); err != nil {
			t.Fatal(err)
		}
		// The orders table's stream: every change to PAID, as a record.
		var streamMu sync.Mutex
		var stream []events.DynamoDBEventRecord
		prev := map[string]map[string]types.AttributeValue{}
		ft.after = func() {
			items, _ := db.Items(ordersTable)
			now := map[string]map[string]types.AttributeValue{}
			for _, it := range items {
				id, st := sAttr(it, "order_id"), sAttr(it, "status")
				now[id] = it
				was := sAttr(prev[id], "status")
				if !allowed[[2]string{was, st}] {
					w.violate("order %s went %q -> %q", id, was, st)
				}
				if was != st && st == string(checkout.OrderPaid) {
					streamMu.Lock()
					stream = append(stream, events.DynamoDBEventRecord{
						EventID: fmt.Sprintf("ev-%d", len(stream)), EventName: "MODIFY", EventSource: "aws:dynamodb",
						Change: events.DynamoDBStreamRecord{
							Keys:     image(map[string]types.AttributeValue{"order_id": it["order_id"]}),
							OldImage: image(prev[id]), NewImage: image(it),
							StreamViewType: "NEW_AND_OLD_IMAGES", SequenceNumber: fmt.Sprint(len(stream) + 1),
						},
					})
					streamMu.Unlock()
				}
			}
			for id, it := range prev {
				if _, ok := now[id]; !ok {
					w.violate("order %s (%s) deleted", id, sAttr(it, "status"))
				}
			}
			prev = now
			// attempt.go: at most one attempt of an order is ever captured
			// and not voided, at any moment.
			ledger, _ := db.Items(paymentsTable)
			captured := map[string]int{}
			for _, it := range ledger {
				if strings.HasPrefix(sAttr(it, "pk"), checkout.AuthorizationKeyPrefix) && sAttr(it, "status") == string(checkout.AuthCaptured) {
					if captured[sAttr(it, "order_id")]++; captured[sAttr(it, "order_id")] == 2 {
						w.violate("order %s: two captures not voided at %v", sAttr(it, "order_id"), time.Since(w.start))
					}
				}
			}
		}
		store, err := idemddb.New(ft, idemddb.Config{Table: table, Retention: time.Hour, DefaultLease: lease, LeaseMargin: leaseMargin, Logger: discard})
		if err != nil {
			t.Fatal(err)
		}
		orders, err := checkout.NewOrders(checkout.OrdersConfig{DB: ft, Table: ordersTable, Logger: discard})
		if err != nil {
			t.Fatal(err)
		}
		ledger, err := checkout.NewLedger(checkout.LedgerConfig{DB: ft, Table: paymentsTable, Latency: 50 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		payments, err := checkout.NewPayments(checkout.PaymentsConfig{DB: ft, OrdersTable: ordersTable, PaymentsTable: paymentsTable, Provider: ledger, Logger: discard})
		if err != nil {
			t.Fatal(err)
		}
		fulfil, err := checkout.NewFulfilment(checkout.FulfilmentConfig{Store: store, ReceiptsTable: receiptsTable, Logger: discard})
		if err != nil {
			t.Fatal(err)
		}
		// One lane at a time: the batch's records run in the consumer's
		// goroutine, so its faults stay in its own sequence.
		consume := fulfil.Handler(batch.WithConcurrency(1), batch.WithLogger(discard), batch.WithMetrics(io.Discard))
		deliver := func(ctx context.Context) {
			streamMu.Lock()
			recs := slices.Clone(stream)
			streamMu.Unlock()
			if len(recs) == 0 {
				return
			}
			resp, err := consume(ctx, events.DynamoDBEvent{Records: recs})
			if ctx.Value(callerKey{}) == nil && (err != nil || len(resp.BatchItemFailures) > 0) {
				w.violate("the fault-free delivery of %d stream records failed: %v %+v", len(recs), err, resp.BatchItemFailures)
			}
			switch {
			case err != nil:
				w.outcomes.Add("stream-batch-error")
			case len(resp.BatchItemFailures) > 0:
				w.outcomes.Add("stream-batch-partial-failure")
			default:
				w.outcomes.Add("stream-batch-ok")
			}
		}
		rec, err := checkout.NewReconciler(checkout.ReconcilerConfig{DB: ft, Store: store, OrdersTable: ordersTable, PaymentsTable: paymentsTable,
			Provider: ledger, Report: ledger, VoidAfter: voidAfter, Grace: grace, Logger: discard})
		if err != nil {
			t.Fatal(err)
		}

		// The orders, made without faults.
		var orderIDs []string
		for i := range nOrders {
			ev, err := newEvent(raw, "POST /orders", orderBody, fmt.Sprintf("order-%d", i))
			if err != nil {
				t.Fatal(err)
			}
			// The handler runs under a claim of ours with a resource id
			// from the seed (a store's claim has a random one, and the
			// order id derives from it: the tables' key order, so the
			// reconciler's scans, would differ between replays); its
			// writes are committed as the store would.
			claim := &idemddb.Claim{Key: ev.RouteKey + "\n" + customer + "\n" + ev.Headers["idempotency-key"],
				Token: fmt.Sprintf("tok-%d-%d", seed, i), ResourceID: fmt.Sprintf("s%d-o%d", seed, i)}
			r, err := orders.CreateOrder(idemddb.WithClaim(context.Background(), claim), ev)
			if err != nil || r.StatusCode != 201 {
				t.Fatalf("create order: %v %d %s", err, r.StatusCode, r.Body)
			}
			if _, err := db.TransactWriteItems(context.Background(), &dynamodb.TransactWriteItemsInput{TransactItems: claim.Writes()}); err != nil {
				t.Fatal(err)
			}
			var o checkout.Order
			if err := json.Unmarshal([]byte(r.Body), &o); err != nil {
				t.Fatal(err)
			}
			orderIDs = append(orderIDs, o.OrderID)
		}

		var mu sync.Mutex
		told := map[string][]string{} // order -> payment ids 201 answers named
		var wg sync.WaitGroup
		done := make(chan struct{})
		for id := range nPayers {
			c := &caller{id: id, rng: rand.New(rand.NewPCG(seed, uint64(id)))}
			wg.Go(func() {
				ctx := context.WithValue(context.Background(), callerKey{}, c)
				defer func() {
					if r := recover(); r != nil {
						if _, ok := r.(died); !ok {
							panic(r)
						}
						w.outcomes.Add("payer-died")
					}
				}()
				oid := orderIDs[c.rng.IntN(nOrders)]
				key := fmt.Sprintf("pay-%s-%d", oid, c.rng.IntN(2))
				method := "pm_card_visa"
				if c.rng.IntN(8) == 0 {
					method = checkout.DeclinedPaymentMethod
				}
				body, _ := json.Marshal(map[string]any{"order_id": oid, "amount": 500000, "currency": "INR", "payment_method": method})
				ev, err := newEvent(raw, "POST /payments", string(body), key)
				if err != nil {
					w.violate("event: %v", err)
					return
				}
				for range 5 {
					r, err := serve(ctx, store, payments.CreatePayment, ev)
					switch {
					case err == nil && r.StatusCode == 201:
						var p checkout.Payment
						if err := json.Unmarshal([]byte(r.Body), &p); err != nil {
							w.violate("201 body %s: %v", r.Body, err)
						}
						mu.Lock()
						told[oid] = append(told[oid], p.PaymentID)
						mu.Unlock()
						w.outcomes.Add("payment-201")
						return
					case err == nil && r.StatusCode < 500 && r.StatusCode != 409:
						w.outcomes.Add(fmt.Sprintf("payment-%d", r.StatusCode))
						return
					case err == nil:
						w.outcomes.Add(fmt.Sprintf("payment-%d-retried", r.StatusCode))
					default:
						w.outcomes.Add("payment-store-error-retried")
					}
					time.Sleep(time.Duration(200+c.rng.IntN(2000)) * time.Millisecond)
				}
			})
		}
		rc := &caller{id: nPayers, rng: rand.New(rand.NewPCG(seed, nPayers))}
		wg.Go(func() {
			ctx := context.WithValue(context.Background(), callerKey{}, rc)
			defer func() {
				if r := recover(); r != nil {
					if _, ok := r.(died); !ok {
						panic(r)
					}
					w.outcomes.Add("reconciler-died")
				}
			}()
			for range 3 {
				time.Sleep(time.Duration(500+rc.rng.IntN(4000)) * time.Millisecond)
				if _, err := rec.Run(ctx); err != nil {
					w.outcomes.Add("reconcile-error")
				}
			}
		})
		// The stream consumer: every poll delivers the stream from its
		// start again (at least once, as a retried batch or a re-read
		// shard does).
		sc := &caller{id: nPayers + 1, rng: rand.New(rand.NewPCG(seed, nPayers+1))}
		wg.Go(func() {
			ctx := context.WithValue(context.Background(), callerKey{}, sc)
			defer func() {
				if r := recover(); r != nil {
					if _, ok := r.(died); !ok {
						panic(r)
					}
					w.outcomes.Add("consumer-died")
				}
			}()
			for range 4 {
				time.Sleep(time.Duration(300+sc.rng.IntN(2000)) * time.Millisecond)
				deliver(ctx)
			}
		})
		go func() { wg.Wait(); close(done) }()
		g.schedule(rand.New(rand.NewPCG(seed, math.MaxUint64)), done)

		// Faults over: within the reconciler's bound everything settles,
		// and the stream is delivered once more (leases of dead consumers
		// have lapsed by then).
		time.Sleep(voidAfter + grace + lease + leaseMargin)
		for range 2 {
			if _, err := rec.Run(context.Background()); err != nil {
				w.violate("final reconcile: %v", err)
			}
		}
		deliver(context.Background())
		w.checkPayments(db, orderIDs, told)
		w.checkReceipts(db)
		outcomes.Merge(&w.outcomes)
		violations = w.violations
	})
	return violations
}

// checkPayments: at most one capture per order that is not voided; a PAID
// order has exactly one payment record, naming that capture, and every 201
// named it; an unpaid order has no capture left and no payment record; no
// order is left PAYING.
func (w *world) checkPayments(db *ddbmem.Engine, orderIDs []string, told map[string][]string) {
	orders, _ := db.Items(ordersTable)
	ledger, _ := db.Items(paymentsTable)
	for _, it := range ledger {
		if strings.HasPrefix(sAttr(it, "pk"), checkout.AuthorizationKeyPrefix) {
			w.outcomes.Add("final-auth-" + sAttr(it, "status"))
		}
	}
	for _, oid := range orderIDs {
		var order map[string]types.AttributeValue
		for _, o := range orders {
			if sAttr(o, "order_id") == oid {
				order = o
			}
		}
		var captures, pays []map[string]types.AttributeValue
		for _, it := range ledger {
			if sAttr(it, "order_id") != oid {
				continue
			}
			pk := sAttr(it, "pk")
			switch {
			case strings.HasPrefix(pk, checkout.AuthorizationKeyPrefix) && sAttr(it, "status") == string(checkout.AuthCaptured):
				captures = append(captures, it)
			case strings.HasPrefix(pk, checkout.PaymentKeyPrefix):
				pays = append(pays, it)
			}
		}
		st := sAttr(order, "status")
		if len(captures) > 1 {
			w.violate("order %s: %d captures not voided", oid, len(captures))
		}
		switch checkout.OrderStatus(st) {
		case checkout.OrderPaid:
			pid := sAttr(order, "payment_id")
			if len(pays) != 1 || sAttr(pays[0], "payment_id") != pid {
				w.violate("order %s PAID with %s but %d payment records", oid, pid, len(pays))
				continue
			}
			if len(captures) != 1 || checkout.AuthorizationKeyPrefix+sAttr(pays[0], "provider_idempotency_key") != sAttr(captures[0], "pk") {
				w.violate("order %s PAID: its payment record does not name its one capture (%d captures)", oid, len(captures))
			}
			for _, p := range told[oid] {
				if p != pid {
					w.violate("order %s: a 201 named payment %s, the order was paid by %s", oid, p, pid)
				}
			}
		case checkout.OrderPending:
			if len(captures) > 0 || len(pays) > 0 || len(told[oid]) > 0 {
				w.violate("order %s PENDING with %d captures, %d payment records, 201s %v", oid, len(captures), len(pays), told[oid])
			}
		default:
			w.violate("order %s left %q after the reconciler's bound", oid, st)
		}
	}
}

// image is item as a stream record carries it.
func image(item map[string]types.AttributeValue) map[string]events.DynamoDBAttributeValue {
	if item == nil {
		return nil
	}
	out := make(map[string]events.DynamoDBAttributeValue, len(item))
	for k, v := range item {
		out[k] = streamValue(v)
	}
	return out
}

func streamValue(v types.AttributeValue) events.DynamoDBAttributeValue {
	switch x := v.(type) {
	case *types.AttributeValueMemberS:
		return events.NewStringAttribute(x.Value)
	case *types.AttributeValueMemberN:
		return events.NewNumberAttribute(x.Value)
	case *types.AttributeValueMemberB:
		return events.NewBinaryAttribute(x.Value)
	case *types.AttributeValueMemberBOOL:
		return events.NewBooleanAttribute(x.Value)
	case *types.AttributeValueMemberSS:
		return events.NewStringSetAttribute(x.Value)
	case *types.AttributeValueMemberNS:
		return events.NewNumberSetAttribute(x.Value)
	case *types.AttributeValueMemberBS:
		return events.NewBinarySetAttribute(x.Value)
	case *types.AttributeValueMemberL:
		l := make([]events.DynamoDBAttributeValue, len(x.Value))
		for i, e := range x.Value {
			l[i] = streamValue(e)
		}
		return events.NewListAttribute(l)
	case *types.AttributeValueMemberM:
		return events.NewMapAttribute(image(x.Value))
	}
	return events.NewNullAttribute()
}

// checkReceipts: one receipt per paid order, naming its payment; none for
// an order not paid.
func (w *world) checkReceipts(db *ddbmem.Engine) {
	orders, _ := db.Items(ordersTable)
	receipts, _ := db.Items(receiptsTable)
	per := map[string][]map[string]types.AttributeValue{}
	for _, r := range receipts {
		per[sAttr(r, "order_id")] = append(per[sAttr(r, "order_id")], r)
	}
	for _, o := range orders {
		id := sAttr(o, "order_id")
		rs := per[id]
		if sAttr(o, "status") != string(checkout.OrderPaid) {
			if len(rs) > 0 {
				w.violate("order %s is %s but has %d receipts", id, sAttr(o, "status"), len(rs))
			}
			continue
		}
		if len(rs) != 1 || sAttr(rs[0], "payment_id") != sAttr(o, "payment_id") {
			w.violate("order %s PAID by %s has %d receipts", id, sAttr(o, "payment_id"), len(rs))
		}
		w.outcomes.Add("receipt")
	}
}

// TestSimPayments runs -pay-schedules payment schedules from -start (or
// the one -seed) and fails on the first with a violation.
func TestSimPayments(t *testing.T) {
	raw := fixture(t)
	start, n := uint64(0), uint64(0)
	if *seedFlag != "" {
		s, err := sim.ParseCount("seed", *seedFlag)
		if err != nil {
			t.Fatal(err)
		}
		start, n = s, 1
	} else {
		var err error
		if start, err = sim.ParseCount("start", *startFlag); err != nil {
			t.Fatal(err)
		}
		if n, err = sim.ParseCount("pay-schedules", *paySchedulesFlag); err != nil {
			t.Fatal(err)
		}
	}
	var faults, outcomes sim.Tally
	began := time.Now()
	ran := uint64(0)
	failed := 0
	for seed := start; seed < start+n; seed++ {
		v := runPayments(t, raw, seed, &faults, &outcomes)
		ran++
		if len(v) > 0 {
			failed++
			if failed <= 5 {
				t.Errorf("seed %d: %d violation(s) after %d payment schedules in %v:\n  %s\nreplay: go test ./internal/sim -run 'TestSimPayments$' -count=1 -v -args -seed=%d",
					seed, len(v), ran, time.Since(began).Round(time.Millisecond), strings.Join(v, "\n  "), seed)
			}
			if !*keepGoingFlag {
				break
			}
		}
	}
	el := time.Since(began)
	t.Logf("payment schedules: %d in %v (%.0f/s), %d with violations", ran, el.Round(time.Millisecond), float64(ran)/el.Seconds(), failed)
	t.Logf("faults injected: %s", faults.String())
	t.Logf("outcomes: %s", outcomes.String())
	if outcomes.Get("payment-201") == 0 && ran >= 20 {
		t.Errorf("no payment succeeded in %d schedules: the schedule is broken", ran)
	}
}
