package devstack

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/acme/idemcheckout/ddblocal/localddb"
	"github.com/acme/idemcheckout/local/devstack/eventsource"
	"github.com/acme/idemcheckout/local/devstack/gateway"
	"github.com/acme/idemcheckout/local/devstack/lambda"
	"github.com/acme/idemcheckout/local/devstack/provision"
	"github.com/acme/idemcheckout/local/devstack/template"
	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	lambdasvc "github.com/aws/aws-sdk-go-v2/service/lambda"
	lambdatypes "github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

const eventsTemplate = "../testdata/template-events.yaml"

// notifyLog is a lineLog that tells a waiting test about every write.
type notifyLog struct {
	lineLog
	wrote chan struct{}
}

func newNotifyLog() *notifyLog { return &notifyLog{wrote: make(chan struct{}, 1)} }

func (n *notifyLog) Write(b []byte) (int, error) {
	k, err := n.lineLog.Write(b)
	select {
	case n.wrote <- struct{}{}:
	default:
	}
	return k, err
}

// waitLine waits, by the writes it is told about, for a line holding all
// of parts; it fails the test after a minute.
func (n *notifyLog) waitLine(t *testing.T, parts ...string) string {
	t.Helper()
	deadline := time.NewTimer(time.Minute)
	defer deadline.Stop()
	for {
		for _, l := range n.Lines() {
			found := true
			for _, p := range parts {
				found = found && strings.Contains(l, p)
			}
			if found {
				return l
			}
		}
		select {
		case <-n.wrote:
		case <-deadline.C:
			t.Fatalf("no line with %q in:\n%s", parts, n.String())
		}
	}
}

// make event's samples decode as the events the Lambda Go library reads.
func TestSampleEvents(t *testing.T) {
	tm, err := template.Load(eventsTemplate, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1_800_000_000, 0)
	b, err := SampleEvent(tm, SampleHTTP, "GetOrderFunction", `{"a":1}`, now)
	if err != nil {
		t.Fatal(err)
	}
	var h events.APIGatewayV2HTTPRequest
	if err := json.Unmarshal(b, &h); err != nil {
		t.Fatal(err)
	}
	if h.RouteKey != "POST /orders" || h.Body != `{"a":1}` || h.Headers["idempotency-key"] == "" || h.RequestContext.Authorizer.JWT.Claims["sub"] != "dev-user" ||
		h.RequestContext.Authorizer.JWT.Claims["iss"] != "https://issuer.example.com/" || !strings.HasPrefix(h.Headers["authorization"], "Bearer ") {
		t.Errorf("http sample = %s", b)
	}
	b, _ = SampleEvent(tm, SampleSchedule, "", "", now)
	var sch events.EventBridgeEvent
	if err := json.Unmarshal(b, &sch); err != nil || sch.DetailType != "Scheduled Event" || sch.Source != "aws.events" ||
		sch.Resources[0] != "arn:aws:events:us-east-1:123456789012:rule/reconcile-orders" || !sch.Time.Equal(now) {
		t.Errorf("schedule sample = %s (%v)", b, err)
	}
	b, _ = SampleEvent(tm, SampleSQS, "StreamFunction", "hello", now)
	var sq events.SQSEvent
	if err := json.Unmarshal(b, &sq); err != nil || len(sq.Records) != 1 || sq.Records[0].Body != "hello" ||
		sq.Records[0].EventSourceARN != "arn:aws:sqs:us-east-1:123456789012:jobs" {
		t.Errorf("sqs sample = %s (%v)", b, err)
	}
	b, _ = SampleEvent(tm, SampleDynamoDB, "", "", now)
	var dd events.DynamoDBEvent
	if err := json.Unmarshal(b, &dd); err != nil || len(dd.Records) != 1 || dd.Records[0].Change.Keys["order_id"].String() != "sample" ||
		dd.Records[0].EventSourceArn != "arn:aws:dynamodb:us-east-1:123456789012:table/OrdersTable/stream/local" {
		t.Errorf("dynamodb sample = %s (%v)", b, err)
	}
	if _, err := SampleEvent(tm, "kinesis", "", "", now); err == nil {
		t.Error("an unknown type must be an error")
	}
}

// The Lambda endpoint answers the AWS SDK's Lambda client as Lambda does.
func TestE2ELambdaEndpointSDK(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	lc := lambdasvc.NewFromConfig(aws.Config{
		Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider("test", "test", ""), RetryMaxAttempts: 1,
	}, func(o *lambdasvc.Options) { o.BaseEndpoint = aws.String(stack.LambdaURL()) })

	out, err := lc.Invoke(ctx, &lambdasvc.InvokeInput{FunctionName: aws.String("EchoFunction"), Payload: []byte(`{"headers":{"x-simple":"1"}}`)})
	if err != nil {
		t.Fatal(err)
	}
	if out.StatusCode != 200 || out.FunctionError != nil || string(out.Payload) != `{"hello":"world"}` || aws.ToString(out.ExecutedVersion) != "$LATEST" {
		t.Errorf("invoke = %d %v %s", out.StatusCode, out.FunctionError, out.Payload)
	}
	// By ARN, and a function error: 200 with X-Amz-Function-Error.
	out, err = lc.Invoke(ctx, &lambdasvc.InvokeInput{FunctionName: aws.String("arn:aws:lambda:us-east-1:123456789012:function:EchoFunction"), Payload: []byte(`{"headers":{"x-error":"1"}}`)})
	if err != nil {
		t.Fatal(err)
	}
	if out.StatusCode != 200 || aws.ToString(out.FunctionError) != "Unhandled" || !bytes.Contains(out.Payload, []byte("fixture error")) {
		t.Errorf("function error = %d %v %s", out.StatusCode, aws.ToString(out.FunctionError), out.Payload)
	}
	out, err = lc.Invoke(ctx, &lambdasvc.InvokeInput{FunctionName: aws.String("EchoFunction"), InvocationType: lambdatypes.InvocationTypeEvent, Payload: []byte(`{}`)})
	if err != nil || out.StatusCode != 202 {
		t.Errorf("Event invocation: %v %+v", err, out)
	}
	out, err = lc.Invoke(ctx, &lambdasvc.InvokeInput{FunctionName: aws.String("EchoFunction"), InvocationType: lambdatypes.InvocationTypeDryRun})
	if err != nil || out.StatusCode != 204 {
		t.Errorf("DryRun: %v %+v", err, out)
	}
	var nf *lambdatypes.ResourceNotFoundException
	if _, err := lc.Invoke(ctx, &lambdasvc.InvokeInput{FunctionName: aws.String("Nope")}); !errors.As(err, &nf) {
		t.Errorf("unknown function: %v", err)
	}
	var big *lambdatypes.RequestTooLargeException
	huge := []byte(`"` + strings.Repeat("a", lambda.MaxInvokePayload) + `"`)
	if _, err := lc.Invoke(ctx, &lambdasvc.InvokeInput{FunctionName: aws.String("EchoFunction"), Payload: huge}); !errors.As(err, &big) {
		t.Errorf("oversize payload: %v", err)
	}
}

// make invoke with a stack running goes through its Lambda endpoint.
func TestE2EInvokeThroughRunningStack(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var fnLogs bytes.Buffer
	cfg := Config{Root: testRoot, Template: filepath.Join(testRoot, "local", "testdata", "template.yaml"), StateDir: stackState, Logger: log.New(io.Discard, "", 0), FunctionOutput: &fnLogs}
	out, err := InvokeOnce(ctx, cfg, "EchoFunction", []byte(`{"headers":{"x-simple":"1"}}`))
	if err != nil || string(out) != `{"hello":"world"}` {
		t.Errorf("invoke = %s, %v", out, err)
	}
	// The invocation's logs reach the invoker (Lambda's log tail), not only
	// the running stack's output: one START, one REPORT, same request.
	logs := fnLogs.String()
	start, report := regexp.MustCompile(`(?m)^START RequestId: (\S+)`).FindAllStringSubmatch(logs, -1), regexp.MustCompile(`(?m)^REPORT RequestId: (\S+)`).FindAllStringSubmatch(logs, -1)
	if len(start) != 1 || len(report) != 1 || start[0][1] != report[0][1] {
		t.Errorf("the invoker's logs must be the invocation's log tail, START to REPORT of one request:\n%s", logs)
	}
	// An unknown function: the error names the functions the stack serves.
	if _, err := InvokeOnce(ctx, cfg, "NoSuchFunction", []byte(`{}`)); err == nil || !strings.Contains(err.Error(), "Function not found") || !strings.Contains(err.Error(), "EchoFunction") {
		t.Errorf("unknown function through the running stack = %v, want the served functions named", err)
	}
	var fe *lambda.FunctionError
	if _, err := InvokeOnce(ctx, cfg, "EchoFunction", []byte(`{"headers":{"x-error":"1"}}`)); !errors.As(err, &fe) || !bytes.Contains(fe.Payload, []byte("fixture error")) {
		t.Errorf("function error = %v", err)
	}
}

// make invoke FN=... EVENT=... against the fixture template, with no stack
// running: a stack of that function alone starts, answers and stops.
func TestMakeInvoke(t *testing.T) {
	if _, err := exec.LookPath("make"); err != nil {
		t.Skip("make is not installed")
	}
	dir := t.TempDir()
	run := func(event string) (string, string, error) {
		path := filepath.Join(dir, "event.json")
		if err := os.WriteFile(path, []byte(event), 0o644); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command("make", "-s", "invoke", "FN=EchoFunction", "EVENT="+path, "TEMPLATE=local/testdata/template.yaml")
		cmd.Dir = testRoot
		cmd.Env = append(os.Environ(), "DEV_STATE_DIR="+filepath.Join(dir, "state"))
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		return stdout.String(), stderr.String(), err
	}
	out, logs, err := run(`{"headers":{"x-simple":"1"}}`)
	if err != nil || strings.TrimSpace(out) != `{"hello":"world"}` {
		t.Fatalf("make invoke: %v\nstdout %s\nstderr %s", err, out, logs)
	}
	// The stack of one function stops with the call: no commands to
	// inspect its engine, which is gone, and none of its emulators' dying
	// words after the result.
	for _, stale := range []string{"inspect a table", "idemctl", "connection refused", "failed to get the next invoke"} {
		if strings.Contains(logs, stale) {
			t.Errorf("make invoke alone printed %q:\n%s", stale, logs)
		}
	}
	if !strings.Contains(logs, "REPORT RequestId:") {
		t.Errorf("make invoke alone: the function's logs are missing from stderr:\n%s", logs)
	}
	out, logs, err = run(`{"headers":{"x-error":"1"}}`)
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 2 || !strings.Contains(out, `"errorMessage":"fixture error"`) || !strings.Contains(logs, "EchoFunction failed: errorString: fixture error") {
		t.Errorf("a function error must fail make invoke with make's error status 2, the error document on stdout and the reason on stderr: %v\nstdout %s\nstderr %s", err, out, logs)
	}
}

// The template with every event type is served: a GET route with a path
// parameter answers, the Schedule event runs through the emulator pool
// with the Scheduled Event, at the override period, one log line per
// invocation, and the stream and queue mappings run (see
// testEventSourceMappings).
func TestE2EEventsTemplate(t *testing.T) {
	logs, fnout := newNotifyLog(), newNotifyLog()
	s, err := Start(context.Background(), Config{
		Root: testRoot, Template: filepath.Join(testRoot, "local", "testdata", "template-events.yaml"),
		Instances: 1, LambdaPort: -1,
		EngineEndpoint: stack.EngineEndpoint(), StateDir: t.TempDir(), ScheduleEvery: 50 * time.Millisecond,
		EventPollInterval: 50 * time.Millisecond,
		Logger:            log.New(logs, "", 0), FunctionOutput: fnout,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	tok := "Bearer " + gateway.UnsignedJWT(map[string]any{"sub": "u", "iss": "https://issuer.example.com/", "aud": "checkout-api", "exp": time.Now().Add(time.Hour).Unix()})
	req, _ := http.NewRequest(http.MethodGet, s.URL()+"/orders/42", nil)
	req.Header.Set("Authorization", tok)
	resp, err := httpClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var got events.APIGatewayV2HTTPRequest
	err = json.NewDecoder(resp.Body).Decode(&got)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 || got.RouteKey != "GET /orders/{id}" || got.PathParameters["id"] != "42" {
		t.Errorf("GET /orders/42: %d %v %+v", resp.StatusCode, err, got)
	}
	line := fnout.waitLine(t, "[ReconcileFunction#", "EVENT ")
	var ev events.EventBridgeEvent
	if err := json.Unmarshal([]byte(line[strings.Index(line, "EVENT ")+6:]), &ev); err != nil {
		t.Fatal(err)
	}
	if ev.DetailType != "Scheduled Event" || ev.Source != "aws.events" || ev.AccountID != "123456789012" ||
		len(ev.Resources) != 1 || ev.Resources[0] != "arn:aws:events:us-east-1:123456789012:rule/reconcile-orders" {
		t.Errorf("scheduled event = %s", line)
	}
	logs.waitLine(t, "schedule ReconcileFunction.Reconcile (rate(5 minutes)): invoked in", `{"ok":true}`)
	logs.waitLine(t, "schedule ReconcileFunction.ReconcileV2", "disabled")
	logs.waitLine(t, "event source ReconcileFunction.AuditMapping is disabled in the template")
	t.Run("stream", func(t *testing.T) { testStreamMapping(t, s, logs, fnout) })
	t.Run("queue", func(t *testing.T) { testQueueMapping(t, s, logs, fnout) })
}

// deliveries counts, in the consumer fixture's EVENT lines, the times each
// item (a stream record's order_id, an SQS message's body id) with prefix
// was delivered, and returns the events.
func deliveries(t *testing.T, fnout *notifyLog, prefix string) (map[string]int, []json.RawMessage) {
	t.Helper()
	n := map[string]int{}
	var evs []json.RawMessage
	for _, l := range fnout.Lines() {
		i := strings.Index(l, "EVENT ")
		if !strings.Contains(l, "[StreamFunction#") || i < 0 {
			continue
		}
		raw := json.RawMessage(l[i+6:])
		var ev struct {
			Records []struct {
				Source string `json:"eventSource"`
				Body   string `json:"body"`
				Change struct {
					Keys map[string]map[string]string
				} `json:"dynamodb"`
			}
		}
		if err := json.Unmarshal(raw, &ev); err != nil {
			t.Fatalf("EVENT line %q: %v", l, err)
		}
		for _, r := range ev.Records {
			id := r.Change.Keys["order_id"]["S"]
			if r.Source == "aws:sqs" {
				var b struct{ ID string }
				_ = json.Unmarshal([]byte(r.Body), &b)
				id = b.ID
			}
			if strings.HasPrefix(id, prefix) {
				n[strings.TrimPrefix(id, prefix)]++
				evs = append(evs, raw)
			}
		}
	}
	return n, evs
}

// eventually polls cond every 50 ms until it holds, failing after a
// minute.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after a minute: %s", what)
		}
		time.Sleep(50 * time.Millisecond) // polling the engine for the expected state, not synchronising
	}
}

// drain receives every message of a queue (deleting them), as bodies.
func drain(t *testing.T, s *Stack, queue string) []string {
	t.Helper()
	ctx := context.Background()
	c := provision.NewClients(s.EngineEndpoint(), "us-east-1").SQS
	var out []string
	for {
		r, err := c.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(s.queueURLs[queue]), MaxNumberOfMessages: 10})
		if err != nil {
			t.Fatal(err)
		}
		if len(r.Messages) == 0 {
			return out
		}
		for _, m := range r.Messages {
			out = append(out, aws.ToString(m.Body))
			if _, err := c.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(s.queueURLs[queue]), ReceiptHandle: m.ReceiptHandle}); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// The stream mapping of the fixture template: records the filter rejects
// are never delivered; a record the function reports is retried from its
// sequence number with the rest of its batch, twice (MaximumRetryAttempts
// 2), then the batch's failure record goes to StreamDLQ and the stream
// moves on; a record that crashes the function is isolated by bisection
// and alone sent to StreamDLQ, its neighbours processed. Events have
// Lambda's shape.
func testStreamMapping(t *testing.T, s *Stack, logs, fnout *notifyLog) {
	ctx := context.Background()
	db := provision.NewClients(s.EngineEndpoint(), "us-east-1").DynamoDB
	run := lambda.NewRequestID()[:8] + "-"
	put := func(id, action string) string {
		_, err := db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(s.TableName("OrdersTable")), Item: map[string]ddbtypes.AttributeValue{
			"order_id": &ddbtypes.AttributeValueMemberS{Value: run + id}, "action": &ddbtypes.AttributeValueMemberS{Value: action},
		}})
		if err != nil {
			t.Fatal(err)
		}
		return run + id
	}
	const mapping = "StreamFunction.Changes"
	failureRecords := func() []eventsource.StreamFailureRecord {
		var out []eventsource.StreamFailureRecord
		for _, b := range drain(t, s, "StreamDLQ") {
			var r eventsource.StreamFailureRecord
			if err := json.Unmarshal([]byte(b), &r); err != nil {
				t.Fatalf("StreamDLQ message %s: %v", b, err)
			}
			out = append(out, r)
		}
		return out
	}
	var dlq []eventsource.StreamFailureRecord
	waitDLQ := func(n int) {
		eventually(t, fmt.Sprintf("%d failure record(s) in StreamDLQ", n), func() bool { dlq = append(dlq, failureRecords()...); return len(dlq) >= n })
	}

	// One batch: ok1, skip (filtered out), fail (reported), ok2.
	if err := s.SetEventSourceEnabled(mapping, false); err != nil {
		t.Fatal(err)
	}
	put("ok1", "ok")
	put("skip", "skip")
	put("fail", "fail")
	put("ok2", "ok")
	if err := s.SetEventSourceEnabled(mapping, true); err != nil {
		t.Fatal(err)
	}
	waitDLQ(1)
	got, evs := deliveries(t, fnout, run)
	if want := map[string]int{"ok1": 1, "fail": 3, "ok2": 3}; !reflect.DeepEqual(got, want) {
		t.Fatalf("deliveries %v, want %v (the reported record and the rest of its batch, 1 + 2 retries)", got, want)
	}
	r := dlq[0]
	bi := r.DDBStreamBatchInfo
	if r.RequestContext.Condition != "RetryAttemptsExhausted" || r.RequestContext.ApproximateInvokeCount != 3 || bi.BatchSize != 2 ||
		r.ResponseContext.FunctionError != "" || !strings.HasPrefix(bi.StreamArn, "arn:aws:dynamodb:us-east-1:123456789012:table/OrdersTable/stream/") ||
		bi.StartSequenceNumber >= bi.EndSequenceNumber || r.RequestContext.FunctionArn != "arn:aws:lambda:us-east-1:123456789012:function:StreamFunction" {
		t.Errorf("failure record %+v", r)
	}
	logs.waitLine(t, "event source "+mapping, "1 reported; retry 1 of the 2 record(s)")
	logs.waitLine(t, "event source "+mapping, "RetryAttemptsExhausted: failure record of 2 record(s)", "sent to StreamDLQ")

	var ev events.DynamoDBEvent
	if err := json.Unmarshal(evs[0], &ev); err != nil {
		t.Fatal(err)
	}
	rec := ev.Records[0]
	if rec.EventSource != "aws:dynamodb" || rec.EventName != "INSERT" || rec.AWSRegion != "us-east-1" || rec.EventSourceArn != bi.StreamArn ||
		rec.Change.Keys["order_id"].String() != run+"ok1" || rec.Change.NewImage["action"].String() != "ok" || rec.Change.OldImage != nil ||
		rec.Change.StreamViewType != "NEW_AND_OLD_IMAGES" || rec.Change.SequenceNumber == "" || time.Since(rec.Change.ApproximateCreationDateTime.Time) > time.Hour {
		t.Errorf("stream event %s", evs[0])
	}

	// One batch: ok3, crash (the function exits), ok4: bisected until
	// the crashing record is alone, which then exhausts its retries.
	restarts := s.Restarts("StreamFunction")
	if err := s.SetEventSourceEnabled(mapping, false); err != nil {
		t.Fatal(err)
	}
	put("ok3", "ok")
	put("crash", "crash")
	put("ok4", "ok")
	if err := s.SetEventSourceEnabled(mapping, true); err != nil {
		t.Fatal(err)
	}
	waitDLQ(2)
	want := map[string]int{"ok1": 1, "fail": 3, "ok2": 3, "ok3": 3, "crash": 6, "ok4": 3}
	eventually(t, "ok4 delivered after the crash's failure record", func() bool { got, _ = deliveries(t, fnout, run); return got["ok4"] == 3 })
	if !reflect.DeepEqual(got, want) {
		t.Errorf("deliveries %v, want %v ([ok3 crash ok4] [ok3 crash] [ok3] [crash ok4] [crash] x3 [ok4])", got, want)
	}
	r, bi = dlq[1], dlq[1].DDBStreamBatchInfo
	if r.RequestContext.Condition != "RetryAttemptsExhausted" || r.ResponseContext.FunctionError != "Unhandled" || bi.BatchSize != 1 ||
		bi.StartSequenceNumber != bi.EndSequenceNumber || r.RequestContext.ApproximateInvokeCount != 4 {
		t.Errorf("failure record %+v, want the crashing record alone", r)
	}
	if n := s.Restarts("StreamFunction") - restarts; n != 6 {
		t.Errorf("%d emulator restarts, want one per crash (6)", n)
	}
	logs.waitLine(t, "event source "+mapping, "function error", "bisect: retrying the first 2")
}

// The queue mapping of the fixture template: a message the filter
// rejects is deleted undelivered; a reported message comes back after the
// visibility timeout (1 s) while the rest of its batch is deleted, and
// after maxReceiveCount (2) receives the queue's redrive policy moves it
// to JobsDLQ.
func testQueueMapping(t *testing.T, s *Stack, logs, fnout *notifyLog) {
	ctx := context.Background()
	c := provision.NewClients(s.EngineEndpoint(), "us-east-1").SQS
	run := lambda.NewRequestID()[:8] + "-"
	const mapping = "StreamFunction.Jobs"
	if err := s.SetEventSourceEnabled(mapping, false); err != nil {
		t.Fatal(err)
	}
	for _, m := range []struct{ id, action string }{{"ok", "ok"}, {"skip", "skip"}, {"fail", "fail"}} {
		_, err := c.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(s.queueURLs["JobsQueue"]),
			MessageBody: aws.String(fmt.Sprintf(`{"id":%q,"action":%q}`, run+m.id, m.action)),
			MessageAttributes: map[string]sqstypes.MessageAttributeValue{
				"kind": {DataType: aws.String("String"), StringValue: aws.String("job")},
			}})
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := s.SetEventSourceEnabled(mapping, true); err != nil {
		t.Fatal(err)
	}
	var dead []string
	eventually(t, "the failing message in JobsDLQ", func() bool { dead = append(dead, drain(t, s, "JobsDLQ")...); return len(dead) > 0 })
	if len(dead) != 1 || !strings.Contains(dead[0], run+"fail") {
		t.Fatalf("JobsDLQ holds %v, want the failing message", dead)
	}
	got, evs := deliveries(t, fnout, run)
	if want := map[string]int{"ok": 1, "fail": 2}; !reflect.DeepEqual(got, want) {
		t.Errorf("deliveries %v, want %v", got, want)
	}
	if left := drain(t, s, "JobsQueue"); len(left) != 0 {
		t.Errorf("JobsQueue still holds %v", left)
	}
	logs.waitLine(t, "event source "+mapping, "2 message(s) (1 filtered out and deleted)", "1 reported, left to come back after the visibility timeout (1s); 1 deleted")
	var ev events.SQSEvent
	if err := json.Unmarshal(evs[0], &ev); err != nil {
		t.Fatal(err)
	}
	m := ev.Records[0]
	if m.EventSource != "aws:sqs" || m.EventSourceARN != "arn:aws:sqs:us-east-1:123456789012:jobs" || m.AWSRegion != "us-east-1" ||
		m.ReceiptHandle == "" || m.MessageId == "" || m.Attributes["ApproximateReceiveCount"] != "1" ||
		m.MessageAttributes["kind"].StringValue == nil || *m.MessageAttributes["kind"].StringValue != "job" {
		t.Errorf("sqs event %s", evs[0])
	}
}

// API Gateway fidelity: a body that is not UTF-8 arrives base64-encoded,
// byte for byte; an event over Lambda's 6 MB invoke limit gets API
// Gateway's 413; the REPORT line gives the runtime's peak memory.
func TestE2EFidelity(t *testing.T) {
	raw := "caf\xe9 \xff\xfe"
	resp, body := do(t, "POST", "/open/utf8", raw, map[string]string{"Content-Type": "text/plain"})
	var ev events.APIGatewayV2HTTPRequest
	if err := json.Unmarshal(body, &ev); err != nil || resp.StatusCode != 200 {
		t.Fatalf("%d %v %s", resp.StatusCode, err, body)
	}
	got, err := base64.StdEncoding.DecodeString(ev.Body)
	if !ev.IsBase64Encoded || err != nil || string(got) != raw {
		t.Errorf("invalid UTF-8 body reached the function as %q (base64 %v)", ev.Body, ev.IsBase64Encoded)
	}
	resp, body = do(t, "POST", "/open/big", strings.Repeat("x", lambda.MaxInvokePayload), map[string]string{"Content-Type": "text/plain"})
	if resp.StatusCode != 413 || strings.TrimSpace(string(body)) != `{"message":"Request Entity Too Large"}` {
		t.Errorf("over the invoke limit: %d %s", resp.StatusCode, body)
	}
	var report string
	for _, l := range fnOutput.Lines() {
		if strings.Contains(l, "[EchoFunction#") && strings.Contains(l, "REPORT RequestId:") {
			report = l
		}
	}
	i := strings.Index(report, "Max Memory Used: ")
	if i < 0 {
		t.Fatalf("no REPORT line of EchoFunction in the output")
	}
	mb, err := strconv.Atoi(strings.Fields(report[i+len("Max Memory Used: "):])[0])
	if err != nil || mb <= 0 || mb >= 512 || !strings.Contains(report, "Memory Size: 512 MB") {
		t.Errorf("REPORT line %q: want the runtime's peak memory, not the 512 MB memory size", report)
	}
}

// Persistent mode: the engine's data survives a restart of the stack.
func TestPersistentEngineAcrossRestarts(t *testing.T) {
	dir := t.TempDir()
	tpl := filepath.Join(dir, "template.yaml")
	if err := os.WriteFile(tpl, []byte(`Resources:
  KeptTable:
    Type: AWS::DynamoDB::Table
    Properties:
      AttributeDefinitions: [{AttributeName: id, AttributeType: S}]
      KeySchema: [{AttributeName: id, KeyType: HASH}]
      TimeToLiveSpecification: {AttributeName: expires_at, Enabled: true}
`), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	logs := newNotifyLog()
	start := func() *Stack {
		s, err := Start(ctx, Config{Root: testRoot, Template: tpl, Persist: true, Port: -1, LambdaPort: -1,
			StateDir: filepath.Join(dir, "state"), Logger: log.New(logs, "", 0)})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	key := func(id string) map[string]ddbtypes.AttributeValue {
		return map[string]ddbtypes.AttributeValue{"id": &ddbtypes.AttributeValueMemberS{Value: id}}
	}
	s1 := start()
	c := provision.NewClients(s1.EngineEndpoint(), "us-east-1").DynamoDB
	for _, id := range []string{"kept", "deleted"} {
		if _, err := c.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String("KeptTable"), Item: map[string]ddbtypes.AttributeValue{
			"id": &ddbtypes.AttributeValueMemberS{Value: id}, "v": &ddbtypes.AttributeValueMemberS{Value: "first"}}}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: aws.String("KeptTable"), Key: key("deleted")}); err != nil {
		t.Fatal(err)
	}
	// A write whose condition fails changes nothing, before or after.
	_, err := c.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String("KeptTable"), ConditionExpression: aws.String("attribute_not_exists(id)"),
		Item: map[string]ddbtypes.AttributeValue{"id": &ddbtypes.AttributeValueMemberS{Value: "kept"}, "v": &ddbtypes.AttributeValueMemberS{Value: "second"}}})
	var ccf *ddbtypes.ConditionalCheckFailedException
	if !errors.As(err, &ccf) {
		t.Fatalf("conditional put: %v", err)
	}
	if err := s1.Close(); err != nil {
		t.Fatal(err)
	}

	s2 := start()
	defer s2.Close()
	c = provision.NewClients(s2.EngineEndpoint(), "us-east-1").DynamoDB
	got, err := c.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String("KeptTable"), Key: key("kept"), ConsistentRead: aws.Bool(true)})
	if err != nil {
		t.Fatal(err)
	}
	if v, ok := got.Item["v"].(*ddbtypes.AttributeValueMemberS); !ok || v.Value != "first" {
		t.Errorf("after a restart the item is %v, want v=first", got.Item)
	}
	got, err = c.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String("KeptTable"), Key: key("deleted"), ConsistentRead: aws.Bool(true)})
	if err != nil || got.Item != nil {
		t.Errorf("a deleted item came back: %v %v", got.Item, err)
	}
	logs.waitLine(t, "table KeptTable reused", "TTL expires_at")
}

// Hot reload: in a temporary copy of a fixture function, an edit of an
// in-module package it imports is rebuilt and swapped: the next request is
// served by the new code while a request in flight completes on the old
// one, and the engine and its items are untouched; a build that fails
// keeps the old code serving and reports the compiler's error.
func TestHotReload(t *testing.T) {
	root := t.TempDir()
	for _, f := range []string{"go.mod", "go.sum", "local/motoserver.py",
		"local/testdata/functions/reload/main.go", "local/testdata/functions/reload/version/version.go"} {
		copyFile(t, filepath.Join(testRoot, f), filepath.Join(root, f))
	}
	writeFile(t, filepath.Join(root, "template.yaml"), `Resources:
  ReloadFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: local/testdata/functions/reload/
      Handler: bootstrap
      Timeout: 30
      Events:
        Get: {Type: HttpApi, Properties: {Path: /version, Method: GET}}
  ItemsTable:
    Type: AWS::DynamoDB::Table
    Properties:
      AttributeDefinitions: [{AttributeName: id, AttributeType: S}]
      KeySchema: [{AttributeName: id, KeyType: HASH}]
`)
	py, err := localddb.Python(testRoot) // the repository's moto, wherever it is installed
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("PYTHON", py)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	logs := newNotifyLog()
	s, err := Start(ctx, Config{Root: root, Instances: 1, LambdaPort: -1, Watch: true, WatchInterval: -1,
		StateDir: filepath.Join(root, ".dev"), Logger: log.New(logs, "", 0)})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	get := func(query string) string {
		resp, err := httpClient.Get(s.URL() + "/version" + query)
		if err != nil {
			t.Error(err)
			return ""
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	db := provision.NewClients(s.EngineEndpoint(), "us-east-1").DynamoDB
	item := map[string]ddbtypes.AttributeValue{"id": &ddbtypes.AttributeValueMemberS{Value: "survivor"}}
	if _, err := db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String("ItemsTable"), Item: item}); err != nil {
		t.Fatal(err)
	}
	if v := get(""); v != "v1" {
		t.Fatalf("before the edit: %q", v)
	}
	if r := s.Poll(ctx); len(r) != 0 {
		t.Fatalf("nothing changed, yet %+v", r)
	}

	// A request held in flight on the old build.
	started, release := make(chan struct{}), make(chan struct{})
	hold := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/started" {
			close(started)
			return
		}
		<-release
	}))
	defer hold.Close()
	held := make(chan string, 1)
	go func() { held <- get("?hold=" + hold.URL) }()
	<-started

	versionGo := filepath.Join(root, "local/testdata/functions/reload/version/version.go")
	writeFile(t, versionGo, "package version\n\n// Version is edited by the test.\nconst Version = \"v2-edited\"\n")
	if r := s.Poll(ctx); len(r) != 0 {
		t.Fatalf("the first poll after an edit must wait for it to settle, got %+v", r)
	}
	r := s.Poll(ctx)
	if len(r) != 1 || r[0].Function != "ReloadFunction" || r[0].Err != nil {
		t.Fatalf("reload = %+v", r)
	}
	if v := get(""); v != "v2-edited" {
		t.Errorf("after the rebuild a new request got %q, want the new code's v2-edited", v)
	}
	close(release)
	if v := <-held; v != "v1" {
		t.Errorf("the request in flight during the rebuild got %q, want the old code's v1", v)
	}
	logs.waitLine(t, "reload: ReloadFunction rebuilt and swapped")

	// A build that fails: the compiler's error is printed, the old code serves.
	writeFile(t, versionGo, "package version\n\nconst Version = \n")
	s.Poll(ctx)
	r = s.Poll(ctx)
	var be *lambda.BuildError
	if len(r) != 1 || !errors.As(r[0].Err, &be) || !strings.Contains(be.Output, "version.go") {
		t.Fatalf("failed rebuild = %+v", r)
	}
	logs.waitLine(t, "reload: ReloadFunction does not build; the previous build keeps serving")
	logs.waitLine(t, "version.go:4:1: syntax error")
	if v := get(""); v != "v2-edited" {
		t.Errorf("after a failed build: %q, want the last good build's v2-edited", v)
	}

	got, err := db.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String("ItemsTable"), Key: item, ConsistentRead: aws.Bool(true)})
	if err != nil || got.Item == nil {
		t.Errorf("the engine's item did not survive the reloads: %v %v", got, err)
	}
	if st := s.engine.ProcessState(); st != nil {
		t.Errorf("the engine was restarted: %v", st)
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, to, string(b))
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}
