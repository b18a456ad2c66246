package checkout

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/stripe/stripe-go/v82"
)

// Stripe metadata entries the StripeProvider writes on every PaymentIntent
// (besides MetadataOwner), so that Lookup, Void and OpenCaptures find an
// attempt by search when no key can be replayed.
const (
	StripeMetaKey        = "provider_key"
	StripeMetaOrder      = "order_id"
	StripeMetaAttempt    = "attempt"
	StripeMetaPayment    = "payment_id"
	StripeMetaTombstone  = "tombstone"
	StripeMetaReconciled = "reconciled"
)

// Idempotency-Key suffixes of the follow-up writes of an attempt: the
// cancel and the refund of its PaymentIntent are each keyed by the
// attempt's provider key and the suffix, so each happens once.
const (
	stripeCancelSuffix = "/cancel"
	stripeRefundSuffix = "/refund"
)

// StripeKeyWindow is how long Stripe keeps an idempotency key at least
// (docs.stripe.com/api/idempotent_requests): after it, the same key is a
// new request.
const StripeKeyWindow = 24 * time.Hour

// DefaultStripeRetries is how often stripe-go retries a request itself
// (same Idempotency-Key) after a connection error, a 409 (another request
// with the key is still running) or a 5xx: once. stripe-go's own default
// is 2 with a backoff of 0.5 s and more; one retry absorbs a blip and keeps
// the payment well inside the function's timeout. What a retry does not
// cure is an unknown outcome (*ProviderError): the attempt is settled
// later under the same key.
const DefaultStripeRetries = 1

// StripeConfig configures a StripeProvider.
type StripeConfig struct {
	// SecretKey is the Stripe secret key (sk_live_..., sk_test_...), read
	// from AWS Secrets Manager once at init (lambdaenv).
	SecretKey string
	// URL is the API's base URL (default https://api.stripe.com); tests
	// point it at stripe-mock or a test double.
	URL string
	// HTTPClient makes the requests (default: stripe-go's, 80 s timeout).
	HTTPClient *http.Client
	// Retries is how often stripe-go retries a request itself: 0 means
	// DefaultStripeRetries, a negative value none.
	Retries int
	// TombstoneAmount and TombstoneCurrency are the amount of the
	// never-confirmed PaymentIntent that Void creates under an unused key
	// (default 100 "usd"); it charges nothing.
	TombstoneAmount   int64
	TombstoneCurrency string
}

// StripeProvider is the Provider (and CaptureReport) on Stripe
// PaymentIntents, through stripe-go.
//
//   - Authorize creates and confirms a PaymentIntent in one request
//     (confirm=true, automatic capture, card only, 3-D Secure refused with
//     error_on_requires_action) under the attempt's provider key as
//     Idempotency-Key, with the order id, attempt number, payment id,
//     provider key and MetadataOwner in its metadata. A 402 card error is
//     DECLINED; a 409, 5xx or lost connection (after stripe-go's retries)
//     is a *ProviderError: the outcome is unknown, never a decline. A 400
//     idempotency_error is a *KeyReuseError, unless the key is a Void's
//     tombstone: then it is VOIDED (replayed).
//   - Lookup finds the attempt's PaymentIntent by searching its
//     provider_key metadata. Stripe's search lags writes by up to a minute
//     (docs.stripe.com/search, "Data freshness"), so Lookup may miss a
//     PaymentIntent seconds old; the state machine then calls Void, which
//     tells the two cases apart by the key itself (below).
//   - Void: a PaymentIntent found by search is cancelled if it is not
//     captured yet, refunded if it is (each once: Idempotency-Key
//     "<key>/cancel", "<key>/refund"; a refunded one is not refunded
//     again). When search finds none, Void replays the key with the
//     tombstone's parameters (a PaymentIntent never confirmed, so it
//     charges nothing) and cancels it: while Stripe keeps the key (at least
//     24 hours), an Authorize arriving later with it is refused with an
//     idempotency_error and charges nothing. If the key was already used by
//     an Authorize that search does not show yet, that replay is refused
//     with an idempotency_error, and Void returns a *ProviderError: retry
//     later, when search shows it.
//   - OpenCaptures searches succeeded PaymentIntents of this checkout
//     created before a time and not marked reconciled; MarkReconciled sets
//     that metadata mark.
//
// A PaymentIntent not decided yet (requires_action, processing,
// requires_capture) is reported as not found, so that settling it voids it.
type StripeProvider struct {
	sc                *stripe.Client
	tombstoneAmount   int64
	tombstoneCurrency string
}

// NewStripeProvider returns a StripeProvider.
func NewStripeProvider(cfg StripeConfig) (*StripeProvider, error) {
	if strings.TrimSpace(cfg.SecretKey) == "" {
		return nil, errors.New("checkout: StripeConfig needs SecretKey")
	}
	if cfg.TombstoneAmount < 0 {
		return nil, errors.New("checkout: StripeConfig.TombstoneAmount is negative")
	}
	if cfg.TombstoneAmount == 0 {
		cfg.TombstoneAmount = 100
	}
	if cfg.TombstoneCurrency == "" {
		cfg.TombstoneCurrency = "usd"
	}
	retries := int64(DefaultStripeRetries)
	switch {
	case cfg.Retries < 0:
		retries = 0
	case cfg.Retries > 0:
		retries = int64(cfg.Retries)
	}
	bc := &stripe.BackendConfig{
		HTTPClient:        cfg.HTTPClient,
		MaxNetworkRetries: stripe.Int64(retries),
		LeveledLogger:     &stripe.LeveledLogger{Level: stripe.LevelNull},
	}
	if cfg.URL != "" {
		bc.URL = stripe.String(cfg.URL)
	}
	backends := stripe.NewBackendsWithConfig(bc)
	return &StripeProvider{
		sc:              stripe.NewClient(cfg.SecretKey, stripe.WithBackends(backends)),
		tombstoneAmount: cfg.TombstoneAmount, tombstoneCurrency: strings.ToLower(cfg.TombstoneCurrency),
	}, nil
}

// Authorize creates and confirms the attempt's PaymentIntent, at most once
// per req.IdempotencyKey (see StripeProvider).
func (s *StripeProvider) Authorize(ctx context.Context, req AuthorizationRequest) (Authorization, error) {
	if req.IdempotencyKey == "" {
		return Authorization{}, errors.New("checkout: AuthorizationRequest.IdempotencyKey is required")
	}
	p := &stripe.PaymentIntentCreateParams{
		Amount:                stripe.Int64(req.Amount),
		Currency:              stripe.String(strings.ToLower(req.Currency)),
		PaymentMethod:         stripe.String(req.PaymentMethod),
		PaymentMethodTypes:    []*string{stripe.String("card")},
		Confirm:               stripe.Bool(true),
		CaptureMethod:         stripe.String(string(stripe.PaymentIntentCaptureMethodAutomatic)),
		ErrorOnRequiresAction: stripe.Bool(true),
	}
	p.SetIdempotencyKey(req.IdempotencyKey)
	for k, v := range req.Metadata {
		p.AddMetadata(k, v)
	}
	p.AddMetadata(StripeMetaKey, req.IdempotencyKey)
	p.AddMetadata(StripeMetaOrder, req.OrderID)
	p.AddMetadata(StripeMetaAttempt, itoa(req.Attempt))
	p.AddMetadata(StripeMetaPayment, req.PaymentID)
	pi, err := s.sc.V1PaymentIntents.Create(ctx, p)
	if err == nil {
		a, decided := authorizationOf(pi, replayed(pi.LastResponse))
		if !decided {
			return Authorization{}, &ProviderError{Op: "authorize", Err: fmt.Errorf("PaymentIntent %s is %s", pi.ID, pi.Status)}
		}
		return a, nil
	}
	var se *stripe.Error
	switch {
	case !errors.As(err, &se):
		return Authorization{}, &ProviderError{Op: "authorize", Err: err}
	case se.Type == stripe.ErrorTypeCard && se.HTTPStatusCode == http.StatusPaymentRequired:
		a := Authorization{
			Key: req.IdempotencyKey, Status: AuthDeclined, DeclineCode: string(se.DeclineCode),
			PaymentID: req.PaymentID, OrderID: req.OrderID, Attempt: req.Attempt, Amount: req.Amount,
			Currency: req.Currency, PaymentMethod: req.PaymentMethod, Metadata: req.Metadata,
			Replayed: replayed(se.LastResponse),
		}
		if a.DeclineCode == "" {
			a.DeclineCode = string(se.Code)
		}
		if se.PaymentIntent != nil {
			a.ID = se.PaymentIntent.ID
			if se.PaymentIntent.Created != 0 {
				a.CreatedAt = time.Unix(se.PaymentIntent.Created, 0).UTC()
			}
		}
		return a, nil
	case se.Type == stripe.ErrorTypeIdempotency && se.HTTPStatusCode == http.StatusBadRequest:
		// Another request used the key with other parameters: a Void's
		// tombstone (replaying it tells), or a bug.
		if t, err := s.tombstone(ctx, req.IdempotencyKey); err == nil {
			a, _ := authorizationOf(t, true)
			a.ID, a.Status = "", AuthVoided // a tombstone never charges
			return a, nil
		}
		return Authorization{}, &KeyReuseError{Key: req.IdempotencyKey, Field: "parameters"}
	}
	return Authorization{}, &ProviderError{Op: "authorize", Err: err}
}

// Lookup finds the PaymentIntent of providerKey by metadata search (see
// StripeProvider); found is false when search shows none, or only one not
// decided yet.
func (s *StripeProvider) Lookup(ctx context.Context, providerKey string) (Authorization, bool, error) {
	pi, err := s.find(ctx, providerKey)
	if err != nil || pi == nil {
		return Authorization{}, false, err
	}
	a, decided := authorizationOf(pi, true)
	if !decided {
		return Authorization{}, false, nil
	}
	if pi.Metadata[StripeMetaTombstone] == "true" {
		a.ID = ""
	}
	return a, true, nil
}

// Void makes sure providerKey never charges (see StripeProvider) and
// returns its outcome.
func (s *StripeProvider) Void(ctx context.Context, providerKey string) (Authorization, error) {
	return s.void(ctx, providerKey, true)
}

// Tombstone is Void for a key nobody saw used: a capture it finds (an
// authorization that landed first) is returned as it is, never refunded;
// see Provider.
func (s *StripeProvider) Tombstone(ctx context.Context, providerKey string) (Authorization, error) {
	return s.void(ctx, providerKey, false)
}

// void is Void, refunding a capture only when refund is set.
func (s *StripeProvider) void(ctx context.Context, providerKey string, refund bool) (Authorization, error) {
	if providerKey == "" {
		return Authorization{}, errors.New("checkout: Void needs a provider key")
	}
	pi, err := s.find(ctx, providerKey)
	if err != nil {
		return Authorization{}, err
	}
	tomb := pi == nil || pi.Metadata[StripeMetaTombstone] == "true"
	if pi == nil {
		if pi, err = s.tombstone(ctx, providerKey); err != nil {
			return Authorization{}, err
		}
	}
	a, decided := authorizationOf(pi, true)
	switch {
	case a.Status == AuthCaptured && !refund:
	case a.Status == AuthCaptured:
		rp := &stripe.RefundCreateParams{PaymentIntent: stripe.String(pi.ID)}
		rp.SetIdempotencyKey(providerKey + stripeRefundSuffix)
		rp.AddMetadata(StripeMetaKey, providerKey)
		if _, err := s.sc.V1Refunds.Create(ctx, rp); err != nil {
			return Authorization{}, &ProviderError{Op: "refund", Err: err}
		}
		// The mark keeps the refunded PaymentIntent out of OpenCaptures.
		up := &stripe.PaymentIntentUpdateParams{}
		up.AddMetadata(StripeMetaReconciled, "voided")
		if _, err := s.sc.V1PaymentIntents.Update(ctx, pi.ID, up); err != nil {
			return Authorization{}, &ProviderError{Op: "mark voided", Err: err}
		}
		a.Status, a.Replayed = AuthVoided, false
	case !decided:
		cp := &stripe.PaymentIntentCancelParams{}
		cp.SetIdempotencyKey(providerKey + stripeCancelSuffix)
		if _, err := s.sc.V1PaymentIntents.Cancel(ctx, pi.ID, cp); err != nil {
			return Authorization{}, &ProviderError{Op: "cancel", Err: err}
		}
		a.Status, a.Replayed = AuthVoided, false
	}
	if tomb {
		a.ID = ""
	}
	return a, nil
}

// tombstone replays providerKey with the tombstone's parameters: a
// PaymentIntent never confirmed. It is the tombstone (new or replayed), or
// an error: a *ProviderError when the key was used otherwise.
func (s *StripeProvider) tombstone(ctx context.Context, providerKey string) (*stripe.PaymentIntent, error) {
	p := &stripe.PaymentIntentCreateParams{
		Amount:             stripe.Int64(s.tombstoneAmount),
		Currency:           stripe.String(s.tombstoneCurrency),
		PaymentMethodTypes: []*string{stripe.String("card")},
		Confirm:            stripe.Bool(false),
	}
	p.SetIdempotencyKey(providerKey)
	p.AddMetadata(StripeMetaKey, providerKey)
	p.AddMetadata(StripeMetaTombstone, "true")
	pi, err := s.sc.V1PaymentIntents.Create(ctx, p)
	if err != nil {
		return nil, &ProviderError{Op: "tombstone", Err: err}
	}
	return pi, nil
}

// find returns the newest PaymentIntent with providerKey in its metadata,
// nil when search shows none.
func (s *StripeProvider) find(ctx context.Context, providerKey string) (*stripe.PaymentIntent, error) {
	if strings.ContainsAny(providerKey, `'\`) {
		return nil, fmt.Errorf("checkout: provider key %q cannot be searched", providerKey)
	}
	pis, err := s.search(ctx, "metadata['"+StripeMetaKey+"']:'"+providerKey+"'", 10)
	if err != nil {
		return nil, &ProviderError{Op: "search", Err: err}
	}
	var best *stripe.PaymentIntent
	for _, pi := range pis {
		// A real attempt wins over a tombstone with the key (a key Stripe
		// pruned after 24 h and a Void reused).
		if best == nil || (best.Metadata[StripeMetaTombstone] == "true" && pi.Metadata[StripeMetaTombstone] != "true") {
			best = pi
		}
	}
	return best, nil
}

// search returns up to limit PaymentIntents matching query, with their
// latest charge expanded.
func (s *StripeProvider) search(ctx context.Context, query string, limit int) ([]*stripe.PaymentIntent, error) {
	p := &stripe.PaymentIntentSearchParams{SearchParams: stripe.SearchParams{Query: query, Limit: stripe.Int64(int64(min(max(limit, 1), 100)))}}
	p.AddExpand("data.latest_charge")
	var out []*stripe.PaymentIntent
	for pi, err := range s.sc.V1PaymentIntents.Search(ctx, p) {
		if err != nil {
			return nil, err
		}
		out = append(out, pi)
		if len(out) >= limit {
			break
		}
	}
	return out, nil
}

// OpenCaptures returns up to limit captured PaymentIntents of this
// checkout created before the given time and not marked reconciled (nor
// refunded).
func (s *StripeProvider) OpenCaptures(ctx context.Context, before time.Time, limit int) ([]Authorization, error) {
	q := "status:'succeeded' AND created<" + strconv.FormatInt(before.Unix(), 10) +
		" AND -metadata['" + StripeMetaReconciled + "']:'true' AND -metadata['" + StripeMetaReconciled + "']:'voided'"
	pis, err := s.search(ctx, q, limit)
	if err != nil {
		return nil, &ProviderError{Op: "search", Err: err}
	}
	out := make([]Authorization, 0, len(pis))
	for _, pi := range pis {
		if a, _ := authorizationOf(pi, true); a.Status == AuthCaptured && pi.Metadata[StripeMetaKey] != "" {
			out = append(out, a)
		}
	}
	return out, nil
}

// MarkReconciled marks the PaymentIntent of providerKey reconciled, so
// OpenCaptures no longer returns it. An unknown key is left alone.
func (s *StripeProvider) MarkReconciled(ctx context.Context, providerKey string) error {
	pi, err := s.find(ctx, providerKey)
	if err != nil || pi == nil {
		return err
	}
	up := &stripe.PaymentIntentUpdateParams{}
	up.AddMetadata(StripeMetaReconciled, "true")
	if _, err := s.sc.V1PaymentIntents.Update(ctx, pi.ID, up); err != nil {
		return &ProviderError{Op: "mark reconciled", Err: err}
	}
	return nil
}

// authorizationOf maps a PaymentIntent to an Authorization; decided is
// false for one still on its way (requires_action, processing,
// requires_capture, requires_confirmation, or requires_payment_method
// without a failed payment).
func authorizationOf(pi *stripe.PaymentIntent, replayed bool) (a Authorization, decided bool) {
	attempt, _ := strconv.Atoi(pi.Metadata[StripeMetaAttempt])
	a = Authorization{
		Key: pi.Metadata[StripeMetaKey], ID: pi.ID, PaymentID: pi.Metadata[StripeMetaPayment],
		OrderID: pi.Metadata[StripeMetaOrder], Attempt: attempt, Amount: pi.Amount,
		Currency: strings.ToUpper(string(pi.Currency)), Metadata: pi.Metadata, Replayed: replayed,
	}
	if pi.Created != 0 {
		a.CreatedAt = time.Unix(pi.Created, 0).UTC()
	}
	if pi.PaymentMethod != nil {
		a.PaymentMethod = pi.PaymentMethod.ID
	}
	switch pi.Status {
	case stripe.PaymentIntentStatusSucceeded:
		a.Status = AuthCaptured
		if c := pi.LatestCharge; c != nil && (c.Refunded || (c.AmountRefunded > 0 && c.AmountRefunded >= pi.Amount)) {
			a.Status = AuthVoided
		}
		return a, true
	case stripe.PaymentIntentStatusCanceled:
		a.Status = AuthVoided
		return a, true
	case stripe.PaymentIntentStatusRequiresPaymentMethod:
		if e := pi.LastPaymentError; e != nil {
			a.Status, a.DeclineCode = AuthDeclined, string(e.DeclineCode)
			if a.DeclineCode == "" {
				a.DeclineCode = string(e.Code)
			}
			return a, true
		}
	}
	return a, false
}

// replayed reports whether Stripe answered from its idempotency store
// (the Idempotent-Replayed response header).
func replayed(r *stripe.APIResponse) bool {
	return r != nil && r.Header.Get("Idempotent-Replayed") == "true"
}
