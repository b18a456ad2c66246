package idemddb

// The completion: one UpdateItem, or one TransactWriteItems holding it and
// the writes the work added, fenced on the claim's token; and what each of
// its failures means for the record.

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// Complete stores data as the result of c's work and marks the record
// COMPLETED, together with the writes added to c, in one request: an
// UpdateItem that sends only what changes (status, expiry, result; the lease
// end is removed), fenced on c's token, or a TransactWriteItems holding the
// same update when c has writes. A *FencedError means another caller holds
// the record now (a takeover after c's lease lapsed). A completion refused
// by a transient conflict is sent again (ConflictRetries), within the lease.
// See the package documentation for what each failure means for the record.
func (s *Store) Complete(ctx context.Context, c *Claim, data []byte) (Result, error) {
	u := s.completion(c, data)
	var err error
	if len(c.writes) == 0 {
		err = s.completeAlone(ctx, c, u)
	} else {
		err = s.completeWithWrites(ctx, c, u)
	}
	if err != nil {
		return Result{}, err
	}
	if s.cfg.Cache != nil && u.retained {
		r := record{result: u.stored, enc: u.enc, expiresAt: u.expires}
		s.cfg.Cache.put(c.Key, c.fp, &r)
	}
	return Result{Data: data, Retained: u.retained}, nil
}

// completionUpdate is the update that completes a claim: the record's key,
// the expression for the result's encoding and its values, and what it
// stores.
type completionUpdate struct {
	key      map[string]types.AttributeValue
	shape    *expression
	values   map[string]types.AttributeValue
	stored   []byte
	enc      int
	expires  int64
	retained bool
}

// completion builds the update storing data as c's result: encoded (or
// not retained when too large), with the status, the new expiry, and the
// expression of that encoding.
func (s *Store) completion(c *Claim, data []byte) completionUpdate {
	u := completionUpdate{retained: true}
	u.stored, u.enc = s.encodeResult(data)
	size := len(u.stored)
	if size > s.cfg.MaxResultBytes {
		u.stored, u.enc, u.retained = nil, resultNotRetained, false
	}
	u.expires = s.cfg.Now().Add(s.cfg.Retention).Unix()
	u.key = map[string]types.AttributeValue{s.cfg.KeyAttribute: str(c.Key)}
	values := make(map[string]types.AttributeValue, 5)
	values[":t"], values[":c"], values[":e"] = str(c.Token), str(StatusCompleted), num(u.expires)
	switch {
	case !u.retained:
		u.shape = &s.shapes.notRetained
		values[":n"] = num(resultNotRetained)
		values[":z"] = num(int64(size))
	case len(u.stored) == 0: // an empty result is stored as no attribute
		u.shape = &s.shapes.empty
	case u.enc == resultDeflate:
		u.shape = &s.shapes.deflate
		values[":r"] = &types.AttributeValueMemberB{Value: u.stored}
		values[":n"] = num(resultDeflate)
	default:
		u.shape = &s.shapes.raw
		values[":r"] = &types.AttributeValueMemberB{Value: u.stored}
	}
	u.values = values
	return u
}

// completeAlone sends the completion of a claim without writes: one
// UpdateItem fenced on the claim's token.
func (s *Store) completeAlone(ctx context.Context, c *Claim, u completionUpdate) error {
	in := &dynamodb.UpdateItemInput{
		TableName: s.shapes.table, Key: u.key, UpdateExpression: u.shape.expr,
		ConditionExpression: s.shapes.completeFence, ExpressionAttributeNames: u.shape.names,
		ExpressionAttributeValues: u.values,
	}
	sent, err := s.retryTransient(ctx, c.LeaseUntil, func(int) error {
		_, err := s.client.UpdateItem(ctx, in)
		return err
	})
	if err == nil {
		return nil
	}
	var ccf *types.ConditionalCheckFailedException
	switch {
	case errors.As(err, &ccf):
		return &FencedError{Op: "complete"}
	case transient(err):
		return conflictPersisted("UpdateItem", sent, err)
	}
	return s.completionUnknown(ctx, c, "UpdateItem", err)
}

// completeWithWrites sends the completion of a claim with writes: one
// TransactWriteItems holding the writes and the fenced update.
func (s *Store) completeWithWrites(ctx context.Context, c *Claim, u completionUpdate) error {
	items := make([]types.TransactWriteItem, 0, len(c.writes)+1)
	items = append(items, c.writes...)
	items = append(items, types.TransactWriteItem{Update: &types.Update{
		TableName: s.shapes.table, Key: u.key, UpdateExpression: u.shape.expr,
		ConditionExpression: s.shapes.completeFence, ExpressionAttributeNames: u.shape.names,
		ExpressionAttributeValues: u.values,
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
	if err == nil {
		return nil
	}
	var tce *types.TransactionCanceledException
	switch {
	case transient(err):
		return conflictPersisted("TransactWriteItems", sent, err)
	case errors.As(err, &tce):
		return s.transactionCanceled(ctx, c, tce, err)
	}
	return s.completionUnknown(ctx, c, "TransactWriteItems", err)
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
	s.releaseOrWarn(ctx, c, "a cancelled transaction")
	return &TransactionCanceledError{Index: first, Reasons: reasons, Err: err}
}
