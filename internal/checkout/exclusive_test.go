package checkout_test

// One charge per order, whatever the keys: parallel keys, crashes at each
// step, lost replies, declines. Crashes are simulated with the test
// client's hooks and by never completing a claim; time moves only with the
// test clock.

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/acme/idemcheckout/internal/checkout"
	"github.com/acme/idemcheckout/pkg/idemddb"
	"github.com/acme/idemcheckout/pkg/idemddb/apigw"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
)

// charges is the ledger seen per order.
type charges struct {
	captured, declined map[string][]map[string]any // order id -> AUTH# items
	pays               map[string][]map[string]any // order id -> PAY# items
	tombstones         int                         // VOIDED keys never used
	voided             int                         // VOIDED authorizations
}

func (e *env) charges(t *testing.T) charges {
	t.Helper()
	c := charges{captured: map[string][]map[string]any{}, declined: map[string][]map[string]any{}, pays: map[string][]map[string]any{}}
	auths, pays := e.ledgerItems(t)
	if e.stripe != nil {
		auths = e.stripeAuths()
	}
	for _, a := range auths {
		order, _ := a["order_id"].(string)
		switch a["status"] {
		case string(checkout.AuthCaptured):
			c.captured[order] = append(c.captured[order], a)
		case string(checkout.AuthDeclined):
			c.declined[order] = append(c.declined[order], a)
		case string(checkout.AuthVoided):
			if a["authorization_id"] == nil {
				c.tombstones++
			} else {
				c.voided++
			}
		default:
			t.Fatalf("authorization with status %v", a["status"])
		}
	}
	for _, p := range pays {
		order, _ := p["order_id"].(string)
		c.pays[order] = append(c.pays[order], p)
	}
	return c
}

// stripeAuths are the stripe double's PaymentIntents as ledger items
// (order_id, status, authorization_id, payment_id; no authorization_id for
// a tombstone).
func (e *env) stripeAuths() []map[string]any {
	var out []map[string]any
	for _, pi := range e.stripe.PaymentIntents() {
		it := map[string]any{"order_id": pi.Metadata[checkout.StripeMetaOrder], "authorization_id": pi.ID,
			"payment_id": pi.Metadata[checkout.StripeMetaPayment], "provider_key": pi.Metadata[checkout.StripeMetaKey]}
		switch {
		case pi.Metadata[checkout.StripeMetaTombstone] == "true":
			it["status"] = string(checkout.AuthVoided)
			delete(it, "authorization_id")
		case pi.Status == "succeeded" && !pi.Refunded:
			it["status"] = string(checkout.AuthCaptured)
		case pi.Status == "succeeded" || pi.Status == "canceled":
			it["status"] = string(checkout.AuthVoided)
		case pi.LastPaymentError != nil:
			it["status"] = string(checkout.AuthDeclined)
		default:
			it["status"] = pi.Status
		}
		out = append(out, it)
	}
	return out
}

// wantOneCharge checks the invariant: each order has exactly one CAPTURED
// authorization, one payment record made from it, and is PAID with it
// (paidOnce); and no CAPTURED authorization in the ledger lacks a payment
// record. It returns each order's payment id.
func (e *env) wantOneCharge(t *testing.T, orderIDs ...string) map[string]string {
	t.Helper()
	paid := e.paidOnce(t, orderIDs...)
	c := e.charges(t)
	for order, caps := range c.captured {
		for _, a := range caps {
			if !slices.ContainsFunc(c.pays[order], func(p map[string]any) bool { return p["authorization_id"] == a["authorization_id"] }) {
				t.Fatalf("CAPTURED authorization without a payment: %v", a)
			}
		}
	}
	return paid
}

// paidOnce checks that each order has exactly one CAPTURED authorization,
// one payment record made from it, and is PAID with it, and returns each
// order's payment id.
func (e *env) paidOnce(t *testing.T, orderIDs ...string) map[string]string {
	t.Helper()
	c := e.charges(t)
	paid := map[string]string{}
	for _, id := range orderIDs {
		caps, pays := c.captured[id], c.pays[id]
		if len(caps) != 1 || len(pays) != 1 {
			t.Fatalf("order %s: %d CAPTURED authorizations, %d payment records; want one of each", id, len(caps), len(pays))
		}
		if pays[0]["authorization_id"] != caps[0]["authorization_id"] || pays[0]["payment_id"] != caps[0]["payment_id"] {
			t.Fatalf("order %s: payment %v is not made from capture %v", id, pays[0], caps[0])
		}
		o, _ := e.order(t, id)
		if o.Status != checkout.OrderPaid || o.PaymentID != pays[0]["payment_id"] {
			t.Fatalf("order %s is %s with payment %q, want PAID with %v", id, o.Status, o.PaymentID, pays[0]["payment_id"])
		}
		paid[id] = o.PaymentID
	}
	return paid
}

// problemType is the type of a problem answer ("" for other bodies).
func problemType(r responseV2) string {
	var p struct{ Type string }
	_ = json.Unmarshal([]byte(r.Body), &p)
	return p.Type
}

// TestFiftyOrdersTwentyKeys: 50 orders, each paid by 20 parallel requests
// with 20 distinct keys (real goroutines, the wrapped handler, moto):
// exactly one capture and one 201 per order, every other answer a 409
// payment-in-progress with Retry-After or a 200 already_paid naming the
// 201's payment, and no capture without its payment.
func TestFiftyOrdersTwentyKeys(t *testing.T) {
	eachProvider(t, func(t *testing.T, kind string) {
		e := newEnvProvider(t, 10*time.Minute, kind)
		createOrder, createPayment := e.wrapped()
		const orders, payers, wave = 50, 20, 5 // wave: orders raced at once
		ids := make([]string, orders)
		evs := make([][]eventV2, orders)
		for i := range orders {
			ids[i] = e.wrappedOrder(t, createOrder, alice, fmt.Sprint("order-", i)).OrderID
			for j := range payers {
				evs[i] = append(evs[i], event(t, "POST /payments", paymentBody(ids[i], orderAmount, "INR", "card"), fmt.Sprintf("pay-%d-%d", i, j), alice))
			}
		}
		answers := make([][]responseV2, orders)
		errs := make(chan error, orders*payers)
		for first := 0; first < orders; first += wave {
			var wg sync.WaitGroup
			gun := make(chan struct{})
			for i := first; i < first+wave; i++ {
				answers[i] = make([]responseV2, payers)
				for j := range payers {
					wg.Add(1)
					go func() {
						defer wg.Done()
						<-gun
						r, err := createPayment(context.Background(), evs[i][j])
						if err != nil {
							errs <- err
						}
						answers[i][j] = r
					}()
				}
			}
			close(gun)
			wg.Wait()
		}
		close(errs)
		for err := range errs {
			t.Fatalf("handler error: %v", err)
		}
		counts := map[string]int{}
		for i := range orders {
			created, named := 0, map[string]bool{}
			for _, r := range answers[i] {
				switch {
				case r.StatusCode == 201:
					created++
					counts["201"]++
					var pay checkout.Payment
					_ = json.Unmarshal([]byte(r.Body), &pay)
					named[pay.PaymentID] = true
				case r.StatusCode == 200:
					var a checkout.PaymentAnswer
					_ = json.Unmarshal([]byte(r.Body), &a)
					if !a.AlreadyPaid {
						t.Fatalf("order %d: 200 without already_paid: %s", i, r.Body)
					}
					named[a.PaymentID] = true
					counts["200 already_paid"]++
				case r.StatusCode == 409 && problemType(r) == checkout.ProblemPaymentInProgress.Type() && r.Headers["Retry-After"] != "":
					counts["409 "+strings.TrimPrefix(problemType(r), checkout.ProblemBase)]++
				default:
					t.Fatalf("order %d: answer %d %v %s", i, r.StatusCode, r.Headers, r.Body)
				}
			}
			if created != 1 || len(named) != 1 {
				t.Fatalf("order %d: %d answers 201, payments named %v; want exactly one 201, and every 200 naming its payment", i, created, named)
			}
		}
		t.Logf("%d orders x %d keys: %v", orders, payers, counts)
		e.wantOneCharge(t, ids...)
		if c := e.charges(t); len(c.captured) != orders || c.voided != 0 {
			t.Fatalf("%d orders captured, %d voided", len(c.captured), c.voided)
		}
	})
}

// crashBeforeCommit makes every payment completion (a TransactWriteItems
// carrying a payment record) fail before it is sent, as when the function
// dies after the provider captured: the record stays claimed, the order
// PAYING. It returns a function that stops the crashes.
func (e *env) crashBeforeCommit() (stop func()) {
	var mu sync.Mutex
	on := true
	e.db.Before(func(op string, in any) error {
		mu.Lock()
		defer mu.Unlock()
		if op == "TransactWriteItems" && on {
			for _, w := range in.(*dynamodb.TransactWriteItemsInput).TransactItems {
				if w.Put != nil && *w.Put.TableName == e.paymentsTb {
					return errInjected
				}
			}
		}
		return nil
	})
	return func() { mu.Lock(); on = false; mu.Unlock() }
}

// TestCrashAfterCaptureThenNewKey: the function dies after the provider
// captured, before the commit, and the client starts over with a new key.
// While the attempt's lease lasts the new key is told payment-in-progress;
// after it, the new key finds the capture, completes the order with it
// and is told the order is paid (200 already_paid); the first key's retry
// gets its 201. One capture in all.
func TestCrashAfterCaptureThenNewKey(t *testing.T) {
	eachProvider(t, func(t *testing.T, kind string) {
		e := newEnvProvider(t, testLease, kind)
		createOrder, createPayment := e.wrapped()
		o := e.wrappedOrder(t, createOrder, alice, "o")
		body := paymentBody(o.OrderID, orderAmount, "INR", "card")
		stop := e.crashBeforeCommit()
		first := serve(t, createPayment, event(t, "POST /payments", body, "first", alice))
		wantProblem(t, first, 503, apigw.DefaultProblemBase+apigw.ProblemStoreUnavailable)
		stop()

		r := serve(t, createPayment, event(t, "POST /payments", body, "second", alice))
		wantProblem(t, r, 409, checkout.ProblemPaymentInProgress.Type())
		e.clk.Advance(testLease + time.Second)
		r = serve(t, createPayment, event(t, "POST /payments", body, "second", alice))
		paid := e.wantOneCharge(t, o.OrderID)
		p := wantAlreadyPaid(t, r, checkout.PaymentID(o.OrderID, 1))
		if p.PaymentID != paid[o.OrderID] {
			t.Fatalf("200 names %q; the order is paid by %q", p.PaymentID, paid[o.OrderID])
		}
		again := serve(t, createPayment, event(t, "POST /payments", body, "first", alice))
		var pay checkout.Payment
		_ = json.Unmarshal([]byte(again.Body), &pay)
		if again.StatusCode != 201 || pay.PaymentID != p.PaymentID {
			t.Fatalf("first key's retry: %d %s, want 201 with %s", again.StatusCode, again.Body, p.PaymentID)
		}
		e.wantOneCharge(t, o.OrderID)
	})
}

// TestCrashDuringProviderCall: the function dies during the provider call
// (the provider captured and the reply was lost, or the request never
// arrived), the lease passes, then the same key and a new key pay, one
// after the other either way round, or at once. One capture in all; when
// the first attempt never reached the provider, its request arriving late
// is answered VOIDED and charges nothing.
func TestCrashDuringProviderCall(t *testing.T) {
	eachProvider(t, func(t *testing.T, kind string) {
		for _, captured := range []bool{true, false} {
			for _, order := range []string{"same key first", "new key first", "together"} {
				t.Run(fmt.Sprintf("captured=%v/%s", captured, order), func(t *testing.T) {
					e := newEnvProvider(t, testLease, kind)
					ctx := context.Background()
					createOrder, createPayment := e.wrapped()
					o := e.wrappedOrder(t, createOrder, alice, "o")
					body := paymentBody(o.OrderID, orderAmount, "INR", "card")
					same, fresh := event(t, "POST /payments", body, "same", alice), event(t, "POST /payments", body, "new", alice)

					// The invocation dies during the provider call: the
					// provider's answer is lost, and so is everything after it
					// (the release of the key fails too), so the key stays
					// claimed and the order PAYING until their lease ends.
					if captured {
						e.loseAuthorizeReplies(1)
					} else {
						e.failProvider(true)
					}
					e.db.Before(func(op string, in any) error {
						if op == "DeleteItem" {
							return errInjected
						}
						return nil
					})
					wantProblem(t, serve(t, createPayment, same), 503, checkout.ProblemProviderUnavailable.Type())
					e.failProvider(false)
					e.db.Before(nil)
					if c := e.charges(t); len(c.captured[o.OrderID]) != map[bool]int{true: 1, false: 0}[captured] {
						t.Fatalf("premise: %d captures after the crash", len(c.captured[o.OrderID]))
					}
					if st := e.idemStatuses(t); !slices.Contains(st, idemddb.StatusInProgress) {
						t.Fatalf("premise: the crashed key is still claimed: %v", st)
					}
					e.clk.Advance(testLease + time.Second)

					answers := map[string]responseV2{}
					switch order {
					case "same key first":
						answers["same"] = serve(t, createPayment, same)
						answers["new"] = serve(t, createPayment, fresh)
					case "new key first":
						answers["new"] = serve(t, createPayment, fresh)
						answers["same"] = serve(t, createPayment, same)
					default:
						var mu sync.Mutex
						var wg sync.WaitGroup
						gun := make(chan struct{})
						for name, ev := range map[string]eventV2{"same": same, "new": fresh} {
							wg.Add(1)
							go func() {
								defer wg.Done()
								<-gun
								r, _ := createPayment(ctx, ev)
								mu.Lock()
								answers[name] = r
								mu.Unlock()
							}()
						}
						close(gun)
						wg.Wait()
					}
					created := 0
					for name, r := range answers {
						var a checkout.PaymentAnswer
						_ = json.Unmarshal([]byte(r.Body), &a)
						switch {
						case r.StatusCode == 201:
							created++
						case r.StatusCode == 200 && a.AlreadyPaid:
						case r.StatusCode != 409 || r.Headers["Retry-After"] == "":
							t.Fatalf("%s key: %d %v %s", name, r.StatusCode, r.Headers, r.Body)
						}
					}
					if created != 1 && !(order == "together" && created == 0) {
						t.Fatalf("%d answers 201: %v", created, answers)
					}
					paid := e.wantOneCharge(t, o.OrderID)
					if captured && paid[o.OrderID] != checkout.PaymentID(o.OrderID, 1) {
						t.Fatalf("order paid by %s, want the first attempt's capture", paid[o.OrderID])
					}
					// Whatever each got, a retry now tells each key the truth.
					for name, ev := range map[string]eventV2{"same": same, "new": fresh} {
						r := serve(t, createPayment, ev)
						var a checkout.PaymentAnswer
						_ = json.Unmarshal([]byte(r.Body), &a)
						if a.PaymentID != paid[o.OrderID] || !(r.StatusCode == 201 && !a.AlreadyPaid || r.StatusCode == 200 && a.AlreadyPaid) {
							t.Fatalf("%s key's retry: %d %s", name, r.StatusCode, r.Body)
						}
					}
					if !captured {
						late, err := e.provider.Authorize(ctx, checkout.AuthorizationRequest{
							IdempotencyKey: checkout.ProviderIdempotencyKey(o.OrderID, 1), OrderID: o.OrderID, Attempt: 1,
							PaymentID: checkout.PaymentID(o.OrderID, 1), Amount: orderAmount, Currency: "INR", PaymentMethod: "card",
						})
						if err != nil || late.Status != checkout.AuthVoided {
							t.Fatalf("the crashed attempt's late authorization: %+v %v, want VOIDED", late, err)
						}
					}
					e.wantOneCharge(t, o.OrderID)
				})
			}
		}
	})
}

// TestDeclineThenNewKey: a declined card, then a new key with a good card:
// one DECLINED and one CAPTURED authorization, the order PAID, and the
// decline in the order's history.
func TestDeclineThenNewKey(t *testing.T) {
	eachProvider(t, func(t *testing.T, kind string) {
		e := newEnvProvider(t, testLease, kind)
		createOrder, createPayment := e.wrapped()
		o := e.wrappedOrder(t, createOrder, alice, "o")
		r := serve(t, createPayment, event(t, "POST /payments", paymentBody(o.OrderID, orderAmount, "INR", checkout.DeclinedPaymentMethod), "declined", alice))
		wantProblem(t, r, 402, checkout.ProblemPaymentDeclined.Type())
		if st, _ := e.order(t, o.OrderID); st.Status != checkout.OrderPending || st.Attempt != 1 || st.Settled != 1 {
			t.Fatalf("after the decline: %+v", st)
		}
		r = serve(t, createPayment, event(t, "POST /payments", paymentBody(o.OrderID, orderAmount, "INR", "card"), "good", alice))
		if r.StatusCode != 201 {
			t.Fatalf("%d %s", r.StatusCode, r.Body)
		}
		e.wantOneCharge(t, o.OrderID)
		c := e.charges(t)
		if len(c.declined[o.OrderID]) != 1 || c.voided+c.tombstones != 0 {
			t.Fatalf("%d declined, %d voided, %d tombstones", len(c.declined[o.OrderID]), c.voided, c.tombstones)
		}
		st, _ := e.order(t, o.OrderID)
		code := map[string]string{providerLedger: "card_declined", providerStripe: "generic_decline"}[kind]
		want := []checkout.AttemptOutcome{{Attempt: 1, Outcome: checkout.OutcomeDeclined, DeclineCode: code, At: st.Attempts[0].At}}
		if st.Attempt != 2 || st.Settled != 2 || !slices.Equal(st.Attempts, want) {
			t.Fatalf("order %+v, want attempt 2 paid after declined attempt 1", st)
		}
	})
}

// TestRequestsPerPayment counts the DynamoDB requests of a payment with the
// counting test client: its own (idempotency store and orders/payments
// tables) and the provider's (the ledger).
func TestRequestsPerPayment(t *testing.T) {
	eachProvider(t, func(t *testing.T, kind string) {
		e := newEnvProvider(t, testLease, kind)
		createOrder, createPayment := e.wrapped()
		count := func(name string, ev eventV2, wantStatus int, wantOwn, wantProvider map[string]int) {
			t.Helper()
			e.db.Reset()
			e.resetProviderCounts()
			if r := serve(t, createPayment, ev); r.StatusCode != wantStatus {
				t.Fatalf("%s: %d %s", name, r.StatusCode, r.Body)
			}
			own, prov := e.db.Counts(), e.providerCounts()
			t.Logf("%s: own %v (%d), provider %v", name, own, e.db.Total(), prov)
			if !maps.Equal(own, wantOwn) || !maps.Equal(prov, wantProvider) {
				t.Fatalf("%s: own %v provider %v, want %v and %v", name, own, prov, wantOwn, wantProvider)
			}
		}
		o := e.wrappedOrder(t, createOrder, alice, "o")
		pay := event(t, "POST /payments", paymentBody(o.OrderID, orderAmount, "INR", "card"), "p", alice)
		// claim (PutItem) + lock (UpdateItem) + commit (TransactWriteItems);
		// the provider's authorization (PutItem).
		// The provider's requests: the ledger's DynamoDB requests, or
		// Stripe's.
		authorize := map[string]map[string]int{providerLedger: {"PutItem": 1}, providerStripe: {"POST /v1/payment_intents": 1}}[kind]
		lookup := map[string]map[string]int{providerLedger: {"GetItem": 1}, providerStripe: {"GET /v1/payment_intents/search": 1}}[kind]
		count("first payment", pay, 201, map[string]int{"PutItem": 1, "UpdateItem": 1, "TransactWriteItems": 1}, authorize)
		count("replay", pay, 201, map[string]int{"PutItem": 1}, map[string]int{})
		count("another key, order paid", event(t, "POST /payments", paymentBody(o.OrderID, orderAmount, "INR", "card"), "p2", alice), 200,
			map[string]int{"PutItem": 1, "UpdateItem": 2}, map[string]int{}) // the 200 is stored: completion, not release

		d := e.wrappedOrder(t, createOrder, alice, "d")
		count("decline", event(t, "POST /payments", paymentBody(d.OrderID, orderAmount, "INR", checkout.DeclinedPaymentMethod), "d", alice), 402,
			map[string]int{"PutItem": 1, "UpdateItem": 1, "TransactWriteItems": 1}, authorize)

		// Takeover after a crash after the capture: the new key also looks the
		// attempt up and completes the order on its own.
		c := e.wrappedOrder(t, createOrder, alice, "c")
		body := paymentBody(c.OrderID, orderAmount, "INR", "card")
		stop := e.crashBeforeCommit()
		serve(t, createPayment, event(t, "POST /payments", body, "c1", alice))
		stop()
		e.clk.Advance(testLease + time.Second)
		count("takeover finding a capture", event(t, "POST /payments", body, "c2", alice), 200,
			map[string]int{"PutItem": 1, "UpdateItem": 2, "TransactWriteItems": 1}, lookup)
	})
}

// TestAuthorizeVoided: attempt 1 is slow; its lease lapses before its
// authorization reaches the provider, and another key takes the order
// over, voids attempt 1's key (a tombstone) and pays. Attempt 1's
// authorization then arrives and is answered VOIDED: it charges nothing,
// commits nothing, and its client is told payment-in-progress.
func TestAuthorizeVoided(t *testing.T) {
	eachProvider(t, func(t *testing.T, kind string) {
		e := newEnvProvider(t, testLease, kind)
		createOrder, createPayment := e.wrapped()
		o := e.wrappedOrder(t, createOrder, alice, "o")
		body := paymentBody(o.OrderID, orderAmount, "INR", "card")
		var rB responseV2
		done := false
		e.beforeAuthorize(func() {
			if !done {
				done = true
				e.clk.Advance(testLease + time.Second)
				rB = serve(t, createPayment, event(t, "POST /payments", body, "B", alice))
			}
		})
		rA := serve(t, createPayment, event(t, "POST /payments", body, "A", alice))
		if rB.StatusCode != 201 {
			t.Fatalf("B: %d %s", rB.StatusCode, rB.Body)
		}
		if p := wantProblem(t, rA, 409, checkout.ProblemPaymentInProgress.Type()); rA.Headers["Retry-After"] != "1" || p.OrderID != o.OrderID {
			t.Fatalf("A: %+v Retry-After %q", p, rA.Headers["Retry-After"])
		}
		paid := e.wantOneCharge(t, o.OrderID)
		if paid[o.OrderID] != checkout.PaymentID(o.OrderID, 2) {
			t.Fatalf("paid by %s, want attempt 2", paid[o.OrderID])
		}
		if c := e.charges(t); c.tombstones != 1 {
			t.Fatalf("%d tombstones, want attempt 1's", c.tombstones)
		}
		st, _ := e.order(t, o.OrderID)
		if len(st.Attempts) != 1 || st.Attempts[0].Attempt != 1 || st.Attempts[0].Outcome != checkout.OutcomeAbandoned {
			t.Fatalf("history %+v", st.Attempts)
		}
	})
}

// TestLockReplyLost: the lock's reply is lost (the engine applied it). The
// handler answers 503 and the key is released; the order is PAYING under
// that key, so another key is told payment-in-progress, but the same key's
// retry locks it again at once, settles the unused attempt and pays.
func TestLockReplyLost(t *testing.T) {
	eachProvider(t, func(t *testing.T, kind string) {
		e := newEnvProvider(t, testLease, kind)
		createOrder, createPayment := e.wrapped()
		o := e.wrappedOrder(t, createOrder, alice, "o")
		body := paymentBody(o.OrderID, orderAmount, "INR", "card")
		e.db.LoseReplies("UpdateItem", 1)
		wantProblem(t, serve(t, createPayment, event(t, "POST /payments", body, "k", alice)), 503, checkout.ProblemServiceUnavailable.Type())
		if st, _ := e.order(t, o.OrderID); st.Status != checkout.OrderPaying || st.Attempt != 1 {
			t.Fatalf("premise: the lost lock was applied: %+v", st)
		}
		wantProblem(t, serve(t, createPayment, event(t, "POST /payments", body, "other", alice)), 409, checkout.ProblemPaymentInProgress.Type())
		if r := serve(t, createPayment, event(t, "POST /payments", body, "k", alice)); r.StatusCode != 201 {
			t.Fatalf("same key's retry: %d %s", r.StatusCode, r.Body)
		}
		e.wantOneCharge(t, o.OrderID)
	})
}

// TestGetRoutes: GET /orders/{id} and GET /payments/{id} through the
// wrapped handlers, without an Idempotency-Key: the owner gets 200 with the
// stored state at each step; another caller and an unknown id get the same
// 404, byte for byte.
func TestGetRoutes(t *testing.T) {
	e := newEnv(t)
	createOrder, createPayment := e.wrapped()
	get := func(h handler, path, sub string) responseV2 {
		t.Helper()
		route := "GET /orders/{id}"
		if strings.HasPrefix(path, "/payments/") {
			route = "GET /payments/{id}"
		}
		ev := event(t, route, "", "", sub)
		ev.RawPath, ev.RequestContext.HTTP.Path = path, path
		ev.PathParameters = map[string]string{"id": path[strings.LastIndex(path, "/")+1:]}
		return serve(t, h, ev)
	}
	order := func(r responseV2) map[string]any {
		t.Helper()
		if r.StatusCode != 200 || r.Headers["Content-Type"] != "application/json" || r.Headers["Cache-Control"] != "no-store" {
			t.Fatalf("%d %v %s", r.StatusCode, r.Headers, r.Body)
		}
		var m map[string]any
		_ = json.Unmarshal([]byte(r.Body), &m)
		return m
	}
	post := serve(t, createOrder, event(t, "POST /orders", orderBody, "o", alice))
	var o checkout.Order
	_ = json.Unmarshal([]byte(post.Body), &o)
	loc := post.Headers["Location"]

	if r := get(createOrder, loc, alice); r.Body != post.Body || order(r)["status"] != "PENDING" {
		t.Fatalf("GET a new order: %s, want the POST's body %s", r.Body, post.Body)
	}
	unknown := get(createOrder, "/orders/ord_unknown", alice)
	other := get(createOrder, loc, bob)
	wantProblem(t, unknown, 404, checkout.ProblemOrderNotFound.Type())
	if other.StatusCode != 404 || other.Body != unknown.Body || strings.Contains(other.Body, o.OrderID) {
		t.Fatalf("another caller's order: %d %s, want %s", other.StatusCode, other.Body, unknown.Body)
	}
	wantProblem(t, get(createOrder, loc, ""), 401, checkout.ProblemUnauthenticated.Type())

	// PAYING: the attempt and when its lease ends (a crash before commit).
	body := paymentBody(o.OrderID, orderAmount, "INR", "card")
	stop := e.crashBeforeCommit()
	serve(t, createPayment, event(t, "POST /payments", body, "p", alice))
	stop()
	paying := order(get(createOrder, loc, alice))
	until := e.clk.Now().Add(testLease).UTC().Format(time.RFC3339Nano)
	if paying["status"] != "PAYING" || paying["attempt"] != float64(1) || paying["attempt_expires_at"] != until {
		t.Fatalf("PAYING order %v, want attempt 1 until %s", paying, until)
	}
	for _, internal := range []string{"customer_id", "attempt_owner", "attempt_until", "settled", "paid_by"} {
		if _, ok := paying[internal]; ok {
			t.Fatalf("GET shows %s: %v", internal, paying)
		}
	}

	// PAID: the payment id, and the payment itself.
	e.clk.Advance(testLease + time.Second)
	paid := serve(t, createPayment, event(t, "POST /payments", body, "p", alice))
	if paid.StatusCode != 201 {
		t.Fatalf("%d %s", paid.StatusCode, paid.Body)
	}
	var pay checkout.Payment
	_ = json.Unmarshal([]byte(paid.Body), &pay)
	done := order(get(createOrder, loc, alice))
	if done["status"] != "PAID" || done["payment_id"] != pay.PaymentID || done["paid_at"] != pay.CreatedAt || done["attempt_expires_at"] != nil {
		t.Fatalf("PAID order %v", done)
	}
	if r := get(createPayment, paid.Headers["Location"], alice); r.StatusCode != 200 || r.Body != paid.Body {
		t.Fatalf("GET payment: %d %s, want the POST's body %s", r.StatusCode, r.Body, paid.Body)
	}
	unknownPay := get(createPayment, "/payments/pay_unknown", alice)
	wantProblem(t, unknownPay, 404, checkout.ProblemPaymentNotFound.Type())
	if r := get(createPayment, paid.Headers["Location"], bob); r.StatusCode != 404 || r.Body != unknownPay.Body {
		t.Fatalf("another caller's payment: %d %s", r.StatusCode, r.Body)
	}
	if n := len(e.idemStatuses(t)); n != 2 { // the order's and the payment's: GETs claim nothing
		t.Fatalf("%d idempotency records", n)
	}
}
