package idemddb_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/acme/idemcheckout/pkg/idemddb"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// TestFencing: A's lease expires, B takes over; A's completion and A's
// release both fail with FencedError, B's record is intact and B completes.
func TestFencing(t *testing.T) {
	for _, engine := range engines() {
		t.Run(engine.Name, func(t *testing.T) {
			ctx := context.Background()
			e := newEnv(t, engine)
			clk := newClock()
			s := e.store(t, idemddb.Config{Now: clk.Now, DefaultLease: 5 * time.Second})
			req := idemddb.Request{Key: "fenced", Fingerprint: []byte("p")}

			a, _, err := s.Begin(ctx, req)
			if err != nil {
				t.Fatal(err)
			}
			clk.Advance(6 * time.Second)
			b, _, err := s.Begin(ctx, req)
			if err != nil || b == nil || !b.TakenOver {
				t.Fatalf("B's takeover: %+v %v", b, err)
			}

			var fe *idemddb.FencedError
			if _, err := s.Complete(ctx, a, []byte("from A")); !errors.As(err, &fe) || fe.Op != "complete" || !errors.Is(err, idemddb.ErrFenced) {
				t.Fatalf("A's completion: %v, want FencedError(complete)", err)
			}
			if err := s.Release(ctx, a); !errors.As(err, &fe) || fe.Op != "release" {
				t.Fatalf("A's release: %v, want FencedError(release)", err)
			}
			item := e.getItem(t, "fenced")
			if attrS(item, "status") != idemddb.StatusInProgress || attrS(item, "lease_owner") != b.Token {
				t.Fatalf("B's record after A's attempts: status %q owner %q, want IN_PROGRESS owned by B", attrS(item, "status"), attrS(item, "lease_owner"))
			}
			if _, err := s.Complete(ctx, b, []byte("from B")); err != nil {
				t.Fatalf("B's completion: %v", err)
			}
			res, err := s.Run(ctx, req, func(context.Context, *idemddb.Claim) ([]byte, error) {
				t.Error("work ran after B completed")
				return nil, nil
			})
			if err != nil || string(res.Data) != "from B" || !res.Replayed {
				t.Fatalf("replay: %+v %v", res, err)
			}
		})
	}
}

// TestFencedTransactionCommitsNothing: a fenced-out completion that carries a
// business write commits neither.
func TestFencedTransactionCommitsNothing(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, moto)
	biz := newBizTable(t, e)
	clk := newClock()
	s := e.store(t, idemddb.Config{Now: clk.Now, DefaultLease: 5 * time.Second})
	req := idemddb.Request{Key: "k", Fingerprint: []byte("p")}
	a, _, err := s.Begin(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	clk.Advance(6 * time.Second)
	if _, _, err := s.Begin(ctx, req); err != nil {
		t.Fatal(err)
	}
	a.AddWrites(biz.put("order-1"))
	if _, err := s.Complete(ctx, a, []byte("A")); !errors.Is(err, idemddb.ErrFenced) {
		t.Fatalf("fenced transaction: %v", err)
	}
	if biz.get(t, "order-1") != nil {
		t.Fatal("business item committed by a fenced-out owner")
	}
}

// bizTable is a business table for atomic-effect tests.
type bizTable struct {
	e    *env
	name string
}

func newBizTable(t *testing.T, e *env) *bizTable {
	return &bizTable{e: e, name: ddbtestNewTable(t, e)}
}

// put is a create-once business write.
func (b *bizTable) put(id string) types.TransactWriteItem {
	return types.TransactWriteItem{Put: &types.Put{
		TableName:           aws.String(b.name),
		Item:                map[string]types.AttributeValue{"id": &types.AttributeValueMemberS{Value: id}, "v": &types.AttributeValueMemberS{Value: "new"}},
		ConditionExpression: aws.String("attribute_not_exists(id)"),
	}}
}

func (b *bizTable) get(t *testing.T, id string) map[string]*types.AttributeValueMemberS {
	t.Helper()
	old := b.e.table
	b.e.table = b.name
	defer func() { b.e.table = old }()
	item := b.e.getItem(t, id)
	if item == nil {
		return nil
	}
	out := map[string]*types.AttributeValueMemberS{}
	for k, v := range item {
		if s, ok := v.(*types.AttributeValueMemberS); ok {
			out[k] = s
		}
	}
	return out
}

// TestRedeliveredRequests: the SDK retries a request whose first attempt
// landed but whose answer was lost. A retried claim must recognise its own
// claim, a retried completion its own completion, a retried release an
// already deleted record, on both engines (dynalite through the GetItem
// fallback).
func TestRedeliveredRequests(t *testing.T) {
	for _, engine := range engines() {
		t.Run(engine.Name, func(t *testing.T) {
			ctx := context.Background()
			e := newEnv(t, engine)
			s := e.store(t, idemddb.Config{})
			e.client.Redeliver(func(string, any) bool { return true })
			runs := 0
			work := func(context.Context, *idemddb.Claim) ([]byte, error) { runs++; return []byte("once"), nil }
			res, err := s.Run(ctx, idemddb.Request{Key: "redelivered"}, work)
			if err != nil || res.Replayed || runs != 1 {
				t.Fatalf("run with redelivered claim and completion: %+v %v runs=%d", res, err, runs)
			}
			if attrS(e.getItem(t, "redelivered"), "status") != idemddb.StatusCompleted {
				t.Fatal("record not completed")
			}
			c, _, err := s.Begin(ctx, idemddb.Request{Key: "released"})
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Release(ctx, c); err != nil {
				t.Fatalf("redelivered release: %v", err)
			}
			if e.getItem(t, "released") != nil {
				t.Fatal("record still there after release")
			}
		})
	}
}
