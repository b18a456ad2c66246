package idemddb_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/acme/idemcheckout/ddblocal/ddbtest"
	"github.com/acme/idemcheckout/pkg/idemddb"
)

func TestMaxWaitReads(t *testing.T) {
	for d, want := range map[time.Duration]int{
		0: 0, 50 * time.Millisecond: 1, time.Second: 4, 1500 * time.Millisecond: 4,
		5 * time.Second: 8, 10 * time.Second: 13,
	} {
		if got := idemddb.MaxWaitReads(d); got != want {
			t.Errorf("MaxWaitReads(%v) = %d, want %d", d, got, want)
		}
	}
}

// waiter is a second caller with its own counting client, so its own
// requests are counted apart from the first caller's.
type waiter struct {
	client *ddbtest.Client
	store  *idemddb.Store
	polled chan struct{} // receives once after the waiter's first read
}

func newWaiter(t *testing.T, e *env, cfg idemddb.Config) *waiter {
	t.Helper()
	w := &waiter{client: ddbtest.Wrap(e.raw), polled: make(chan struct{}, 1)}
	w.client.After(func(op string, _ any, err error) error {
		if op == "GetItem" {
			select {
			case w.polled <- struct{}{}:
			default:
			}
		}
		return err
	})
	cfg.Table = e.table
	s, err := idemddb.New(w.client, cfg)
	if err != nil {
		t.Fatal(err)
	}
	w.store = s
	return w
}

type outcome struct {
	res idemddb.Result
	err error
}

// run calls Run in the background with Wait and returns the channel its
// outcome arrives on.
func (w *waiter) run(ctx context.Context, req idemddb.Request, work func(context.Context, *idemddb.Claim) ([]byte, error)) <-chan outcome {
	out := make(chan outcome, 1)
	go func() {
		res, err := w.store.Run(ctx, req, work)
		out <- outcome{res, err}
	}()
	return out
}

// TestWaitReplaysTheCompletion: a duplicate that waits gets the first
// caller's result as a replay once it completes, within the stated number
// of reads.
func TestWaitReplaysTheCompletion(t *testing.T) {
	for _, engine := range engines() {
		t.Run(engine.Name, func(t *testing.T) {
			ctx := context.Background()
			e := newEnv(t, engine)
			s := e.store(t, idemddb.Config{})
			req := idemddb.Request{Key: "wait", Fingerprint: []byte("p"), Wait: 5 * time.Second}
			first, _, err := s.Begin(ctx, req)
			if err != nil || first == nil {
				t.Fatal(err)
			}
			w := newWaiter(t, e, idemddb.Config{})
			done := w.run(ctx, req, func(context.Context, *idemddb.Claim) ([]byte, error) {
				t.Error("the waiting duplicate ran the work")
				return nil, nil
			})
			<-w.polled // it found the key still in progress
			if _, err := s.Complete(ctx, first, []byte("paid")); err != nil {
				t.Fatal(err)
			}
			o := <-done
			if o.err != nil || !o.res.Replayed || string(o.res.Data) != "paid" {
				t.Fatalf("waiter: %+v %v", o.res, o.err)
			}
			got := w.client.Counts()
			if o.res.WaitReads < 1 || o.res.WaitReads > idemddb.MaxWaitReads(req.Wait) || o.res.Waited <= 0 ||
				got["GetItem"] != o.res.WaitReads+replayRequests(e)["GetItem"] || got["PutItem"] != 1 || len(got) > 2 {
				t.Fatalf("waiter reported %d reads in %v, made %v; want 1..%d reads and its one claim",
					o.res.WaitReads, o.res.Waited, got, idemddb.MaxWaitReads(req.Wait))
			}
		})
	}
}

// TestWaitClaimsAfterRelease: the first caller's work fails and releases
// the key while a duplicate waits: the duplicate claims it and runs.
func TestWaitClaimsAfterRelease(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, moto)
	s := e.store(t, idemddb.Config{})
	req := idemddb.Request{Key: "wait-release", Fingerprint: []byte("p"), Wait: 5 * time.Second}
	first, _, err := s.Begin(ctx, req)
	if err != nil || first == nil {
		t.Fatal(err)
	}
	w := newWaiter(t, e, idemddb.Config{})
	runs := 0
	done := w.run(ctx, req, func(context.Context, *idemddb.Claim) ([]byte, error) { runs++; return []byte("second"), nil })
	<-w.polled
	if err := s.Release(ctx, first); err != nil {
		t.Fatal(err)
	}
	o := <-done
	if o.err != nil || o.res.Replayed || string(o.res.Data) != "second" || runs != 1 {
		t.Fatalf("waiter: %+v %v runs=%d; want its own run", o.res, o.err, runs)
	}
	if got := w.client.Counts(); got["PutItem"] != 2 || got["UpdateItem"] != 1 {
		t.Fatalf("waiter requests %v; want its first claim, its claim after the release and its completion", got)
	}
}

// TestWaitTakesOverALapsedLease: the first caller dies; when its lease
// lapses during the wait the duplicate takes over, with the same resource
// id.
func TestWaitTakesOverALapsedLease(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, moto)
	clk := newClock()
	cfg := idemddb.Config{Now: clk.Now, DefaultLease: 10 * time.Second, LeaseMargin: time.Second}
	s := e.store(t, cfg)
	req := idemddb.Request{Key: "wait-lapse", Fingerprint: []byte("p"), Wait: 5 * time.Second}
	first, _, err := s.Begin(ctx, req)
	if err != nil || first == nil {
		t.Fatal(err)
	}
	w := newWaiter(t, e, cfg)
	var rid string
	done := w.run(ctx, req, func(_ context.Context, c *idemddb.Claim) ([]byte, error) {
		rid = c.ResourceID
		return []byte("took over"), nil
	})
	<-w.polled
	clk.Advance(11 * time.Second)
	o := <-done
	if o.err != nil || o.res.Replayed || rid != first.ResourceID {
		t.Fatalf("waiter: %+v %v rid=%q; want a takeover keeping %q", o.res, o.err, rid, first.ResourceID)
	}
}

// TestWaitEndsBeforeTheDeadline: a wait longer than the invocation's
// remaining time ends WaitMargin before the deadline with in progress.
func TestWaitEndsBeforeTheDeadline(t *testing.T) {
	e := newEnv(t, moto)
	s := e.store(t, idemddb.Config{})
	req := idemddb.Request{Key: "wait-deadline", Fingerprint: []byte("p"), Wait: 10 * time.Second}
	if c, _, err := s.Begin(context.Background(), req); err != nil || c == nil {
		t.Fatal(err)
	}
	remaining := 1300 * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), remaining)
	defer cancel()
	deadline, _ := ctx.Deadline()
	w := newWaiter(t, e, idemddb.Config{})
	_, err := w.store.Run(ctx, req, func(context.Context, *idemddb.Claim) ([]byte, error) {
		t.Error("work ran")
		return nil, nil
	})
	var busy *idemddb.InProgressError
	if !errors.As(err, &busy) {
		t.Fatalf("err %v, want in progress", err)
	}
	if left := time.Until(deadline); left < idemddb.WaitMargin/2 {
		t.Fatalf("the wait ended %v before the deadline; want about %v", left, idemddb.WaitMargin)
	}
	if max := idemddb.MaxWaitReads(remaining - idemddb.WaitMargin); busy.WaitReads < 1 || busy.WaitReads > max || busy.RetryAfter <= 0 {
		t.Fatalf("%+v; want 1..%d reads and the lease's remaining time", busy, max)
	}
}

// TestWaitNeverForAMismatch: a different request with the key gets the
// mismatch at once, without a read.
func TestWaitNeverForAMismatch(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, moto)
	s := e.store(t, idemddb.Config{})
	if c, _, err := s.Begin(ctx, idemddb.Request{Key: "wait-mismatch", Fingerprint: []byte("a")}); err != nil || c == nil {
		t.Fatal(err)
	}
	w := newWaiter(t, e, idemddb.Config{})
	_, err := w.store.Run(ctx, idemddb.Request{Key: "wait-mismatch", Fingerprint: []byte("b"), Wait: 5 * time.Second}, nil)
	if !errors.Is(err, idemddb.ErrMismatch) || w.client.Count("GetItem") != 0 {
		t.Fatalf("err %v after %d reads; want a mismatch and no read", err, w.client.Count("GetItem"))
	}
}
