package batch_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/acme/idemcheckout/ddblocal/ddbtest"
	"github.com/acme/idemcheckout/pkg/idemddb"
	"github.com/acme/idemcheckout/pkg/idemddb/batch"
	"github.com/aws/aws-lambda-go/events"
)

// TestDeadlineStopsStartingRecords: once less than WithMinRemaining is
// left before the invocation deadline, no record starts: the rest are
// reported (deadline) without running or any DynamoDB request, and the
// record that was running completes.
func TestDeadlineStopsStartingRecords(t *testing.T) {
	f := newFixture(t, dynalite)
	clock := ddbtest.NewClock(time.Now())
	ctx, cancel := context.WithDeadline(bg, clock.Now().Add(10*time.Second))
	defer cancel()
	r := newRuns()
	h := batch.WrapSQS(f.store, "slow", func(ctx context.Context, c *idemddb.Claim, m events.SQSMessage) error {
		r.add(m.MessageId)
		if m.MessageId == "m2" {
			clock.Advance(8500 * time.Millisecond) // m2 takes 8.5 s of the 10
		}
		return nil
	}, f.opts(batch.WithClock(clock.Now), batch.WithMinRemaining(2*time.Second))...)
	resp, err := h(ctx, sqsEvent(msg("m1", "e1"), msg("m2", "e2"), msg("m3", "e3"), msg("m4", "e4")))
	if err != nil || !slices.Equal(failedIDs(resp), []string{"m3", "m4"}) {
		t.Fatalf("failures %v, err %v; want [m3 m4]", failedIDs(resp), err)
	}
	if !slices.Equal(r.order, []string{"m1", "m2"}) {
		t.Fatalf("ran %v; want m1 and m2 only", r.order)
	}
	if l := f.recordLine(t, "m3"); l["outcome"] != "deadline" || l["reported"] != true {
		t.Fatalf("m3: %v; want deadline, reported", l)
	}
	// The retry, in a fresh invocation, runs only what did not run.
	if resp, err := h(bg, sqsEvent(msg("m1", "e1"), msg("m2", "e2"), msg("m3", "e3"), msg("m4", "e4"))); err != nil || len(resp.BatchItemFailures) != 0 {
		t.Fatalf("retry: %v %v", failedIDs(resp), err)
	}
	if !slices.Equal(r.order, []string{"m1", "m2", "m3", "m4"}) {
		t.Fatalf("ran %v; want each once", r.order)
	}
	// Already too late: nothing starts, nothing is sent.
	late, cancel2 := context.WithDeadline(bg, clock.Now().Add(time.Second))
	defer cancel2()
	f.client.Reset()
	if resp, _ := h(late, sqsEvent(msg("m5", "e5"))); !slices.Equal(failedIDs(resp), []string{"m5"}) || f.client.Total() != 0 {
		t.Fatalf("late: failures %v, %d requests", failedIDs(resp), f.client.Total())
	}
}
