package checkout

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"time"

	"github.com/acme/idemcheckout/pkg/idemddb"
)

// Authorization statuses.
const (
	AuthCaptured = "CAPTURED"
	AuthDeclined = "DECLINED"
)

// AuthorizationRequest asks a payment service provider (PSP) to charge
// Amount of Currency for an order.
type AuthorizationRequest struct {
	// IdempotencyKey makes the request safe to retry: the provider charges
	// at most once per key and answers a repeat with the first outcome. See
	// ProviderIdempotencyKey.
	IdempotencyKey string
	OrderID        string
	// PaymentID is the id this API gives the payment. A provider keeps the
	// one of the first request with a key.
	PaymentID     string
	Amount        int64
	Currency      string
	PaymentMethod string
}

// Authorization is a provider's outcome for a key.
type Authorization struct {
	// ID is the provider's reference for the authorization.
	ID string
	// Status is AuthCaptured or AuthDeclined.
	Status string
	// DeclineCode says why a payment was declined.
	DeclineCode string
	// PaymentID, OrderID, Amount and Currency are those of the first
	// request made with the key.
	PaymentID string
	OrderID   string
	Amount    int64
	Currency  string
	// CreatedAt is when the provider first saw the key.
	CreatedAt time.Time
	// Replayed is true when the outcome was recorded by an earlier request
	// with the same key (a retry): nothing new was charged.
	Replayed bool
}

// Provider charges payments. Implementations must be idempotent on
// AuthorizationRequest.IdempotencyKey, as real PSPs are.
type Provider interface {
	Authorize(ctx context.Context, req AuthorizationRequest) (Authorization, error)
}

// Provider errors, for errors.Is.
const (
	// ErrProviderUnavailable: the provider could not be reached or failed;
	// whether it charged is unknown, so retry with the same key.
	ErrProviderUnavailable = Error("checkout: payment provider unavailable")
	// ErrProviderKeyReused: the provider idempotency key was already used
	// for a request with other parameters (Stripe answers this case with an
	// idempotency_error).
	ErrProviderKeyReused = Error("checkout: provider idempotency key reused with different parameters")
)

// ProviderError reports a failed provider call; it matches
// ErrProviderUnavailable and unwraps to the cause.
type ProviderError struct {
	Op  string
	Err error
}

// Error describes the failure.
func (e *ProviderError) Error() string {
	return fmt.Sprintf("%v: %s: %v", ErrProviderUnavailable, e.Op, e.Err)
}

// Is reports whether target is ErrProviderUnavailable.
func (e *ProviderError) Is(target error) bool { return target == ErrProviderUnavailable }

// Unwrap returns the cause.
func (e *ProviderError) Unwrap() error { return e.Err }

// KeyReuseError reports a provider idempotency key reused with different
// parameters; it matches ErrProviderKeyReused.
type KeyReuseError struct {
	// Key is the provider idempotency key; Field the first differing
	// parameter ("amount", "currency", "order_id").
	Key, Field string
}

// Error describes the failure.
func (e *KeyReuseError) Error() string {
	return fmt.Sprintf("%v: key %s, %s differs", ErrProviderKeyReused, e.Key, e.Field)
}

// Is reports whether target is ErrProviderKeyReused.
func (e *KeyReuseError) Is(target error) bool { return target == ErrProviderKeyReused }

// ProviderKeyPrefix starts every provider idempotency key.
const ProviderKeyPrefix = "psp_"

// ProviderIdempotencyKey derives the key sent to the provider from the
// claim's scoped idempotency key (route + caller + client key): "psp_" and
// the unpadded base64url SHA-256 of claim.Key, 47 characters.
//
// It is derived from Key rather than ResourceID on purpose. ResourceID
// survives a takeover after a crash, but not a release: when an attempt
// fails with an unknown provider outcome (a timeout, a 5xx) the wrapper
// releases the key and the retry gets a new ResourceID. Hashing the scoped
// key gives every retry of one client request the same provider key, so the
// provider can never charge it twice. It is what a PSP such as Stripe
// expects: one key per logical operation, reused verbatim on every retry, at
// most 255 characters, safe to send (it reveals neither the caller nor the
// client's key), and retained by the PSP for at least 24 hours – the
// idempotency record's retention.
func ProviderIdempotencyKey(claim *idemddb.Claim) string {
	sum := sha256.Sum256([]byte(claim.Key))
	return ProviderKeyPrefix + base64.RawURLEncoding.EncodeToString(sum[:])
}
