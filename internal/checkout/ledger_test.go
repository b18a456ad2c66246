package checkout_test

import (
	"context"
	"errors"
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
