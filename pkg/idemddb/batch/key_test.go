package batch_test

import (
	"context"
	"slices"
	"testing"

	"github.com/acme/idemcheckout/pkg/idemddb"
	"github.com/acme/idemcheckout/pkg/idemddb/batch"
	"github.com/aws/aws-lambda-go/events"
)

// TestMessageAttributeKey: a String, Number or Binary attribute keys the
// message; one that is missing, empty or a list does not; the same value
// under another message id is the same key.
func TestMessageAttributeKey(t *testing.T) {
	f := newFixture(t, dynalite)
	r := newRuns()
	h := batch.WrapSQS(f.store, "attrs", recording(r), f.opts(batch.WithKey(batch.MessageAttribute("id")))...)
	str := func(s string) *string { return &s }
	with := func(id string, a events.SQSMessageAttribute) events.SQSMessage {
		return events.SQSMessage{MessageId: id, Body: "same", MessageAttributes: map[string]events.SQSMessageAttribute{"id": a}}
	}
	ev := sqsEvent(
		with("s", events.SQSMessageAttribute{DataType: "String", StringValue: str("k1")}),
		with("s-again", events.SQSMessageAttribute{DataType: "String", StringValue: str("k1")}),
		with("n", events.SQSMessageAttribute{DataType: "Number", StringValue: str("42")}),
		with("b", events.SQSMessageAttribute{DataType: "Binary", BinaryValue: []byte{1, 2}}),
		with("empty", events.SQSMessageAttribute{DataType: "String", StringValue: str("")}),
		with("list", events.SQSMessageAttribute{DataType: "String", StringListValues: []string{"x"}}),
		events.SQSMessage{MessageId: "none", Body: "same"},
	)
	resp, err := h(bg, ev)
	if err != nil || !slices.Equal(failedIDs(resp), []string{"empty", "list", "none"}) {
		t.Fatalf("failures %v, err %v; want [empty list none]", failedIDs(resp), err)
	}
	if !slices.Equal(r.order, []string{"s", "n", "b"}) {
		t.Fatalf("ran %v; want s, n, b (s-again replays)", r.order)
	}
}

// TestFingerprintAttributes: attributes named by WithFingerprintAttributes
// are part of the fingerprint: the same key and body with another value is
// a mismatch; without the option it is a replay.
func TestFingerprintAttributes(t *testing.T) {
	f := newFixture(t, dynalite)
	str := func(s string) *string { return &s }
	m := func(id, tenant string) events.SQSMessage {
		x := msg(id, "e1")
		x.MessageAttributes = map[string]events.SQSMessageAttribute{"tenant": {DataType: "String", StringValue: str(tenant)}}
		return x
	}
	ok := func(context.Context, *idemddb.Claim, events.SQSMessage) error { return nil }
	with := batch.WrapSQS(f.store, "with", ok, f.opts(byEvent, batch.WithFingerprintAttributes("tenant"))...)
	without := batch.WrapSQS(f.store, "without", ok, f.opts(byEvent)...)
	resp, err := with(bg, sqsEvent(m("m1", "t1"), m("m2", "t2")))
	if err != nil || !slices.Equal(failedIDs(resp), []string{"m2"}) {
		t.Fatalf("with: failures %v, err %v; want [m2]", failedIDs(resp), err)
	}
	if l := f.recordLine(t, "m2"); l["outcome"] != "mismatch" {
		t.Fatalf("with: m2 line %v; want a mismatch", l)
	}
	resp, err = without(bg, sqsEvent(m("m1", "t1"), m("m2", "t2")))
	if err != nil || len(resp.BatchItemFailures) != 0 {
		t.Fatalf("without: failures %v, err %v; want none", failedIDs(resp), err)
	}
	if l := f.recordLine(t, "m2"); l["consumer"] != "without" || l["outcome"] != "replayed" {
		t.Fatalf("without: m2 line %v; want a replay", l)
	}
}

// TestBodyIsCanonicalJSON: under a whole-body fingerprint, a producer that
// re-sends an event serialised with another member order and spacing
// replays; another value is a mismatch.
func TestBodyIsCanonicalJSON(t *testing.T) {
	f := newFixture(t, dynalite)
	r := newRuns()
	h := batch.WrapSQS(f.store, "canon", recording(r), f.opts(byEvent, batch.WithFingerprintBody())...)
	ev := sqsEvent(
		events.SQSMessage{MessageId: "m1", Body: `{"event_id":"e1","amount":100,"items":[1,2]}`},
		events.SQSMessage{MessageId: "m2", Body: "{ \"items\": [1, 2.0], \"amount\": 1e2,\n \"event_id\": \"e1\" }"},
		events.SQSMessage{MessageId: "m3", Body: `{"event_id":"e1","amount":101,"items":[1,2]}`},
	)
	resp, err := h(bg, ev)
	if err != nil || !slices.Equal(failedIDs(resp), []string{"m3"}) || !slices.Equal(r.order, []string{"m1"}) {
		t.Fatalf("failures %v, err %v, ran %v; want m3 reported, m1 run, m2 replayed", failedIDs(resp), err, r.order)
	}
}

// TestKeyStrings: a Key describes itself for logs.
func TestKeyStrings(t *testing.T) {
	cases := []struct {
		k    batch.Key
		want string
	}{
		{batch.MessageID(), "message id"},
		{batch.MessageAttribute("a"), `message attribute "a"`},
		{batch.BodyField("x.y"), `body field "x.y"`},
		{batch.EventID(), "event id"},
		{batch.NewImageField("order_id"), `new image attribute "order_id"`},
		{batch.KeysField("pk"), `key attribute "pk"`},
	}
	for _, c := range cases {
		if got := c.k.String(); got != c.want {
			t.Errorf("%q; want %q", got, c.want)
		}
	}
}
