package checkout

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"time"
)

// AuthorizationRequest asks a payment service provider (PSP) to charge
// Amount of Currency for one payment attempt of an order.
type AuthorizationRequest struct {
	// IdempotencyKey makes the request safe to retry: the provider charges
	// at most once per key and answers a repeat with the first outcome. See
	// ProviderIdempotencyKey: one key per order attempt.
	IdempotencyKey string
	OrderID        string
	// Attempt is the order's attempt number the key belongs to.
	Attempt int
	// PaymentID is the id this API gives the payment. A provider keeps the
	// one of the first request with a key.
	PaymentID     string
	Amount        int64
	Currency      string
	PaymentMethod string
	// Metadata is stored with the authorization and returned by Lookup, as
	// a PSP's metadata is. The checkout keeps the attempt's owner there
	// (MetadataOwner), so whoever settles the attempt later knows whose
	// payment it was.
	Metadata map[string]string
}

// MetadataOwner is the Metadata entry naming the attempt's owner: a digest
// of the idempotency claim's key, never the client's key itself.
const MetadataOwner = "attempt_owner"

// Authorization is a provider's outcome for a key.
type Authorization struct {
	// Key is the provider idempotency key.
	Key string
	// ID is the provider's reference for the authorization; empty for a key
	// voided before any authorization (a tombstone).
	ID string
	// Status is AuthCaptured, AuthDeclined or AuthVoided.
	Status AuthStatus
	// DeclineCode says why a payment was declined.
	DeclineCode string
	// PaymentID, OrderID, Attempt, Amount, Currency, PaymentMethod and
	// Metadata are those of the first request made with the key.
	PaymentID     string
	OrderID       string
	Attempt       int
	Amount        int64
	Currency      string
	PaymentMethod string
	Metadata      map[string]string
	// CreatedAt is when the provider first saw the key.
	CreatedAt time.Time
	// Replayed is true when the outcome was recorded by an earlier request
	// with the same key (a retry): nothing new was charged.
	Replayed bool
}

// Provider charges and voids payments. Implementations must be idempotent
// on the provider idempotency key, as real PSPs are.
type Provider interface {
	// Authorize charges req at most once per req.IdempotencyKey; a repeat
	// returns the first outcome, and a key voided before it was used
	// replays AuthVoided without charging.
	Authorize(ctx context.Context, req AuthorizationRequest) (Authorization, error)
	// Lookup returns the outcome recorded for a key, read strongly
	// consistently; found is false when the provider never saw the key.
	Lookup(ctx context.Context, providerKey string) (a Authorization, found bool, err error)
	// Void makes sure the key never charges: a captured authorization
	// becomes VOIDED (refunded), an unknown key gets a VOIDED tombstone so a
	// request still in flight with it cannot capture later, and a declined
	// or voided one is left as it is. It returns the resulting outcome and
	// is idempotent.
	Void(ctx context.Context, providerKey string) (Authorization, error)
	// Tombstone makes a key nobody saw used unable to charge: an unknown
	// key gets a VOIDED tombstone, as Void does, so a request still in
	// flight with it cannot capture later. A key whose authorization
	// landed first is returned as it is, CAPTURED included: a tombstone
	// never voids a capture it did not see (that capture may already be an
	// order's payment, adopted by a settler with a newer view). Idempotent.
	Tombstone(ctx context.Context, providerKey string) (Authorization, error)
}

// CaptureReport is the reconciler's view of a provider's captures, as a
// PSP's settlement report gives it: the captures nobody has accounted for
// yet, and a way to account for one.
type CaptureReport interface {
	// OpenCaptures returns up to limit CAPTURED authorizations created
	// before the given time that are not marked reconciled.
	OpenCaptures(ctx context.Context, before time.Time, limit int) ([]Authorization, error)
	// MarkReconciled records that the capture with this key is an order's
	// payment, so OpenCaptures no longer returns it. Idempotent.
	MarkReconciled(ctx context.Context, providerKey string) error
}

// Provider errors, for errors.Is.
var (
	// ErrProviderUnavailable: the provider could not be reached or failed;
	// whether it charged is unknown, so retry with the same key.
	ErrProviderUnavailable = errors.New("checkout: payment provider unavailable")
	// ErrProviderKeyReused: the provider idempotency key was already used
	// for a request with other parameters (Stripe answers this case with an
	// idempotency_error).
	ErrProviderKeyReused = errors.New("checkout: provider idempotency key reused with different parameters")
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

// ProviderIdempotencyKey is the key sent to the provider for attempt n of
// an order: "psp_" and the unpadded base64url SHA-256 of
// "order-attempt\n<order id>\n<n>", 47 characters.
//
// It belongs to the order attempt, not to the client's Idempotency-Key: an
// order is locked for one attempt at a time (PENDING -> PAYING), and
// whoever takes a lapsed attempt over settles it at the provider under the
// same key – it finds its capture (Lookup) or voids it (Void) – before it
// starts the next attempt. So a takeover after a crash reuses the first
// charge instead of making a second one, whichever client key comes back.
// The key reveals neither the caller nor the client's key, is far below
// the 255 characters PSPs such as Stripe allow, and is fixed for the life
// of the order.
func ProviderIdempotencyKey(orderID string, attempt int) string {
	return ProviderKeyPrefix + digest("order-attempt\n"+orderID+"\n"+itoa(attempt))
}

// digest is the unpadded base64url SHA-256 of s.
func digest(s string) string {
	sum := sha256.Sum256([]byte(s))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}
