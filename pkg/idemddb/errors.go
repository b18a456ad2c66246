package idemddb

import (
	"errors"
	"fmt"
	"time"
)

// Sentinel errors, for errors.Is. Each typed error below matches one of them.
var (
	// ErrInProgress: another caller holds a live lease on the key.
	ErrInProgress = errors.New("idemddb: a request with this idempotency key is in progress")
	// ErrMismatch: the key was already used with a different fingerprint.
	ErrMismatch = errors.New("idemddb: idempotency key reused with a different request")
	// ErrFenced: the caller's lease was taken over, so it may neither
	// complete nor release the record.
	ErrFenced = errors.New("idemddb: lease lost to another owner")
	// ErrUnavailable: DynamoDB could not be reached or refused the request,
	// kept answering with a transient conflict, or gave no answer to a
	// completion (its outcome is then unknown and the key stays claimed),
	// or a record could not be read.
	ErrUnavailable = errors.New("idemddb: idempotency store unavailable")
	// ErrResultTooLarge: the result did not fit in a record, so the record
	// was completed without it; replays get this error.
	ErrResultTooLarge = errors.New("idemddb: result too large to retain")
	// ErrInvalidRequest: the key or fingerprint cannot be used.
	ErrInvalidRequest = errors.New("idemddb: invalid request")
	// ErrTransactionCanceled: a write added with Claim.AddWrites failed its
	// condition, so nothing was committed and the key was released.
	ErrTransactionCanceled = errors.New("idemddb: completion transaction canceled")
)

// InProgressError reports a key whose lease is held by another caller.
type InProgressError struct {
	// LeaseUntil is when the current lease ends.
	LeaseUntil time.Time
	// RetryAfter is the time from the check until LeaseUntil, never negative.
	RetryAfter time.Duration
	// Waited is how long the caller waited (Request.Wait) before giving up,
	// and WaitReads how many reads it made meanwhile.
	Waited    time.Duration
	WaitReads int
}

// Error implements error.
func (e *InProgressError) Error() string {
	return fmt.Sprintf("%v (lease ends in %v)", ErrInProgress, e.RetryAfter.Round(time.Millisecond))
}

// Is reports whether target is ErrInProgress.
func (e *InProgressError) Is(target error) bool { return target == ErrInProgress }

// MismatchError reports a key reused with a different fingerprint.
type MismatchError struct {
	// Key is the idempotency key as given to Run.
	Key string
}

// Error implements error.
func (e *MismatchError) Error() string { return ErrMismatch.Error() }

// Is reports whether target is ErrMismatch.
func (e *MismatchError) Is(target error) bool { return target == ErrMismatch }

// FencedError reports a completion or release refused because the record no
// longer belongs to the caller's lease.
type FencedError struct {
	// Op is "complete" or "release".
	Op string
}

// Error implements error.
func (e *FencedError) Error() string { return fmt.Sprintf("%v: %s refused", ErrFenced, e.Op) }

// Is reports whether target is ErrFenced.
func (e *FencedError) Is(target error) bool { return target == ErrFenced }

// StoreError wraps a DynamoDB failure that is not a condition failure, or
// a record the store cannot read.
type StoreError struct {
	// Op is the DynamoDB operation ("PutItem", "GetItem",
	// "TransactWriteItems", ...), or "decode record" / "decode result" for
	// a record with an unknown status or an unreadable result.
	Op string
	// Err is the SDK's error, or what is wrong with the record.
	Err error
}

// Error implements error.
func (e *StoreError) Error() string { return fmt.Sprintf("%v: %s: %v", ErrUnavailable, e.Op, e.Err) }

// Is reports whether target is ErrUnavailable.
func (e *StoreError) Is(target error) bool { return target == ErrUnavailable }

// Unwrap returns Err.
func (e *StoreError) Unwrap() error { return e.Err }

// ResultTooLargeError is returned on a replay of a record whose result was
// too large to retain. The work ran once and its effect committed.
type ResultTooLargeError struct {
	// Size is the encoded result size in bytes; Limit the configured maximum.
	Size, Limit int
}

// Error implements error.
func (e *ResultTooLargeError) Error() string {
	return fmt.Sprintf("%v (%d bytes, limit %d)", ErrResultTooLarge, e.Size, e.Limit)
}

// Is reports whether target is ErrResultTooLarge.
func (e *ResultTooLargeError) Is(target error) bool { return target == ErrResultTooLarge }

// CancellationReason is one entry of a cancelled transaction, in the order of
// the writes given to Claim.AddWrites.
type CancellationReason struct {
	Code    string // for example "ConditionalCheckFailed" or "None"
	Message string
}

// TransactionCanceledError reports that a caller's write cancelled the
// completion transaction. Nothing was committed and the key was released.
type TransactionCanceledError struct {
	// Index is the position, in the order given to Claim.AddWrites, of the
	// first write whose reason is not "None".
	Index int
	// Reasons has one entry per caller write (the record's own entry is
	// not included).
	Reasons []CancellationReason
	// Err is the SDK's *types.TransactionCanceledException.
	Err error
}

// Error implements error.
func (e *TransactionCanceledError) Error() string {
	r := CancellationReason{}
	if e.Index >= 0 && e.Index < len(e.Reasons) {
		r = e.Reasons[e.Index]
	}
	return fmt.Sprintf("%v: write %d: %s %s", ErrTransactionCanceled, e.Index, r.Code, r.Message)
}

// Is reports whether target is ErrTransactionCanceled.
func (e *TransactionCanceledError) Is(target error) bool { return target == ErrTransactionCanceled }

// Unwrap returns the SDK's error.
func (e *TransactionCanceledError) Unwrap() error { return e.Err }
