package batch_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"testing"

	"github.com/acme/idemcheckout/ddblocal/ddbtest"
	"github.com/acme/idemcheckout/pkg/idemddb"
	"github.com/acme/idemcheckout/pkg/idemddb/batch"
	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// distinct returns n messages with distinct keys.
func distinct(prefix string, n int) events.SQSEvent {
	var ms []events.SQSMessage
	for i := range n {
		ms = append(ms, msg(fmt.Sprintf("%s-%d", prefix, i), fmt.Sprintf("%s-e%d", prefix, i)))
	}
	return sqsEvent(ms...)
}

// receipts is a business table the handler writes with AddWrites.
type receipts struct {
	raw  *dynamodb.Client
	name string
}

func newReceipts(t *testing.T, f *fixture) *receipts {
	return &receipts{raw: f.raw, name: ddbtest.NewTable(t, f.raw, "id")}
}

// put is a create-once write of receipt id.
func (r *receipts) put(id string) types.TransactWriteItem {
	return types.TransactWriteItem{Put: &types.Put{
		TableName:           aws.String(r.name),
		Item:                map[string]types.AttributeValue{"id": &types.AttributeValueMemberS{Value: id}},
		ConditionExpression: aws.String("attribute_not_exists(id)"),
	}}
}

func (r *receipts) count(t *testing.T) int {
	t.Helper()
	out, err := r.raw.Scan(bg, &dynamodb.ScanInput{TableName: aws.String(r.name), Select: types.SelectCount})
	if err != nil {
		t.Fatal(err)
	}
	return int(out.Count)
}

// TestRequestsPerRecord: the DynamoDB requests each record costs, counted
// on the wire: a first execution 2 (claim and completion, with or without
// a business write), a replay 1 (2 on dynalite, which ignores ALL_OLD and
// needs the GetItem fallback), an in-progress answer 1, a failure 2 (claim
// and release), a record not started 0.
func TestRequestsPerRecord(t *testing.T) {
	const n = 10
	handler := func(ctx context.Context, c *idemddb.Claim, m events.SQSMessage) error { return nil }
	type step struct {
		name string
		ev   events.SQSEvent
		want map[string]int
	}
	for _, e := range engines() {
		t.Run(e.Name, func(t *testing.T) {
			f := newFixture(t, e)
			h := batch.WrapSQS(f.store, "count", handler, f.opts(batch.WithConcurrency(4))...)
			replay := map[string]int{"PutItem": n}
			if e == dynalite {
				replay["GetItem"] = n
			}
			for _, s := range []step{
				{"first execution", distinct("a", n), map[string]int{"PutItem": n, "UpdateItem": n}},
				{"replay", distinct("a", n), replay},
			} {
				f.client.Reset()
				if resp, err := h(bg, s.ev); err != nil || len(resp.BatchItemFailures) != 0 {
					t.Fatalf("%s: %v %v", s.name, failedIDs(resp), err)
				}
				got := f.client.Reset()
				if !maps.Equal(got, s.want) {
					t.Fatalf("%s: requests %v; want %v", s.name, got, s.want)
				}
				total := 0
				for _, v := range got {
					total += v
				}
				t.Logf("%s, %s: %.1f DynamoDB requests per record (%v)", e.Name, s.name, float64(total)/n, got)
			}
			// In progress elsewhere, and a mismatch (a-0's id, another body):
			// one request each, like a replay.
			busy := msg("busy", "busy")
			if _, _, err := f.store.Begin(bg, batch.SQSRequest("count", batch.MessageID(), busy)); err != nil {
				t.Fatal(err)
			}
			f.client.Reset()
			if resp, _ := h(bg, sqsEvent(busy, msg("a-0", "another"))); !slices.Equal(failedIDs(resp), []string{"busy", "a-0"}) {
				t.Fatalf("in progress and mismatch: reported %v", failedIDs(resp))
			}
			want := map[string]int{"PutItem": 2}
			if e == dynalite {
				want["GetItem"] = 2
			}
			if got := f.client.Reset(); !maps.Equal(got, want) {
				t.Fatalf("in progress and mismatch: requests %v; want %v", got, want)
			}
			failing := batch.WrapSQS(f.store, "count-fail", func(context.Context, *idemddb.Claim, events.SQSMessage) error {
				return errors.New("down")
			}, f.opts()...)
			f.client.Reset()
			if resp, _ := failing(bg, distinct("b", n)); len(resp.BatchItemFailures) != n {
				t.Fatalf("failing: %d reported", len(resp.BatchItemFailures))
			}
			if got := f.client.Reset(); !maps.Equal(got, map[string]int{"PutItem": n, "DeleteItem": n}) {
				t.Fatalf("failure: requests %v; want claim and release per record", got)
			}
			cancelled, cancel := context.WithCancel(bg)
			cancel()
			if resp, _ := h(cancelled, distinct("c", n)); len(resp.BatchItemFailures) != n || f.client.Total() != 0 {
				t.Fatalf("cancelled invocation: %d reported, %d requests; want all reported, none sent", len(resp.BatchItemFailures), f.client.Total())
			}
		})
	}
	t.Run("moto/with a business write", func(t *testing.T) {
		f := newFixture(t, moto)
		rc := newReceipts(t, f)
		h := batch.WrapSQS(f.store, "receipts", func(ctx context.Context, c *idemddb.Claim, m events.SQSMessage) error {
			c.AddWrites(rc.put("receipt-" + c.ResourceID))
			return nil
		}, f.opts()...)
		f.client.Reset()
		if resp, err := h(bg, distinct("w", n)); err != nil || len(resp.BatchItemFailures) != 0 {
			t.Fatalf("%v %v", failedIDs(resp), err)
		}
		got := f.client.Reset()
		if !maps.Equal(got, map[string]int{"PutItem": n, "TransactWriteItems": n}) {
			t.Fatalf("requests %v; want one claim and one transaction per record", got)
		}
		t.Logf("moto, first execution with a business write: %.1f DynamoDB requests per record (%v)",
			float64(got["PutItem"]+got["TransactWriteItems"])/n, got)
	})
}

// TestAddWritesCommitWithTheRecord: a receipt written with AddWrites
// commits once per key, also when the batch is delivered again; a write
// whose condition fails cancels the record's completion, commits nothing,
// is reported, and its retry runs again.
func TestAddWritesCommitWithTheRecord(t *testing.T) {
	f := newFixture(t, moto)
	rc := newReceipts(t, f)
	if _, err := f.raw.PutItem(bg, &dynamodb.PutItemInput{TableName: aws.String(rc.name),
		Item: map[string]types.AttributeValue{"id": &types.AttributeValueMemberS{Value: "receipt-e3"}}}); err != nil {
		t.Fatal(err)
	}
	r := newRuns()
	h := batch.WrapSQS(f.store, "receipts", func(ctx context.Context, c *idemddb.Claim, m events.SQSMessage) error {
		r.add(eventOf(t, m))
		c.AddWrites(rc.put("receipt-" + eventOf(t, m)))
		return nil
	}, f.opts(byEvent)...)
	ev := sqsEvent(msg("m1", "e1"), msg("m2", "e2"), msg("m3", "e3"))
	for range 2 {
		resp, err := h(bg, ev)
		if err != nil || len(resp.BatchItemFailures) != 1 || resp.BatchItemFailures[0].ItemIdentifier != "m3" {
			t.Fatalf("failures %v, err %v; want [m3]", failedIDs(resp), err)
		}
	}
	if l := f.recordLine(t, "m3"); l["outcome"] != "canceled" {
		t.Fatalf("m3: %v; want canceled", l)
	}
	if rc.count(t) != 3 || r.count("e1") != 1 || r.count("e2") != 1 || r.count("e3") != 2 {
		t.Fatalf("%d receipts, executions %v; want 3 receipts (e1, e2 and the old e3), e3 run on each delivery", rc.count(t), r.n)
	}
}

// BenchmarkRequestsPerRecord reports the DynamoDB requests per record
// (ddb-req/record, counted on the wire) and the time per 10-record batch
// on moto, for first executions and for replays:
//
//	(cd pkg/idemddb && go test -run '^$' -bench RequestsPerRecord ./batch/)
func BenchmarkRequestsPerRecord(b *testing.B) {
	const n = 10
	raw := moto.Client()
	client := ddbtest.Wrap(raw)
	s, err := idemddb.New(client, idemddb.Config{Table: ddbtest.NewTable(b, raw, "id")})
	if err != nil {
		b.Fatal(err)
	}
	h := batch.WrapSQS(s, "bench", func(context.Context, *idemddb.Claim, events.SQSMessage) error { return nil },
		batch.WithLogger(slog.New(slog.DiscardHandler)), batch.WithMetrics(nil))
	run := func(b *testing.B, ev events.SQSEvent) {
		if resp, err := h(bg, ev); err != nil || len(resp.BatchItemFailures) != 0 {
			b.Fatalf("%v %v", failedIDs(resp), err)
		}
	}
	var seen []events.SQSEvent
	b.Run("first", func(b *testing.B) {
		client.Reset()
		records := 0
		for i := 0; b.Loop(); i++ {
			ev := distinct(fmt.Sprintf("first-%d-%d", b.N, i), n)
			seen = append(seen, ev)
			run(b, ev)
			records += n
		}
		b.ReportMetric(float64(client.Total())/float64(records), "ddb-req/record")
	})
	b.Run("replay", func(b *testing.B) {
		client.Reset()
		records := 0
		for i := 0; b.Loop(); i++ {
			run(b, seen[i%len(seen)])
			records += n
		}
		b.ReportMetric(float64(client.Total())/float64(records), "ddb-req/record")
	})
}
