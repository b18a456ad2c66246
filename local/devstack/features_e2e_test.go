package devstack

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/acme/idemcheckout/internal/localddb"
	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	lambdatypes "github.com/aws/aws-sdk-go-v2/service/lambda/types"
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

// The template with the event types other branches add (GET routes with
// path parameters, schedules, stream and queue consumers) resolves: every
// reference keeps its resource and gets its local value.
func TestTemplateWithEveryEventType(t *testing.T) {
	tm, err := LoadTemplate(eventsTemplate, nil, "eu-west-1")
	if err != nil {
		t.Fatal(err)
	}
	routes := routesOf(t, tm, "GetOrderFunction")
	if g := routes["GetOrder"]; g == nil || g.RouteKey() != "GET /orders/{id}" || g.Authorizer == nil || g.Authorizer.JWT.Issuer != "https://issuer.example.com/" {
		t.Errorf("GET route = %+v", g)
	}
	rec := fn(t, tm, "ReconcileFunction")
	if s := rec.Events[0].Schedule; s.Expression != "rate(5 minutes)" {
		t.Errorf("schedule = %+v", s)
	}
	st := fn(t, tm, "StreamFunction")
	ds, q := st.Events[0].Stream, st.Events[1].Queue
	if ds.Stream.Resource != "OrdersTable" || ds.Stream.Value != "arn:aws:dynamodb:eu-west-1:123456789012:table/OrdersTable/stream/local" ||
		ds.OnFailure.Resource != "StreamDLQ" || ds.OnFailure.Value != "arn:aws:sqs:eu-west-1:123456789012:StreamDLQ" {
		t.Errorf("stream event = %+v", ds)
	}
	if q.Queue.Resource != "JobsQueue" || q.Queue.Value != "arn:aws:sqs:eu-west-1:123456789012:jobs" {
		t.Errorf("queue event = %+v", q)
	}
	if env := st.EnvStrings(); env["ORDERS_TABLE"] != "OrdersTable" {
		t.Errorf("env = %v", env)
	}
}

// make event's samples decode as the events the Lambda Go library reads.
func TestSampleEvents(t *testing.T) {
	tm, err := LoadTemplate(eventsTemplate, nil, "")
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
	b, _ = SampleEvent(tm, SampleSQS, "", "hello", now)
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
	lc := lambda.NewFromConfig(aws.Config{
		Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider("test", "test", ""), RetryMaxAttempts: 1,
	}, func(o *lambda.Options) { o.BaseEndpoint = aws.String(stack.LambdaURL()) })

	out, err := lc.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("EchoFunction"), Payload: []byte(`{"headers":{"x-simple":"1"}}`)})
	if err != nil {
		t.Fatal(err)
	}
	if out.StatusCode != 200 || out.FunctionError != nil || string(out.Payload) != `{"hello":"world"}` || aws.ToString(out.ExecutedVersion) != "$LATEST" {
		t.Errorf("invoke = %d %v %s", out.StatusCode, out.FunctionError, out.Payload)
	}
	// By ARN, and a function error: 200 with X-Amz-Function-Error.
	out, err = lc.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("arn:aws:lambda:us-east-1:123456789012:function:EchoFunction"), Payload: []byte(`{"headers":{"x-error":"1"}}`)})
	if err != nil {
		t.Fatal(err)
	}
	if out.StatusCode != 200 || aws.ToString(out.FunctionError) != "Unhandled" || !bytes.Contains(out.Payload, []byte("fixture error")) {
		t.Errorf("function error = %d %v %s", out.StatusCode, aws.ToString(out.FunctionError), out.Payload)
	}
	out, err = lc.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("EchoFunction"), InvocationType: lambdatypes.InvocationTypeEvent, Payload: []byte(`{}`)})
	if err != nil || out.StatusCode != 202 {
		t.Errorf("Event invocation: %v %+v", err, out)
	}
	out, err = lc.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("EchoFunction"), InvocationType: lambdatypes.InvocationTypeDryRun})
	if err != nil || out.StatusCode != 204 {
		t.Errorf("DryRun: %v %+v", err, out)
	}
	var nf *lambdatypes.ResourceNotFoundException
	if _, err := lc.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("Nope")}); !errors.As(err, &nf) {
		t.Errorf("unknown function: %v", err)
	}
	var big *lambdatypes.RequestTooLargeException
	huge := []byte(`"` + strings.Repeat("a", maxInvokePayload) + `"`)
	if _, err := lc.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("EchoFunction"), Payload: huge}); !errors.As(err, &big) {
		t.Errorf("oversize payload: %v", err)
	}
}

// make invoke with a stack running goes through its Lambda endpoint.
func TestE2EInvokeThroughRunningStack(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cfg := Config{Root: testRoot, Template: filepath.Join(testRoot, "local", "testdata", "template.yaml"), StateDir: stackState, Logger: log.New(io.Discard, "", 0)}
	out, err := InvokeOnce(ctx, cfg, "EchoFunction", []byte(`{"headers":{"x-simple":"1"}}`))
	if err != nil || string(out) != `{"hello":"world"}` {
		t.Errorf("invoke = %s, %v", out, err)
	}
	var fe *FunctionError
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
	out, logs, err = run(`{"headers":{"x-error":"1"}}`)
	if err == nil || !strings.Contains(out, `"errorMessage":"fixture error"`) || strings.Contains(logs, "make: ***") {
		t.Errorf("a function error must fail make invoke with the error document and no make trailer: %v\nstdout %s\nstderr %s", err, out, logs)
	}
}

// The template with every event type is served: a GET route with a path
// parameter answers, and the Schedule event runs through the emulator
// pool with the Scheduled Event, at the override period, one log line per
// invocation (the stream and queue mappings are modelled, not run).
func TestE2EEventsTemplate(t *testing.T) {
	logs, fnout := newNotifyLog(), newNotifyLog()
	s, err := Start(context.Background(), Config{
		Root: testRoot, Template: filepath.Join(testRoot, "local", "testdata", "template-events.yaml"),
		Instances: 1, LambdaPort: -1,
		EngineEndpoint: stack.EngineEndpoint(), StateDir: t.TempDir(), ScheduleEvery: 50 * time.Millisecond,
		Logger: log.New(logs, "", 0), FunctionOutput: fnout,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	tok := "Bearer " + UnsignedJWT(map[string]any{"sub": "u", "iss": "https://issuer.example.com/", "aud": "checkout-api", "exp": time.Now().Add(time.Hour).Unix()})
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
	resp, body = do(t, "POST", "/open/big", strings.Repeat("x", maxInvokePayload), map[string]string{"Content-Type": "text/plain"})
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
	c := ddbClient(s1.EngineEndpoint(), "us-east-1")
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
	c = ddbClient(s2.EngineEndpoint(), "us-east-1")
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
	db := ddbClient(s.EngineEndpoint(), "us-east-1")
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
	var be *BuildError
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
