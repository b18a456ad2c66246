// Package idemddb runs a piece of work at most once per idempotency key,
// with Amazon DynamoDB as the only shared state, so the guarantee holds
// across any number of Lambda instances.
//
// # Contract
//
// Run (and its typed form Do) claims the key with one conditional PutItem.
// The claim succeeds when no record exists or when the record has expired.
// When the record is IN_PROGRESS, its lease has passed and it was made by the
// same request (same fingerprint), the caller takes that lease over with a
// second conditional PutItem, fenced on the lapsed owner, that keeps the
// record's resource id: ids derived from it survive a crash. Exactly one
// caller wins a claim; it runs the work and then commits a COMPLETED record
// holding the result. Every other caller gets, without running the work:
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
// A caller that would rather wait for a duplicate in progress than get
// *InProgressError sets Request.Wait: it polls the record (strongly
// consistent reads at 100 ms, 200 ms, 400 ms, 800 ms, then every second; at
// most MaxWaitReads(wait), 8 for 5 s) and gets the stored result as a replay
// once the record completes, or claims the key itself when the other caller
// releases it or its lease lapses. The wait ends WaitMargin before ctx's
// deadline at the latest; the error then says how long it waited.
//
// Completion and release are fenced on the caller's own lease token (the
// release also on status IN_PROGRESS), so an instance whose lease was taken
// over can neither overwrite nor delete the new owner's record; it gets a
// *FencedError. The completion is one UpdateItem that sends only what
// changes: status, expiry and result, atomically. Writes the work adds with
// Claim.AddWrites commit in the same TransactWriteItems as that update: the
// business write and the record commit together or not at all.
//
// When the work returns an error the key is released (a fenced DeleteItem)
// so a retry runs the work again, and the work's error is returned
// unchanged. When the completion transaction is cancelled by one of the
// caller's own writes, the key is released the same way, nothing is
// committed, and a *TransactionCanceledError names the failing write.
// A transaction cancelled only by TransactionConflict (another request
// touched one of its items while it ran, as a duplicate's claim does during
// the owner's completion) or by throttling, and a single write answered
// with TransactionConflictException, applied nothing: the completion, the
// release and the claim are sent again, at most ConflictRetries more times
// after a jittered backoff (20 ms doubling to 160 ms, about 300 ms in all),
// never past the lease, and the work never runs again for it. When every
// attempt conflicts the key is NOT released and the error wraps
// ErrUnavailable and says so; a claim that keeps conflicting claims
// nothing. Each resend of the completion transaction carries a
// ClientRequestToken of its own, so the SDK's retries of one attempt stay
// idempotent and no resend is answered from a cancelled attempt.
// When the completion fails for any other reason (a timeout, say) its outcome
// is unknown, so the key is NOT released: the record either committed or
// stays IN_PROGRESS until its lease passes, and the error wraps ErrUnavailable.
//
// # Lost answers
//
// A write can be applied by DynamoDB while its answer is lost (a transport
// error, a timeout, a context that ended in flight). Only an answer that
// proves the write was refused (a condition failure, a 4xx) is taken at its
// word; after any other error the claim, the completion and the release
// each read the record once, strongly consistent and detached from the
// caller's cancellation. A claim found holding the caller's token is the
// caller's (the work runs, or, when the context has ended, the claim is
// released at once), a record COMPLETED by the caller's lease means the
// completion landed, and a record gone means the release did. This costs
// nothing on the happy path, and no key waits for a lease that nobody holds.
//
// # Record
//
// One item per key, holding only what the protocol needs:
//
//	id           S  the key (the partition key; Config.KeyAttribute)
//	status       S  IN_PROGRESS or COMPLETED
//	fp           B  SHA-256 of the request fingerprint
//	lease_owner  S  the lease token of the claim that holds, or completed, it
//	lease_until  N  end of the lease, epoch milliseconds (IN_PROGRESS only)
//	expires_at   N  expiry, epoch seconds: the TTL attribute (TTLAttribute)
//	rid          S  resource id, only after a takeover (otherwise it is
//	                lease_owner, the first claim's token)
//	result       B  the result, deflated when enc says so; absent when empty
//	                or not retained
//	enc          N  1 deflate, 2 not retained; absent means raw
//	size         N  size of a result that was not retained
//
// A claim item with the longest key (MaxKeyBytes) is about 640 bytes; a
// completed record for a 41-byte key and a 293-byte result is 440 bytes.
// Records written by the first release (layout 1, which also carried
// created_at, completed_at and v = 1) are read as before: they replay,
// mismatch and are taken over like new ones.
//
// Records expire through DynamoDB's native TTL on the attribute named by
// TTLAttribute. TTL deletes lazily, so expiry is also checked in the claim
// condition and on every read.
package idemddb
