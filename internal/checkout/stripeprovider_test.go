package checkout_test

import (
	"context"
	"errors"
	"maps"
	"sync"
	"testing"
	"time"

	"github.com/acme/idemcheckout/ddblocal/ddbtest"
	"github.com/acme/idemcheckout/internal/checkout"
	"github.com/acme/idemcheckout/internal/checkout/stripetest"
)

// Routes of the Stripe double, as counted.
const (
	routeCreate = "POST /v1/payment_intents"
	routeSearch = "GET /v1/payment_intents/search"
	routeUpdate = "POST /v1/payment_intents/{id}"
	routeCancel = "POST /v1/payment_intents/{id}/cancel"
	routeRefund = "POST /v1/refunds"
)

func newStripe(t *testing.T, url string, retries int) *checkout.StripeProvider {
	t.Helper()
	p, err := checkout.NewStripeProvider(checkout.StripeConfig{SecretKey: "sk_test_123", URL: url, Retries: retries})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func stripeReq(order string, attempt int, method string) checkout.AuthorizationRequest {
	return checkout.AuthorizationRequest{
		IdempotencyKey: checkout.ProviderIdempotencyKey(order, attempt), OrderID: order, Attempt: attempt,
		PaymentID: checkout.PaymentID(order, attempt), Amount: orderAmount, Currency: "INR", PaymentMethod: method,
		Metadata: map[string]string{checkout.MetadataOwner: "owner-1"},
	}
}

// succeeded counts the double's PaymentIntents that charged and were not refunded.
func succeeded(s *stripetest.Server) int {
	n := 0
	for _, pi := range s.PaymentIntents() {
		if pi.Status == "succeeded" && !pi.Refunded {
			n++
		}
	}
	return n
}

func wantRequests(t *testing.T, s *stripetest.Server, want map[string]int) {
	t.Helper()
	if got := s.Requests(); !maps.Equal(got, want) {
		t.Fatalf("requests %v, want %v", got, want)
	}
}

// TestStripeMockRequestShapes sends every request the StripeProvider makes
// to stripe-mock, which refuses any parameter Stripe's OpenAPI description
// does not allow (400): authorize, lookup (search), void (refund and
// update of a succeeded fixture), open captures, mark reconciled.
func TestStripeMockRequestShapes(t *testing.T) {
	p := newStripe(t, stripetest.StartMock(t), -1)
	ctx := context.Background()
	a, err := p.Authorize(ctx, stripeReq("order-1", 1, "pm_card_visa"))
	if err != nil || a.ID == "" {
		t.Fatalf("authorize: %+v %v", a, err)
	}
	if _, _, err := p.Lookup(ctx, checkout.ProviderIdempotencyKey("order-1", 1)); err != nil {
		t.Fatalf("lookup: %v", err)
	}
	if _, err := p.OpenCaptures(ctx, time.Now(), 10); err != nil {
		t.Fatalf("open captures: %v", err)
	}
	if err := p.MarkReconciled(ctx, checkout.ProviderIdempotencyKey("order-1", 1)); err != nil {
		t.Fatalf("mark reconciled: %v", err)
	}
	// stripe-mock's fixture PaymentIntent is requires_payment_method, so
	// Void cancels it.
	if _, err := p.Void(ctx, checkout.ProviderIdempotencyKey("order-1", 1)); err != nil {
		t.Fatalf("void: %v", err)
	}
}

// TestStripeAuthorizeIdempotent: a repeat with the key replays the first
// outcome (capture or decline) and charges nothing new; the key with other
// parameters is a *KeyReuseError.
func TestStripeAuthorizeIdempotent(t *testing.T) {
	s := stripetest.New(t, nil)
	p := newStripe(t, s.URL, -1)
	ctx := context.Background()
	first, err := p.Authorize(ctx, stripeReq("o1", 1, "pm_card_visa"))
	if err != nil || first.Status != checkout.AuthCaptured || first.Replayed || first.PaymentID != checkout.PaymentID("o1", 1) ||
		first.Amount != orderAmount || first.Currency != "INR" || first.Metadata[checkout.MetadataOwner] != "owner-1" {
		t.Fatalf("first: %+v %v", first, err)
	}
	again, err := p.Authorize(ctx, stripeReq("o1", 1, "pm_card_visa"))
	if err != nil || again.ID != first.ID || !again.Replayed || again.Status != checkout.AuthCaptured {
		t.Fatalf("repeat: %+v %v", again, err)
	}
	d, err := p.Authorize(ctx, stripeReq("o2", 1, "pm_card_chargeDeclined"))
	if err != nil || d.Status != checkout.AuthDeclined || d.DeclineCode != "generic_decline" || d.ID == "" {
		t.Fatalf("decline: %+v %v", d, err)
	}
	if d2, err := p.Authorize(ctx, stripeReq("o2", 1, "pm_card_chargeDeclined")); err != nil || d2.Status != checkout.AuthDeclined || !d2.Replayed {
		t.Fatalf("declined repeat: %+v %v", d2, err)
	}
	other := stripeReq("o1", 1, "pm_card_visa")
	other.Amount++
	if _, err := p.Authorize(ctx, other); !errors.Is(err, checkout.ErrProviderKeyReused) {
		t.Fatalf("other parameters: %v, want ErrProviderKeyReused", err)
	}
	if n := succeeded(s); n != 1 {
		t.Fatalf("%d charges, want 1", n)
	}
	// 2 creates for o1, 2 for o2, 1 reuse, and the reuse's tombstone replay.
	wantRequests(t, s, map[string]int{routeCreate: 6})
}

// TestStripeUnknownOutcomes: a 409 (another request with the key is still
// executing), a 500 and a lost reply are *ProviderError, never a decline or
// a key reuse; a lost reply retried with the key is replayed, not charged
// again. It also measures what stripe-go retries itself.
func TestStripeUnknownOutcomes(t *testing.T) {
	ctx := context.Background()
	t.Run("409 concurrent", func(t *testing.T) {
		for _, retries := range []int{-1, 2} {
			s := stripetest.New(t, nil)
			p := newStripe(t, s.URL, retries)
			var second error
			var once sync.Once
			s.Before(func(r stripetest.Request) stripetest.Fault {
				once.Do(func() { _, second = p.Authorize(ctx, stripeReq("o", 1, "pm_card_visa")) })
				return stripetest.Pass
			})
			a, err := p.Authorize(ctx, stripeReq("o", 1, "pm_card_visa"))
			if err != nil || a.Status != checkout.AuthCaptured {
				t.Fatalf("first: %+v %v", a, err)
			}
			if !errors.Is(second, checkout.ErrProviderUnavailable) || errors.Is(second, checkout.ErrProviderKeyReused) {
				t.Fatalf("concurrent request: %v, want ErrProviderUnavailable", second)
			}
			// stripe-go v82 does not retry a 409 that carries a Stripe
			// error body (Error.canRetry is false), whatever Retries says.
			wantRequests(t, s, map[string]int{routeCreate: 2})
			if succeeded(s) != 1 {
				t.Fatalf("%d charges", succeeded(s))
			}
		}
	})
	t.Run("500", func(t *testing.T) {
		s := stripetest.New(t, nil)
		p := newStripe(t, s.URL, 2)
		s.Before(func(stripetest.Request) stripetest.Fault { return stripetest.FailBefore })
		if _, err := p.Authorize(ctx, stripeReq("o", 1, "pm_card_visa")); !errors.Is(err, checkout.ErrProviderUnavailable) {
			t.Fatalf("500: %v", err)
		}
		// Nor a 500 with a Stripe error body: one request.
		wantRequests(t, s, map[string]int{routeCreate: 1})
		s.Before(nil)
		if a, err := p.Authorize(ctx, stripeReq("o", 1, "pm_card_visa")); err != nil || a.Status != checkout.AuthCaptured || a.Replayed {
			t.Fatalf("after the 500 (nothing executed): %+v %v", a, err)
		}
	})
	t.Run("lost reply", func(t *testing.T) {
		for _, retries := range []int{-1, 1} {
			s := stripetest.New(t, nil)
			p := newStripe(t, s.URL, retries)
			lose := 1
			s.Before(func(stripetest.Request) stripetest.Fault {
				if lose > 0 {
					lose--
					return stripetest.LoseReply
				}
				return stripetest.Pass
			})
			a, err := p.Authorize(ctx, stripeReq("o", 1, "pm_card_visa"))
			if retries < 0 {
				if !errors.Is(err, checkout.ErrProviderUnavailable) {
					t.Fatalf("lost reply without retries: %+v %v", a, err)
				}
				a, err = p.Authorize(ctx, stripeReq("o", 1, "pm_card_visa"))
			}
			if err != nil || a.Status != checkout.AuthCaptured || !a.Replayed {
				t.Fatalf("retries %d: %+v %v, want the replayed capture", retries, a, err)
			}
			wantRequests(t, s, map[string]int{routeCreate: 2})
			if succeeded(s) != 1 {
				t.Fatalf("%d charges", succeeded(s))
			}
		}
	})
}

// TestStripeVoid: a capture is refunded once; an uncaptured PaymentIntent
// is cancelled; an unused key gets a tombstone that a late Authorize with
// the key cannot charge through.
func TestStripeVoid(t *testing.T) {
	ctx := context.Background()
	s := stripetest.New(t, nil)
	p := newStripe(t, s.URL, -1)
	a, _ := p.Authorize(ctx, stripeReq("o", 1, "pm_card_visa"))
	s.Reset()
	v, err := p.Void(ctx, a.Key)
	if err != nil || v.Status != checkout.AuthVoided || v.ID != a.ID {
		t.Fatalf("void: %+v %v", v, err)
	}
	wantRequests(t, s, map[string]int{routeSearch: 1, routeRefund: 1, routeUpdate: 1})
	s.Reset()
	if v, err := p.Void(ctx, a.Key); err != nil || v.Status != checkout.AuthVoided {
		t.Fatalf("second void: %+v %v", v, err)
	}
	wantRequests(t, s, map[string]int{routeSearch: 1})
	if l, found, err := p.Lookup(ctx, a.Key); err != nil || !found || l.Status != checkout.AuthVoided {
		t.Fatalf("lookup of a refunded capture: %+v %v %v", l, found, err)
	}
	if succeeded(s) != 0 {
		t.Fatal("the refund did not undo the charge")
	}

	unused := checkout.ProviderIdempotencyKey("o", 2)
	s.Reset()
	tomb, err := p.Void(ctx, unused)
	if err != nil || tomb.Status != checkout.AuthVoided || tomb.ID != "" {
		t.Fatalf("void of an unused key: %+v %v", tomb, err)
	}
	wantRequests(t, s, map[string]int{routeSearch: 1, routeCreate: 1, routeCancel: 1})
	late, err := p.Authorize(ctx, stripeReq("o", 2, "pm_card_visa"))
	if err != nil || late.Status != checkout.AuthVoided || !late.Replayed {
		t.Fatalf("late authorize of a voided key: %+v %v", late, err)
	}
	if succeeded(s) != 0 {
		t.Fatal("a voided key charged")
	}
}

// TestStripeSearchLag: Stripe's search shows a PaymentIntent up to a
// minute after it changed. A Lookup in that minute misses the capture; the
// Void that follows cannot tombstone the key (Stripe refuses the key with
// other parameters) and reports an unknown outcome instead of voiding
// nothing; once search shows it, Lookup finds the capture.
func TestStripeSearchLag(t *testing.T) {
	ctx := context.Background()
	clk := ddbtest.NewClock(time.Now())
	s := stripetest.New(t, clk.Now)
	s.SetSearchLag(time.Minute)
	p := newStripe(t, s.URL, -1)
	a, _ := p.Authorize(ctx, stripeReq("o", 1, "pm_card_visa"))
	if _, found, err := p.Lookup(ctx, a.Key); err != nil || found {
		t.Fatalf("premise: search lags: %v %v", found, err)
	}
	if _, err := p.Void(ctx, a.Key); !errors.Is(err, checkout.ErrProviderUnavailable) {
		t.Fatalf("void during the lag: %v, want ErrProviderUnavailable", err)
	}
	clk.Advance(time.Minute)
	if l, found, err := p.Lookup(ctx, a.Key); err != nil || !found || l.Status != checkout.AuthCaptured || l.ID != a.ID {
		t.Fatalf("lookup after the lag: %+v %v %v", l, found, err)
	}
	if succeeded(s) != 1 {
		t.Fatal("want the one capture")
	}
}

// TestStripeKeyWindow: Stripe forgets a key after 24 hours; Lookup still
// finds the attempt by metadata search, and Void refunds it rather than
// taking the pruned key for unused.
func TestStripeKeyWindow(t *testing.T) {
	ctx := context.Background()
	clk := ddbtest.NewClock(time.Now())
	s := stripetest.New(t, clk.Now)
	p := newStripe(t, s.URL, -1)
	a, _ := p.Authorize(ctx, stripeReq("o", 1, "pm_card_visa"))
	clk.Advance(stripetest.KeyRetention + time.Hour)
	if l, found, err := p.Lookup(ctx, a.Key); err != nil || !found || l.ID != a.ID || l.Status != checkout.AuthCaptured {
		t.Fatalf("lookup after 25 h: %+v %v %v", l, found, err)
	}
	if v, err := p.Void(ctx, a.Key); err != nil || v.Status != checkout.AuthVoided || v.ID != a.ID {
		t.Fatalf("void after 25 h: %+v %v", v, err)
	}
	if n := len(s.PaymentIntents()); n != 1 || succeeded(s) != 0 {
		t.Fatalf("%d PaymentIntents, %d charged: want the one, refunded", n, succeeded(s))
	}
}

// TestStripeTombstoneNeverRefunds: a tombstone for a key whose
// PaymentIntent captured first returns it CAPTURED, with no refund; for an
// unused key it is the never-confirmed tombstone, as Void's.
func TestStripeTombstoneNeverRefunds(t *testing.T) {
	ctx := context.Background()
	s := stripetest.New(t, nil)
	p := newStripe(t, s.URL, -1)
	a, _ := p.Authorize(ctx, stripeReq("o", 1, "pm_card_visa"))
	s.Reset()
	got, err := p.Tombstone(ctx, a.Key)
	if err != nil || got.Status != checkout.AuthCaptured || got.ID != a.ID {
		t.Fatalf("tombstone of a captured key: %+v %v; want it CAPTURED", got, err)
	}
	wantRequests(t, s, map[string]int{routeSearch: 1})
	if succeeded(s) != 1 {
		t.Fatal("the tombstone refunded a capture")
	}
	unused := checkout.ProviderIdempotencyKey("o", 2)
	tomb, err := p.Tombstone(ctx, unused)
	if err != nil || tomb.Status != checkout.AuthVoided || tomb.ID != "" {
		t.Fatalf("tombstone of an unused key: %+v %v", tomb, err)
	}
	if late, err := p.Authorize(ctx, stripeReq("o", 2, "pm_card_visa")); err != nil || late.Status != checkout.AuthVoided {
		t.Fatalf("late authorize of a tombstoned key: %+v %v", late, err)
	}
}
