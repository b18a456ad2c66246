package idemddb

import (
	"context"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// Claim is the lease a caller holds while its work runs. The work receives
// it (and ClaimFromContext finds it in the work's context).
type Claim struct {
	// Key is the idempotency key.
	Key string
	// Token identifies this lease; completion and release are fenced on it.
	Token string
	// ResourceID is fixed when the key is first claimed and kept in the
	// record: a caller that takes over an expired lease gets the same value,
	// so ids derived from it (an order id, a payment id, a provider's
	// idempotency key) are reused after a crash.
	ResourceID string
	// LeaseUntil is when the lease ends.
	LeaseUntil time.Time
	// TakenOver is true when this claim replaced an expired lease of the
	// same request: a previous attempt may have run partway.
	TakenOver bool

	writes []types.TransactWriteItem
	fp     []byte
}

// AddWrites adds writes (Put, Update, Delete or ConditionCheck entries) that
// commit in the same TransactWriteItems as the completion, so they and the
// record commit together or not at all. They are dropped when the work
// returns an error. A transaction holds at most 100 entries, one of which is
// the record.
func (c *Claim) AddWrites(items ...types.TransactWriteItem) {
	c.writes = append(c.writes, items...)
}

// Writes returns the writes added so far.
func (c *Claim) Writes() []types.TransactWriteItem { return c.writes }

type claimKey struct{}

// ClaimFromContext returns the claim of the work running with ctx.
func ClaimFromContext(ctx context.Context) (*Claim, bool) {
	c, ok := ctx.Value(claimKey{}).(*Claim)
	return c, ok
}

// WithClaim returns ctx carrying c; Run does this for its work. Exposed for
// tests of code that calls ClaimFromContext.
func WithClaim(ctx context.Context, c *Claim) context.Context {
	return context.WithValue(ctx, claimKey{}, c)
}
