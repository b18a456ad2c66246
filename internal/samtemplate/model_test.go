package samtemplate

import (
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/acme/idemcheckout/ddblocal/ddbtest"
)

// The model reads every event type other branches add to template.yaml
// (local/testdata/template-events.yaml), as written: references keep the
// resource they name, intrinsics in typed fields read as zero values.
func TestModelReadsEveryEventType(t *testing.T) {
	root, err := ddbtest.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	tpl, err := ParseFile(filepath.Join(root, "local", "testdata", "template-events.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	get, _ := tpl.Function("GetOrderFunction")
	if len(get.Events) != 2 || get.Events[1].Name != "GetOrder" {
		t.Fatalf("GetOrderFunction events = %+v", get.Events)
	}
	h := get.Events[1].HTTP
	if h == nil || h.Method != "GET" || h.Path != "/orders/{id}" || h.API != "Api" || h.RouteKey() != "GET /orders/{id}" || h.PayloadFormatVersion != "2.0" {
		t.Errorf("GET route = %+v", h)
	}
	if a := tpl.API("Api"); a.RouteAuthorizer(h) != "Jwt" || a.Authorizers["Jwt"].JWT.Issuer != "https://issuer.example.com/" ||
		a.Authorizers["Jwt"].IdentitySource != "$request.header.Authorization" {
		t.Errorf("API = %+v", a)
	}
	if get.TimeoutOrDefault() != 5*time.Second || get.MemoryOrDefault() != DefaultMemorySize || !reflect.DeepEqual(get.Architectures, []string{"arm64"}) {
		t.Errorf("GetOrderFunction = %+v", get)
	}

	rec, _ := tpl.Function("ReconcileFunction")
	s, v2 := rec.Events[1].Schedule, rec.Events[2].Schedule
	if rec.Events[1].Type != EventSchedule || s.Expression != "" || s.Name != "reconcile-orders" || !s.Enabled {
		t.Errorf("Schedule = %+v (an !Ref expression reads as empty until resolved)", s)
	}
	if rec.Events[2].Type != EventScheduleV2 || v2.Expression != "rate(1 hour)" || v2.TimeZone != "Europe/Berlin" || v2.Enabled {
		t.Errorf("ScheduleV2 = %+v", v2)
	}
	if d, ok, err := v2.Rate(); !ok || err != nil || d != time.Hour {
		t.Errorf("rate = %v %v %v", d, ok, err)
	}

	st, _ := tpl.Function("StreamFunction")
	ds, q := st.Events[0].Stream, st.Events[1].Queue
	if ds == nil || q == nil {
		t.Fatalf("StreamFunction events = %+v", st.Events)
	}
	two := 2
	want := &StreamEvent{
		Stream: Ref{Resource: "OrdersTable", Attribute: "StreamArn"}, StartingPosition: "TRIM_HORIZON",
		Batching: Batching{BatchSize: 25, MaximumBatchingWindow: time.Second,
			Filters:               []string{`{"eventName": ["INSERT", "MODIFY"], "dynamodb": {"NewImage": {"action": {"S": [{"anything-but": "skip"}]}}}}`},
			FunctionResponseTypes: []string{"ReportBatchItemFailures"}, Enabled: true},
		BisectBatchOnFunctionError: true, MaximumRetryAttempts: &two, OnFailure: Ref{Resource: "StreamDLQ", Attribute: "Arn"},
	}
	if !reflect.DeepEqual(ds, want) || !ds.ReportsBatchItemFailures() {
		t.Errorf("DynamoDB event = %+v\nwant %+v", ds, want)
	}
	if q.Queue != (Ref{Resource: "JobsQueue", Attribute: "Arn"}) || q.BatchSize != 5 || q.MaximumConcurrency != 2 || !q.ReportsBatchItemFailures() || !q.Enabled ||
		len(q.Filters) != 1 {
		t.Errorf("SQS event = %+v", q)
	}
	if len(rec.Events) != 3 || rec.Events[0].Mapping != "AuditMapping" || rec.Events[0].Type != EventSQS ||
		rec.Events[0].Queue.Queue != (Ref{Resource: "AuditQueue", Attribute: "Arn"}) || rec.Events[0].Queue.BatchSize != 3 || rec.Events[0].Queue.Enabled {
		t.Errorf("the AuditMapping resource as ReconcileFunction's event: %+v", rec.Events)
	}

	tb, _ := tpl.Table("OrdersTable")
	if tb.StreamViewType != "NEW_AND_OLD_IMAGES" || len(tb.GlobalSecondaryIndexes) != 1 ||
		tb.GlobalSecondaryIndexes[0].ProjectionType != "KEYS_ONLY" || tb.GlobalSecondaryIndexes[0].KeySchema[0].AttributeName != "customer" {
		t.Errorf("OrdersTable = %+v", tb)
	}
	qs := tpl.Queues()
	if len(qs) != 4 || qs[1].ID != "JobsDLQ" || qs[2].ID != "JobsQueue" || qs[2].Name != "jobs" || qs[2].VisibilityTimeout != time.Second ||
		qs[2].DeadLetter.Resource != "JobsDLQ" || qs[2].MaxReceiveCount != 2 || !qs[0].Fifo {
		t.Errorf("queues = %+v", qs)
	}
}

// A typed field holding a literal of the wrong shape fails the parse with
// the function and property named.
func TestModelRejectsMalformedLiterals(t *testing.T) {
	for _, tc := range []struct{ props, want string }{
		{"Timeout: abc", "Timeout"},
		{"Timeout: 0", "positive"},
		{"MemorySize: big", "MemorySize"},
		{"Events: {S: {Type: Schedule, Properties: {Schedule: rate(5 minute)}}}", "singular"},
		{"Events: {S: {Type: Schedule, Properties: {Schedule: rate(0 minutes)}}}", "positive integer"},
		{"Events: {S: {Type: Schedule, Properties: {Schedule: rate(5 weeks)}}}", "unit"},
		{"Events: {Q: {Type: SQS, Properties: {Queue: x, BatchSize: many}}}", "BatchSize"},
		{"Events: {R: {Type: Api, Properties: {Path: /x}}}", "Method and Path"},
	} {
		src := "Resources:\n  F:\n    Type: AWS::Serverless::Function\n    Properties:\n      CodeUri: x/\n      " + tc.props + "\n"
		_, err := Parse([]byte(src))
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "function F") {
			t.Errorf("%s: err = %v, want one naming F and %q", tc.props, err, tc.want)
		}
	}
	for _, ok := range []string{"rate(1 minute)", "rate(2 hours)", "rate(7 days)", "cron(0 12 * * ? *)"} {
		if _, _, err := ParseRate(ok); err != nil {
			t.Errorf("ParseRate(%s): %v", ok, err)
		}
	}
}
