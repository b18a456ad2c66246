package checkout_test

import (
	"bytes"
	"context"
	"log/slog"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/acme/idemcheckout/internal/checkout"
	"github.com/aws/aws-lambda-go/events"
)

// reconciler returns the env's reconciler with default settings and a
// buffer catching its log lines.
func (e *env) reconciler(t *testing.T) (*checkout.Reconciler, *bytes.Buffer) {
	t.Helper()
	logs := &bytes.Buffer{} // Run logs from its own goroutine only
	r, err := checkout.NewReconciler(checkout.ReconcilerConfig{
		DB: e.db, Store: e.store, OrdersTable: e.ordersTable, PaymentsTable: e.paymentsTb,
		Provider: e.provider, Report: e.report, Now: e.clk.Now, Logger: slog.New(slog.NewJSONHandler(logs, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	return r, logs
}

// crashInProviderCall makes the next payment die during its provider call
// with the request never reaching the provider, and its key's release fail:
// the order is left PAYING with nothing charged. It returns a function
// that ends the fault.
func (e *env) crashInProviderCall() (stop func()) {
	e.failProvider(true)
	e.db.Before(func(op string, in any) error {
		if op == "DeleteItem" {
			return errInjected
		}
		return nil
	})
	return func() { e.failProvider(false); e.db.Before(nil) }
}

// snapshot is every item of the three tables.
func (e *env) snapshot(t *testing.T) map[string]any {
	t.Helper()
	return map[string]any{
		"orders": sortByKey(e.scan(t, e.ordersTable), "order_id"), "payments": sortByPK(e.scan(t, e.paymentsTb)),
		"idempotency": sortByKey(e.scan(t, e.idemTable), "id"),
	}
}

func sortByKey(items []map[string]any, key string) map[string]map[string]any {
	m := map[string]map[string]any{}
	for _, it := range items {
		m[it[key].(string)] = it
	}
	return m
}

// TestReconciler: the reconciler completes an order stranded in PAYING
// with the capture its crashed attempt made, returns one stranded without
// a charge to PENDING (it can then be paid), voids a capture that is no
// order's payment, keeps (and marks) the orders' payments, leaves a PAYING
// order's captures to that order's attempts, and logs one line per action.
// A second run changes nothing more.
func TestReconciler(t *testing.T) {
	eachProvider(t, func(t *testing.T, kind string) {
		e := newEnvProvider(t, testLease, kind)
		ctx := context.Background()
		createOrder, createPayment := e.wrapped()
		order := func(key string) string { return e.wrappedOrder(t, createOrder, alice, key).OrderID }
		pay := func(id, key string) responseV2 {
			return serve(t, createPayment, event(t, "POST /payments", paymentBody(id, orderAmount, "INR", "card"), key, alice))
		}
		stray := func(id, key string) {
			t.Helper()
			if _, err := e.provider.Authorize(ctx, checkout.AuthorizationRequest{IdempotencyKey: key, OrderID: id,
				PaymentID: "pay_" + key, Amount: orderAmount, Currency: "INR", PaymentMethod: "card"}); err != nil {
				t.Fatal(err)
			}
		}
		a, b, c, d, x := order("a"), order("b"), order("c"), order("d"), order("x")
		stop := e.crashBeforeCommit() // a: crashed after the capture
		pay(a, "pa")
		stop()
		stop = e.crashInProviderCall() // b: crashed before the provider saw it
		pay(b, "pb")
		stop()
		if r := pay(c, "pc"); r.StatusCode != 201 { // c: paid
			t.Fatalf("%d %s", r.StatusCode, r.Body)
		}
		if r := pay(d, "pd"); r.StatusCode != 201 { // d: paid, plus a stray capture
			t.Fatalf("%d %s", r.StatusCode, r.Body)
		}
		stray(d, "psp_stray_d")
		stray(x, "psp_stray_x") // x: a stray capture; x will be PAYING
		e.clk.Advance(checkout.DefaultVoidAfter + time.Minute)
		stop = e.crashBeforeCommit() // x: a live attempt that captured
		pay(x, "px")
		stop()

		r, logs := e.reconciler(t)
		s, err := r.Run(ctx)
		if err != nil {
			t.Fatal(err)
		}
		want := checkout.ReconcileSummary{StrandedOrders: 2, OrdersPaid: 1, OrdersReleased: 1,
			OpenCaptures: 5, CapturesKept: 3, CapturesVoided: 1, CapturesDeferred: 1}
		if s != want {
			t.Fatalf("first run %+v, want %+v", s, want)
		}
		if n := strings.Count(logs.String(), `"msg":"reconcile"`); n != 7 {
			t.Fatalf("%d action lines, want 7:\n%s", n, logs)
		}
		paid := e.paidOnce(t, a, c, d) // x's captures are still open
		if paid[a] != checkout.PaymentID(a, 1) {
			t.Fatalf("a paid by %s, want its attempt 1's capture", paid[a])
		}
		if o, _ := e.order(t, b); o.Status != checkout.OrderPending || o.Attempt != 2 || o.Settled != 2 || len(o.Attempts) != 2 ||
			o.Attempts[0].Outcome != checkout.OutcomeAbandoned || o.Attempts[1].Outcome != checkout.OutcomeAbandoned {
			t.Fatalf("b %+v, want PENDING with attempts 1 and 2 abandoned", o)
		}
		if got, _, _ := e.provider.Lookup(ctx, "psp_stray_d"); got.Status != checkout.AuthVoided {
			t.Fatalf("d's stray capture: %+v", got)
		}
		if got, _, _ := e.provider.Lookup(ctx, "psp_stray_x"); got.Status != checkout.AuthCaptured {
			t.Fatalf("x's stray capture was touched while x is PAYING: %+v", got)
		}
		if o, _ := e.order(t, x); o.Status != checkout.OrderPaying || o.Attempt != 1 {
			t.Fatalf("x %+v, want its live attempt untouched", o)
		}

		// Once x's attempt has lapsed past the grace, the next run completes x
		// with its capture and voids the stray.
		e.clk.Advance(testLease + checkout.DefaultReconcileGrace + time.Second)
		s, err = r.Run(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if want := (checkout.ReconcileSummary{StrandedOrders: 1, OrdersPaid: 1, OpenCaptures: 1, CapturesVoided: 1}); s != want {
			t.Fatalf("second run %+v, want %+v", s, want)
		}
		e.wantOneCharge(t, a, c, d, x)

		before := e.snapshot(t)
		s, err = r.Run(ctx)
		if err != nil || s != (checkout.ReconcileSummary{}) {
			t.Fatalf("third run %+v %v, want nothing to do", s, err)
		}
		if after := e.snapshot(t); !reflect.DeepEqual(before, after) {
			t.Fatalf("a run with nothing to do changed the tables:\n%v\n%v", before, after)
		}

		// The released order is payable with a new key.
		if r := pay(b, "pb2"); r.StatusCode != 201 {
			t.Fatalf("paying b again: %d %s", r.StatusCode, r.Body)
		}
		e.wantOneCharge(t, a, b, c, d, x)
	})
}

// TestReconcilerStepCrash: the reconciler dies while completing an order
// (its commit's outcome unknown). The order stays PAYING under the
// reconciler's own attempt; once that lapses, the next run settles it, and
// its step replays nothing twice.
func TestReconcilerStepCrash(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	createOrder, createPayment := e.wrapped()
	o := e.wrappedOrder(t, createOrder, alice, "o").OrderID
	stop := e.crashBeforeCommit()
	serve(t, createPayment, event(t, "POST /payments", paymentBody(o, orderAmount, "INR", "card"), "p", alice))
	e.clk.Advance(testLease + checkout.DefaultReconcileGrace + time.Second)

	r, _ := e.reconciler(t)
	s, err := r.Run(ctx) // crashBeforeCommit still on: the reconciler's commit fails too
	if err == nil || s.StrandedOrders != 1 || s.Failed != 1 || s.OrdersPaid != 0 {
		t.Fatalf("crashed run %+v %v", s, err)
	}
	stop()
	if st, _ := e.order(t, o); st.Status != checkout.OrderPaying || st.Attempt != 2 {
		t.Fatalf("after the crashed step: %+v, want PAYING under the reconciler's attempt 2", st)
	}
	if s, err := r.Run(ctx); err != nil || s.StrandedOrders != 0 {
		t.Fatalf("run during the reconciler's lease: %+v %v", s, err)
	}
	e.clk.Advance(testLease + checkout.DefaultReconcileGrace + time.Second)
	s, err = r.Run(ctx)
	if err != nil || s.StrandedOrders != 1 || s.OrdersPaid != 1 {
		t.Fatalf("run after the lease %+v %v", s, err)
	}
	if paid := e.wantOneCharge(t, o); paid[o] != checkout.PaymentID(o, 1) {
		t.Fatalf("paid by %s", paid[o])
	}
	// The schedule's own entry point does the same: nothing left.
	if s, err := r.HandleSchedule(ctx, events.EventBridgeEvent{DetailType: "Scheduled Event"}); err != nil || s != (checkout.ReconcileSummary{}) {
		t.Fatalf("scheduled run %+v %v", s, err)
	}
}

func TestNewReconcilerConfig(t *testing.T) {
	e := newEnv(t)
	ok := checkout.ReconcilerConfig{DB: e.db, Store: e.store, OrdersTable: "o", PaymentsTable: "p", Provider: e.ledger, Report: e.ledger}
	for name, mutate := range map[string]func(*checkout.ReconcilerConfig){
		"no DB":          func(c *checkout.ReconcilerConfig) { c.DB = nil },
		"no store":       func(c *checkout.ReconcilerConfig) { c.Store = nil },
		"no report":      func(c *checkout.ReconcilerConfig) { c.Report = nil },
		"negative void":  func(c *checkout.ReconcilerConfig) { c.VoidAfter = -1 },
		"negative batch": func(c *checkout.ReconcilerConfig) { c.Batch = -1 },
	} {
		cfg := ok
		mutate(&cfg)
		if _, err := checkout.NewReconciler(cfg); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := checkout.NewReconciler(ok); err != nil {
		t.Fatal(err)
	}
}

// TestReconcilerAfterStripeKeyWindow: the reconciler runs only after
// Stripe forgot the keys (a 25 h outage of the schedule, on the test
// clock). An order stranded after its capture is completed with that
// capture, found by metadata search; one stranded before its request
// reached Stripe is released with a tombstone; a stray capture is refunded.
// One charge per order, and nothing charged for the tombstoned attempt.
func TestReconcilerAfterStripeKeyWindow(t *testing.T) {
	e := newEnvProvider(t, testLease, providerStripe)
	ctx := context.Background()
	createOrder, createPayment := e.wrapped()
	order := func(key string) string { return e.wrappedOrder(t, createOrder, alice, key).OrderID }
	pay := func(id, key string) responseV2 {
		return serve(t, createPayment, event(t, "POST /payments", paymentBody(id, orderAmount, "INR", "card"), key, alice))
	}
	a, b, c := order("a"), order("b"), order("c")
	stop := e.crashBeforeCommit()
	pay(a, "pa")
	stop()
	stop = e.crashInProviderCall()
	pay(b, "pb")
	stop()
	if r := pay(c, "pc"); r.StatusCode != 201 {
		t.Fatalf("%d %s", r.StatusCode, r.Body)
	}
	if _, err := e.provider.Authorize(ctx, checkout.AuthorizationRequest{IdempotencyKey: "psp_stray_c", OrderID: c,
		PaymentID: "pay_stray_c", Amount: orderAmount, Currency: "INR", PaymentMethod: "card"}); err != nil {
		t.Fatal(err)
	}
	e.clk.Advance(checkout.StripeKeyWindow + time.Hour)
	r, _ := e.reconciler(t)
	s, err := r.Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := (checkout.ReconcileSummary{StrandedOrders: 2, OrdersPaid: 1, OrdersReleased: 1,
		OpenCaptures: 3, CapturesKept: 2, CapturesVoided: 1}); s != want {
		t.Fatalf("run %+v, want %+v", s, want)
	}
	paid := e.wantOneCharge(t, a, c)
	if paid[a] != checkout.PaymentID(a, 1) {
		t.Fatalf("a paid by %s, want its attempt 1's capture", paid[a])
	}
	if o, _ := e.order(t, b); o.Status != checkout.OrderPending {
		t.Fatalf("b %+v, want PENDING", o)
	}
	if ch := e.charges(t); len(ch.captured[b]) != 0 || ch.tombstones != 1 || ch.voided != 1 {
		t.Fatalf("b captured %d, %d tombstones, %d voided; want 0, b's attempt 1, the stray", len(ch.captured[b]), ch.tombstones, ch.voided)
	}
}
