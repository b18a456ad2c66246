package batch_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/acme/idemcheckout/pkg/idemddb"
	"github.com/acme/idemcheckout/pkg/idemddb/batch"
	"github.com/aws/aws-lambda-go/events"
)

// byEvent keys messages by the event id in their body.
var byEvent = batch.WithKey(batch.BodyField("event_id"))

// counting is a handler that records one execution per event id.
func counting(t *testing.T, r *runs) batch.SQSRecordHandler {
	return func(ctx context.Context, c *idemddb.Claim, m events.SQSMessage) error {
		if got, ok := idemddb.ClaimFromContext(ctx); !ok || got != c || c == nil {
			t.Errorf("%s: the claim argument is not the context's claim", m.MessageId)
		}
		r.add(eventOf(t, m))
		return nil
	}
}

// recording is a handler that records one execution per message id.
func recording(r *runs) batch.SQSRecordHandler {
	return func(ctx context.Context, c *idemddb.Claim, m events.SQSMessage) error {
		r.add(m.MessageId)
		return nil
	}
}

// TestDuplicatesInOneBatchRunOnce: two messages with one event id in one
// batch (a producer's retry): the work runs once, the duplicate is a
// replay, nothing is reported; sequential and concurrent alike.
func TestDuplicatesInOneBatchRunOnce(t *testing.T) {
	for _, e := range engines() {
		for _, conc := range []int{1, 4} {
			t.Run(fmt.Sprintf("%s/concurrency=%d", e.Name, conc), func(t *testing.T) {
				f := newFixture(t, e)
				r := newRuns()
				h := batch.WrapSQS(f.store, "receipts", counting(t, r), f.opts(byEvent, batch.WithConcurrency(conc))...)
				resp, err := h(bg, sqsEvent(msg("m1", "e1"), msg("m2", "e1"), msg("m3", "e2"), msg("m4", "e1")))
				if err != nil || len(resp.BatchItemFailures) != 0 {
					t.Fatalf("failures %v, err %v; want none", failedIDs(resp), err)
				}
				if r.count("e1") != 1 || r.count("e2") != 1 || r.total() != 2 {
					t.Fatalf("executions %v; want e1 and e2 once each", r.n)
				}
				for _, id := range []string{"m2", "m4"} {
					if l := f.recordLine(t, id); l["outcome"] != "replayed" || l["reported"] != false {
						t.Fatalf("%s: line %v; want replayed, not reported", id, l)
					}
				}
			})
		}
	}
}

// TestDuplicatesAcrossBatchesRunOnce: a redelivered message (same id, the
// default key) and a re-sent event (new id, same event id) in later
// batches replay without running.
func TestDuplicatesAcrossBatchesRunOnce(t *testing.T) {
	for _, e := range engines() {
		t.Run(e.Name, func(t *testing.T) {
			f := newFixture(t, e)
			t.Run("message id", func(t *testing.T) {
				r := newRuns()
				h := batch.WrapSQS(f.store, "by-id", counting(t, r), f.opts()...)
				for round := range 3 {
					resp, err := h(bg, sqsEvent(msg("m1", "e1"), msg("m2", "e2")))
					if err != nil || len(resp.BatchItemFailures) != 0 {
						t.Fatalf("round %d: failures %v, err %v", round, failedIDs(resp), err)
					}
				}
				// A new message id with the same body is a new record under
				// this key.
				if _, err := h(bg, sqsEvent(msg("m3", "e1"))); err != nil {
					t.Fatal(err)
				}
				if r.count("e1") != 2 || r.count("e2") != 1 {
					t.Fatalf("executions %v; want e1 twice (m1, m3) and e2 once", r.n)
				}
			})
			t.Run("body field", func(t *testing.T) {
				r := newRuns()
				h := batch.WrapSQS(f.store, "by-event", counting(t, r), f.opts(byEvent)...)
				if resp, err := h(bg, sqsEvent(msg("m1", "e1"), msg("m2", "e2"))); err != nil || len(resp.BatchItemFailures) != 0 {
					t.Fatalf("first batch: %v %v", failedIDs(resp), err)
				}
				if resp, err := h(bg, sqsEvent(msg("m9", "e2"), msg("m10", "e3"))); err != nil || len(resp.BatchItemFailures) != 0 {
					t.Fatalf("second batch: %v %v", failedIDs(resp), err)
				}
				if r.count("e1") != 1 || r.count("e2") != 1 || r.count("e3") != 1 {
					t.Fatalf("executions %v; want each event once", r.n)
				}
				if l := f.recordLine(t, "m9"); l["outcome"] != "replayed" {
					t.Fatalf("m9: %v; want replayed", l)
				}
			})
		})
	}
}

// TestFailingRecordIsTheOnlyOneReported: one failing record among
// successes is the only one reported; its key was released, so the retry
// runs it, and the others do not run again.
func TestFailingRecordIsTheOnlyOneReported(t *testing.T) {
	for _, e := range engines() {
		t.Run(e.Name, func(t *testing.T) {
			f := newFixture(t, e)
			r := newRuns()
			down := true
			h := batch.WrapSQS(f.store, "receipts", func(ctx context.Context, c *idemddb.Claim, m events.SQSMessage) error {
				if eventOf(t, m) == "e2" && down {
					return errors.New("mail server down")
				}
				r.add(eventOf(t, m))
				return nil
			}, f.opts(byEvent)...)
			ev := sqsEvent(msg("m1", "e1"), msg("m2", "e2"), msg("m3", "e3"))
			resp, err := h(bg, ev)
			if err != nil || !slices.Equal(failedIDs(resp), []string{"m2"}) {
				t.Fatalf("failures %v, err %v; want [m2]", failedIDs(resp), err)
			}
			l := f.recordLine(t, "m2")
			if l["outcome"] != "failed" || l["reported"] != true || l["error"] != "mail server down" || l["receive_count"] != "1" {
				t.Fatalf("m2 line %v", l)
			}
			down = false
			// Lambda redrives the whole batch (say, after a timeout): only
			// the failed record runs.
			resp, err = h(bg, ev)
			if err != nil || len(resp.BatchItemFailures) != 0 {
				t.Fatalf("retry: failures %v, err %v", failedIDs(resp), err)
			}
			if r.count("e1") != 1 || r.count("e2") != 1 || r.count("e3") != 1 {
				t.Fatalf("executions %v; want each once", r.n)
			}
		})
	}
}

// TestInProgressRecordIsReported: a key claimed elsewhere (another
// invocation, through Store.Begin) is reported, with the time its lease
// has left, and the handler does not run; once that invocation
// completes, the retry replays.
func TestInProgressRecordIsReported(t *testing.T) {
	for _, e := range engines() {
		t.Run(e.Name, func(t *testing.T) {
			f := newFixture(t, e)
			r := newRuns()
			h := batch.WrapSQS(f.store, "receipts", counting(t, r), f.opts(byEvent)...)
			busy := msg("m2", "e2")
			claim, replay, err := f.store.Begin(bg, batch.SQSRequest("receipts", batch.BodyField("event_id"), busy))
			if err != nil || claim == nil || replay != nil {
				t.Fatalf("Begin: %v %v %v", claim, replay, err)
			}
			ev := sqsEvent(msg("m1", "e1"), busy, msg("m3", "e3"))
			resp, err := h(bg, ev)
			if err != nil || !slices.Equal(failedIDs(resp), []string{"m2"}) {
				t.Fatalf("failures %v, err %v; want [m2]", failedIDs(resp), err)
			}
			if l := f.recordLine(t, "m2"); l["outcome"] != "in_progress" || l["retry_after_ms"].(float64) <= 0 {
				t.Fatalf("m2 line %v; want in_progress with retry_after_ms", l)
			}
			if r.count("e2") != 0 {
				t.Fatal("the handler ran for a key held elsewhere")
			}
			if _, err := f.store.Complete(bg, claim, nil); err != nil {
				t.Fatal(err)
			}
			resp, err = h(bg, sqsEvent(busy))
			if err != nil || len(resp.BatchItemFailures) != 0 || r.count("e2") != 0 {
				t.Fatalf("after the other completed: failures %v, err %v, runs %v; want a replay", failedIDs(resp), err, r.n)
			}
		})
	}
}

// TestFIFOGroupStopsAfterFirstFailure: on a FIFO queue, after a failure
// in a message group the group's later records are reported without
// running; other groups go on; each group runs in order, also when
// groups run concurrently.
func TestFIFOGroupStopsAfterFirstFailure(t *testing.T) {
	for _, e := range engines() {
		for _, conc := range []int{1, 3} {
			t.Run(fmt.Sprintf("%s/concurrency=%d", e.Name, conc), func(t *testing.T) {
				f := newFixture(t, e)
				r := newRuns()
				h := batch.WrapSQS(f.store, "ship", func(ctx context.Context, c *idemddb.Claim, m events.SQSMessage) error {
					if m.MessageId == "a2" {
						return errors.New("carrier rejected the parcel")
					}
					r.add(m.MessageId)
					return nil
				}, f.opts(batch.WithConcurrency(conc))...)
				ev := sqsEvent(fifo("a1", "e1", "A"), fifo("b1", "e2", "B"), fifo("a2", "e3", "A"),
					fifo("b2", "e4", "B"), fifo("a3", "e5", "A"), fifo("c1", "e6", "C"), fifo("b3", "e7", "B"))
				resp, err := h(bg, ev)
				if err != nil || !slices.Equal(failedIDs(resp), []string{"a2", "a3"}) {
					t.Fatalf("failures %v, err %v; want [a2 a3]", failedIDs(resp), err)
				}
				if r.count("a3") != 0 {
					t.Fatal("a3 ran after an earlier failure in its group")
				}
				if l := f.recordLine(t, "a3"); l["outcome"] != "blocked" || l["blocked_by"] != "a2" || l["reported"] != true {
					t.Fatalf("a3 line %v; want blocked by a2", l)
				}
				var a, b []string
				for _, id := range r.order {
					switch id[0] {
					case 'a':
						a = append(a, id)
					case 'b':
						b = append(b, id)
					}
				}
				if !slices.Equal(a, []string{"a1"}) || !slices.Equal(b, []string{"b1", "b2", "b3"}) || r.count("c1") != 1 {
					t.Fatalf("ran %v; want a1, b1 b2 b3 in order, c1", r.order)
				}
			})
		}
	}
}

// TestMixedOutcomesInOneBatch: one batch holding a fresh record, a
// completed one, a failing one, one in progress elsewhere, one without a
// key and a mismatch: exactly the four that can be retried, plus the
// mismatch, are reported; the summary and the metric document count each
// outcome. With WithDropMismatches the mismatch is acknowledged instead.
func TestMixedOutcomesInOneBatch(t *testing.T) {
	for _, drop := range []bool{false, true} {
		t.Run(fmt.Sprintf("drop=%v", drop), func(t *testing.T) {
			f := newFixture(t, moto)
			r := newRuns()
			key := batch.MessageAttribute("event-id")
			with := func(m events.SQSMessage, event string) events.SQSMessage {
				m.MessageAttributes = map[string]events.SQSMessageAttribute{"event-id": {DataType: "String", StringValue: &event}}
				return m
			}
			fp := batch.WithFingerprintFields("event_id") // the body field "other" changes
			opts := f.opts(batch.WithKey(key), fp)
			if drop {
				opts = append(opts, batch.WithDropMismatches())
			}
			h := batch.WrapSQS(f.store, "mixed", func(ctx context.Context, c *idemddb.Claim, m events.SQSMessage) error {
				if m.MessageId == "fail" {
					return errors.New("boom")
				}
				r.add(m.MessageId)
				return nil
			}, opts...)
			done := with(msg("done", "e-done"), "e-done")
			if resp, err := h(bg, sqsEvent(done)); err != nil || len(resp.BatchItemFailures) != 0 {
				t.Fatalf("setup: %v %v", failedIDs(resp), err)
			}
			busy := with(msg("busy", "e-busy"), "e-busy")
			if _, _, err := f.store.Begin(bg, batch.SQSRequest("mixed", key, busy, fp)); err != nil {
				t.Fatal(err)
			}
			other := with(msg("other", "x"), "e-done") // e-done's key, another body
			nokey := msg("nokey", "e-nokey")           // no event-id attribute
			ev := sqsEvent(with(msg("fresh", "e-fresh"), "e-fresh"), done, with(msg("fail", "e-fail"), "e-fail"),
				busy, nokey, other)
			f.metrics.Reset()
			resp, err := h(bg, ev)
			want := []string{"fail", "busy", "nokey", "other"}
			if drop {
				want = want[:3]
			}
			if err != nil || !slices.Equal(failedIDs(resp), want) {
				t.Fatalf("failures %v, err %v; want %v", failedIDs(resp), err, want)
			}
			if r.count("fresh") != 1 || r.count("done") != 1 || r.total() != 2 {
				t.Fatalf("executions %v; want done (setup) and fresh once", r.n)
			}
			outcomes := map[string]string{"done": "replayed", "fail": "failed", "busy": "in_progress", "nokey": "invalid_key", "other": "mismatch"}
			for id, o := range outcomes {
				if l := f.recordLine(t, id); l["outcome"] != o {
					t.Fatalf("%s: %v; want %s", id, l, o)
				}
			}
			if l := f.recordLine(t, "other"); l["level"] != "ERROR" || l["reported"] != !drop {
				t.Fatalf("mismatch line %v; want ERROR, reported=%v", l, !drop)
			}
			if l := f.recordLine(t, "nokey"); !strings.Contains(l["error"].(string), `message attribute "event-id" is missing`) {
				t.Fatalf("missing key line %v", l)
			}
			sums := f.lines(t, "idempotency batch")
			s := sums[len(sums)-1]
			for k, v := range map[string]float64{"records": 6, "reported": float64(len(want)), "processed": 1, "replayed": 1,
				"failed": 1, "in_progress": 1, "invalid_key": 1, "mismatch": 1} {
				if s[k] != v {
					t.Fatalf("summary %s = %v, want %v: %v", k, s[k], v, s)
				}
			}
			doc := f.metrics.String()
			for _, m := range []string{`"Processed":1`, `"Replayed":1`, `"Failed":1`, `"InProgress":1`, `"InvalidKey":1`, `"Mismatch":1`, `"Records":6`, `"Consumer":"mixed"`} {
				if !strings.Contains(doc, m) {
					t.Fatalf("metric document lacks %s: %s", m, doc)
				}
			}
		})
	}
}

// TestPanicFailsOnlyItsRecord: a panic in one record's work fails that
// record only, is logged with its stack, and releases the key, so the
// retry runs it.
func TestPanicFailsOnlyItsRecord(t *testing.T) {
	f := newFixture(t, moto)
	r := newRuns()
	panics := true
	h := batch.WrapSQS(f.store, "receipts", func(ctx context.Context, c *idemddb.Claim, m events.SQSMessage) error {
		if m.MessageId == "m2" && panics {
			words := strings.Fields(m.Body)
			_ = words[len(words)] // a real runtime panic: index out of range
		}
		r.add(m.MessageId)
		return nil
	}, f.opts(batch.WithConcurrency(2))...)
	ev := sqsEvent(msg("m1", "e1"), msg("m2", "e2"), msg("m3", "e3"))
	resp, err := h(bg, ev)
	if err != nil || !slices.Equal(failedIDs(resp), []string{"m2"}) {
		t.Fatalf("failures %v, err %v; want [m2]", failedIDs(resp), err)
	}
	l := f.recordLine(t, "m2")
	if l["outcome"] != "panic" || l["level"] != "ERROR" || !strings.Contains(l["error"].(string), "index out of range") ||
		!strings.Contains(l["stack"].(string), "TestPanicFailsOnlyItsRecord") {
		t.Fatalf("panic line %v; want the panic and a stack naming the handler", l)
	}
	panics = false
	if resp, err := h(bg, ev); err != nil || len(resp.BatchItemFailures) != 0 {
		t.Fatalf("retry: %v %v", failedIDs(resp), err)
	}
	if r.count("m1") != 1 || r.count("m2") != 1 || r.count("m3") != 1 {
		t.Fatalf("executions %v; want each once (m2's key was released)", r.n)
	}
}

// TestMissingKeyFailsOnlyItsRecord: a record without a usable key is
// reported with a clear line and never processed; the others are.
func TestMissingKeyFailsOnlyItsRecord(t *testing.T) {
	f := newFixture(t, moto)
	r := newRuns()
	h := batch.WrapSQS(f.store, "receipts", recording(r), f.opts(batch.WithKey(batch.BodyField("detail.order_id")))...)
	ok := func(id, order string) events.SQSMessage {
		return events.SQSMessage{MessageId: id, Body: `{"detail":{"order_id":` + order + `}}`}
	}
	ev := sqsEvent(ok("m1", `"o-1"`), events.SQSMessage{MessageId: "m2", Body: `{"detail":{}}`},
		events.SQSMessage{MessageId: "m3", Body: `not json`}, ok("m4", `42`), ok("m5", `""`), ok("m6", `{"a":1}`))
	resp, err := h(bg, ev)
	if err != nil || !slices.Equal(failedIDs(resp), []string{"m2", "m3", "m5", "m6"}) {
		t.Fatalf("failures %v, err %v; want [m2 m3 m5 m6]", failedIDs(resp), err)
	}
	if r.count("m1") != 1 || r.count("m4") != 1 || r.total() != 2 {
		t.Fatalf("executions %v; want m1 and m4 only", r.n)
	}
	for id, why := range map[string]string{
		"m2": `body field "detail.order_id" is missing`,
		"m3": "the body is not JSON",
		"m5": "is empty or not a string or number",
		"m6": "is empty or not a string or number",
	} {
		l := f.recordLine(t, id)
		if l["outcome"] != "invalid_key" || l["level"] != "ERROR" || !strings.Contains(l["error"].(string), why) {
			t.Fatalf("%s: %v; want invalid_key saying %q", id, l, why)
		}
	}
}

// TestConsumersDoNotShareRecords: two consumers of one queue each run the
// message once: the key is scoped by the consumer name.
func TestConsumersDoNotShareRecords(t *testing.T) {
	f := newFixture(t, dynalite)
	r := newRuns()
	for _, name := range []string{"send-receipt", "update-crm", "send-receipt"} {
		h := batch.WrapSQS(f.store, name, func(ctx context.Context, c *idemddb.Claim, m events.SQSMessage) error {
			r.add(name)
			return nil
		}, f.opts()...)
		if resp, err := h(bg, sqsEvent(msg("m1", "e1"))); err != nil || len(resp.BatchItemFailures) != 0 {
			t.Fatalf("%s: %v %v", name, failedIDs(resp), err)
		}
	}
	if r.count("send-receipt") != 1 || r.count("update-crm") != 1 {
		t.Fatalf("executions %v; want one per consumer", r.n)
	}
}

// TestLogsHoldNoBodiesOrKeys: neither the log lines nor the metric
// documents contain a body, a key value or a message attribute value.
func TestLogsHoldNoBodiesOrKeys(t *testing.T) {
	f := newFixture(t, dynalite)
	h := batch.WrapSQS(f.store, "receipts", func(ctx context.Context, c *idemddb.Claim, m events.SQSMessage) error {
		return errors.New("failed")
	}, f.opts(batch.WithKey(batch.BodyField("email")))...)
	secret := events.SQSMessage{MessageId: "m1", Body: `{"email":"jane.doe@example.com","card":"4111111111111111"}`}
	if _, err := h(bg, sqsEvent(secret, secret)); err != nil {
		t.Fatal(err)
	}
	all := f.logs.String() + f.metrics.String()
	for _, s := range []string{"jane.doe", "4111", "example.com"} {
		if strings.Contains(all, s) {
			t.Fatalf("logs or metrics contain %q:\n%s", s, all)
		}
	}
	if len(f.lines(t, "idempotency record")) != 2 {
		t.Fatalf("want one line per failed record:\n%s", f.logs)
	}
}

// TestNoItemIdentifierFailsTheBatch: a record to retry without a message
// id cannot be reported alone, so the whole batch fails.
func TestNoItemIdentifierFailsTheBatch(t *testing.T) {
	f := newFixture(t, dynalite)
	h := batch.WrapSQS(f.store, "receipts", func(ctx context.Context, c *idemddb.Claim, m events.SQSMessage) error { return nil }, f.opts()...)
	if _, err := h(bg, sqsEvent(msg("m1", "e1"), msg("", "e2"))); !errors.Is(err, batch.ErrNoItemIdentifier) {
		t.Fatalf("err %v; want ErrNoItemIdentifier", err)
	}
}

// TestNotConfigured: a wrapper without store, handler or consumer name, or
// with options of the other source, fails every batch with
// ErrNotConfigured and does not panic.
func TestNotConfigured(t *testing.T) {
	f := newFixture(t, dynalite)
	okSQS := func(context.Context, *idemddb.Claim, events.SQSMessage) error { return nil }
	okStream := func(context.Context, *idemddb.Claim, events.DynamoDBEventRecord) error { return nil }
	ev := sqsEvent(msg("m1", "e1"))
	for name, h := range map[string]batch.SQSBatchHandler{
		"nil store":    batch.WrapSQS(nil, "c", okSQS),
		"nil handler":  batch.WrapSQS(f.store, "c", nil),
		"no consumer":  batch.WrapSQS(f.store, "", okSQS),
		"stream key":   batch.WrapSQS(f.store, "c", okSQS, batch.WithKey(batch.NewImageField("id"))),
		"the zero Key": batch.WrapSQS(f.store, "c", okSQS, batch.WithKey(batch.Key{})),
	} {
		if _, err := h(bg, ev); !errors.Is(err, batch.ErrNotConfigured) {
			t.Errorf("%s: %v; want ErrNotConfigured", name, err)
		}
	}
	sev := events.DynamoDBEvent{Records: []events.DynamoDBEventRecord{{EventID: "1"}}}
	for name, h := range map[string]batch.StreamBatchHandler{
		"nil store":        batch.WrapStream(nil, "c", okStream),
		"nil handler":      batch.WrapStream(f.store, "c", nil),
		"SQS key":          batch.WrapStream(f.store, "c", okStream, batch.WithKey(batch.BodyField("id"))),
		"SQS fingerprint":  batch.WrapStream(f.store, "c", okStream, batch.WithFingerprintAttributes("a")),
		"SQS fields":       batch.WrapStream(f.store, "c", okStream, batch.WithFingerprintFields("a")),
		"SQS body":         batch.WrapStream(f.store, "c", okStream, batch.WithFingerprintBody()),
		"no consumer name": batch.WrapStream(f.store, "", okStream),
	} {
		if _, err := h(bg, sev); !errors.Is(err, batch.ErrNotConfigured) {
			t.Errorf("%s: %v; want ErrNotConfigured", name, err)
		}
	}
	if f.client.Total() != 0 {
		t.Fatalf("%d DynamoDB requests from misconfigured handlers", f.client.Total())
	}
}

// TestWithWaitRunsAfterTheOtherInvocation: with WithWait, a record whose
// key another invocation holds waits instead of being reported: when that
// invocation releases the key (its handler failed, or it died and its
// lease lapsed), this one claims the key and runs the handler; when it
// completes, this one replays. Nothing is reported either way.
func TestWithWaitRunsAfterTheOtherInvocation(t *testing.T) {
	for _, release := range []bool{true, false} {
		t.Run(fmt.Sprintf("release=%v", release), func(t *testing.T) {
			f := newFixture(t, moto)
			r := newRuns()
			h := batch.WrapSQS(f.store, "receipts", counting(t, r), f.opts(byEvent, batch.WithWait(5*time.Second))...)
			busy := msg("m2", "e2")
			claim, _, err := f.store.Begin(bg, batch.SQSRequest("receipts", batch.BodyField("event_id"), busy))
			if err != nil || claim == nil {
				t.Fatalf("Begin: %v %v", claim, err)
			}
			polled := make(chan struct{}, 1)
			f.client.After(func(op string, _ any, err error) error {
				if op == "GetItem" {
					select {
					case polled <- struct{}{}:
					default:
					}
				}
				return err
			})
			done := make(chan events.SQSEventResponse, 1)
			go func() {
				resp, err := h(bg, sqsEvent(busy))
				if err != nil {
					t.Error(err)
				}
				done <- resp
			}()
			<-polled // the record is waiting
			if release {
				err = f.store.Release(bg, claim)
			} else {
				_, err = f.store.Complete(bg, claim, nil)
			}
			if err != nil {
				t.Fatal(err)
			}
			resp := <-done
			if want := map[bool]int{true: 1, false: 0}[release]; len(resp.BatchItemFailures) != 0 || r.count("e2") != want {
				t.Fatalf("failures %v, runs %d; want none reported and %d runs", failedIDs(resp), r.count("e2"), want)
			}
		})
	}
}
