package idemddb

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// Transient conflicts. DynamoDB cancels a TransactWriteItems with reason
// TransactionConflict when another request touches one of its items while
// it runs (a duplicate's claim hitting the record during the owner's
// completion, say), and answers a single write with
// TransactionConflictException when it meets a transaction in flight on its
// item. Either way nothing was applied and the write may simply be sent
// again. The store does so at most ConflictRetries times, after a jittered
// backoff that starts at conflictFirstDelay and doubles up to
// conflictMaxDelay (about 300 ms in all at the most), and never past the
// lease it protects nor ctx's end.
const (
	// ConflictRetries is how many times a write cancelled only by a
	// transient conflict is sent again before the caller gets an error.
	ConflictRetries    = 4
	conflictFirstDelay = 20 * time.Millisecond
	conflictMaxDelay   = 160 * time.Millisecond
)

// Cancellation reason codes of TransactWriteItems that the store reads.
const (
	reasonNone        = "None"
	reasonCondition   = "ConditionalCheckFailed"
	reasonConflict    = "TransactionConflict"
	reasonThrottled   = "ThrottlingError"
	reasonProvisioned = "ProvisionedThroughputExceeded"
)

// transient reports whether err proves that DynamoDB applied nothing for a
// reason that passes by itself: a TransactionConflictException, or a
// transaction cancelled only by conflicts or throttling (no condition
// failed anywhere).
func transient(err error) bool {
	if errors.As(err, new(*types.TransactionConflictException)) {
		return true
	}
	var tce *types.TransactionCanceledException
	if !errors.As(err, &tce) {
		return false
	}
	seen := false
	for _, r := range tce.CancellationReasons {
		switch aws.ToString(r.Code) {
		case "", reasonNone:
		case reasonConflict, reasonThrottled, reasonProvisioned:
			seen = true
		default:
			return false
		}
	}
	return seen
}

// retryTransient calls send, and calls it again while it fails with a
// transient conflict, at most ConflictRetries more times, after a jittered
// backoff that ends before until (the lease's end; zero for no bound) and
// before ctx ends. It returns send's last error and how many times it was
// called.
func (s *Store) retryTransient(ctx context.Context, until time.Time, send func(attempt int) error) (int, error) {
	err := send(0)
	attempt := 1
	for ; err != nil && attempt <= ConflictRetries && transient(err); attempt++ {
		if !s.backoff(ctx, attempt, until) {
			break
		}
		err = send(attempt)
	}
	return attempt, err
}

// backoff sleeps before the attempt-th resend of a write that met a
// transient conflict: equal jitter over a delay that starts at
// conflictFirstDelay and doubles up to conflictMaxDelay. It returns false,
// without sleeping out the delay, when the resend would start at or after
// until (when set) or when ctx ends first.
func (s *Store) backoff(ctx context.Context, attempt int, until time.Time) bool {
	d := min(conflictFirstDelay<<(attempt-1), conflictMaxDelay)
	d = d/2 + rand.N(d/2+1)
	if !until.IsZero() && !s.cfg.Now().Add(d).Before(until) {
		return false
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
