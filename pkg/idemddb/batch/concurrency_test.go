package batch_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/acme/idemcheckout/pkg/idemddb"
	"github.com/acme/idemcheckout/pkg/idemddb/batch"
	"github.com/aws/aws-lambda-go/events"
)

// inflight tracks how many handlers run at once.
type inflight struct {
	now, max atomic.Int32
}

func (f *inflight) enter() {
	n := f.now.Add(1)
	for {
		m := f.max.Load()
		if n <= m || f.max.CompareAndSwap(m, n) {
			return
		}
	}
}

func (f *inflight) leave() { f.now.Add(-1) }

// TestConcurrencyRunsInParallel: with WithConcurrency(4), four records of
// a batch are inside the handler at the same time (each waits until all
// four have arrived), and never more than four; by default records run
// one at a time.
func TestConcurrencyRunsInParallel(t *testing.T) {
	f := newFixture(t, moto)
	var fl inflight
	var arrived atomic.Int32
	all := make(chan struct{})
	h := batch.WrapSQS(f.store, "parallel", func(ctx context.Context, c *idemddb.Claim, m events.SQSMessage) error {
		fl.enter()
		defer fl.leave()
		if arrived.Add(1) == 4 {
			close(all)
		}
		select {
		case <-all:
			return nil
		case <-time.After(20 * time.Second): // a bound, not a synchronisation: the test fails
			return errors.New("the other records did not run at the same time")
		}
	}, f.opts(batch.WithConcurrency(4))...)
	var ms []events.SQSMessage
	for i := range 8 {
		ms = append(ms, msg(fmt.Sprintf("m%d", i), fmt.Sprintf("e%d", i)))
	}
	resp, err := h(bg, sqsEvent(ms...))
	if err != nil || len(resp.BatchItemFailures) != 0 {
		t.Fatalf("failures %v, err %v", failedIDs(resp), err)
	}
	if got := fl.max.Load(); got != 4 {
		t.Fatalf("at most %d records ran at once; want exactly 4", got)
	}

	var seq inflight
	h = batch.WrapSQS(f.store, "sequential", func(ctx context.Context, c *idemddb.Claim, m events.SQSMessage) error {
		seq.enter()
		defer seq.leave()
		return nil
	}, f.opts()...)
	if resp, err := h(bg, sqsEvent(ms...)); err != nil || len(resp.BatchItemFailures) != 0 {
		t.Fatalf("sequential: %v %v", failedIDs(resp), err)
	}
	if got := seq.max.Load(); got != 1 {
		t.Fatalf("by default %d records ran at once; want 1", got)
	}
}

// TestParallelBatchesRunEachKeyOnce: four invocations (separate stores,
// as separate Lambda instances would have) receive the same ten events in
// different orders at the same moment, each running three records at
// once. Every event runs exactly once; the records an invocation reports
// are the ones another invocation was running; redelivering them
// replays.
func TestParallelBatchesRunEachKeyOnce(t *testing.T) {
	const instances, events_, rounds = 4, 10, 5
	for _, e := range engines() {
		t.Run(e.Name, func(t *testing.T) {
			f := newFixture(t, e)
			r := newRuns()
			handlers := make([]batch.SQSBatchHandler, instances)
			for i := range handlers {
				s, err := idemddb.New(f.client, idemddb.Config{Table: f.table})
				if err != nil {
					t.Fatal(err)
				}
				handlers[i] = batch.WrapSQS(s, "parallel", counting(t, r), f.opts(byEvent, batch.WithConcurrency(3))...)
			}
			var inProgress int
			for round := range rounds {
				batches := make([][]events.SQSMessage, instances)
				for i := range batches {
					for _, k := range rand.Perm(events_) {
						batches[i] = append(batches[i], msg(fmt.Sprintf("r%d-i%d-m%d", round, i, k), fmt.Sprintf("r%d-e%d", round, k)))
					}
				}
				resps := make([]events.SQSEventResponse, instances)
				errs := make([]error, instances)
				var wg sync.WaitGroup
				start := make(chan struct{})
				for i := range instances {
					wg.Go(func() {
						<-start
						resps[i], errs[i] = handlers[i](bg, sqsEvent(batches[i]...))
					})
				}
				close(start)
				wg.Wait()
				for k := range events_ {
					if n := r.count(fmt.Sprintf("r%d-e%d", round, k)); n != 1 {
						t.Fatalf("round %d: event %d ran %d times", round, k, n)
					}
				}
				for i := range instances {
					if errs[i] != nil {
						t.Fatal(errs[i])
					}
					var retry []events.SQSMessage
					for _, id := range failedIDs(resps[i]) {
						if l := f.recordLine(t, id); l["outcome"] != "in_progress" {
							t.Fatalf("%s reported as %v; only in-progress records may be", id, l["outcome"])
						}
						inProgress++
						at := slices.IndexFunc(batches[i], func(m events.SQSMessage) bool { return m.MessageId == id })
						retry = append(retry, batches[i][at])
					}
					if len(retry) == 0 {
						continue
					}
					resp, err := handlers[i](bg, sqsEvent(retry...))
					if err != nil || len(resp.BatchItemFailures) != 0 {
						t.Fatalf("redelivery: %v %v", failedIDs(resp), err)
					}
				}
			}
			if got, want := r.total(), rounds*events_; got != want {
				t.Fatalf("%d executions; want %d", got, want)
			}
			t.Logf("%s: %d records, %d executions, %d reported in progress and replayed on redelivery",
				e.Name, rounds*events_*instances, r.total(), inProgress)
		})
	}
}
