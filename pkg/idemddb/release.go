package idemddb

// The release: a DeleteItem fenced on the claim's token, so that the next
// request with the key runs the work.

import (
	"context"
	"errors"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// releaseCondition: the record is still the caller's claim.
const releaseCondition = "#s = :inprog AND #o = :tok"

// Release deletes c's record if it is still c's (IN_PROGRESS with c's
// token), so the next request with the key runs the work. It returns a
// *FencedError when the lease was taken over. A delete refused by a
// transient conflict is sent again (ConflictRetries), within the lease.
func (s *Store) Release(ctx context.Context, c *Claim) error {
	in := &dynamodb.DeleteItemInput{
		TableName:                           s.shapes.table,
		Key:                                 map[string]types.AttributeValue{s.cfg.KeyAttribute: str(c.Key)},
		ConditionExpression:                 s.shapes.release.expr,
		ExpressionAttributeNames:            s.shapes.release.names,
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
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), detachedTimeout)
	defer cancel()
	return s.Release(rctx, c)
}

// releaseOrWarn releases c as releaseDetached does, after the event named
// by after (a work error, say). When the release fails the key stays
// claimed until its lease ends: the caller cannot act on that, so it is
// logged.
func (s *Store) releaseOrWarn(ctx context.Context, c *Claim, after string) {
	if err := s.releaseDetached(ctx, c); err != nil {
		s.cfg.Logger.WarnContext(ctx, "idemddb: release failed; the key stays claimed until its lease ends",
			"after", after, "table", s.cfg.Table, "lease_until", c.LeaseUntil, "error", err)
	}
}
