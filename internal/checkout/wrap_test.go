package checkout_test

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/acme/idemcheckout/internal/checkout"
	"github.com/acme/idemcheckout/pkg/idemddb/apigw"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// wrapped returns the two handlers wrapped as the functions' mains wrap
// them, with the wrapper's logs and metrics silenced.
func (e *env) wrapped() (createOrder, createPayment handler) {
	opts := []apigw.Option{apigw.WithLogger(quietLogger()), apigw.WithMetrics(nil), apigw.WithMaxBodyBytes(checkout.MaxBodyBytes)}
	createOrder = apigw.WrapV2(e.store, e.orders.Handle, opts...)
	createPayment = e.payments.WrapV2(e.store, opts...)
	return createOrder, createPayment
}

func serve(t *testing.T, h handler, ev eventV2) responseV2 {
	t.Helper()
	r, err := h(context.Background(), ev)
	if err != nil {
		t.Fatalf("handler error: %v", err)
	}
	return r
}

func (e *env) wrappedOrder(t *testing.T, h handler, sub, key string) checkout.Order {
	t.Helper()
	r := serve(t, h, event(t, "POST /orders", orderBody, key, sub))
	if r.StatusCode != 201 {
		t.Fatalf("create order: %d %s", r.StatusCode, r.Body)
	}
	var o checkout.Order
	if err := json.Unmarshal([]byte(r.Body), &o); err != nil {
		t.Fatal(err)
	}
	return o
}

// TestPayNowClickedThreeTimes is the user story: "Pay Now" clicked three
// times on a slow network sends three identical POST /payments with one
// Idempotency-Key. The customer is charged once – one CAPTURED
// authorization in the ledger – and all three clicks get the same 201.
// Reusing the key for another amount is refused and charges nothing.
func TestPayNowClickedThreeTimes(t *testing.T) {
	e := newEnv(t)
	createOrder, createPayment := e.wrapped()
	o := e.wrappedOrder(t, createOrder, alice, "cart-42")
	body := paymentBody(o.OrderID, orderAmount, "INR", "card")

	var first responseV2
	for click := 1; click <= 3; click++ {
		r := serve(t, createPayment, event(t, "POST /payments", body, "pay-now-550e8400", alice))
		if r.StatusCode != 201 {
			t.Fatalf("click %d: %d %s", click, r.StatusCode, r.Body)
		}
		replayed := r.Headers[apigw.ReplayedHeader] == "true"
		if click == 1 {
			if replayed {
				t.Fatal("the first click was replayed")
			}
			first = r
			continue
		}
		if !replayed {
			t.Fatalf("click %d was not a replay: %v", click, r.Headers)
		}
		if r.Body != first.Body || r.Headers["Location"] != first.Headers["Location"] || r.Headers["Content-Type"] != "application/json" {
			t.Fatalf("click %d: %s, want %s", click, r.Body, first.Body)
		}
	}
	// The same click from a client that serialises JSON differently is the
	// same request.
	reordered := `{ "payment_method":"card", "currency":"INR", "amount":` + jsonInt(orderAmount) + `, "order_id":"` + o.OrderID + `" }`
	if r := serve(t, createPayment, event(t, "POST /payments", reordered, "pay-now-550e8400", alice)); r.StatusCode != 201 || r.Body != first.Body {
		t.Fatalf("reformatted body: %d %s", r.StatusCode, r.Body)
	}

	auths, pays := e.ledgerItems(t)
	if len(auths) != 1 || auths[0]["status"] != "CAPTURED" || auths[0]["amount"] != float64(orderAmount) {
		t.Fatalf("ledger %v, want exactly one CAPTURED authorization", auths)
	}
	var p checkout.Payment
	_ = json.Unmarshal([]byte(first.Body), &p)
	if len(pays) != 1 || pays[0]["payment_id"] != p.PaymentID {
		t.Fatalf("payments %v", pays)
	}
	if st, _ := e.order(t, o.OrderID); st.Status != "PAID" || st.PaymentID != p.PaymentID {
		t.Fatalf("order %+v", st)
	}

	before := e.scan(t, e.paymentsTb)
	r := serve(t, createPayment, event(t, "POST /payments", paymentBody(o.OrderID, orderAmount+100, "INR", "card"), "pay-now-550e8400", alice))
	wantProblem(t, r, 422, apigw.DefaultProblemBase+apigw.ProblemKeyReused)
	if after := e.scan(t, e.paymentsTb); !reflect.DeepEqual(sortByPK(before), sortByPK(after)) {
		t.Fatalf("the mismatched request changed the ledger:\n%v\n%v", before, after)
	}
}

func jsonInt(n int64) string { b, _ := json.Marshal(n); return string(b) }

func sortByPK(items []map[string]any) map[string]map[string]any {
	m := map[string]map[string]any{}
	for _, it := range items {
		m[it["pk"].(string)] = it
	}
	return m
}

func TestWrappedCreateOrder(t *testing.T) {
	e := newEnv(t)
	createOrder, _ := e.wrapped()
	r1 := serve(t, createOrder, event(t, "POST /orders", orderBody, "k", alice))
	r2 := serve(t, createOrder, event(t, "POST /orders", orderBody, "k", alice))
	if r1.StatusCode != 201 || r2.StatusCode != 201 || r1.Body != r2.Body || r2.Headers[apigw.ReplayedHeader] != "true" || r2.Headers["Location"] != r1.Headers["Location"] {
		t.Fatalf("%d %s / %d %v %s", r1.StatusCode, r1.Body, r2.StatusCode, r2.Headers, r2.Body)
	}
	// Another customer's identical key is another request.
	if r := serve(t, createOrder, event(t, "POST /orders", orderBody, "k", bob)); r.StatusCode != 201 || r.Body == r1.Body {
		t.Fatalf("bob: %d %s", r.StatusCode, r.Body)
	}
	// No key: the wrapper refuses before the handler runs.
	wantProblem(t, serve(t, createOrder, event(t, "POST /orders", orderBody, "", alice)), 400, apigw.DefaultProblemBase+apigw.ProblemKeyMissing)
	// A 400 of the handler is stored and replayed like any deterministic 4xx.
	bad := `{"currency":"INR","items":[]}`
	v1 := serve(t, createOrder, event(t, "POST /orders", bad, "bad", alice))
	wantProblem(t, v1, 400, checkout.ProblemValidation.Type())
	if v2 := serve(t, createOrder, event(t, "POST /orders", bad, "bad", alice)); v2.Body != v1.Body || v2.Headers[apigw.ReplayedHeader] != "true" {
		t.Fatalf("400 not replayed: %v %s", v2.Headers, v2.Body)
	}
	if n := len(e.scan(t, e.ordersTable)); n != 2 {
		t.Fatalf("%d orders, want alice's and bob's", n)
	}
}

func TestWrappedDeclineIsReplayed(t *testing.T) {
	e := newEnv(t)
	createOrder, createPayment := e.wrapped()
	o := e.wrappedOrder(t, createOrder, alice, "o")
	body := paymentBody(o.OrderID, orderAmount, "INR", checkout.DeclinedPaymentMethod)
	r1 := serve(t, createPayment, event(t, "POST /payments", body, "d", alice))
	wantProblem(t, r1, 402, checkout.ProblemPaymentDeclined.Type())
	r2 := serve(t, createPayment, event(t, "POST /payments", body, "d", alice))
	if r2.StatusCode != 402 || r2.Body != r1.Body || r2.Headers[apigw.ReplayedHeader] != "true" {
		t.Fatalf("%d %v %s", r2.StatusCode, r2.Headers, r2.Body)
	}
	auths, pays := e.ledgerItems(t)
	if len(auths) != 1 || auths[0]["status"] != "DECLINED" || len(pays) != 0 {
		t.Fatalf("ledger %v / %v", auths, pays)
	}
	// The order is still payable with a new key.
	if r := serve(t, createPayment, event(t, "POST /payments", paymentBody(o.OrderID, orderAmount, "INR", "card"), "d2", alice)); r.StatusCode != 201 {
		t.Fatalf("%d %s", r.StatusCode, r.Body)
	}
}

// TestWrappedCrashBeforeCompletion: the completion transaction fails on the
// way out (outcome unknown), after the provider captured. The wrapper says
// 503 and keeps the key claimed; a retry during the lease is told to wait;
// after the lease the retry takes over, the provider replays its capture,
// and the payment commits once under the first attempt's id.
func TestWrappedCrashBeforeCompletion(t *testing.T) {
	e := newEnv(t)
	createOrder, createPayment := e.wrapped()
	o := e.wrappedOrder(t, createOrder, alice, "o")
	var lost string
	e.db.Before(func(op string, in any) error {
		if op != "TransactWriteItems" || lost != "" {
			return nil
		}
		for _, w := range in.(*dynamodb.TransactWriteItemsInput).TransactItems {
			if w.Put != nil && *w.Put.TableName == e.paymentsTb {
				lost = w.Put.Item["payment_id"].(*types.AttributeValueMemberS).Value
			}
		}
		return errInjected
	})
	body := paymentBody(o.OrderID, orderAmount, "INR", "card")
	r := serve(t, createPayment, event(t, "POST /payments", body, "crash", alice))
	wantProblem(t, r, 503, apigw.DefaultProblemBase+apigw.ProblemStoreUnavailable)
	if lost == "" || r.Headers["Retry-After"] == "" {
		t.Fatalf("premise: the lost transaction carried the payment (%q), Retry-After %q", lost, r.Headers["Retry-After"])
	}
	if auths, pays := e.ledgerItems(t); len(auths) != 1 || len(pays) != 0 {
		t.Fatalf("after the crash: %v / %v", auths, pays)
	}

	r = serve(t, createPayment, event(t, "POST /payments", body, "crash", alice))
	wantProblem(t, r, 409, apigw.DefaultProblemBase+apigw.ProblemKeyInUse)

	e.clk.Advance(testLease + time.Second)
	r = serve(t, createPayment, event(t, "POST /payments", body, "crash", alice))
	if r.StatusCode != 201 {
		t.Fatalf("%d %s", r.StatusCode, r.Body)
	}
	var p checkout.Payment
	_ = json.Unmarshal([]byte(r.Body), &p)
	if p.PaymentID != lost {
		t.Fatalf("payment id %s, want the first attempt's %s", p.PaymentID, lost)
	}
	auths, pays := e.ledgerItems(t)
	if len(auths) != 1 || len(pays) != 1 {
		t.Fatalf("%d authorizations, %d payments; want one of each", len(auths), len(pays))
	}
	if again := serve(t, createPayment, event(t, "POST /payments", body, "crash", alice)); again.Body != r.Body || again.Headers[apigw.ReplayedHeader] != "true" {
		t.Fatalf("after recovery: %d %v %s", again.StatusCode, again.Headers, again.Body)
	}
}

// TestWrappedPaymentInProgress: while request A's completion is on its
// way, request B with another key pays the same order: B is told 409
// payment-in-progress (with Retry-After, not stored), A commits, and B's
// retry is told the order is paid (200 already_paid, stored), naming A's
// payment.
func TestWrappedPaymentInProgress(t *testing.T) {
	e := newEnv(t)
	createOrder, createPayment := e.wrapped()
	o := e.wrappedOrder(t, createOrder, alice, "o")
	body := paymentBody(o.OrderID, orderAmount, "INR", "card")
	var rB responseV2
	interleaved := false
	e.db.Before(func(op string, in any) error {
		if op == "TransactWriteItems" && !interleaved {
			interleaved = true
			rB = serve(t, createPayment, event(t, "POST /payments", body, "B", alice))
		}
		return nil
	})
	rA := serve(t, createPayment, event(t, "POST /payments", body, "A", alice))
	if rA.StatusCode != 201 {
		t.Fatalf("A: %d %s", rA.StatusCode, rA.Body)
	}
	wantProblem(t, rB, 409, checkout.ProblemPaymentInProgress.Type())
	if ra := rB.Headers["Retry-After"]; ra != "10" { // testLease: nothing of A's lease has passed
		t.Fatalf("Retry-After %q", ra)
	}
	var pA checkout.Payment
	_ = json.Unmarshal([]byte(rA.Body), &pA)
	r := serve(t, createPayment, event(t, "POST /payments", body, "B", alice))
	if r.Headers[apigw.ReplayedHeader] != "" {
		t.Fatal("the 409 was stored and replayed")
	}
	wantAlreadyPaid(t, r, pA.PaymentID)
	// The 200 is final and stored: B's next retry is its replay.
	if again := serve(t, createPayment, event(t, "POST /payments", body, "B", alice)); again.Headers[apigw.ReplayedHeader] != "true" || again.Body != r.Body || again.StatusCode != 200 {
		t.Fatalf("B's replay: %d %v %s", again.StatusCode, again.Headers, again.Body)
	}
	if auths, pays := e.ledgerItems(t); len(auths) != 1 || len(pays) != 1 || pays[0]["payment_id"] != pA.PaymentID {
		t.Fatalf("ledger %v / %v", auths, pays)
	}
}

// TestWrappedCommitCancelledAnswersTheOrder: A's card is declined, and
// before A's completion (order back to PENDING) commits, A's lease lapses
// and key B takes the order over. A's completion is cancelled by the
// order's condition; the wrapper's hook cannot know the order, so WrapV2
// reads it (one GetItem) and answers what a retry would be told:
//   - B already paid: 200 already_paid naming B's payment (not stored, the
//     key was released; A's retry gets the same answer, stored then);
//   - B's attempt still holds the order: 409 payment-in-progress with
//     Retry-After until B's lease ends.
//
// One charge either way.
func TestWrappedCommitCancelledAnswersTheOrder(t *testing.T) {
	for _, bPaid := range []bool{true, false} {
		t.Run(fmt.Sprintf("B paid %v", bPaid), func(t *testing.T) {
			e := newEnv(t)
			createOrder, createPayment := e.wrapped()
			o := e.wrappedOrder(t, createOrder, alice, "o")
			declined := paymentBody(o.OrderID, orderAmount, "INR", checkout.DeclinedPaymentMethod)
			card := paymentBody(o.OrderID, orderAmount, "INR", "card")
			var rB responseV2
			interleaved := false
			e.db.Before(func(op string, in any) error {
				if op == "TransactWriteItems" && !interleaved {
					interleaved = true
					e.clk.Advance(testLease + time.Second)
					if bPaid {
						rB = serve(t, createPayment, event(t, "POST /payments", card, "B", alice))
					} else {
						_, rB = e.payUncompleted(t, event(t, "POST /payments", card, "B", alice))
					}
				}
				return nil
			})
			e.pdb.Reset()
			rA := serve(t, createPayment, event(t, "POST /payments", declined, "A", alice))
			if rB.StatusCode != 201 {
				t.Fatalf("B: %d %s", rB.StatusCode, rB.Body)
			}
			var pB checkout.Payment
			_ = json.Unmarshal([]byte(rB.Body), &pB)
			if !bPaid {
				wantProblem(t, rA, 409, checkout.ProblemPaymentInProgress.Type())
				if ra := rA.Headers["Retry-After"]; ra != "10" { // B's lease, testLease, has just begun
					t.Fatalf("A: Retry-After %q, want B's lease", ra)
				}
				if auths, pays := e.ledgerItems(t); len(auths) != 2 || len(pays) != 0 {
					t.Fatalf("ledger %v / %v: want A's decline and B's capture, not yet its payment", auths, pays)
				}
				return
			}
			wantAlreadyPaid(t, rA, pB.PaymentID)
			again := serve(t, createPayment, event(t, "POST /payments", declined, "A", alice))
			if again.StatusCode != 200 || again.Body != rA.Body || again.Headers[apigw.ReplayedHeader] != "" {
				t.Fatalf("A's retry: %d %v %s, want the same 200, run again", again.StatusCode, again.Headers, again.Body)
			}
			if replay := serve(t, createPayment, event(t, "POST /payments", declined, "A", alice)); replay.Body != rA.Body || replay.Headers[apigw.ReplayedHeader] != "true" {
				t.Fatalf("A's second retry: %d %v %s, want the stored 200", replay.StatusCode, replay.Headers, replay.Body)
			}
			if auths, pays := e.ledgerItems(t); len(auths) != 2 || len(pays) != 1 || pays[0]["payment_id"] != pB.PaymentID {
				t.Fatalf("ledger %v / %v: want A's decline and B's one capture", auths, pays)
			}
		})
	}
}
