package checkout_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/acme/idemcheckout/internal/checkout"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

func authReq(key string) checkout.AuthorizationRequest {
	return checkout.AuthorizationRequest{IdempotencyKey: key, OrderID: "ord_1", PaymentID: "pay_1", Amount: 5000, Currency: "INR", PaymentMethod: "card"}
}

func TestLedgerIdempotent(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	a1, err := e.ledger.Authorize(ctx, authReq("psp_k"))
	if err != nil || a1.Status != checkout.AuthCaptured || a1.Replayed || a1.ID == "" || a1.PaymentID != "pay_1" {
		t.Fatalf("%+v %v", a1, err)
	}
	if !a1.CreatedAt.Equal(e.clk.Now()) {
		t.Fatalf("CreatedAt %v, want %v", a1.CreatedAt, e.clk.Now())
	}
	// A retry, even under another payment id, gets the first outcome.
	r := authReq("psp_k")
	r.PaymentID = "pay_2"
	a2, err := e.ledger.Authorize(ctx, r)
	if err != nil || !a2.Replayed || a2.ID != a1.ID || a2.PaymentID != "pay_1" || a2.Status != checkout.AuthCaptured {
		t.Fatalf("repeat %+v %v, want the first authorization replayed", a2, err)
	}
	if e.pdb.Count("GetItem") != 0 {
		t.Fatal("moto returns the old item with the failed condition; no GetItem needed")
	}
	if auths, _ := e.ledgerItems(t); len(auths) != 1 || auths[0]["pk"] != "AUTH#psp_k" {
		t.Fatalf("ledger %v", auths)
	}
}

func TestLedgerGetItemFallback(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	if _, err := e.ledger.Authorize(ctx, authReq("psp_f")); err != nil {
		t.Fatal(err)
	}
	// An engine that ignores ReturnValuesOnConditionCheckFailure.
	e.pdb.After(func(op string, in any, err error) error {
		var ccf *types.ConditionalCheckFailedException
		if errors.As(err, &ccf) {
			return &types.ConditionalCheckFailedException{Message: ccf.Message}
		}
		return err
	})
	a, err := e.ledger.Authorize(ctx, authReq("psp_f"))
	if err != nil || !a.Replayed || a.Status != checkout.AuthCaptured {
		t.Fatalf("%+v %v", a, err)
	}
	if n := e.pdb.Count("GetItem"); n != 1 {
		t.Fatalf("GetItem count %d, want 1", n)
	}
}

func TestLedgerKeyReuse(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	if _, err := e.ledger.Authorize(ctx, authReq("psp_r")); err != nil {
		t.Fatal(err)
	}
	for field, mutate := range map[string]func(*checkout.AuthorizationRequest){
		"amount":         func(r *checkout.AuthorizationRequest) { r.Amount++ },
		"currency":       func(r *checkout.AuthorizationRequest) { r.Currency = "USD" },
		"order_id":       func(r *checkout.AuthorizationRequest) { r.OrderID = "ord_2" },
		"payment_method": func(r *checkout.AuthorizationRequest) { r.PaymentMethod = checkout.DeclinedPaymentMethod },
	} {
		r := authReq("psp_r")
		mutate(&r)
		_, err := e.ledger.Authorize(ctx, r)
		var kr *checkout.KeyReuseError
		if !errors.Is(err, checkout.ErrProviderKeyReused) || !errors.As(err, &kr) || kr.Field != field || kr.Key != "psp_r" {
			t.Fatalf("%s: err = %v", field, err)
		}
	}
	if auths, _ := e.ledgerItems(t); len(auths) != 1 || auths[0]["amount"] != float64(5000) {
		t.Fatalf("ledger %v", auths)
	}
}

func TestLedgerDecline(t *testing.T) {
	e := newEnv(t)
	r := authReq("psp_d")
	r.PaymentMethod = checkout.DeclinedPaymentMethod
	a, err := e.ledger.Authorize(context.Background(), r)
	if err != nil || a.Status != checkout.AuthDeclined || a.DeclineCode != "card_declined" {
		t.Fatalf("%+v %v", a, err)
	}
	auths, _ := e.ledgerItems(t)
	if len(auths) != 1 || auths[0]["status"] != "DECLINED" || auths[0]["decline_code"] != "card_declined" ||
		auths[0]["amount"] != float64(5000) || auths[0]["currency"] != "INR" || auths[0]["order_id"] != "ord_1" || auths[0]["created_at"] == "" {
		t.Fatalf("ledger %v", auths)
	}
}

func TestLedgerFailures(t *testing.T) {
	e := newEnv(t)
	t.Run("store down", func(t *testing.T) {
		e.pdb.Before(func(op string, in any) error { return errInjected })
		defer e.pdb.Before(nil)
		_, err := e.ledger.Authorize(context.Background(), authReq("psp_x"))
		var pe *checkout.ProviderError
		if !errors.Is(err, checkout.ErrProviderUnavailable) || !errors.As(err, &pe) || !errors.Is(err, errInjected) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("latency honours cancellation", func(t *testing.T) {
		slow, err := checkout.NewLedger(checkout.LedgerConfig{DB: e.pdb, Table: e.paymentsTb, Latency: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_, err = slow.Authorize(ctx, authReq("psp_slow"))
		if !errors.Is(err, context.Canceled) || !errors.Is(err, checkout.ErrProviderUnavailable) {
			t.Fatalf("err = %v, want the cancellation, promptly", err)
		}
		if auths, _ := e.ledgerItems(t); len(auths) != 0 {
			t.Fatal("a cancelled authorization was recorded")
		}
	})
	t.Run("config", func(t *testing.T) {
		for _, cfg := range []checkout.LedgerConfig{{Table: "t"}, {DB: e.pdb}, {DB: e.pdb, Table: "t", Latency: -1}} {
			if _, err := checkout.NewLedger(cfg); err == nil {
				t.Errorf("NewLedger accepted %+v", cfg)
			}
		}
		if _, err := e.ledger.Authorize(context.Background(), checkout.AuthorizationRequest{}); err == nil {
			t.Error("Authorize accepted an empty key")
		}
	})
}

func TestLedgerLookupAndVoid(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	if _, found, err := e.ledger.Lookup(ctx, "psp_none"); found || err != nil {
		t.Fatalf("unknown key: found=%v err=%v", found, err)
	}
	r := authReq("psp_c")
	r.Attempt, r.Metadata = 3, map[string]string{checkout.MetadataOwner: "owner-digest"}
	captured, err := e.ledger.Authorize(ctx, r)
	if err != nil {
		t.Fatal(err)
	}
	got, found, err := e.ledger.Lookup(ctx, "psp_c")
	if err != nil || !found || got.Status != checkout.AuthCaptured || got.ID != captured.ID || got.Attempt != 3 ||
		got.Key != "psp_c" || got.PaymentMethod != "card" || got.Metadata[checkout.MetadataOwner] != "owner-digest" || !got.CreatedAt.Equal(e.clk.Now()) {
		t.Fatalf("lookup %+v %v %v", got, found, err)
	}

	t.Run("captured becomes VOIDED, idempotently", func(t *testing.T) {
		for range 2 {
			v, err := e.ledger.Void(ctx, "psp_c")
			if err != nil || v.Status != checkout.AuthVoided || v.ID != captured.ID || v.Amount != 5000 {
				t.Fatalf("void %+v %v", v, err)
			}
		}
		// A retry of the authorization charges nothing.
		if a, err := e.ledger.Authorize(ctx, r); err != nil || a.Status != checkout.AuthVoided || !a.Replayed {
			t.Fatalf("authorize after void: %+v %v", a, err)
		}
	})
	t.Run("unknown key becomes a tombstone", func(t *testing.T) {
		v, err := e.ledger.Void(ctx, "psp_t")
		if err != nil || v.Status != checkout.AuthVoided || v.ID != "" || v.Key != "psp_t" {
			t.Fatalf("void %+v %v", v, err)
		}
		// The request that was in flight with the key arrives: VOIDED,
		// whatever its parameters, and nothing is recorded over it.
		late, err := e.ledger.Authorize(ctx, authReq("psp_t"))
		if err != nil || late.Status != checkout.AuthVoided || late.ID != "" {
			t.Fatalf("late authorize %+v %v", late, err)
		}
		if l, found, _ := e.ledger.Lookup(ctx, "psp_t"); !found || l.Status != checkout.AuthVoided || l.Amount != 0 {
			t.Fatalf("tombstone %+v", l)
		}
	})
	t.Run("declined stays DECLINED", func(t *testing.T) {
		d := authReq("psp_d")
		d.PaymentMethod = checkout.DeclinedPaymentMethod
		if _, err := e.ledger.Authorize(ctx, d); err != nil {
			t.Fatal(err)
		}
		v, err := e.ledger.Void(ctx, "psp_d")
		if err != nil || v.Status != checkout.AuthDeclined || v.DeclineCode != "card_declined" || !v.Replayed {
			t.Fatalf("void of a decline %+v %v", v, err)
		}
	})
	t.Run("engine without ALL_OLD", func(t *testing.T) {
		e.pdb.After(func(op string, in any, err error) error {
			var ccf *types.ConditionalCheckFailedException
			if errors.As(err, &ccf) {
				return &types.ConditionalCheckFailedException{Message: ccf.Message}
			}
			return err
		})
		defer e.pdb.After(nil)
		if v, err := e.ledger.Void(ctx, "psp_d"); err != nil || v.Status != checkout.AuthDeclined {
			t.Fatalf("%+v %v", v, err)
		}
	})
	t.Run("failures", func(t *testing.T) {
		e.pdb.Before(func(op string, in any) error { return errInjected })
		defer e.pdb.Before(nil)
		if _, _, err := e.ledger.Lookup(ctx, "psp_c"); !errors.Is(err, checkout.ErrProviderUnavailable) {
			t.Fatalf("lookup: %v", err)
		}
		if _, err := e.ledger.Void(ctx, "psp_c"); !errors.Is(err, checkout.ErrProviderUnavailable) {
			t.Fatalf("void: %v", err)
		}
		if _, err := e.ledger.Void(ctx, ""); err == nil {
			t.Fatal("Void accepted an empty key")
		}
	})
}

func TestLedgerOpenCaptures(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	for _, k := range []string{"psp_1", "psp_2", "psp_3"} {
		if _, err := e.ledger.Authorize(ctx, authReq(k)); err != nil {
			t.Fatal(err)
		}
		e.clk.Advance(time.Minute)
	}
	d := authReq("psp_declined")
	d.PaymentMethod = checkout.DeclinedPaymentMethod
	if _, err := e.ledger.Authorize(ctx, d); err != nil {
		t.Fatal(err)
	}
	keys := func(before time.Time, limit int) []string {
		t.Helper()
		caps, err := e.ledger.OpenCaptures(ctx, before, limit)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, a := range caps {
			out = append(out, a.Key)
		}
		slices.Sort(out)
		return out
	}
	now := e.clk.Now()
	if got := keys(now.Add(-90*time.Second), 10); !slices.Equal(got, []string{"psp_1", "psp_2"}) {
		t.Fatalf("captures older than 90 s: %v", got)
	}
	if got := keys(now.Add(time.Second), 2); len(got) != 2 {
		t.Fatalf("limit 2: %v", got)
	}
	if _, err := e.ledger.Void(ctx, "psp_1"); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := e.ledger.MarkReconciled(ctx, "psp_2"); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.ledger.MarkReconciled(ctx, "psp_unknown"); err != nil {
		t.Fatal(err)
	}
	if got := keys(now.Add(time.Second), 10); !slices.Equal(got, []string{"psp_3"}) {
		t.Fatalf("after a void and a mark: %v", got)
	}
	if auths, _ := e.ledgerItems(t); len(auths) != 4 {
		t.Fatalf("MarkReconciled created items: %d", len(auths))
	}
}

// TestLedgerTombstoneNeverVoidsACapture: a tombstone for an unused key
// makes a later authorization replay VOIDED, like Void; but a key whose
// authorization landed first (while the tombstone was in flight, say) is
// returned CAPTURED and left captured: it may already be an order's
// payment.
func TestLedgerTombstoneNeverVoidsACapture(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	captured, err := e.ledger.Authorize(ctx, authReq("psp_landed"))
	if err != nil || captured.Status != checkout.AuthCaptured {
		t.Fatalf("authorize: %+v %v", captured, err)
	}
	got, err := e.ledger.Tombstone(ctx, "psp_landed")
	if err != nil || got.Status != checkout.AuthCaptured || got.ID != captured.ID {
		t.Fatalf("tombstone of a captured key: %+v %v; want it CAPTURED as it is", got, err)
	}
	if a, found, err := e.ledger.Lookup(ctx, "psp_landed"); err != nil || !found || a.Status != checkout.AuthCaptured {
		t.Fatalf("after the tombstone: %+v %v %v; want still CAPTURED", a, found, err)
	}

	tomb, err := e.ledger.Tombstone(ctx, "psp_unused")
	if err != nil || tomb.Status != checkout.AuthVoided || tomb.ID != "" {
		t.Fatalf("tombstone of an unused key: %+v %v", tomb, err)
	}
	if a, err := e.ledger.Authorize(ctx, authReq("psp_unused")); err != nil || a.Status != checkout.AuthVoided || !a.Replayed {
		t.Fatalf("authorize after the tombstone: %+v %v; want VOIDED replayed, nothing charged", a, err)
	}
}
