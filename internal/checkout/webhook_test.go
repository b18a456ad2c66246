package checkout_test

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/acme/idemcheckout/ddblocal/ddbtest"
	"github.com/acme/idemcheckout/internal/checkout"
	"github.com/stripe/stripe-go/v82/webhook"
)

const whSecret = "whsec_test_checkout"

// webhook returns the env's webhook handler with its own counting client
// for the orders table.
func (e *env) webhook(t *testing.T) (*checkout.StripeWebhook, *ddbtest.Client) {
	t.Helper()
	odb := ddbtest.Wrap(e.raw)
	w, err := checkout.NewStripeWebhook(checkout.StripeWebhookConfig{DB: odb, OrdersTable: e.ordersTable, Store: e.store,
		Secret: whSecret, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	return w, odb
}

// stripeEvent is an event body as Stripe sends it, for an object with the
// order id in its metadata ("" leaves the metadata empty).
func stripeEvent(id, typ string, created int64, orderID string) []byte {
	obj := map[string]any{"id": "pi_" + id, "object": "payment_intent", "metadata": map[string]string{}}
	if typ == checkout.EventChargeRefunded {
		obj = map[string]any{"id": "ch_" + id, "object": "charge", "payment_intent": "pi_" + id, "metadata": map[string]string{}}
	}
	if orderID != "" {
		obj["metadata"] = map[string]string{checkout.StripeMetaOrder: orderID}
	}
	b, _ := json.Marshal(map[string]any{"id": id, "object": "event", "type": typ, "created": created,
		"api_version": "2025-03-31.basil", "livemode": false, "data": map[string]any{"object": obj}})
	return b
}

// signed is a webhook request with body signed under secret at ts.
func signed(t *testing.T, body []byte, secret string, ts time.Time) eventV2 {
	t.Helper()
	sp := webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: body, Secret: secret, Timestamp: ts})
	return eventV2{RouteKey: checkout.RouteStripeWebhook, Body: string(body),
		Headers: map[string]string{"stripe-signature": sp.Header, "content-type": "application/json"}}
}

func ack(t *testing.T, r responseV2) checkout.WebhookAck {
	t.Helper()
	if r.StatusCode != 200 {
		t.Fatalf("status %d: %s", r.StatusCode, r.Body)
	}
	var a checkout.WebhookAck
	if err := json.Unmarshal([]byte(r.Body), &a); err != nil {
		t.Fatal(err)
	}
	return a
}

// providerView reads the webhook's attributes of an order.
func (e *env) providerView(t *testing.T, orderID string) (status, eventID string) {
	t.Helper()
	for _, it := range e.scan(t, e.ordersTable) {
		if it["order_id"] == orderID {
			s, _ := it["provider_status"].(string)
			ev, _ := it["provider_event_id"].(string)
			return s, ev
		}
	}
	t.Fatalf("order %s not found", orderID)
	return "", ""
}

// TestStripeWebhookOnceAndInOrder: 20 orders, each with a failed, a
// succeeded and a refunded event a second apart, delivered with 30 %
// duplicates in a shuffled order (fixed seed), with real signatures. Each
// event is applied at most once (one conditional UpdateItem per distinct
// event, duplicates replayed with the first answer), and each order ends
// with its latest event's status whatever the delivery order: an older
// event never moved an order backwards.
func TestStripeWebhookOnceAndInOrder(t *testing.T) {
	e := newEnv(t)
	w, odb := e.webhook(t)
	now := time.Now()
	type delivery struct{ id, order, typ string }
	var ds []delivery
	var orders []string
	types := []string{checkout.EventPaymentFailed, checkout.EventPaymentSucceeded, checkout.EventChargeRefunded}
	created := map[string]int64{}
	for i := range 20 {
		o := e.createOrder(t, alice, fmt.Sprint("o", i), orderBody).OrderID
		orders = append(orders, o)
		for j, typ := range types {
			id := fmt.Sprintf("evt_%d_%d", i, j)
			created[id] = now.Unix() - 60 + int64(j)
			ds = append(ds, delivery{id, o, typ})
		}
	}
	distinct := len(ds)
	rng := rand.New(rand.NewPCG(20, 30))
	for _, d := range ds[:distinct] {
		if rng.IntN(100) < 30 {
			ds = append(ds, d)
		}
	}
	rng.Shuffle(len(ds), func(i, j int) { ds[i], ds[j] = ds[j], ds[i] })
	first := map[string]checkout.WebhookAck{}
	for _, d := range ds {
		a := ack(t, serve(t, w.Handle, signed(t, stripeEvent(d.id, d.typ, created[d.id], d.order), whSecret, now)))
		if prev, seen := first[d.id]; seen {
			if !a.Replayed || a.Result != prev.Result {
				t.Fatalf("duplicate of %s: %+v, want the replay of %+v", d.id, a, prev)
			}
			continue
		}
		if a.Replayed || (a.Result != checkout.WebhookApplied && a.Result != checkout.WebhookStale) {
			t.Fatalf("first delivery of %s: %+v", d.id, a)
		}
		first[d.id] = a
	}
	t.Logf("%d deliveries of %d events; the webhook's orders table requests %v", len(ds), distinct, odb.Counts())
	if n := odb.Counts()["UpdateItem"]; n != distinct {
		t.Fatalf("%d order updates for %d distinct events, want one each", n, distinct)
	}
	for i, o := range orders {
		if st, ev := e.providerView(t, o); st != checkout.ProviderStatusRefunded || ev != fmt.Sprintf("evt_%d_2", i) {
			t.Fatalf("order %s: %s by %s, want REFUNDED by its latest event", o, st, ev)
		}
	}
}

// TestStripeWebhookRefuses: unsigned, malformed, forged, stale (older than
// the 5 minute tolerance) and signed-but-not-JSON requests get 400
// problem+json and change nothing; events for no order and of unknown
// types are acknowledged.
func TestStripeWebhookRefuses(t *testing.T) {
	e := newEnv(t)
	w, _ := e.webhook(t)
	o := e.createOrder(t, alice, "o", orderBody).OrderID
	now := time.Now()
	body := stripeEvent("evt_1", checkout.EventPaymentSucceeded, now.Unix(), o)
	unsigned := signed(t, body, whSecret, now)
	delete(unsigned.Headers, "stripe-signature")
	malformed := signed(t, body, whSecret, now)
	malformed.Headers["stripe-signature"] = "garbage"
	tampered := signed(t, body, whSecret, now)
	tampered.Body = string(stripeEvent("evt_1", checkout.EventChargeRefunded, now.Unix(), o))
	for name, ev := range map[string]eventV2{
		"unsigned": unsigned, "malformed": malformed, "tampered": tampered,
		"forged":   signed(t, body, "whsec_someone_else", now),
		"stale":    signed(t, body, whSecret, now.Add(-webhook.DefaultTolerance-time.Minute)),
		"not json": signed(t, []byte("not json"), whSecret, now),
	} {
		p := wantProblem(t, serve(t, w.Handle, ev), 400, checkout.ProblemValidation.Type())
		if len(p.Errors) != 1 {
			t.Fatalf("%s: %+v", name, p)
		}
	}
	if st, _ := e.providerView(t, o); st != "" || len(e.idemStatuses(t)) != 1 { // the order's own record only
		t.Fatalf("a refused request had an effect: status %q, records %v", st, e.idemStatuses(t))
	}
	if a := ack(t, serve(t, w.Handle, signed(t, stripeEvent("evt_2", checkout.EventPaymentSucceeded, now.Unix(), "ord_nope"), whSecret, now))); a.Result != checkout.WebhookUnknownOrder {
		t.Fatalf("unknown order: %+v", a)
	}
	if a := ack(t, serve(t, w.Handle, signed(t, stripeEvent("evt_3", checkout.EventPaymentSucceeded, now.Unix(), ""), whSecret, now))); a.Result != checkout.WebhookUnknownOrder {
		t.Fatalf("no order id: %+v", a)
	}
	if a := ack(t, serve(t, w.Handle, signed(t, stripeEvent("evt_4", "customer.created", now.Unix(), o), whSecret, now))); a.Result != checkout.WebhookIgnored {
		t.Fatalf("unknown type: %+v", a)
	}
	if a := ack(t, serve(t, w.Handle, signed(t, body, whSecret, now))); a.Result != checkout.WebhookApplied {
		t.Fatalf("the genuine event: %+v", a)
	}
	if st, ev := e.providerView(t, o); st != checkout.ProviderStatusSucceeded || ev != "evt_1" {
		t.Fatalf("order after the genuine event: %s %s", st, ev)
	}
}
