package batch_test

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/acme/idemcheckout/pkg/idemddb"
	"github.com/acme/idemcheckout/pkg/idemddb/batch"
	"github.com/aws/aws-lambda-go/events"
)

// sent is a message the producer sent, with the fields it sets per send:
// a timestamp and a trace id.
func sent(id, orderID string, amount int, sentAt, trace string) events.SQSMessage {
	return events.SQSMessage{MessageId: id, EventSource: "aws:sqs",
		Body: fmt.Sprintf(`{"order_id":%q,"amount":%d,"sent_at":%q,"trace_id":%q}`, orderID, amount, sentAt, trace),
		MessageAttributes: map[string]events.SQSMessageAttribute{
			"order-id": {DataType: "String", StringValue: &orderID},
		},
		Attributes: map[string]string{"ApproximateReceiveCount": "1"}}
}

// TestProducerResendIsNotAMismatch: the producer sends one order twice
// (two message ids, another timestamp and trace id each time), keyed by
// content (a body field or a message attribute). By default the resend is
// replayed: the handler runs once and no message is reported, so nothing
// reaches the dead-letter queue. The same resend is a mismatch under
// WithFingerprintBody (the whole body, as before), which shows what the
// default prevents.
func TestProducerResendIsNotAMismatch(t *testing.T) {
	for _, key := range []batch.Key{batch.BodyField("order_id"), batch.MessageAttribute("order-id")} {
		for _, whole := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/whole-body=%v", key, whole), func(t *testing.T) {
				f := newFixture(t, moto)
				r := newRuns()
				opts := f.opts(batch.WithKey(key))
				if whole {
					opts = append(opts, batch.WithFingerprintBody())
				}
				h := batch.WrapSQS(f.store, "receipts", func(ctx context.Context, c *idemddb.Claim, m events.SQSMessage) error {
					r.add(m.MessageId)
					return nil
				}, opts...)
				first := sent("m-1", "o-1", 500, "2026-12-02T10:00:00Z", "trace-a")
				if resp, err := h(bg, sqsEvent(first)); err != nil || len(resp.BatchItemFailures) != 0 {
					t.Fatalf("first send: %v %v", failedIDs(resp), err)
				}
				resend := sent("m-2", "o-1", 500, "2026-12-02T10:00:07Z", "trace-b")
				resp, err := h(bg, sqsEvent(resend))
				if err != nil {
					t.Fatal(err)
				}
				want, outcome := []string{}, "replayed"
				if whole {
					want, outcome = []string{"m-2"}, "mismatch"
				}
				if !slices.Equal(failedIDs(resp), want) {
					t.Fatalf("resend reported %v; want %v", failedIDs(resp), want)
				}
				if l := f.recordLine(t, "m-2"); l["outcome"] != outcome {
					t.Fatalf("resend line %v; want outcome %s", l, outcome)
				}
				if r.total() != 1 || r.count("m-1") != 1 {
					t.Fatalf("ran %v; want the first send only", r.order)
				}
			})
		}
	}
}

// TestFingerprintFields: with WithFingerprintFields("order_id", "amount"),
// a resend differing in its timestamp and trace id replays, one whose
// amount changed is a mismatch (reported, the handler not run; under
// WithDropMismatches acknowledged and logged at ERROR), and numbers
// compare by value (500 and 5.0e2 are one amount).
func TestFingerprintFields(t *testing.T) {
	for _, drop := range []bool{false, true} {
		t.Run(fmt.Sprintf("drop=%v", drop), func(t *testing.T) {
			f := newFixture(t, moto)
			r := newRuns()
			opts := f.opts(batch.WithKey(batch.BodyField("order_id")), batch.WithFingerprintFields("order_id", "amount"))
			if drop {
				opts = append(opts, batch.WithDropMismatches())
			}
			h := batch.WrapSQS(f.store, "receipts", func(ctx context.Context, c *idemddb.Claim, m events.SQSMessage) error {
				r.add(m.MessageId)
				return nil
			}, opts...)
			first := sent("m-1", "o-1", 500, "2026-12-02T10:00:00Z", "trace-a")
			resend := sent("m-2", "o-1", 500, "2026-12-02T10:00:07Z", "trace-b")
			sameValue := resend
			sameValue.MessageId, sameValue.Body = "m-3", `{"trace_id":"t-c","amount":5.0e2,"order_id":"o-1"}`
			changed := sent("m-4", "o-1", 900, "2026-12-02T10:00:09Z", "trace-d")
			resp, err := h(bg, sqsEvent(first, resend, sameValue, changed))
			want := []string{"m-4"}
			if drop {
				want = []string{}
			}
			if err != nil || !slices.Equal(failedIDs(resp), want) {
				t.Fatalf("reported %v, %v; want %v", failedIDs(resp), err, want)
			}
			for id, o := range map[string]string{"m-2": "replayed", "m-3": "replayed", "m-4": "mismatch"} {
				if l := f.recordLine(t, id); l["outcome"] != o {
					t.Fatalf("%s: %v; want %s", id, l, o)
				}
			}
			if l := f.recordLine(t, "m-4"); l["level"] != "ERROR" || l["reported"] != !drop {
				t.Fatalf("mismatch line %v; want ERROR, reported=%v", l, !drop)
			}
			if r.total() != 1 || r.count("m-1") != 1 {
				t.Fatalf("ran %v; want the first send only", r.order)
			}
		})
	}
}

// TestDefaultFingerprintByMessageID: keyed by message id (the default), a
// redelivery of one message replays, and the fingerprint is still the
// whole body: a body changed under one message id is a mismatch.
func TestDefaultFingerprintByMessageID(t *testing.T) {
	f := newFixture(t, moto)
	r := newRuns()
	h := batch.WrapSQS(f.store, "receipts", func(ctx context.Context, c *idemddb.Claim, m events.SQSMessage) error {
		r.add(m.MessageId)
		return nil
	}, f.opts()...)
	m := sent("m-1", "o-1", 500, "2026-12-02T10:00:00Z", "trace-a")
	for range 2 {
		if resp, err := h(bg, sqsEvent(m)); err != nil || len(resp.BatchItemFailures) != 0 {
			t.Fatalf("delivery: %v %v", failedIDs(resp), err)
		}
	}
	changed := sent("m-1", "o-1", 500, "2026-12-02T10:00:07Z", "trace-a")
	resp, err := h(bg, sqsEvent(changed))
	if err != nil || !slices.Equal(failedIDs(resp), []string{"m-1"}) {
		t.Fatalf("changed body under one message id: %v %v; want reported", failedIDs(resp), err)
	}
	if l := f.recordLine(t, "m-1"); l["outcome"] != "mismatch" || r.total() != 1 {
		t.Fatalf("line %v, runs %v; want a mismatch and one run", l, r.order)
	}
}
