package e2e

import (
	"bytes"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/acme/idemcheckout/internal/subscriptions"
)

// TestSubscriptionSignup: POST /subscriptions through the stack (gateway
// with the JWT authorizer, the function run as a net/http handler by
// aws-lambda-go-api-proxy, the idemhttp middleware, moto): the first
// request gets 201; its retry the same bytes with Idempotent-Replayed; a
// second key for the same address 422 subscription-email-taken, again on
// its retry; the first key with another body 422. One item for the
// address in SubscriptionsTable.
func TestSubscriptionSignup(t *testing.T) {
	email := fmt.Sprintf("ada+%d@example.com", time.Now().UnixNano())
	body := fmt.Sprintf(`{"email":%q,"plan":"pro"}`, email)
	tok := token("ada")
	key := newKey(t)
	first := post(t, checkout, "/subscriptions", tok, key, body)
	if first.status != http.StatusCreated || first.header.Get("Idempotent-Replayed") != "" {
		t.Fatalf("first: %d %v %s", first.status, first.header, first.body)
	}
	sub := first.json(t)
	id, _ := sub["subscription_id"].(string)
	if !strings.HasPrefix(id, "sub_") || sub["email"] != email || first.header.Get("Location") != "/subscriptions/"+id {
		t.Fatalf("first: %s Location %q", first.body, first.header.Get("Location"))
	}
	again := post(t, checkout, "/subscriptions", tok, key, body)
	if again.status != http.StatusCreated || !bytes.Equal(again.body, first.body) ||
		again.header.Get("Idempotent-Replayed") != "true" || again.header.Get("Location") != first.header.Get("Location") {
		t.Fatalf("retry: %d %v %s; want the first answer replayed", again.status, again.header, again.body)
	}
	other := newKey(t) + "-2"
	for range 2 {
		r := post(t, checkout, "/subscriptions", tok, other, strings.Replace(body, "ada+", "ADA+", 1))
		if r.status != http.StatusUnprocessableEntity || r.problemType() != subscriptions.ProblemEmailTaken {
			t.Fatalf("second key, same address: %d %s; want 422 %s", r.status, r.body, subscriptions.ProblemEmailTaken)
		}
	}
	mismatch := post(t, checkout, "/subscriptions", tok, key, strings.Replace(body, "pro", "basic", 1))
	if mismatch.status != http.StatusUnprocessableEntity || mismatch.problemType() != "idempotency-key-reused" {
		t.Fatalf("same key, another body: %d %s; want 422", mismatch.status, mismatch.body)
	}
	n := 0
	for _, item := range scanStack(t, checkout, "SubscriptionsTable") {
		if item["pk"] == subscriptions.EmailKey(email) {
			n++
			if item["subscription_id"] != id {
				t.Errorf("item %v; want subscription %s", item, id)
			}
		}
	}
	if n != 1 {
		t.Fatalf("%d items for %s, want 1", n, email)
	}
}

// TestSubscriptionRace: 8 keys sign one address up at once through the
// stack (4 function instances, moto): exactly one 201; every other answer
// is 422 subscription-email-taken (a TransactionConflict the engine might
// raise is sent again by the store, never answered); one item.
func TestSubscriptionRace(t *testing.T) {
	email := fmt.Sprintf("race+%d@example.com", time.Now().UnixNano())
	body := fmt.Sprintf(`{"email":%q,"plan":"basic"}`, email)
	const n = 8
	answers := make([]response, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			answers[i] = post(t, checkout, "/subscriptions", token(fmt.Sprintf("racer-%d", i)), fmt.Sprintf("%s-%d", newKey(t), i), body)
		})
	}
	close(start)
	wg.Wait()
	created := 0
	for _, a := range answers {
		switch {
		case a.status == http.StatusCreated:
			created++
		case a.status == http.StatusUnprocessableEntity && a.problemType() == subscriptions.ProblemEmailTaken:
		default:
			t.Errorf("answer %d %s", a.status, a.body)
		}
	}
	items := 0
	for _, item := range scanStack(t, checkout, "SubscriptionsTable") {
		if item["pk"] == subscriptions.EmailKey(email) {
			items++
		}
	}
	if created != 1 || items != 1 {
		t.Fatalf("%d created, %d items; want 1 and 1", created, items)
	}
}
