package idemddb

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// Request identifies one idempotent operation.
type Request struct {
	// Key is the idempotency key, already scoped by the caller (tenant,
	// route...). 1 to MaxKeyBytes bytes.
	Key string
	// Fingerprint describes the request; the store keeps its SHA-256. The
	// same key with a different fingerprint is a mismatch.
	Fingerprint []byte
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
}

// Conditions. Expression attribute names are bound per expression because
// DynamoDB rejects names an expression does not use.
const (
	// Claim: absent, or expired, or the same request's lease has passed.
	claimCondition = "attribute_not_exists(#id) OR #exp <= :now OR (#st = :inprog AND #lease <= :nowms AND #fp = :fp)"
	// Completion and release: still ours.
	fenceCondition = "#st = :inprog AND #owner = :tok"
)

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
// when the work cannot be a single function call.
func (s *Store) Begin(ctx context.Context, req Request) (*Claim, *Result, error) {
	if req.Key == "" || len(req.Key) > MaxKeyBytes {
		return nil, nil, fmt.Errorf("%w: key must be 1 to %d bytes, got %d", ErrInvalidRequest, MaxKeyBytes, len(req.Key))
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
	for attempt := 1; ; attempt++ {
		claim, old, err := s.claim(ctx, req.Key, fp, now)
		if err != nil || claim != nil {
			return claim, nil, err
		}
		res, err, retry := s.decide(req.Key, fp, old, now)
		if !retry {
			return nil, res, err
		}
		// The record vanished or lapsed between the condition check and our
		// read of it: claim again, a bounded number of times.
		if attempt == 3 {
			return nil, nil, &StoreError{Op: "PutItem", Err: errors.New("record changed under three consecutive claims")}
		}
		now = s.cfg.Now()
	}
}

// claim makes the single conditional PutItem. It returns the claim, or the
// existing item when the condition failed (nil if it has since gone).
func (s *Store) claim(ctx context.Context, key string, fp []byte, now time.Time) (*Claim, map[string]types.AttributeValue, error) {
	token := newToken()
	lease := time.UnixMilli(msOf(s.leaseUntil(ctx, now))) // as stored
	nowMS := msOf(now)
	item := map[string]types.AttributeValue{
		s.cfg.KeyAttribute: str(key),
		attrStatus:         str(StatusInProgress),
		attrFingerprint:    &types.AttributeValueMemberB{Value: fp},
		attrOwner:          str(token),
		attrLease:          num(msOf(lease)),
		TTLAttribute:       num(now.Add(s.cfg.Retention).Unix()),
		attrResourceID:     str(token),
		attrCreated:        num(nowMS),
		attrVersion:        &types.AttributeValueMemberN{Value: schemaVersion},
	}
	out, err := s.client.PutItem(ctx, &dynamodb.PutItemInput{
		TableName:           aws.String(s.cfg.Table),
		Item:                item,
		ConditionExpression: aws.String(claimCondition),
		ExpressionAttributeNames: map[string]string{
			"#id": s.cfg.KeyAttribute, "#exp": TTLAttribute, "#st": attrStatus, "#lease": attrLease, "#fp": attrFingerprint,
		},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":now":    num(now.Unix()),
			":nowms":  num(nowMS),
			":inprog": str(StatusInProgress),
			":fp":     &types.AttributeValueMemberB{Value: fp},
		},
		ReturnValues:                        types.ReturnValueAllOld,
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	if err != nil {
		var ccf *types.ConditionalCheckFailedException
		if !errors.As(err, &ccf) {
			return nil, nil, &StoreError{Op: "PutItem", Err: err}
		}
		item, err := s.current(ctx, key, ccf)
		if err != nil {
			return nil, nil, err
		}
		if r := decodeRecord(item); item == nil || r.status != StatusInProgress || r.owner != token {
			return nil, item, nil
		}
		// Our own claim: the SDK retried a put whose first attempt had
		// landed. (Whether it took over a lease is then unknown.)
		out = &dynamodb.PutItemOutput{}
	}
	c := &Claim{Key: key, Token: token, ResourceID: token, LeaseUntil: lease, fp: fp, created: nowMS}
	if len(out.Attributes) > 0 {
		old := decodeRecord(out.Attributes)
		if old.status == StatusInProgress && !old.expired(now) && old.rid != "" {
			// We took over the lapsed lease of the same request: keep its
			// resource id, and record it so later takeovers keep it too.
			c.TakenOver = true
			c.ResourceID = old.rid
			if err := s.keepResourceID(ctx, c); err != nil {
				return nil, nil, err
			}
		}
	}
	return c, nil, nil
}

// current returns the item that failed a condition: the one the engine
// sent back (ALL_OLD), or else one strongly consistent read of it; nil when
// there is none.
func (s *Store) current(ctx context.Context, key string, ccf *types.ConditionalCheckFailedException) (map[string]types.AttributeValue, error) {
	if ccf.Item != nil {
		return ccf.Item, nil
	}
	got, err := s.client.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      aws.String(s.cfg.Table),
		Key:            map[string]types.AttributeValue{s.cfg.KeyAttribute: str(key)},
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return nil, &StoreError{Op: "GetItem", Err: err}
	}
	return got.Item, nil
}

// keepResourceID writes the inherited resource id into our claim, fenced on
// our token. It costs one request, on the takeover path only.
func (s *Store) keepResourceID(ctx context.Context, c *Claim) error {
	_, err := s.client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                aws.String(s.cfg.Table),
		Key:                      map[string]types.AttributeValue{s.cfg.KeyAttribute: str(c.Key)},
		UpdateExpression:         aws.String("SET #rid = :rid"),
		ConditionExpression:      aws.String(fenceCondition),
		ExpressionAttributeNames: map[string]string{"#rid": attrResourceID, "#st": attrStatus, "#owner": attrOwner},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":rid": str(c.ResourceID), ":inprog": str(StatusInProgress), ":tok": str(c.Token),
		},
	})
	if err != nil {
		var ccf *types.ConditionalCheckFailedException
		if errors.As(err, &ccf) {
			return &FencedError{Op: "claim"}
		}
		return &StoreError{Op: "UpdateItem", Err: err}
	}
	return nil
}

// decide turns the record that blocked a claim into a replay or an error.
// retry is true when the record no longer blocks a claim.
func (s *Store) decide(key string, fp []byte, item map[string]types.AttributeValue, now time.Time) (*Result, error, bool) {
	if item == nil {
		return nil, nil, true
	}
	r := decodeRecord(item)
	if r.expired(now) {
		return nil, nil, true
	}
	if !bytes.Equal(r.fp, fp) {
		return nil, &MismatchError{Key: key}, false
	}
	switch r.status {
	case StatusCompleted:
		data, err := s.decodeResult(&r)
		if err != nil {
			return nil, err, false
		}
		if s.cfg.Cache != nil {
			s.cfg.Cache.put(key, fp, &r)
		}
		return &Result{Data: data, Replayed: true, Retained: true}, nil, false
	case StatusInProgress:
		until := time.UnixMilli(r.leaseUntil)
		if until.After(now) {
			return nil, &InProgressError{LeaseUntil: until, RetryAfter: until.Sub(now)}, false
		}
		return nil, nil, true
	default:
		return nil, &StoreError{Op: "decode record", Err: fmt.Errorf("unknown status %q", r.status)}, false
	}
}

// Complete stores data as the result of c's work and marks the record
// COMPLETED, together with the writes added to c, in one request: a PutItem,
// or a TransactWriteItems when c has writes. See the package documentation
// for what each failure means for the record.
func (s *Store) Complete(ctx context.Context, c *Claim, data []byte) (Result, error) {
	stored, enc := s.encodeResult(data)
	size := len(stored)
	retained := true
	if size > s.cfg.MaxResultBytes {
		stored, enc, retained = nil, resultNotRetained, false
	}
	now := s.cfg.Now()
	item := map[string]types.AttributeValue{
		s.cfg.KeyAttribute: str(c.Key),
		attrStatus:         str(StatusCompleted),
		attrFingerprint:    &types.AttributeValueMemberB{Value: c.fp},
		attrOwner:          str(c.Token),
		attrLease:          num(0),
		TTLAttribute:       num(now.Add(s.cfg.Retention).Unix()),
		attrResourceID:     str(c.ResourceID),
		attrCreated:        num(c.created),
		attrCompleted:      num(msOf(now)),
		attrEncoding:       num(int64(enc)),
		attrVersion:        &types.AttributeValueMemberN{Value: schemaVersion},
	}
	switch {
	case retained && len(stored) > 0: // an empty result is stored as no attribute
		item[attrResult] = &types.AttributeValueMemberB{Value: stored}
	case !retained:
		item[attrResultSize] = num(int64(size))
	}
	names := map[string]string{"#st": attrStatus, "#owner": attrOwner}
	values := map[string]types.AttributeValue{":inprog": str(StatusInProgress), ":tok": str(c.Token)}

	if len(c.writes) == 0 {
		_, err := s.client.PutItem(ctx, &dynamodb.PutItemInput{
			TableName: aws.String(s.cfg.Table), Item: item, ConditionExpression: aws.String(fenceCondition),
			ExpressionAttributeNames: names, ExpressionAttributeValues: values,
			ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
		})
		if err != nil {
			var ccf *types.ConditionalCheckFailedException
			if !errors.As(err, &ccf) {
				return Result{}, &StoreError{Op: "PutItem", Err: err}
			}
			cur, err := s.current(ctx, c.Key, ccf)
			if err != nil {
				return Result{}, err
			}
			// Completed by this very lease: an SDK retry of a put that landed.
			if r := decodeRecord(cur); cur == nil || r.status != StatusCompleted || r.owner != c.Token {
				return Result{}, &FencedError{Op: "complete"}
			}
		}
	} else {
		items := make([]types.TransactWriteItem, 0, len(c.writes)+1)
		items = append(items, c.writes...)
		items = append(items, types.TransactWriteItem{Put: &types.Put{
			TableName: aws.String(s.cfg.Table), Item: item, ConditionExpression: aws.String(fenceCondition),
			ExpressionAttributeNames: names, ExpressionAttributeValues: values,
		}})
		_, err := s.client.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{
			TransactItems: items,
			// Makes SDK retries of this very transaction idempotent.
			ClientRequestToken: aws.String(c.Token),
		})
		if err != nil {
			return Result{}, s.transactionFailed(ctx, c, err)
		}
	}
	if s.cfg.Cache != nil && retained {
		r := record{result: stored, enc: enc, expiresAt: now.Add(s.cfg.Retention).Unix()}
		s.cfg.Cache.put(c.Key, c.fp, &r)
	}
	return Result{Data: data, Retained: retained}, nil
}

// transactionFailed classifies a failed completion transaction. A cancelled
// transaction committed nothing: if our record's entry failed its fence the
// record is someone else's (FencedError); otherwise the key is released so a
// retry runs the work again. Any other failure has an unknown outcome and
// leaves the record as it is.
func (s *Store) transactionFailed(ctx context.Context, c *Claim, err error) error {
	var tce *types.TransactionCanceledException
	if !errors.As(err, &tce) {
		return &StoreError{Op: "TransactWriteItems", Err: err}
	}
	n := len(c.writes)
	reasons := make([]CancellationReason, n)
	first := -1
	for i, r := range tce.CancellationReasons {
		code := aws.ToString(r.Code)
		if i == n {
			if code == "ConditionalCheckFailed" {
				return &FencedError{Op: "complete"}
			}
			continue
		}
		if i > n {
			break
		}
		reasons[i] = CancellationReason{Code: code, Message: aws.ToString(r.Message)}
		if first < 0 && code != "" && code != "None" {
			first = i
		}
	}
	if rerr := s.releaseDetached(ctx, c); rerr != nil {
		s.cfg.Logger.WarnContext(ctx, "idemddb: release after cancelled transaction failed",
			"table", s.cfg.Table, "error", rerr)
	}
	if first < 0 {
		return &StoreError{Op: "TransactWriteItems", Err: err}
	}
	return &TransactionCanceledError{Index: first, Reasons: reasons, Err: err}
}

// Release deletes c's record if it is still c's (IN_PROGRESS with c's
// token), so the next request with the key runs the work. It returns a
// *FencedError when the lease was taken over.
func (s *Store) Release(ctx context.Context, c *Claim) error {
	_, err := s.client.DeleteItem(ctx, &dynamodb.DeleteItemInput{
		TableName:                           aws.String(s.cfg.Table),
		Key:                                 map[string]types.AttributeValue{s.cfg.KeyAttribute: str(c.Key)},
		ConditionExpression:                 aws.String(fenceCondition),
		ExpressionAttributeNames:            map[string]string{"#st": attrStatus, "#owner": attrOwner},
		ExpressionAttributeValues:           map[string]types.AttributeValue{":inprog": str(StatusInProgress), ":tok": str(c.Token)},
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	if err != nil {
		var ccf *types.ConditionalCheckFailedException
		if !errors.As(err, &ccf) {
			return &StoreError{Op: "DeleteItem", Err: err}
		}
		cur, err := s.current(ctx, c.Key, ccf)
		if err != nil {
			return err
		}
		// Gone already (an SDK retry of a delete that landed): released.
		if cur != nil {
			return &FencedError{Op: "release"}
		}
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
