package idemddb

// The claim: the Claim a caller holds, the conditional PutItem that makes a
// fresh claim or takes a lapsed lease over, and decide, which turns the
// record that blocked a claim into a replay, an error or the next try.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
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
	// record: a caller that takes over a lapsed lease gets the same value,
	// so ids derived from it (an order id, a payment id, a provider's
	// idempotency key) are reused after a crash.
	ResourceID string
	// LeaseUntil is when the lease ends.
	LeaseUntil time.Time
	// TakenOver is true when this claim replaced a lapsed lease of the
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

// The claim's conditions, in the store's one placeholder scheme (see
// placeholderAttr).
const (
	// Claim: absent, or expired.
	claimCondition = "attribute_not_exists(#k) OR #e <= :now"
	// Takeover of a lapsed lease: still the owner whose lease we saw lapse.
	takeoverCondition = "#s = :inprog AND #o = :old AND #l <= :nowms"
)

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
		res, step, err := s.decide(key, fp, blocker, now)
		switch step {
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
		ConditionExpression:      s.shapes.claim.expr,
		ExpressionAttributeNames: s.shapes.claim.names,
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
		ConditionExpression:      s.shapes.takeover.expr,
		ExpressionAttributeNames: s.shapes.takeover.names,
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
		s.releaseOrWarn(ctx, c, "a claim made as the context ended")
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

// next is what decide found the record that blocked a claim allows.
type next int

const (
	decided    next = iota // a replay or an error: done
	claimAgain             // gone or expired: a fresh claim
	takeOver               // the same request's lease lapsed: take it over
)

// decide turns the record that blocked a claim into a replay or an error,
// or says what to try next.
func (s *Store) decide(key string, fp []byte, item map[string]types.AttributeValue, now time.Time) (*Result, next, error) {
	if item == nil {
		return nil, claimAgain, nil
	}
	r := decodeRecord(item)
	if expired(r.expiresAt, now) {
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
