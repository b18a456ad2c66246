package batch_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/acme/idemcheckout/pkg/idemddb"
	"github.com/acme/idemcheckout/pkg/idemddb/batch"
	"github.com/aws/aws-lambda-go/events"
)

// streamRecord decodes one stream record as Lambda delivers it; keys and
// image are DynamoDB JSON objects ("" for none).
func streamRecord(t *testing.T, seq, eventName, keys, image string) events.DynamoDBEventRecord {
	t.Helper()
	change := `"SequenceNumber":"` + seq + `","StreamViewType":"NEW_AND_OLD_IMAGES","SizeBytes":100`
	if keys != "" {
		change += `,"Keys":` + keys
	}
	if image != "" {
		change += `,"NewImage":` + image
	}
	raw := fmt.Sprintf(`{"eventID":"ev-%s","eventName":%q,"eventSource":"aws:dynamodb","awsRegion":"us-east-1","dynamodb":{%s}}`, seq, eventName, change)
	var r events.DynamoDBEventRecord
	if err := json.Unmarshal([]byte(raw), &r); err != nil {
		t.Fatalf("%s: %v", raw, err)
	}
	return r
}

// order is an Orders item image.
func order(id, status string, amount int) (keys, image string) {
	return fmt.Sprintf(`{"order_id":{"S":%q}}`, id),
		fmt.Sprintf(`{"order_id":{"S":%q},"status":{"S":%q},"amount":{"N":"%d"},"tags":{"SS":["a","b"]}}`, id, status, amount)
}

func streamEvent(rs ...events.DynamoDBEventRecord) events.DynamoDBEvent {
	return events.DynamoDBEvent{Records: rs}
}

// orderOf returns the order id of a record's new image or keys.
func orderOf(r events.DynamoDBEventRecord) string {
	if v, ok := r.Change.NewImage["order_id"]; ok {
		return v.String()
	}
	return r.Change.Keys["order_id"].String()
}

// TestStreamImagesInAnyOrderFingerprintEqual: two records with the same
// content, delivered with attributes, nested map members and set members
// in another order and a number spelled differently, fingerprint equal;
// another value does not. Through the adapter the second is a replay and
// the changed one a mismatch.
func TestStreamImagesInAnyOrderFingerprintEqual(t *testing.T) {
	keys := `{"order_id":{"S":"o-1"}}`
	a := `{"order_id":{"S":"o-1"},"status":{"S":"PAID"},"amount":{"N":"1.50"},"tags":{"SS":["gift","express"]},` +
		`"ids":{"NS":["3","1","2"]},"addr":{"M":{"city":{"S":"Pune"},"zip":{"S":"411001"}}},"lines":{"L":[{"S":"x"},{"N":"2"}]},` +
		`"paid":{"BOOL":true},"note":{"NULL":true},"blob":{"B":"AQID"},"blobs":{"BS":["AQ==","Ag=="]}}`
	b := `{"blobs":{"BS":["Ag==","AQ=="]},"blob":{"B":"AQID"},"note":{"NULL":true},"paid":{"BOOL":true},` +
		`"lines":{"L":[{"S":"x"},{"N":"2.0"}]},"addr":{"M":{"zip":{"S":"411001"},"city":{"S":"Pune"}}},"ids":{"NS":["2","3","1"]},` +
		`"tags":{"SS":["express","gift"]},"amount":{"N":"1.5"},"status":{"S":"PAID"},"order_id":{"S":"o-1"}}`
	first, again := streamRecord(t, "100", "MODIFY", keys, a), streamRecord(t, "205", "MODIFY", keys, b)
	if !bytes.Equal(batch.StreamFingerprint(first), batch.StreamFingerprint(again)) {
		t.Fatal("the same content in another order fingerprints differently")
	}
	changes := map[string]string{
		"a list in another order": `"lines":{"L":[{"N":"2"},{"S":"x"}]}`,
		"another number":          `"amount":{"N":"1.51"}`,
		"a string for a number":   `"amount":{"S":"1.5"}`,
		"another nested value":    `"addr":{"M":{"city":{"S":"Mumbai"},"zip":{"S":"411001"}}}`,
		"another set member":      `"tags":{"SS":["gift","standard"]}`,
	}
	for name, attr := range changes {
		var img map[string]json.RawMessage
		if err := json.Unmarshal([]byte(a), &img); err != nil {
			t.Fatal(err)
		}
		var one map[string]json.RawMessage
		if err := json.Unmarshal([]byte("{"+attr+"}"), &one); err != nil {
			t.Fatal(err)
		}
		for k, v := range one {
			img[k] = v
		}
		changed, _ := json.Marshal(img)
		if bytes.Equal(batch.StreamFingerprint(first), batch.StreamFingerprint(streamRecord(t, "1", "MODIFY", keys, string(changed)))) {
			t.Errorf("%s fingerprints equal", name)
		}
	}
	if bytes.Equal(batch.StreamFingerprint(first), batch.StreamFingerprint(streamRecord(t, "100", "INSERT", keys, a))) {
		t.Error("another event name fingerprints equal")
	}

	f := newFixture(t, moto)
	r := newRuns()
	h := batch.WrapStream(f.store, "fulfil", func(ctx context.Context, c *idemddb.Claim, rec events.DynamoDBEventRecord) error {
		r.add(rec.Change.SequenceNumber)
		return nil
	}, f.opts(batch.WithKey(batch.NewImageField("order_id")))...)
	resp, err := h(bg, streamEvent(first))
	if err != nil || len(resp.BatchItemFailures) != 0 {
		t.Fatalf("first: %v %v", streamFailedIDs(resp), err)
	}
	changed := streamRecord(t, "300", "MODIFY", keys, `{"order_id":{"S":"o-1"},"status":{"S":"REFUNDED"}}`)
	resp, err = h(bg, streamEvent(again, changed))
	if err != nil || !slices.Equal(streamFailedIDs(resp), []string{"300"}) {
		t.Fatalf("failures %v, err %v; want [300] (the mismatch)", streamFailedIDs(resp), err)
	}
	if !slices.Equal(r.order, []string{"100"}) {
		t.Fatalf("ran %v; want only 100", r.order)
	}
	if l := f.recordLine(t, "205"); l["outcome"] != "replayed" {
		t.Fatalf("205: %v; want replayed", l)
	}
	if l := f.recordLine(t, "300"); l["outcome"] != "mismatch" {
		t.Fatalf("300: %v; want mismatch", l)
	}
}

// TestStreamReReadReplays: a shard re-read after a failure delivers the
// records after the checkpoint again: they replay, the work does not run
// twice, and only the failed record is reported (by sequence number).
func TestStreamReReadReplays(t *testing.T) {
	for _, e := range engines() {
		t.Run(e.Name, func(t *testing.T) {
			f := newFixture(t, e)
			r := newRuns()
			down := true
			h := batch.WrapStream(f.store, "fulfil", func(ctx context.Context, c *idemddb.Claim, rec events.DynamoDBEventRecord) error {
				if orderOf(rec) == "o-2" && down {
					return errors.New("receipts table throttled")
				}
				r.add(orderOf(rec))
				return nil
			}, f.opts()...) // default key: the event id
			var recs []events.DynamoDBEventRecord
			for i := 1; i <= 4; i++ {
				k, img := order(fmt.Sprintf("o-%d", i), "PAID", 100*i)
				recs = append(recs, streamRecord(t, fmt.Sprint(100+i), "MODIFY", k, img))
			}
			resp, err := h(bg, streamEvent(recs...))
			if err != nil || !slices.Equal(streamFailedIDs(resp), []string{"102"}) {
				t.Fatalf("failures %v, err %v; want [102]", streamFailedIDs(resp), err)
			}
			down = false
			// Lambda retries from the lowest reported sequence number.
			resp, err = h(bg, streamEvent(recs[1:]...))
			if err != nil || len(resp.BatchItemFailures) != 0 {
				t.Fatalf("re-read: %v %v", streamFailedIDs(resp), err)
			}
			for i := 1; i <= 4; i++ {
				if n := r.count(fmt.Sprintf("o-%d", i)); n != 1 {
					t.Fatalf("o-%d ran %d times; want once (%v)", i, n, r.n)
				}
			}
		})
	}
}

// TestStreamItemStopsAfterFirstFailure: after a failure on one item, the
// item's later changes in the batch are reported without running, so its
// changes apply in stream order; other items go on.
func TestStreamItemStopsAfterFirstFailure(t *testing.T) {
	for _, conc := range []int{1, 2} {
		t.Run(fmt.Sprintf("concurrency=%d", conc), func(t *testing.T) {
			f := newFixture(t, dynalite)
			r := newRuns()
			h := batch.WrapStream(f.store, "fulfil", func(ctx context.Context, c *idemddb.Claim, rec events.DynamoDBEventRecord) error {
				if rec.Change.SequenceNumber == "101" {
					return errors.New("boom")
				}
				r.add(rec.Change.SequenceNumber)
				return nil
			}, f.opts(batch.WithConcurrency(conc))...)
			k1, paying := order("o-1", "PAYING", 100)
			_, paid := order("o-1", "PAID", 100)
			k2, other := order("o-2", "PAID", 200)
			resp, err := h(bg, streamEvent(streamRecord(t, "101", "MODIFY", k1, paying), streamRecord(t, "102", "MODIFY", k2, other),
				streamRecord(t, "103", "MODIFY", k1, paid)))
			if err != nil || !slices.Equal(streamFailedIDs(resp), []string{"101", "103"}) {
				t.Fatalf("failures %v, err %v; want [101 103]", streamFailedIDs(resp), err)
			}
			if !slices.Equal(r.order, []string{"102"}) {
				t.Fatalf("ran %v; want only 102", r.order)
			}
			if l := f.recordLine(t, "103"); l["outcome"] != "blocked" || l["blocked_by"] != "101" {
				t.Fatalf("103: %v; want blocked by 101", l)
			}
		})
	}
}

// TestStreamKeyWithEventName: NewImageField keys "this change of this
// item": the INSERT and the MODIFY of one order are two keys, a REMOVE has
// no new image and so no key, and KeysField keys it by the item's keys.
func TestStreamKeyWithEventName(t *testing.T) {
	f := newFixture(t, dynalite)
	r := newRuns()
	handler := func(ctx context.Context, c *idemddb.Claim, rec events.DynamoDBEventRecord) error {
		r.add(rec.EventName + " " + orderOf(rec))
		return nil
	}
	h := batch.WrapStream(f.store, "fulfil", handler, f.opts(batch.WithKey(batch.NewImageField("order_id")))...)
	k, pending := order("o-1", "PENDING", 100)
	_, paid := order("o-1", "PAID", 100)
	ev := streamEvent(streamRecord(t, "1", "INSERT", k, pending), streamRecord(t, "2", "MODIFY", k, paid),
		streamRecord(t, "3", "REMOVE", k, ""))
	resp, err := h(bg, ev)
	if err != nil || !slices.Equal(streamFailedIDs(resp), []string{"3"}) {
		t.Fatalf("failures %v, err %v; want [3] (a REMOVE has no new image)", streamFailedIDs(resp), err)
	}
	if l := f.recordLine(t, "3"); l["outcome"] != "invalid_key" || l["error"] != `new image attribute "order_id" is missing: the record has no such image` {
		t.Fatalf("3: %v", l)
	}
	byKeys := batch.WrapStream(f.store, "archive", handler, f.opts(batch.WithKey(batch.KeysField("order_id")))...)
	for range 2 {
		if resp, err := byKeys(bg, streamEvent(streamRecord(t, "3", "REMOVE", k, ""))); err != nil || len(resp.BatchItemFailures) != 0 {
			t.Fatalf("by keys: %v %v", streamFailedIDs(resp), err)
		}
	}
	for _, want := range []string{"INSERT o-1", "MODIFY o-1", "REMOVE o-1"} {
		if r.count(want) != 1 {
			t.Fatalf("executions %v; want %q once", r.n, want)
		}
	}
	if r.total() != 3 {
		t.Fatalf("executions %v", r.n)
	}
}
