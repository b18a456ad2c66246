package idemddb_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/acme/idemcheckout/ddblocal/ddbtest"
	"github.com/acme/idemcheckout/pkg/idemddb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// TestLostClaimReplyRunsOnce: the engine applies the winning claim but its
// answer is lost (the SDK's "use of closed network connection"). One read
// tells the caller the claim is its own: the work runs exactly once, and
// the next caller gets the result at once instead of waiting for the lease.
func TestLostClaimReplyRunsOnce(t *testing.T) {
	for _, engine := range engines() {
		t.Run(engine.Name, func(t *testing.T) {
			ctx := context.Background()
			e := newEnv(t, engine)
			s := e.store(t, idemddb.Config{})
			e.client.LoseReplies("PutItem", 1)
			runs := 0
			work := func(context.Context, *idemddb.Claim) ([]byte, error) { runs++; return []byte("once"), nil }
			req := idemddb.Request{Key: "lost-claim", Fingerprint: []byte("p")}
			res, err := s.Run(ctx, req, work)
			if err != nil || res.Replayed || string(res.Data) != "once" || runs != 1 {
				t.Fatalf("first call with its claim's reply lost: %+v %v runs=%d; want the work run once", res, err, runs)
			}
			// claim (reply lost) + read-back + completion
			if got := e.client.Reset(); !sameCounts(got, map[string]int{"PutItem": 1, "GetItem": 1, "UpdateItem": 1}) {
				t.Fatalf("requests %v", got)
			}
			res, err = s.Run(ctx, req, work)
			if err != nil || !res.Replayed || string(res.Data) != "once" || runs != 1 {
				t.Fatalf("next call: %+v %v runs=%d; want the replay, not in progress", res, err, runs)
			}
		})
	}
}

// TestLostTakeoverReplyKeepsResourceID: a takeover of a lapsed lease whose
// answer is lost still finds, in the record, the resource id fixed by the
// first claim, so ids derived from it (order id, payment id) do not change.
func TestLostTakeoverReplyKeepsResourceID(t *testing.T) {
	for _, engine := range engines() {
		t.Run(engine.Name, func(t *testing.T) {
			ctx := context.Background()
			e := newEnv(t, engine)
			clk := newClock()
			s := e.store(t, idemddb.Config{Now: clk.Now, DefaultLease: 10 * time.Second, LeaseMargin: time.Second})
			req := idemddb.Request{Key: "lost-takeover", Fingerprint: []byte("p")}
			first, _, err := s.Begin(ctx, req)
			if err != nil || first == nil {
				t.Fatalf("first claim: %v", err)
			}
			clk.Advance(11 * time.Second) // the first caller crashed; its lease lapsed
			// The put that takes the lease over lands, but its reply is lost.
			var lost atomic.Bool
			e.client.After(func(op string, _ any, err error) error {
				if op == "PutItem" && err == nil && lost.CompareAndSwap(false, true) {
					return ddbtest.ErrLostReply
				}
				return err
			})
			c, replay, err := s.Begin(ctx, req)
			if err != nil || c == nil || replay != nil {
				t.Fatalf("takeover with its reply lost: claim %+v replay %+v err %v", c, replay, err)
			}
			if c.ResourceID != first.ResourceID || !c.TakenOver || c.Token == first.Token {
				t.Fatalf("takeover %+v, first %+v: want the first ResourceID, TakenOver, a new token", c, first)
			}
			e.client.After(nil)
			res, err := s.Complete(ctx, c, []byte("done"))
			if err != nil || !res.Retained {
				t.Fatalf("complete: %+v %v", res, err)
			}
			if rid := attrS(e.getItem(t, req.Key), "rid"); rid != first.ResourceID {
				t.Fatalf("stored rid %q, want %q", rid, first.ResourceID)
			}
		})
	}
}

// TestLostCompletionReply: the completion (an UpdateItem, or a transaction with
// the caller's writes) lands but its answer is lost. The read-back finds the
// record completed by this lease, so the caller gets its result, not an
// "unavailable" error, and the effect exists once.
func TestLostCompletionReply(t *testing.T) {
	t.Run("PutItem", func(t *testing.T) {
		for _, engine := range engines() {
			t.Run(engine.Name, func(t *testing.T) {
				ctx := context.Background()
				e := newEnv(t, engine)
				s := e.store(t, idemddb.Config{})
				e.client.LoseReplies("UpdateItem", 1) // the completion
				runs := 0
				req := idemddb.Request{Key: "lost-completion"}
				res, err := s.Run(ctx, req, func(context.Context, *idemddb.Claim) ([]byte, error) { runs++; return []byte("r"), nil })
				if err != nil || res.Replayed || string(res.Data) != "r" || runs != 1 {
					t.Fatalf("%+v %v runs=%d", res, err, runs)
				}
				if st := attrS(e.getItem(t, req.Key), "status"); st != idemddb.StatusCompleted {
					t.Fatalf("status %q", st)
				}
			})
		}
	})
	t.Run("TransactWriteItems", func(t *testing.T) {
		ctx := context.Background()
		e := newEnv(t, moto)
		biz := newBizTable(t, e)
		s := e.store(t, idemddb.Config{})
		e.client.LoseReplies("TransactWriteItems", 1)
		runs, rid := 0, ""
		work := func(_ context.Context, c *idemddb.Claim) ([]byte, error) {
			runs++
			rid = c.ResourceID
			c.AddWrites(biz.put("charge-" + c.ResourceID))
			return []byte("charged"), nil
		}
		req := idemddb.Request{Key: "lost-tx", Fingerprint: []byte("p")}
		res, err := s.Run(ctx, req, work)
		if err != nil || res.Replayed || string(res.Data) != "charged" || runs != 1 {
			t.Fatalf("%+v %v runs=%d", res, err, runs)
		}
		if biz.get(t, "charge-"+rid) == nil {
			t.Fatal("the business write did not commit")
		}
		res, err = s.Run(ctx, req, work)
		if err != nil || !res.Replayed || runs != 1 {
			t.Fatalf("retry: %+v %v runs=%d", res, err, runs)
		}
	})
}

// TestLostReleaseReply: the work fails, the release lands but its answer is
// lost. The read-back finds the record gone: the next caller runs the work
// at once instead of waiting for the lease.
func TestLostReleaseReply(t *testing.T) {
	for _, engine := range engines() {
		t.Run(engine.Name, func(t *testing.T) {
			ctx := context.Background()
			e := newEnv(t, engine)
			var logs strings.Builder
			s := e.store(t, idemddb.Config{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
			e.client.LoseReplies("DeleteItem", 1)
			req := idemddb.Request{Key: "lost-release"}
			if _, err := s.Run(ctx, req, func(context.Context, *idemddb.Claim) ([]byte, error) { return nil, errWork }); !errors.Is(err, errWork) {
				t.Fatalf("err %v", err)
			}
			if logs.String() != "" {
				t.Fatalf("a release that landed was logged as failed: %s", logs.String())
			}
			runs := 0
			res, err := s.Run(ctx, req, func(context.Context, *idemddb.Claim) ([]byte, error) { runs++; return []byte("ok"), nil })
			if err != nil || res.Replayed || runs != 1 {
				t.Fatalf("next call: %+v %v runs=%d; want the work run at once", res, err, runs)
			}
		})
	}
}

// TestClaimAppliedAsContextEnds: the caller's context ends while its claim
// is in flight; the engine applied it. The read-back still runs, finds the
// claim and releases it, so the key is not stuck for the lease.
func TestClaimAppliedAsContextEnds(t *testing.T) {
	e := newEnv(t, moto)
	s := e.store(t, idemddb.Config{})
	ctx, cancel := context.WithCancel(context.Background())
	e.client.After(func(op string, _ any, err error) error {
		if op == "PutItem" {
			cancel()
			return context.Canceled
		}
		return err
	})
	req := idemddb.Request{Key: "cancelled"}
	if _, err := s.Run(ctx, req, func(context.Context, *idemddb.Claim) ([]byte, error) {
		t.Error("work ran on a cancelled context")
		return nil, nil
	}); !errors.Is(err, idemddb.ErrUnavailable) || !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v", err)
	}
	if item := e.getItem(t, req.Key); item != nil {
		t.Fatalf("record left behind: %v", item)
	}
}

// TestRefusedClaimIsNotReadBack: an error that proves the put was refused
// (a 4xx such as throttling) costs no read-back.
func TestRefusedClaimIsNotReadBack(t *testing.T) {
	e := newEnv(t, moto)
	s := e.store(t, idemddb.Config{})
	e.client.Before(func(op string, _ any) error {
		if op == "PutItem" {
			return &types.ProvisionedThroughputExceededException{Message: ptr("slow down")}
		}
		return nil
	})
	_, err := s.Run(context.Background(), idemddb.Request{Key: "throttled"}, func(context.Context, *idemddb.Claim) ([]byte, error) {
		t.Error("work ran")
		return nil, nil
	})
	var pte *types.ProvisionedThroughputExceededException
	if !errors.Is(err, idemddb.ErrUnavailable) || !errors.As(err, &pte) {
		t.Fatalf("err %v", err)
	}
	if got := e.client.Reset(); !sameCounts(got, map[string]int{"PutItem": 1}) {
		t.Fatalf("requests %v; want the refused put only", got)
	}
}

func ptr[T any](v T) *T { return &v }
