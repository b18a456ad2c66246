package batch_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/acme/idemcheckout/ddblocal/ddbtest"
	"github.com/acme/idemcheckout/ddblocal/localddb"
	"github.com/acme/idemcheckout/pkg/idemddb"
	"github.com/acme/idemcheckout/pkg/idemddb/batch"
	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
)

// moto is served single-threaded and supports everything; dynalite is a
// second, independent engine without transactions or ALL_OLD on failures.
var moto, dynalite *localddb.Engine

func TestMain(m *testing.M) { os.Exit(ddbtest.MainBoth(m, &moto, &dynalite)) }

// engines lists the engines a test that needs no transaction runs on.
func engines() []*localddb.Engine { return []*localddb.Engine{moto, dynalite} }

// fixture is one table on one engine, a store on a counting client, and
// buffers catching the adapter's logs and metrics.
type fixture struct {
	engine  *localddb.Engine
	raw     *dynamodb.Client
	client  *ddbtest.Client
	table   string
	store   *idemddb.Store
	logs    *ddbtest.Buffer
	metrics *ddbtest.Buffer
}

func newFixture(t *testing.T, e *localddb.Engine) *fixture {
	t.Helper()
	raw := e.Client()
	f := &fixture{engine: e, raw: raw, client: ddbtest.Wrap(raw), table: ddbtest.NewTable(t, raw, "id"),
		logs: &ddbtest.Buffer{}, metrics: &ddbtest.Buffer{}}
	s, err := idemddb.New(f.client, idemddb.Config{Table: f.table, Logger: slog.New(slog.NewJSONHandler(f.logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	f.store = s
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("adapter logs:\n%s", f.logs)
		}
	})
	return f
}

// opts routes logs and metrics to the fixture's buffers, then adds extra.
func (f *fixture) opts(extra ...batch.Option) []batch.Option {
	return append([]batch.Option{
		batch.WithLogger(slog.New(slog.NewJSONHandler(f.logs, nil))),
		batch.WithMetrics(f.metrics),
	}, extra...)
}

// lines returns the adapter's log lines with msg, decoded.
func (f *fixture) lines(t *testing.T, msg string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(f.logs.String()), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line is not JSON: %q", l)
		}
		if m["msg"] == msg {
			out = append(out, m)
		}
	}
	return out
}

// recordLine returns the record line of item, failing when there is none.
func (f *fixture) recordLine(t *testing.T, item string) map[string]any {
	t.Helper()
	var found map[string]any
	for _, l := range f.lines(t, "idempotency record") {
		if l["item"] == item {
			found = l // the latest
		}
	}
	if found == nil {
		t.Fatalf("no record line for %s in:\n%s", item, f.logs)
	}
	return found
}

// runs counts executions per key, safe for concurrent handlers.
type runs struct {
	mu    sync.Mutex
	n     map[string]int
	order []string
}

func newRuns() *runs { return &runs{n: map[string]int{}} }

func (r *runs) add(k string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.n[k]++
	r.order = append(r.order, k)
}

func (r *runs) count(k string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.n[k]
}

func (r *runs) total() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, v := range r.n {
		n += v
	}
	return n
}

// msg is a standard-queue message with a JSON body {"event_id": event}.
func msg(id, event string) events.SQSMessage {
	return events.SQSMessage{MessageId: id, Body: fmt.Sprintf(`{"event_id":%q,"amount":100}`, event),
		Attributes: map[string]string{"ApproximateReceiveCount": "1"}, EventSource: "aws:sqs"}
}

// fifo is msg on a FIFO queue, in message group group.
func fifo(id, event, group string) events.SQSMessage {
	m := msg(id, event)
	m.Attributes["MessageGroupId"] = group
	return m
}

// eventOf returns the event id in a message body built by msg.
func eventOf(t *testing.T, m events.SQSMessage) string {
	var b struct {
		EventID string `json:"event_id"`
	}
	if err := json.Unmarshal([]byte(m.Body), &b); err != nil {
		t.Errorf("body %q: %v", m.Body, err)
	}
	return b.EventID
}

// sqsEvent is a batch of messages.
func sqsEvent(ms ...events.SQSMessage) events.SQSEvent { return events.SQSEvent{Records: ms} }

// failedIDs lists the reported message ids.
func failedIDs(r events.SQSEventResponse) []string {
	out := []string{}
	for _, f := range r.BatchItemFailures {
		out = append(out, f.ItemIdentifier)
	}
	return out
}

// streamFailedIDs lists the reported sequence numbers.
func streamFailedIDs(r events.DynamoDBEventResponse) []string {
	out := []string{}
	for _, f := range r.BatchItemFailures {
		out = append(out, f.ItemIdentifier)
	}
	return out
}

var bg = context.Background()
