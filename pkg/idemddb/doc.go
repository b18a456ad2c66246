// Package idemddb runs a piece of work at most once per idempotency key,
// with Amazon DynamoDB as the only shared state, so the guarantee holds
// across any number of Lambda instances.
//
// # Contract
//
// Run (and its typed form Do) claims the key with one conditional PutItem.
// The claim succeeds when no record exists, when the record has expired, or
// when the record is IN_PROGRESS, its lease has passed and it was made by the
// same request (same fingerprint). Exactly one caller wins a claim; it runs
// the work and then commits a COMPLETED record holding the result. Every
// other caller gets, without running the work:
//
//   - the stored result, with Result.Replayed set (one GetItem-free request:
//     the failed claim returns the old item through
//     ReturnValuesOnConditionCheckFailure=ALL_OLD, or zero requests from the
//     optional in-process Cache);
//   - an *InProgressError (errors.Is ErrInProgress) while the winner's lease
//     is live, with the time until the lease ends;
//   - a *MismatchError (errors.Is ErrMismatch) when the key was used with a
//     different fingerprint.
//
// Completion and release are fenced: both are conditioned on status
// IN_PROGRESS and the caller's own lease token, so an instance whose lease
// was taken over can neither overwrite nor delete the new owner's record; it
// gets a *FencedError. Writes the work adds with Claim.AddWrites commit in
// the same TransactWriteItems as the completion: the business write and the
// record commit together or not at all.
//
// When the work returns an error the key is released (a fenced DeleteItem)
// so a retry runs the work again, and the work's error is returned
// unchanged. When the completion transaction is cancelled by one of the
// caller's own writes, the key is released the same way, nothing is
// committed, and a *TransactionCanceledError names the failing write.
// When the completion fails for any other reason (a timeout, say) its outcome
// is unknown, so the key is NOT released: the record either committed or
// stays IN_PROGRESS until its lease passes, and the error wraps ErrUnavailable.
//
// Records expire through DynamoDB's native TTL on the attribute named by
// TTLAttribute. TTL deletes lazily, so expiry is also checked in the claim
// condition and on every read.
package idemddb
