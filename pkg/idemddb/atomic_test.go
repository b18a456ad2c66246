package idemddb_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/acme/idemcheckout/ddblocal/ddbtest"
	"github.com/acme/idemcheckout/pkg/idemddb"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

func ddbtestNewTable(t *testing.T, e *env) string { return ddbtest.NewTable(t, e.raw, "id") }

// TestAtomicEffect: the business put and the completion commit in one
// transaction: two requests in all on a first execution.
func TestAtomicEffect(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, moto)
	biz := newBizTable(t, e)
	s := e.store(t, idemddb.Config{})
	e.client.Reset()
	res, err := s.Run(ctx, idemddb.Request{Key: "order", Fingerprint: []byte("p")}, func(ctx context.Context, _ *idemddb.Claim) ([]byte, error) {
		c, ok := idemddb.ClaimFromContext(ctx)
		if !ok {
			return nil, errors.New("no claim in the work's context")
		}
		c.AddWrites(biz.put("order-" + c.ResourceID))
		return []byte("created order-" + c.ResourceID), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := e.client.Reset(); !sameCounts(got, map[string]int{"PutItem": 1, "TransactWriteItems": 1}) {
		t.Fatalf("first execution requests = %v, want claim + one transaction", got)
	}
	id := string(res.Data[len("created "):])
	if biz.get(t, id) == nil {
		t.Fatal("business item missing after commit")
	}
	if attrS(e.getItem(t, "order"), "status") != idemddb.StatusCompleted {
		t.Fatal("record not completed")
	}
}

// TestForcedCancellation: the caller's own condition fails, so neither the
// business item nor a COMPLETED record exists; the error names the failing
// write; the key is released and a retry runs the work again.
func TestForcedCancellation(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, moto)
	biz := newBizTable(t, e)
	s := e.store(t, idemddb.Config{})
	// A row that makes the second write's condition fail.
	if _, err := e.raw.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(biz.name), Item: map[string]types.AttributeValue{
		"id": &types.AttributeValueMemberS{Value: "taken"}, "v": &types.AttributeValueMemberS{Value: "old"},
	}}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.raw.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(biz.name), Item: map[string]types.AttributeValue{
		"id": &types.AttributeValueMemberS{Value: "counter"}, "v": &types.AttributeValueMemberS{Value: "old"},
	}}); err != nil {
		t.Fatal(err)
	}
	runs := 0
	fresh := ""
	work := func(ctx context.Context, c *idemddb.Claim) ([]byte, error) {
		runs++
		fresh = "fresh-" + c.Token
		c.AddWrites(types.TransactWriteItem{Update: &types.Update{
			TableName:                 aws.String(biz.name),
			Key:                       map[string]types.AttributeValue{"id": &types.AttributeValueMemberS{Value: "counter"}},
			UpdateExpression:          aws.String("SET v = :new"),
			ExpressionAttributeValues: map[string]types.AttributeValue{":new": &types.AttributeValueMemberS{Value: "new"}},
		}}, biz.put(fresh), biz.put("taken"))
		return []byte("never stored"), nil
	}
	req := idemddb.Request{Key: "cancel", Fingerprint: []byte("p")}
	_, err := s.Run(ctx, req, work)
	var tce *idemddb.TransactionCanceledError
	if !errors.As(err, &tce) || !errors.Is(err, idemddb.ErrTransactionCanceled) {
		t.Fatalf("err = %v, want TransactionCanceledError", err)
	}
	if tce.Index != 2 || len(tce.Reasons) != 3 || tce.Reasons[2].Code != "ConditionalCheckFailed" {
		t.Fatalf("cancellation = %+v, want write 2 ConditionalCheckFailed", tce)
	}
	var sdkErr *types.TransactionCanceledException
	if !errors.As(err, &sdkErr) {
		t.Fatal("SDK error not unwrappable")
	}
	if item := biz.get(t, "taken"); item == nil || item["v"].Value != "old" {
		t.Fatalf("existing business item changed: %v", item)
	}
	if item := biz.get(t, "counter"); item == nil || item["v"].Value != "old" {
		t.Fatalf("update of a cancelled transaction kept: %v", item)
	}
	if biz.get(t, fresh) != nil {
		t.Fatal("put of a cancelled transaction kept")
	}
	if e.getItem(t, "cancel") != nil {
		t.Fatal("record left behind after a cancelled transaction; the rule is: released")
	}
	if _, err := s.Run(ctx, req, func(ctx context.Context, c *idemddb.Claim) ([]byte, error) {
		runs++
		c.AddWrites(biz.put("fresh-" + c.Token))
		return []byte("ok"), nil
	}); err != nil || runs != 2 {
		t.Fatalf("retry after cancellation: err=%v runs=%d", err, runs)
	}
}

// TestAmbiguousCompletionIsNotReleased: when the completion's outcome is
// unknown (it failed in transit and the read-back finds the record still
// IN_PROGRESS) the key must not be released, or a retry could run a second
// effect; after the lease a retry runs the work, whose earlier effect never
// committed.
func TestAmbiguousCompletionIsNotReleased(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, moto)
	biz := newBizTable(t, e)
	clk := newClock()
	s := e.store(t, idemddb.Config{Now: clk.Now, DefaultLease: 10 * time.Second, LeaseMargin: time.Second})
	e.client.Before(func(op string, _ any) error {
		if op == "TransactWriteItems" {
			return ddbtest.ErrInjected
		}
		return nil
	})
	runs := 0
	work := func(ctx context.Context, c *idemddb.Claim) ([]byte, error) {
		runs++
		c.AddWrites(biz.put("charge-" + c.ResourceID))
		return []byte("charged"), nil
	}
	req := idemddb.Request{Key: "amb", Fingerprint: []byte("p")}
	if _, err := s.Run(ctx, req, work); !errors.Is(err, idemddb.ErrUnavailable) || !errors.Is(err, ddbtest.ErrInjected) {
		t.Fatalf("err = %v, want StoreError wrapping the transport error", err)
	}
	e.client.Before(nil)
	if _, err := s.Run(ctx, req, work); !errors.Is(err, idemddb.ErrInProgress) || runs != 1 {
		t.Fatalf("retry within the lease: %v runs=%d, want in progress (the key was not released)", err, runs)
	}
	clk.Advance(11 * time.Second)
	res, err := s.Run(ctx, req, work)
	if err != nil || res.Replayed || runs != 2 {
		t.Fatalf("retry after the lease: %+v %v runs=%d, want a second run (the first effect never committed)", res, err, runs)
	}
}
