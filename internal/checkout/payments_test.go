package checkout_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/acme/idemcheckout/internal/checkout"
	"github.com/acme/idemcheckout/pkg/idemddb"
	"github.com/acme/idemcheckout/pkg/idemddb/apigw"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
)

func (e *env) pay(t *testing.T, sub, key, body string) (checkoutResponse, problem) {
	t.Helper()
	r := e.mustDirect(t, e.payments.CreatePayment, event(t, "POST /payments", body, key, sub))
	var out checkoutResponse
	out.Status, out.Body = r.StatusCode, r.Body
	if r.StatusCode == 201 {
		if err := json.Unmarshal([]byte(r.Body), &out.Payment); err != nil {
			t.Fatal(err)
		}
		return out, problem{}
	}
	var p problem
	_ = json.Unmarshal([]byte(r.Body), &p)
	return out, p
}

// payUncompleted claims ev's key as runDirect does and runs the payment
// under the claim, which it neither completes nor releases: the function
// died after the handler returned its 201. It returns the claim and the
// 201.
func (e *env) payUncompleted(t *testing.T, ev eventV2) (*idemddb.Claim, responseV2) {
	t.Helper()
	ctx := context.Background()
	c, _, err := e.store.Begin(ctx, idemddb.Request{Key: directKey(ev), Fingerprint: []byte(ev.Body)})
	if err != nil || c == nil {
		t.Fatalf("claim: %v", err)
	}
	r, _ := e.payments.CreatePayment(idemddb.WithClaim(ctx, c), ev)
	if r.StatusCode != 201 {
		t.Fatalf("%d %s", r.StatusCode, r.Body)
	}
	return c, r
}

type checkoutResponse struct {
	Status  int
	Body    string
	Payment checkout.Payment
}

func TestCreatePayment(t *testing.T) {
	e := newEnv(t)
	o := e.createOrder(t, alice, "o1", orderBody)
	r := e.mustDirect(t, e.payments.CreatePayment, event(t, "POST /payments", paymentBody(o.OrderID, orderAmount, "INR", "card"), "p1", alice))
	if r.StatusCode != 201 || r.Headers["Content-Type"] != "application/json" {
		t.Fatalf("%d %s", r.StatusCode, r.Body)
	}
	var body map[string]any
	_ = json.Unmarshal([]byte(r.Body), &body)
	for _, k := range []string{"payment_id", "order_id", "amount", "currency", "status"} {
		if _, ok := body[k]; !ok {
			t.Fatalf("body %s lacks %s", r.Body, k)
		}
	}
	if len(body) != 6 { // and created_at: no already_paid in a 201
		t.Fatalf("body %s: want exactly the payment's six members", r.Body)
	}
	var p checkout.Payment
	_ = json.Unmarshal([]byte(r.Body), &p)
	if !strings.HasPrefix(p.PaymentID, checkout.PaymentIDPrefix) || p.OrderID != o.OrderID || p.Amount != orderAmount || p.Currency != "INR" || p.Status != "CAPTURED" {
		t.Fatalf("payment %+v", p)
	}
	if r.Headers["Location"] != "/payments/"+p.PaymentID {
		t.Fatalf("Location %q", r.Headers["Location"])
	}
	paid, _ := e.order(t, o.OrderID)
	if paid.Status != "PAID" || paid.PaymentID != p.PaymentID || paid.PaidAt == "" {
		t.Fatalf("order after payment %+v", paid)
	}
	auths, pays := e.ledgerItems(t)
	if len(auths) != 1 || auths[0]["status"] != "CAPTURED" || auths[0]["order_id"] != o.OrderID ||
		auths[0]["amount"] != float64(orderAmount) || auths[0]["currency"] != "INR" || auths[0]["created_at"] == "" {
		t.Fatalf("ledger %v", auths)
	}
	if len(pays) != 1 || pays[0]["pk"] != "PAY#"+p.PaymentID || pays[0]["customer_id"] != alice ||
		pays[0]["authorization_id"] != auths[0]["authorization_id"] || pays[0]["status"] != "CAPTURED" {
		t.Fatalf("payment records %v", pays)
	}
}

func TestCreatePaymentErrors(t *testing.T) {
	e := newEnv(t)
	o := e.createOrder(t, alice, "o1", orderBody)
	bobs := e.createOrder(t, bob, "o1", orderBody)

	t.Run("401 without sub", func(t *testing.T) {
		r, p := e.pay(t, "", "n1", paymentBody(o.OrderID, orderAmount, "INR", "card"))
		if r.Status != 401 || p.Type != checkout.ProblemUnauthenticated.Type() {
			t.Fatalf("%d %s", r.Status, r.Body)
		}
	})

	t.Run("404 unknown order and another customer's order look the same", func(t *testing.T) {
		unknown := e.mustDirect(t, e.payments.CreatePayment, event(t, "POST /payments", paymentBody("ord_nope", orderAmount, "INR", "card"), "n2", alice))
		wantProblem(t, unknown, 404, checkout.ProblemOrderNotFound.Type())
		// Bob's order, with its right amount and currency: still 404.
		other := e.mustDirect(t, e.payments.CreatePayment, event(t, "POST /payments", paymentBody(bobs.OrderID, orderAmount, "INR", "card"), "n3", alice))
		wantProblem(t, other, 404, checkout.ProblemOrderNotFound.Type())
		if other.Body != unknown.Body || other.Headers["Content-Type"] != unknown.Headers["Content-Type"] {
			t.Fatalf("bodies differ:\n%s\n%s", other.Body, unknown.Body)
		}
		if strings.Contains(other.Body, bobs.OrderID) {
			t.Fatal("the 404 echoes the other customer's order id")
		}
		if b, _ := e.order(t, bobs.OrderID); b.Status != "PENDING" {
			t.Fatalf("bob's order changed: %+v", b)
		}
	})

	t.Run("422 amount mismatch", func(t *testing.T) {
		r, p := e.pay(t, alice, "n4", paymentBody(o.OrderID, orderAmount-1, "INR", "card"))
		if r.Status != 422 || p.Type != checkout.ProblemPaymentMismatch.Type() || !slices.Equal(p.fields(), []string{"amount"}) || p.OrderID != o.OrderID {
			t.Fatalf("%d %s", r.Status, r.Body)
		}
	})

	t.Run("422 currency mismatch", func(t *testing.T) {
		r, p := e.pay(t, alice, "n5", paymentBody(o.OrderID, orderAmount, "USD", "card"))
		if r.Status != 422 || p.Type != checkout.ProblemPaymentMismatch.Type() || !slices.Equal(p.fields(), []string{"currency"}) {
			t.Fatalf("%d %s", r.Status, r.Body)
		}
	})

	if auths, _ := e.ledgerItems(t); len(auths) != 0 {
		t.Fatalf("rejected payments reached the provider: %v", auths)
	}

	t.Run("402 declined, recorded, order still payable", func(t *testing.T) {
		r := e.mustDirect(t, e.payments.CreatePayment, event(t, "POST /payments", paymentBody(o.OrderID, orderAmount, "INR", checkout.DeclinedPaymentMethod), "n6", alice))
		p := wantProblem(t, r, 402, checkout.ProblemPaymentDeclined.Type())
		if p.DeclineCode != "card_declined" || p.OrderID != o.OrderID || !strings.HasPrefix(p.PaymentID, "pay_") {
			t.Fatalf("%+v", p)
		}
		auths, pays := e.ledgerItems(t)
		if len(auths) != 1 || auths[0]["status"] != "DECLINED" || auths[0]["decline_code"] != "card_declined" || auths[0]["payment_id"] != p.PaymentID {
			t.Fatalf("ledger %v", auths)
		}
		if len(pays) != 0 {
			t.Fatalf("a declined payment was recorded: %v", pays)
		}
		if st, _ := e.order(t, o.OrderID); st.Status != "PENDING" {
			t.Fatalf("order %+v", st)
		}
		// The 402 is stored: the same key replays it without a second attempt.
		again := e.mustDirect(t, e.payments.CreatePayment, event(t, "POST /payments", paymentBody(o.OrderID, orderAmount, "INR", checkout.DeclinedPaymentMethod), "n6", alice))
		if again.StatusCode != 402 || again.Body != r.Body {
			t.Fatalf("replay %d %s", again.StatusCode, again.Body)
		}
		if auths, _ := e.ledgerItems(t); len(auths) != 1 {
			t.Fatalf("replay reached the provider: %v", auths)
		}
	})

	var first checkout.Payment
	t.Run("201 with another card", func(t *testing.T) {
		r, _ := e.pay(t, alice, "n7", paymentBody(o.OrderID, orderAmount, "INR", "card"))
		if r.Status != 201 {
			t.Fatalf("%d %s", r.Status, r.Body)
		}
		first = r.Payment
	})

	t.Run("200 already paid", func(t *testing.T) {
		r := e.mustDirect(t, e.payments.CreatePayment, event(t, "POST /payments", paymentBody(o.OrderID, orderAmount, "INR", "card"), "n8", alice))
		if pay := wantAlreadyPaid(t, r, first.PaymentID); pay != first {
			t.Fatalf("%+v, want the order's payment %+v", pay, first)
		}
		// Stored like any 2xx: the same key replays it, reaching nothing.
		e.pdb.Reset()
		again := e.mustDirect(t, e.payments.CreatePayment, event(t, "POST /payments", paymentBody(o.OrderID, orderAmount, "INR", "card"), "n8", alice))
		if again.StatusCode != 200 || again.Body != r.Body || e.pdb.Total() != 0 {
			t.Fatalf("replay: %d %s, %d provider requests", again.StatusCode, again.Body, e.pdb.Total())
		}
		auths, pays := e.ledgerItems(t)
		if len(auths) != 2 || len(pays) != 1 { // the decline and the capture
			t.Fatalf("ledger %d auths, %d payments", len(auths), len(pays))
		}
	})
}

func TestCreatePaymentValidation(t *testing.T) {
	e := newEnv(t)
	cases := []struct {
		name, body string
		fields     []string
	}{
		{"empty body", ``, []string{"body"}},
		{"malformed", `{"order_id":`, []string{"body"}},
		{"trailing data", `{"order_id":"o","amount":1,"currency":"INR","payment_method":"card"}x`, []string{"body"}},
		{"unknown field", `{"order_id":"o","amount":1,"currency":"INR","payment_method":"card","tip":5}`, []string{"tip"}},
		{"missing order_id", `{"amount":1,"currency":"INR","payment_method":"card"}`, []string{"order_id"}},
		{"empty order_id", `{"order_id":"","amount":1,"currency":"INR","payment_method":"card"}`, []string{"order_id"}},
		{"order_id too long", paymentBody(strings.Repeat("o", checkout.MaxOrderIDBytes+1), 1, "INR", "card"), []string{"order_id"}},
		{"missing amount", `{"order_id":"o","currency":"INR","payment_method":"card"}`, []string{"amount"}},
		{"zero amount", paymentBody("o", 0, "INR", "card"), []string{"amount"}},
		{"negative amount", paymentBody("o", -100, "INR", "card"), []string{"amount"}},
		{"fractional amount", `{"order_id":"o","amount":10.5,"currency":"INR","payment_method":"card"}`, []string{"amount"}},
		{"amount as string", `{"order_id":"o","amount":"100","currency":"INR","payment_method":"card"}`, []string{"amount"}},
		{"bad currency", paymentBody("o", 1, "Rs", "card"), []string{"currency"}},
		{"missing payment_method", `{"order_id":"o","amount":1,"currency":"INR"}`, []string{"payment_method"}},
		{"empty payment_method", paymentBody("o", 1, "INR", ""), []string{"payment_method"}},
		{"all wrong", `{"order_id":"","amount":0,"currency":"inr","payment_method":""}`, []string{"amount", "currency", "order_id", "payment_method"}},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := e.mustDirect(t, e.payments.CreatePayment, event(t, "POST /payments", tc.body, fmt.Sprint("v", i), alice))
			p := wantProblem(t, r, 400, checkout.ProblemValidation.Type())
			if got := p.fields(); !slices.Equal(got, tc.fields) {
				t.Fatalf("fields %v, want %v (%s)", got, tc.fields, r.Body)
			}
		})
	}
	if auths, _ := e.ledgerItems(t); len(auths) != 0 {
		t.Fatal("invalid payments reached the provider")
	}
}

// TestPaymentCrashRecovery: the function crashes after the provider
// captured but before the completion transaction. The lease lapses, the
// retry takes the claim over, locks the order again (same key), finds the
// first attempt's capture at the provider instead of charging again, and
// the payment commits under the first attempt's payment id.
func TestPaymentCrashRecovery(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	o := e.createOrder(t, alice, "o1", orderBody)
	ev := event(t, "POST /payments", paymentBody(o.OrderID, orderAmount, "INR", "card"), "crash", alice)
	c1, r1 := e.payUncompleted(t, ev)
	var p1 checkout.Payment
	_ = json.Unmarshal([]byte(r1.Body), &p1)
	// Crash: c1 never completes. The charge happened, nothing else did.
	if auths, pays := e.ledgerItems(t); len(auths) != 1 || len(pays) != 0 {
		t.Fatalf("after the crash: %d auths, %d payments", len(auths), len(pays))
	}
	if st, _ := e.order(t, o.OrderID); st.Status != "PAYING" || st.Attempt != 1 || st.Settled != 0 {
		t.Fatalf("order after the crash %+v, want PAYING under attempt 1", st)
	}

	// While the lease lives, a retry is refused, not run.
	if _, _, err := e.runDirect(t, e.payments.CreatePayment, ev); !errors.Is(err, idemddb.ErrInProgress) {
		t.Fatalf("retry during the lease: %v", err)
	}
	e.clk.Advance(testLease + time.Second)
	var claim2 *idemddb.Claim
	r2, _, err := e.runDirect(t, func(ctx context.Context, ev2 eventV2) (responseV2, error) {
		claim2, _ = idemddb.ClaimFromContext(ctx)
		return e.payments.CreatePayment(ctx, ev2)
	}, ev)
	if err != nil || r2.StatusCode != 201 {
		t.Fatalf("retry: %v %d %s", err, r2.StatusCode, r2.Body)
	}
	if !claim2.TakenOver || claim2.ResourceID != c1.ResourceID {
		t.Fatalf("retry claim %+v, want a takeover of %s", claim2, c1.ResourceID)
	}
	var p2 checkout.Payment
	_ = json.Unmarshal([]byte(r2.Body), &p2)
	if p2.PaymentID != p1.PaymentID || p2.PaymentID != checkout.PaymentID(o.OrderID, 1) {
		t.Fatalf("payment id %s after recovery, want %s", p2.PaymentID, p1.PaymentID)
	}
	auths, pays := e.ledgerItems(t)
	if len(auths) != 1 || len(pays) != 1 || auths[0]["status"] != "CAPTURED" {
		t.Fatalf("after recovery: %v / %v, want one authorization and one payment", auths, pays)
	}
	if st, _ := e.order(t, o.OrderID); st.Status != "PAID" || st.PaymentID != p1.PaymentID || st.Attempt != 2 || st.Settled != 2 {
		t.Fatalf("order %+v", st)
	}
	// The crashed instance wakes up: its completion is fenced off.
	if _, err := e.store.Complete(ctx, c1, []byte(r1.Body)); !errors.Is(err, idemddb.ErrFenced) {
		t.Fatalf("stale completion: %v", err)
	}
	if auths, pays := e.ledgerItems(t); len(auths) != 1 || len(pays) != 1 {
		t.Fatal("stale completion changed the ledger")
	}
}

// TestPaymentProviderResponseLost: the provider recorded the capture but its
// answer was lost. The handler answers 502, the wrapper releases the key
// (the order stays PAYING under it), and the retry – under a new claim with
// a new ResourceID but the same key – locks the order again at once, finds
// the first attempt's capture at the provider instead of charging twice,
// and completes the order with it.
func TestPaymentProviderResponseLost(t *testing.T) {
	e := newEnv(t)
	o := e.createOrder(t, alice, "o1", orderBody)
	ev := event(t, "POST /payments", paymentBody(o.OrderID, orderAmount, "INR", "card"), "lost", alice)
	lose := true
	e.pdb.After(func(op string, in any, err error) error {
		if op == "PutItem" && err == nil && lose && *in.(*dynamodb.PutItemInput).TableName == e.paymentsTb {
			lose = false
			return errInjected
		}
		return err
	})
	var firstClaim *idemddb.Claim
	r1 := e.mustDirect(t, func(ctx context.Context, ev eventV2) (responseV2, error) {
		firstClaim, _ = idemddb.ClaimFromContext(ctx)
		return e.payments.CreatePayment(ctx, ev)
	}, ev)
	wantProblem(t, r1, 503, checkout.ProblemProviderUnavailable.Type())
	if r1.Headers["Retry-After"] == "" {
		t.Fatal("502 without Retry-After")
	}
	if st := e.idemStatuses(t); slices.Contains(st, idemddb.StatusInProgress) {
		t.Fatalf("key not released after a 5xx: %v", st)
	}
	var retryClaim *idemddb.Claim
	r2 := e.mustDirect(t, func(ctx context.Context, ev eventV2) (responseV2, error) {
		retryClaim, _ = idemddb.ClaimFromContext(ctx)
		return e.payments.CreatePayment(ctx, ev)
	}, ev)
	if r2.StatusCode != 201 {
		t.Fatalf("%d %s", r2.StatusCode, r2.Body)
	}
	if retryClaim.ResourceID == firstClaim.ResourceID {
		t.Fatal("test premise: a released key gets a new ResourceID")
	}
	var p checkout.Payment
	_ = json.Unmarshal([]byte(r2.Body), &p)
	if p.PaymentID != checkout.PaymentID(o.OrderID, 1) {
		t.Fatalf("payment id %s, want attempt 1's, %s", p.PaymentID, checkout.PaymentID(o.OrderID, 1))
	}
	auths, pays := e.ledgerItems(t)
	if len(auths) != 1 || len(pays) != 1 {
		t.Fatalf("%d authorizations, %d payments; want one of each", len(auths), len(pays))
	}
}

// TestPaymentInProgress: while key A's attempt holds the order, key B is
// told 409 payment-in-progress with Retry-After until A's lease ends, is not
// stored, and reaches neither the provider nor the order; after A commits,
// B's retry is told the order is paid (200 already_paid), naming A's
// payment.
func TestPaymentInProgress(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	o := e.createOrder(t, alice, "o1", orderBody)
	body := paymentBody(o.OrderID, orderAmount, "INR", "card")
	evA := event(t, "POST /payments", body, "A", alice)
	cA, rA := e.payUncompleted(t, evA)
	e.clk.Advance(3 * time.Second) // A's lease (testLease) has 7 s left
	e.pdb.Reset()
	rB := e.mustDirect(t, e.payments.CreatePayment, event(t, "POST /payments", body, "B", alice))
	pB := wantProblem(t, rB, 409, checkout.ProblemPaymentInProgress.Type())
	if rB.Headers["Retry-After"] != "7" || pB.OrderID != o.OrderID {
		t.Fatalf("Retry-After %q, problem %+v; want 7 s, naming the order", rB.Headers["Retry-After"], pB)
	}
	if n := e.pdb.Total(); n != 0 {
		t.Fatalf("B made %d provider requests", n)
	}
	if st := e.idemStatuses(t); len(st) != 2 { // the order's and A's; B's 409 was not stored
		t.Fatalf("records %v", st)
	}
	if _, err := e.store.Complete(ctx, cA, []byte(rA.Body)); err != nil {
		t.Fatal(err)
	}
	var pA checkout.Payment
	_ = json.Unmarshal([]byte(rA.Body), &pA)
	again := e.mustDirect(t, e.payments.CreatePayment, event(t, "POST /payments", body, "B", alice))
	if pay := wantAlreadyPaid(t, again, pA.PaymentID); pay != pA {
		t.Fatalf("%+v, want A's payment %+v", pay, pA)
	}
	if auths, pays := e.ledgerItems(t); len(auths) != 1 || len(pays) != 1 {
		t.Fatalf("%d authorizations, %d payments", len(auths), len(pays))
	}
}

// TestPaymentCommitCancelled: A captured but its lease lapsed before its
// commit; B takes the order over, finds A's capture, completes the order
// with it on its own and answers 200 already_paid naming it. A's late
// commit is cancelled by the order's condition (the hook says
// payment-in-progress, with Retry-After), and A's retry gets its own
// payment, 201.
func TestPaymentCommitCancelled(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	o := e.createOrder(t, alice, "o1", orderBody)
	body := paymentBody(o.OrderID, orderAmount, "INR", "card")
	evA := event(t, "POST /payments", body, "A", alice)
	cA, rA := e.payUncompleted(t, evA)
	var pA checkout.Payment
	_ = json.Unmarshal([]byte(rA.Body), &pA)
	e.clk.Advance(testLease + time.Second)

	rB := e.mustDirect(t, e.payments.CreatePayment, event(t, "POST /payments", body, "B", alice))
	if pay := wantAlreadyPaid(t, rB, pA.PaymentID); pay != pA {
		t.Fatalf("B: %+v, want A's payment %+v", pay, pA)
	}
	if st, _ := e.order(t, o.OrderID); st.Status != "PAID" || st.PaymentID != pA.PaymentID || st.Settled != 2 {
		t.Fatalf("order %+v", st)
	}

	_, err := e.store.Complete(ctx, cA, []byte(rA.Body))
	var tce *idemddb.TransactionCanceledError
	if !errors.As(err, &tce) || tce.Index != 0 || tce.Reasons[0].Code != "ConditionalCheckFailed" {
		t.Fatalf("A's completion: %v, want a cancellation by the order update", err)
	}
	if p := checkout.TransactionConflictProblem(ctx, tce); p.Status != 409 || p.Type != checkout.ProblemPaymentInProgress.Type() || p.RetryAfter < 1 {
		t.Fatalf("hook: %+v", p)
	}
	rA2 := e.mustDirect(t, e.payments.CreatePayment, evA)
	if rA2.StatusCode != 201 || rA2.Body != rA.Body {
		t.Fatalf("A's retry: %d %s, want its own 201 %s", rA2.StatusCode, rA2.Body, rA.Body)
	}
	auths, pays := e.ledgerItems(t)
	if len(auths) != 1 || auths[0]["status"] != "CAPTURED" || len(pays) != 1 {
		t.Fatalf("ledger %v / %v, want one capture and its payment", auths, pays)
	}
}

func TestTransactionConflictProblem(t *testing.T) {
	ctx := context.Background()
	ccf := idemddb.CancellationReason{Code: "ConditionalCheckFailed"}
	none := idemddb.CancellationReason{Code: "None"}
	conflict := idemddb.CancellationReason{Code: "TransactionConflict"}
	cases := []struct {
		name string
		err  *idemddb.TransactionCanceledError
		typ  string
	}{
		{"order condition", &idemddb.TransactionCanceledError{Index: 0, Reasons: []idemddb.CancellationReason{ccf, none}}, checkout.ProblemPaymentInProgress.Type()},
		{"decline's order condition", &idemddb.TransactionCanceledError{Index: 0, Reasons: []idemddb.CancellationReason{ccf}}, checkout.ProblemPaymentInProgress.Type()},
		{"payment record exists", &idemddb.TransactionCanceledError{Index: 1, Reasons: []idemddb.CancellationReason{none, ccf}}, checkout.ProblemPaymentInProgress.Type()},
		{"transient conflict", &idemddb.TransactionCanceledError{Index: 0, Reasons: []idemddb.CancellationReason{conflict, none}}, apigw.ProblemTransactionConflict},
		{"index out of range", &idemddb.TransactionCanceledError{Index: 5, Reasons: []idemddb.CancellationReason{none}}, apigw.ProblemTransactionConflict},
		{"nil", nil, apigw.ProblemTransactionConflict},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := checkout.TransactionConflictProblem(ctx, tc.err)
			if p.Type != tc.typ || p.Status != 409 {
				t.Fatalf("%+v, want %s", p, tc.typ)
			}
			// Every 409 of the checkout is "retry later": Retry-After.
			if tc.typ == checkout.ProblemPaymentInProgress.Type() && p.RetryAfter < 1 {
				t.Fatalf("%+v: payment-in-progress without Retry-After", p)
			}
		})
	}
}
