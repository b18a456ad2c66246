package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/acme/idemcheckout/local/devstack"
)

// The payment function, as the template names it.
const paymentFunction = "CreatePaymentFunction"

// orderStatus reads an order's status through GET /orders/{id}.
func orderStatus(t *testing.T, s *devstack.Stack, tok, id string) string {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, s.URL()+"/orders/"+id, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var o struct{ Status string }
	_ = json.NewDecoder(resp.Body).Decode(&o)
	return o.Status
}

// until polls cond every 200 ms until it holds or d passes (a client's
// retry loop with a deadline, not a synchronisation by sleeping).
func until(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %s", d, what)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestPaymentKilledMidCallThenNewKey: through the local stack with a 1 s
// provider, the payment function is killed while it waits for the
// provider (the client gets 502). Another key gets 409 payment-in-progress
// while the dead attempt's lease lasts, then pays once the lease has
// passed; the first key's retry then finds the order paid (200
// already_paid naming the second key's payment). One charge.
func TestPaymentKilledMidCallThenNewKey(t *testing.T) {
	sub := "killed-payer"
	tok := token(sub)
	order := createOrderOn(t, slow, sub)
	id := order["order_id"].(string)
	body := paymentBody(order, order["amount"])
	first, second := newKey(t)+"-1", newKey(t)+"-2"

	crashed := make(chan response, 1)
	go func() { crashed <- post(t, slow, "/payments", tok, first, body) }()
	until(t, 10*time.Second, "the order never became PAYING", func() bool { return orderStatus(t, slow, tok, id) == "PAYING" })
	if n := slow.KillRunning(paymentFunction); n < 1 {
		t.Fatalf("killed %d payment instances", n)
	}
	if r := <-crashed; r.status != http.StatusBadGateway {
		t.Fatalf("killed payment: %d %s; want 502", r.status, r.body)
	}
	if r := post(t, slow, "/payments", tok, second, body); r.status != http.StatusConflict || r.problemType() != "payment-in-progress" || r.header.Get("Retry-After") == "" {
		t.Fatalf("another key during the dead attempt's lease: %d %s %v", r.status, r.body, r.header)
	}
	var paid response
	until(t, 40*time.Second, "the second key never paid", func() bool {
		paid = post(t, slow, "/payments", tok, second, body)
		return paid.status != http.StatusConflict || paid.problemType() != "payment-in-progress"
	})
	if paid.status != http.StatusCreated {
		t.Fatalf("second key after the lease: %d %s; want 201", paid.status, paid.body)
	}
	if r := post(t, slow, "/payments", tok, first, body); r.alreadyPaid() != paid.paymentOf() {
		t.Fatalf("the first key's retry: %d %v %s; want 200 already_paid naming %s", r.status, r.header, r.body, paid.paymentOf())
	}
	wantOneChargeOn(t, slow, id)
}

// TestPaymentReplyLost: the client gives up on its payment before the
// 1 s provider answers (its reply is lost); the function still charges and
// commits, as under API Gateway. The client's retry with the same key gets
// the 201 as a replay, another key gets 200 already_paid naming the same
// payment (stored: its retry is a replay). One charge.
func TestPaymentReplyLost(t *testing.T) {
	sub := "impatient-payer"
	tok := token(sub)
	order := createOrderOn(t, slow, sub)
	id := order["order_id"].(string)
	body := paymentBody(order, order["amount"])
	key := newKey(t)

	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, slow.URL()+"/payments", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Idempotency-Key", key)
	if resp, err := client.Do(req); err == nil {
		resp.Body.Close()
		t.Fatalf("the payment answered %d within 300 ms; the provider takes 1 s", resp.StatusCode)
	}
	cancel()

	var again response
	until(t, 20*time.Second, "the retry never got the payment", func() bool {
		again = post(t, slow, "/payments", tok, key, body)
		return again.status != http.StatusConflict
	})
	if again.status != http.StatusCreated || again.header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("retry with the same key: %d %s %v; want the stored 201, replayed", again.status, again.body, again.header)
	}
	other := newKey(t) + "-other"
	r := post(t, slow, "/payments", tok, other, body)
	if r.alreadyPaid() != again.paymentOf() {
		t.Fatalf("another key: %d %v %s; want 200 already_paid naming %s", r.status, r.header, r.body, again.paymentOf())
	}
	if r2 := post(t, slow, "/payments", tok, other, body); r2.header.Get("Idempotent-Replayed") != "true" || !bytes.Equal(r2.body, r.body) || r2.status != http.StatusOK {
		t.Fatalf("another key's retry: %d %v %s; want the 200, replayed", r2.status, r2.header, r2.body)
	}
	wantOneChargeOn(t, slow, id)
}
