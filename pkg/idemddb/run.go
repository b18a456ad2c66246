package idemddb

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// Request identifies one idempotent operation.
type Request struct {
	// Key is the idempotency key, already scoped by the caller (tenant,
	// route...). 1 to MaxKeyBytes bytes.
	Key string
	// Fingerprint describes the request; the store keeps its SHA-256. The
	// same key with a different fingerprint is a mismatch.
	Fingerprint []byte
	// Wait, when positive, is how long a caller that finds the key in
	// progress waits for the other caller to finish before it gets
	// *InProgressError: it polls the record with strongly consistent reads
	// (see MaxWaitReads) and returns the stored result as a replay once the
	// record completes; if the other caller releases the key (its work
	// failed) or its lease lapses, this caller claims the key and runs its
	// own work. The wait never outlasts ctx's deadline minus WaitMargin. A
	// mismatch is never waited for.
	Wait time.Duration
}

// Result is the outcome of a successful Run.
type Result struct {
	// Data is the work's result: fresh, or replayed from the record.
	Data []byte
	// Replayed is true when the work did not run in this call.
	Replayed bool
	// Retained is false when the result was too large to store: the record
	// is COMPLETED without it and replays get a *ResultTooLargeError.
	Retained bool
	// Waited is how long the call waited for another caller (Request.Wait),
	// and WaitReads how many reads it made meanwhile: for logs and metrics.
	Waited    time.Duration
	WaitReads int
}

// Conditions. Expression attribute names are bound per expression because
// DynamoDB rejects names an expression does not use.
const (
	// Claim: absent, or expired.
	claimCondition = "attribute_not_exists(#id) OR #exp <= :now"
	// Takeover of a lapsed lease: still the owner whose lease we saw lapse.
	takeoverCondition = "#st = :inprog AND #owner = :old AND #lease <= :nowms"
	// Completion and release: still ours.
	fenceCondition = "#st = :inprog AND #owner = :tok"
)

// readBackTimeout bounds the one strongly consistent read that settles an
// ambiguous write. It runs even when the caller's context has ended.
const readBackTimeout = 5 * time.Second

// checkKey refuses a key the store cannot use (ErrInvalidRequest).
func checkKey(key string) error {
	if key == "" || len(key) > MaxKeyBytes {
		return fmt.Errorf("%w: key must be 1 to %d bytes, got %d", ErrInvalidRequest, MaxKeyBytes, len(key))
	}
	return nil
}

func newToken() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never returns an error (Go 1.24+)
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// Run runs work at most once for req.Key (see the package documentation for
// the full contract). On a first execution it returns the work's result;
// when the key already completed it returns the stored result with Replayed
// set, without running work. The work's context carries the claim
// (ClaimFromContext) and, when ctx has no deadline, one LeaseMargin before
// the lease ends. If work returns an error the key is released and the error
// is returned unchanged. If work panics the key is released and the panic
// continues.
func (s *Store) Run(ctx context.Context, req Request, work func(ctx context.Context, c *Claim) ([]byte, error)) (Result, error) {
	claim, replay, err := s.Begin(ctx, req)
	if err != nil || replay != nil {
		if replay != nil {
			return *replay, err
		}
		return Result{}, err
	}
	data, err := s.runWork(ctx, claim, work)
	if err != nil {
		if rerr := s.releaseDetached(ctx, claim); rerr != nil {
			s.cfg.Logger.WarnContext(ctx, "idemddb: release after work error failed; the key stays claimed until its lease ends",
				"table", s.cfg.Table, "lease_until", claim.LeaseUntil, "error", rerr)
		}
		return Result{}, err
	}
	return s.Complete(ctx, claim, data)
}

// runWork calls work with the claim in its context. A panic in work releases
// the key on the way up and is not recovered.
func (s *Store) runWork(ctx context.Context, c *Claim, work func(context.Context, *Claim) ([]byte, error)) (data []byte, err error) {
	wctx := WithClaim(ctx, c)
	stop := c.LeaseUntil.Add(-s.cfg.LeaseMargin)
	if dl, ok := ctx.Deadline(); !ok || dl.After(stop) {
		var cancel context.CancelFunc
		wctx, cancel = context.WithDeadline(wctx, stop)
		defer cancel()
	}
	panicked := true
	defer func() {
		if panicked {
			_ = s.releaseDetached(ctx, c)
		}
	}()
	data, err = work(wctx, c)
	panicked = false
	return data, err
}

// Begin claims req.Key. Exactly one of the returned claim and result is
// non-nil when err is nil: a claim means the caller must run its work and
// then call Complete or Release; a result is a replay of the completed
// record. Run is Begin, work, then Complete or Release; use Begin directly
// when the work cannot be a single function call. With req.Wait, a key in
// progress is waited for (see Request.Wait) before *InProgressError.
func (s *Store) Begin(ctx context.Context, req Request) (*Claim, *Result, error) {
	if err := checkKey(req.Key); err != nil {
		return nil, nil, err
	}
	fp := fingerprintDigest(req.Fingerprint)
	now := s.cfg.Now()
	if c := s.cfg.Cache; c != nil {
		if e, ok := c.get(req.Key, now); ok {
			if !bytes.Equal(e.fp, fp) {
				return nil, nil, &MismatchError{Key: req.Key}
			}
			r := record{result: e.result, enc: e.enc, size: e.size}
			data, err := s.decodeResult(&r)
			if err != nil {
				return nil, nil, err
			}
			return nil, &Result{Data: data, Replayed: true, Retained: true}, nil
		}
	}
	c, res, err := s.begin(ctx, req.Key, fp, now)
	var busy *InProgressError
	if req.Wait > 0 && errors.As(err, &busy) {
		return s.await(ctx, req.Key, fp, req.Wait, busy)
	}
	return c, res, err
}

// begin claims key: a fresh claim first; when a lapsed lease of the same
// request blocks it, a takeover of exactly that lease. Either can find the
// record changed under it: try again, a bounded number of times. A put
// refused by a transient conflict is sent again too (ConflictRetries), and
// when every resend meets one the error wraps ErrUnavailable: nothing was
// claimed, so the caller may retry at once.
func (s *Store) begin(ctx context.Context, key string, fp []byte, now time.Time) (*Claim, *Result, error) {
	var lapsed *record
	for changes, conflicts := 0, 0; changes < 3; {
		var (
			claim   *Claim
			blocker map[string]types.AttributeValue
			err     error
		)
		if lapsed == nil {
			claim, blocker, err = s.claim(ctx, key, fp, now)
		} else {
			claim, blocker, err = s.takeOver(ctx, key, fp, lapsed, now)
		}
		if err != nil && transient(err) && conflicts < ConflictRetries {
			// A transaction in flight on the record (the owner's
			// completion, most likely) refused the put: send it again.
			conflicts++
			if s.backoff(ctx, conflicts, time.Time{}) {
				now = s.cfg.Now()
				continue
			}
		}
		if err != nil || claim != nil {
			return claim, nil, err
		}
		res, next, err := s.decide(key, fp, blocker, now)
		switch next {
		case decided:
			return nil, res, err
		case claimAgain:
			lapsed = nil
		case takeOver:
			r := decodeRecord(blocker)
			lapsed = &r
		}
		changes++
		now = s.cfg.Now()
	}
	return nil, nil, &StoreError{Op: "PutItem", Err: errors.New("record changed under three consecutive claims")}
}

// claimItem is the IN_PROGRESS record of a claim by token. The resource id
// is stored only when it is not the token (a takeover).
func (s *Store) claimItem(key string, fp []byte, token, rid string, lease time.Time, now time.Time) map[string]types.AttributeValue {
	item := make(map[string]types.AttributeValue, 7)
	item[s.cfg.KeyAttribute] = str(key)
	item[attrStatus] = str(StatusInProgress)
	item[attrFingerprint] = &types.AttributeValueMemberB{Value: fp}
	item[attrOwner] = str(token)
	item[attrLease] = num(msOf(lease))
	item[TTLAttribute] = num(now.Add(s.cfg.Retention).Unix())
	if rid != token {
		item[attrResourceID] = str(rid)
	}
	return item
}

// claim makes the single conditional PutItem of a fresh claim: the key is
// absent or its record expired. It returns the claim, or the item that
// blocked it (nil if it has since gone). The new record's resource id is
// its token.
func (s *Store) claim(ctx context.Context, key string, fp []byte, now time.Time) (*Claim, map[string]types.AttributeValue, error) {
	token := newToken()
	lease := time.UnixMilli(msOf(s.leaseUntil(ctx, now))) // as stored
	_, err := s.client.PutItem(ctx, &dynamodb.PutItemInput{
		TableName:                s.shapes.table,
		Item:                     s.claimItem(key, fp, token, token, lease, now),
		ConditionExpression:      s.shapes.claimCond,
		ExpressionAttributeNames: s.shapes.claimNames,
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":now": num(now.Unix()),
		},
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	if err == nil {
		return &Claim{Key: key, Token: token, ResourceID: token, LeaseUntil: lease, fp: fp}, nil, nil
	}
	return s.claimFailed(ctx, key, fp, token, err)
}

// takeOver replaces the lapsed lease of the same request (old) with a claim
// of ours, with one conditional PutItem fenced on the old owner. The new
// record keeps old's resource id, so ids derived from it survive the
// takeover even when its answer is lost.
func (s *Store) takeOver(ctx context.Context, key string, fp []byte, old *record, now time.Time) (*Claim, map[string]types.AttributeValue, error) {
	token := newToken()
	lease := time.UnixMilli(msOf(s.leaseUntil(ctx, now)))
	rid := old.rid
	if rid == "" { // a record without one (a foreign writer): start afresh
		rid = token
	}
	_, err := s.client.PutItem(ctx, &dynamodb.PutItemInput{
		TableName:                s.shapes.table,
		Item:                     s.claimItem(key, fp, token, rid, lease, now),
		ConditionExpression:      s.shapes.takeoverCond,
		ExpressionAttributeNames: s.shapes.takeoverNames,
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":inprog": str(StatusInProgress), ":old": str(old.owner), ":nowms": num(msOf(now)),
		},
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	if err == nil {
		return &Claim{Key: key, Token: token, ResourceID: rid, LeaseUntil: lease, TakenOver: true, fp: fp}, nil, nil
	}
	return s.claimFailed(ctx, key, fp, token, err)
}

// claimFailed settles a claim's PutItem that returned err. A condition
// failure returns the blocking item, unless that item is our own claim (the
// SDK re-sent a put whose first attempt had landed). Any other error that
// does not prove the put was refused may hide a claim the engine applied:
// one strongly consistent read tells, and a claim found there is ours. The
// read runs even when ctx has ended; a claim found then is released at
// once, so nobody waits for its lease.
func (s *Store) claimFailed(ctx context.Context, key string, fp []byte, token string, err error) (*Claim, map[string]types.AttributeValue, error) {
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		item, rerr := s.current(ctx, key, ccf)
		if rerr != nil {
			return nil, nil, rerr
		}
		if c := ownClaim(key, fp, token, item); c != nil {
			return c, nil, nil
		}
		return nil, item, nil
	}
	failed := &StoreError{Op: "PutItem", Err: err}
	if refused(err) {
		return nil, nil, failed
	}
	item, ok := s.readBack(ctx, key)
	c := ownClaim(key, fp, token, item)
	if !ok || c == nil {
		return nil, nil, failed
	}
	if ctx.Err() != nil {
		if rerr := s.releaseDetached(ctx, c); rerr != nil {
			s.cfg.Logger.WarnContext(ctx, "idemddb: release of a claim made as the context ended failed; the key stays claimed until its lease ends",
				"table", s.cfg.Table, "lease_until", c.LeaseUntil, "error", rerr)
		}
		return nil, nil, failed
	}
	return c, nil, nil
}

// ownClaim returns the claim item holds for token, or nil.
func ownClaim(key string, fp []byte, token string, item map[string]types.AttributeValue) *Claim {
	if item == nil {
		return nil
	}
	r := decodeRecord(item)
	if r.status != StatusInProgress || r.owner != token {
		return nil
	}
	return &Claim{Key: key, Token: token, ResourceID: r.rid, LeaseUntil: time.UnixMilli(r.leaseUntil),
		TakenOver: r.rid != token, fp: fp}
}

// refused reports whether err proves that DynamoDB did not apply the
// request: an answer the service attributes to the caller (a 4xx:
// validation, throttling, a missing table, ...), given before anything is
// applied. A transport error, a 5xx, a cancelled context or an answer that
// could not be read may hide an applied request.
func refused(err error) bool {
	var ae smithy.APIError
	if errors.As(err, &ae) && ae.ErrorFault() == smithy.FaultClient {
		return true
	}
	var re *smithyhttp.ResponseError
	if errors.As(err, &re) {
		st := re.HTTPStatusCode()
		return st >= 400 && st < 500
	}
	return false
}

// readBack makes the one strongly consistent read that settles an ambiguous
// write, detached from ctx's cancellation and bounded by readBackTimeout.
// ok is false when the read failed too.
func (s *Store) readBack(ctx context.Context, key string) (map[string]types.AttributeValue, bool) {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), readBackTimeout)
	defer cancel()
	item, err := s.readRecord(rctx, key)
	return item, err == nil
}

// current returns the item that failed a condition: the one the engine
// sent back (ALL_OLD), or else one strongly consistent read of it; nil when
// there is none.
func (s *Store) current(ctx context.Context, key string, ccf *types.ConditionalCheckFailedException) (map[string]types.AttributeValue, error) {
	if ccf.Item != nil {
		return ccf.Item, nil
	}
	return s.readRecord(ctx, key)
}

// What decide found the blocking record allows next.
const (
	decided    = iota // a replay or an error: done
	claimAgain        // gone or expired: a fresh claim
	takeOver          // the same request's lease lapsed: take it over
)

// decide turns the record that blocked a claim into a replay or an error,
// or says what to try next.
func (s *Store) decide(key string, fp []byte, item map[string]types.AttributeValue, now time.Time) (*Result, int, error) {
	if item == nil {
		return nil, claimAgain, nil
	}
	r := decodeRecord(item)
	if r.expired(now) {
		return nil, claimAgain, nil
	}
	if !bytes.Equal(r.fp, fp) {
		return nil, decided, &MismatchError{Key: key}
	}
	switch r.status {
	case StatusCompleted:
		data, err := s.decodeResult(&r)
		if err != nil {
			return nil, decided, err
		}
		if s.cfg.Cache != nil {
			s.cfg.Cache.put(key, fp, &r)
		}
		return &Result{Data: data, Replayed: true, Retained: true}, decided, nil
	case StatusInProgress:
		until := time.UnixMilli(r.leaseUntil)
		if until.After(now) {
			return nil, decided, &InProgressError{LeaseUntil: until, RetryAfter: until.Sub(now)}
		}
		return nil, takeOver, nil
	default:
		return nil, decided, &StoreError{Op: "decode record", Err: fmt.Errorf("unknown status %q", r.status)}
	}
}

// Complete stores data as the result of c's work and marks the record
// COMPLETED, together with the writes added to c, in one request: an
// UpdateItem that sends only what changes (status, expiry, result; the lease
// end is removed), fenced on c's token, or a TransactWriteItems holding the
// same update when c has writes. A *FencedError means another caller holds
// the record now (a takeover after c's lease lapsed). A completion refused
// by a transient conflict is sent again (ConflictRetries), within the lease.
// See the package documentation for what each failure means for the record.
func (s *Store) Complete(ctx context.Context, c *Claim, data []byte) (Result, error) {
	stored, enc := s.encodeResult(data)
	size := len(stored)
	retained := true
	if size > s.cfg.MaxResultBytes {
		stored, enc, retained = nil, resultNotRetained, false
	}
	now := s.cfg.Now()
	expires := now.Add(s.cfg.Retention).Unix()
	key := map[string]types.AttributeValue{s.cfg.KeyAttribute: str(c.Key)}
	values := make(map[string]types.AttributeValue, 5)
	values[":t"], values[":c"], values[":e"] = str(c.Token), str(StatusCompleted), num(expires)
	var shape *completion
	switch {
	case !retained:
		shape = &s.shapes.notRetained
		values[":n"] = num(resultNotRetained)
		values[":z"] = num(int64(size))
	case len(stored) == 0: // an empty result is stored as no attribute
		shape = &s.shapes.empty
	case enc == resultDeflate:
		shape = &s.shapes.deflate
		values[":r"] = &types.AttributeValueMemberB{Value: stored}
		values[":n"] = num(resultDeflate)
	default:
		shape = &s.shapes.raw
		values[":r"] = &types.AttributeValueMemberB{Value: stored}
	}

	if len(c.writes) == 0 {
		in := &dynamodb.UpdateItemInput{
			TableName: s.shapes.table, Key: key, UpdateExpression: shape.expr,
			ConditionExpression: s.shapes.completeFence, ExpressionAttributeNames: shape.names,
			ExpressionAttributeValues: values,
		}
		sent, err := s.retryTransient(ctx, c.LeaseUntil, func(int) error {
			_, err := s.client.UpdateItem(ctx, in)
			return err
		})
		if err != nil {
			var ccf *types.ConditionalCheckFailedException
			switch {
			case errors.As(err, &ccf):
				return Result{}, &FencedError{Op: "complete"}
			case transient(err):
				return Result{}, conflictPersisted("UpdateItem", sent, err)
			}
			if err := s.completionUnknown(ctx, c, "UpdateItem", err); err != nil {
				return Result{}, err
			}
		}
	} else {
		items := make([]types.TransactWriteItem, 0, len(c.writes)+1)
		items = append(items, c.writes...)
		items = append(items, types.TransactWriteItem{Update: &types.Update{
			TableName: s.shapes.table, Key: key, UpdateExpression: shape.expr,
			ConditionExpression: s.shapes.completeFence, ExpressionAttributeNames: shape.names,
			ExpressionAttributeValues: values,
		}})
		in := &dynamodb.TransactWriteItemsInput{
			TransactItems: items,
			// Makes SDK retries of this very transaction idempotent.
			ClientRequestToken: aws.String(c.Token),
		}
		sent, err := s.retryTransient(ctx, c.LeaseUntil, func(attempt int) error {
			if attempt > 0 {
				// The cancelled attempt applied nothing. A token of its
				// own keeps the resend from being taken for it.
				in.ClientRequestToken = aws.String(c.Token + "." + strconv.Itoa(attempt))
			}
			_, err := s.client.TransactWriteItems(ctx, in)
			return err
		})
		if err != nil {
			var tce *types.TransactionCanceledException
			switch {
			case transient(err):
				return Result{}, conflictPersisted("TransactWriteItems", sent, err)
			case errors.As(err, &tce):
				return Result{}, s.transactionCanceled(ctx, c, tce, err)
			}
			if err := s.completionUnknown(ctx, c, "TransactWriteItems", err); err != nil {
				return Result{}, err
			}
		}
	}
	if s.cfg.Cache != nil && retained {
		r := record{result: stored, enc: enc, expiresAt: expires}
		s.cfg.Cache.put(c.Key, c.fp, &r)
	}
	return Result{Data: data, Retained: retained}, nil
}

// The completion's expressions, one per result encoding. The fence is the
// lease token: tokens are unique per claim, so a record that holds the
// completing token is that claim (or its own completion, which an SDK retry
// then rewrites with the same values); a takeover, a release or an expiry
// replaced it.
const (
	completeFence       = "#o = :t"
	completeRaw         = "SET #s = :c, #e = :e, #r = :r REMOVE #l"
	completeDeflate     = "SET #s = :c, #e = :e, #r = :r, #n = :n REMOVE #l"
	completeEmpty       = "SET #s = :c, #e = :e REMOVE #l"
	completeNotRetained = "SET #s = :c, #e = :e, #n = :n, #z = :z REMOVE #l"
)

// completion is the constant part of one completion UpdateItem: its update
// expression and the names it binds (DynamoDB rejects unused ones).
type completion struct {
	expr  *string
	names map[string]string
}

// shapes are the parts of the store's requests that never change, built
// once by New and only read afterwards (the SDK does not modify its inputs),
// so a call allocates only what varies.
type shapes struct {
	table                                 *string
	claimCond, takeoverCond, fenceCond    *string
	completeFence                         *string
	claimNames, takeoverNames, fenceNames map[string]string
	raw, deflate, empty, notRetained      completion
}

func newShapes(table, keyAttr string) shapes {
	base := func(extra ...string) map[string]string {
		m := map[string]string{"#s": attrStatus, "#o": attrOwner, "#e": TTLAttribute, "#l": attrLease}
		for i := 0; i+1 < len(extra); i += 2 {
			m[extra[i]] = extra[i+1]
		}
		return m
	}
	return shapes{
		table:         aws.String(table),
		claimCond:     aws.String(claimCondition),
		takeoverCond:  aws.String(takeoverCondition),
		fenceCond:     aws.String(fenceCondition),
		completeFence: aws.String(completeFence),
		claimNames:    map[string]string{"#id": keyAttr, "#exp": TTLAttribute},
		takeoverNames: map[string]string{"#st": attrStatus, "#owner": attrOwner, "#lease": attrLease},
		fenceNames:    map[string]string{"#st": attrStatus, "#owner": attrOwner},
		raw:           completion{aws.String(completeRaw), base("#r", attrResult)},
		deflate:       completion{aws.String(completeDeflate), base("#r", attrResult, "#n", attrEncoding)},
		empty:         completion{aws.String(completeEmpty), base()},
		notRetained:   completion{aws.String(completeNotRetained), base("#n", attrEncoding, "#z", attrResultSize)},
	}
}

// completedBy reports whether item is a COMPLETED record of token's lease.
func completedBy(item map[string]types.AttributeValue, token string) bool {
	if item == nil {
		return false
	}
	r := decodeRecord(item)
	return r.status == StatusCompleted && r.owner == token
}

// completionUnknown settles a completion that failed with err, neither a
// condition failure nor a cancellation. Unless err proves the request was
// refused, one strongly consistent read tells whether it landed: a record
// COMPLETED by c's lease means it did (with its writes, which commit
// together), and nil is returned. Otherwise the outcome stays unknown: a
// *StoreError, and the record is left as it is (releasing it could let a
// retry run a second effect).
func (s *Store) completionUnknown(ctx context.Context, c *Claim, op string, err error) error {
	if !refused(err) {
		if item, ok := s.readBack(ctx, c.Key); ok && completedBy(item, c.Token) {
			return nil
		}
	}
	return &StoreError{Op: op, Err: err}
}

// conflictPersisted is the error of a completion whose every attempt met a
// transient conflict: nothing was applied, and the key stays claimed until
// its lease ends (releasing it would let a retry run the work again).
func conflictPersisted(op string, sent int, err error) error {
	return &StoreError{Op: op, Err: fmt.Errorf(
		"transient conflict on all %d attempts: nothing was committed and the key stays claimed until its lease ends: %w", sent, err)}
}

// transactionCanceled classifies a cancelled completion transaction, which
// committed nothing and was not cancelled by transient conflicts alone
// (those are retried first): if our record's entry failed its fence the
// record is someone else's (FencedError); if one of the caller's writes
// failed, the key is released so a retry runs the work again
// (*TransactionCanceledError); otherwise nothing names the cause, so the
// key stays claimed until its lease ends, as after any completion whose
// outcome the caller cannot act on.
func (s *Store) transactionCanceled(ctx context.Context, c *Claim, tce *types.TransactionCanceledException, err error) error {
	n := len(c.writes)
	reasons := make([]CancellationReason, n)
	first := -1
	for i, r := range tce.CancellationReasons {
		code := aws.ToString(r.Code)
		if i == n {
			if code == reasonCondition {
				return &FencedError{Op: "complete"}
			}
			continue
		}
		if i > n {
			break
		}
		reasons[i] = CancellationReason{Code: code, Message: aws.ToString(r.Message)}
		if first < 0 && code != "" && code != reasonNone {
			first = i
		}
	}
	if first < 0 {
		return &StoreError{Op: "TransactWriteItems", Err: fmt.Errorf(
			"cancelled without a failing write; the key stays claimed until its lease ends: %w", err)}
	}
	if rerr := s.releaseDetached(ctx, c); rerr != nil {
		s.cfg.Logger.WarnContext(ctx, "idemddb: release after cancelled transaction failed",
			"table", s.cfg.Table, "error", rerr)
	}
	return &TransactionCanceledError{Index: first, Reasons: reasons, Err: err}
}

// Release deletes c's record if it is still c's (IN_PROGRESS with c's
// token), so the next request with the key runs the work. It returns a
// *FencedError when the lease was taken over. A delete refused by a
// transient conflict is sent again (ConflictRetries), within the lease.
func (s *Store) Release(ctx context.Context, c *Claim) error {
	in := &dynamodb.DeleteItemInput{
		TableName:                           s.shapes.table,
		Key:                                 map[string]types.AttributeValue{s.cfg.KeyAttribute: str(c.Key)},
		ConditionExpression:                 s.shapes.fenceCond,
		ExpressionAttributeNames:            s.shapes.fenceNames,
		ExpressionAttributeValues:           map[string]types.AttributeValue{":inprog": str(StatusInProgress), ":tok": str(c.Token)},
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	}
	_, err := s.retryTransient(ctx, c.LeaseUntil, func(int) error {
		_, err := s.client.DeleteItem(ctx, in)
		return err
	})
	if err == nil {
		return nil
	}
	var ccf *types.ConditionalCheckFailedException
	var cur map[string]types.AttributeValue
	switch {
	case errors.As(err, &ccf):
		if cur, err = s.current(ctx, c.Key, ccf); err != nil {
			return err
		}
	case refused(err):
		return &StoreError{Op: "DeleteItem", Err: err}
	default:
		// The delete may have landed: read the record once.
		item, ok := s.readBack(ctx, c.Key)
		if !ok || ownClaim(c.Key, c.fp, c.Token, item) != nil {
			return &StoreError{Op: "DeleteItem", Err: err}
		}
		cur = item
	}
	// Gone (a delete of ours that landed, answered or not): released.
	if cur != nil {
		return &FencedError{Op: "release"}
	}
	return nil
}

// releaseDetached releases even when ctx is already cancelled (the work may
// have failed because of it), within a short bound of its own.
func (s *Store) releaseDetached(ctx context.Context, c *Claim) error {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	return s.Release(rctx, c)
}

// Do is Run for a typed result, encoded as JSON in the record. It returns the
// work's value (or the stored one) and whether it was replayed.
func Do[T any](ctx context.Context, s *Store, key string, fingerprint []byte, work func(ctx context.Context, c *Claim) (T, error)) (T, bool, error) {
	var fresh T
	res, err := s.Run(ctx, Request{Key: key, Fingerprint: fingerprint}, func(ctx context.Context, c *Claim) ([]byte, error) {
		v, err := work(ctx, c)
		if err != nil {
			return nil, err
		}
		b, err := json.Marshal(v)
		if err != nil {
			return nil, fmt.Errorf("idemddb: encode result: %w", err)
		}
		fresh = v
		return b, nil
	})
	if err != nil {
		var zero T
		return zero, false, err
	}
	if !res.Replayed {
		return fresh, false, nil
	}
	var out T
	if err := json.Unmarshal(res.Data, &out); err != nil {
		return out, true, fmt.Errorf("idemddb: decode stored result: %w", err)
	}
	return out, true, nil
}
