package batch_test

import (
	"context"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/acme/idemcheckout/ddblocal/ddbtest"
	"github.com/acme/idemcheckout/pkg/idemddb"
	"github.com/acme/idemcheckout/pkg/idemddb/batch"
	"github.com/aws/aws-lambda-go/events"
)

// clockStore is a store on f's table and counting client whose clock the
// test moves.
func clockStore(t *testing.T, f *fixture) (*idemddb.Store, *ddbtest.Clock) {
	t.Helper()
	clock := ddbtest.NewClock(time.Now().Truncate(time.Millisecond))
	s, err := idemddb.New(f.client, idemddb.Config{Table: f.table, Now: clock.Now,
		Logger: slog.New(slog.NewJSONHandler(f.logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	return s, clock
}

// TestStoreUnavailable: when DynamoDB fails before the handler runs, the
// record is reported and the handler does not run. When the completion's
// reply is lost (the engine applied it), the store's read-back settles it:
// the record is processed and its redelivery replays. When the completion never reached the engine, the
// key stays claimed: the redelivery is in progress until the lease ends,
// then it takes over and logs that it did.
func TestStoreUnavailable(t *testing.T) {
	f := newFixture(t, moto)
	s, clock := clockStore(t, f)
	r := newRuns()
	h := batch.WrapSQS(s, "unavailable", recording(r), f.opts()...)

	f.client.Before(func(op string, in any) error { return ddbtest.ErrInjected })
	resp, err := h(bg, sqsEvent(msg("m1", "e1")))
	f.client.Before(nil)
	if err != nil || !slices.Equal(failedIDs(resp), []string{"m1"}) || r.total() != 0 {
		t.Fatalf("store down: failures %v, err %v, runs %v; want m1 reported, not run", failedIDs(resp), err, r.n)
	}
	if l := f.recordLine(t, "m1"); l["outcome"] != "unavailable" || l["reason"] != "the idempotency store failed; the handler did not run" {
		t.Fatalf("m1: %v", l)
	}

	// The claim goes through, the completion's reply is lost: the store
	// reads the record back, finds it completed by this lease, and the
	// record counts as processed; its redelivery replays.
	f.client.LoseReplies("UpdateItem", 1)
	resp, _ = h(bg, sqsEvent(msg("m2", "e2")))
	if len(resp.BatchItemFailures) != 0 || r.count("m2") != 1 {
		t.Fatalf("lost completion reply: failures %v, runs %v; want it processed", failedIDs(resp), r.n)
	}
	if resp, err := h(bg, sqsEvent(msg("m2", "e2"))); err != nil || len(resp.BatchItemFailures) != 0 || r.count("m2") != 1 {
		t.Fatalf("redelivery: failures %v, err %v, runs %v; want a replay", failedIDs(resp), err, r.n)
	}

	// The completion never reaches the engine.
	f.client.Before(func(op string, in any) error {
		if op == "UpdateItem" { // the completion
			return ddbtest.ErrInjected
		}
		return nil
	})
	resp, _ = h(bg, sqsEvent(msg("m3", "e3")))
	f.client.Before(nil)
	if !slices.Equal(failedIDs(resp), []string{"m3"}) {
		t.Fatalf("completion not sent: failures %v; want [m3]", failedIDs(resp))
	}
	if resp, _ := h(bg, sqsEvent(msg("m3", "e3"))); !slices.Equal(failedIDs(resp), []string{"m3"}) || f.recordLine(t, "m3")["outcome"] != "in_progress" {
		t.Fatalf("redelivery within the lease: failures %v, line %v; want in_progress", failedIDs(resp), f.recordLine(t, "m3"))
	}
	clock.Advance(idemddb.DefaultLease + time.Second)
	if resp, err := h(bg, sqsEvent(msg("m3", "e3"))); err != nil || len(resp.BatchItemFailures) != 0 {
		t.Fatalf("redelivery after the lease: failures %v, err %v", failedIDs(resp), err)
	}
	if l := f.recordLine(t, "m3"); l["outcome"] != "processed" || l["taken_over"] != true || l["level"] != "INFO" {
		t.Fatalf("m3: %v; want processed after a takeover", l)
	}
}

// TestFencedRecordIsReported: while a record's handler runs, its lease
// lapses and another invocation takes the key over and completes it; the
// first invocation's completion is refused (fenced) and reported, and
// the redelivery replays the other's outcome.
func TestFencedRecordIsReported(t *testing.T) {
	f := newFixture(t, moto)
	s, clock := clockStore(t, f)
	var h batch.SQSBatchHandler
	var inner events.SQSEventResponse
	calls := 0
	h = batch.WrapSQS(s, "fenced", func(ctx context.Context, c *idemddb.Claim, m events.SQSMessage) error {
		if calls++; calls == 1 {
			clock.Advance(idemddb.DefaultLease + time.Second)
			var err error
			if inner, err = h(bg, sqsEvent(m)); err != nil { // another invocation, after the lease
				return err
			}
		}
		return nil
	}, f.opts()...)
	resp, err := h(bg, sqsEvent(msg("m1", "e1")))
	if err != nil || !slices.Equal(failedIDs(resp), []string{"m1"}) || len(inner.BatchItemFailures) != 0 {
		t.Fatalf("outer failures %v (err %v), inner %v; want the outer reported, the inner done", failedIDs(resp), err, failedIDs(inner))
	}
	if l := f.recordLine(t, "m1"); l["outcome"] != "fenced" || !strings.Contains(l["error"].(string), idemddb.ErrFenced.Error()) {
		t.Fatalf("m1: %v; want fenced", l)
	}
	if resp, err := h(bg, sqsEvent(msg("m1", "e1"))); err != nil || len(resp.BatchItemFailures) != 0 || calls != 2 {
		t.Fatalf("redelivery: failures %v, err %v, calls %d; want a replay", failedIDs(resp), err, calls)
	}
}

// TestNoResultIsStored: a completed record holds an empty result.
func TestNoResultIsStored(t *testing.T) {
	f := newFixture(t, dynalite)
	h := batch.WrapSQS(f.store, "empty", func(context.Context, *idemddb.Claim, events.SQSMessage) error { return nil }, f.opts()...)
	m := msg("m1", "e1")
	if resp, err := h(bg, sqsEvent(m)); err != nil || len(resp.BatchItemFailures) != 0 {
		t.Fatalf("%v %v", failedIDs(resp), err)
	}
	claim, replay, err := f.store.Begin(bg, batch.SQSRequest("empty", batch.MessageID(), m))
	if err != nil || claim != nil || replay == nil || !replay.Replayed || len(replay.Data) != 0 {
		t.Fatalf("claim %v, replay %+v, err %v; want a replay of an empty result", claim, replay, err)
	}
}
