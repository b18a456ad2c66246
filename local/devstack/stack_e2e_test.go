package devstack

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/acme/idemcheckout/local/devstack/gateway"
	"github.com/acme/idemcheckout/local/devstack/lambda"
	"github.com/acme/idemcheckout/local/devstack/provision"
	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// One stack for the whole test binary, started exactly as `make dev` does
// (devstack.Start) but on a free port, from the fixture template.
var (
	stack      *Stack
	stackState string
	testRoot   string
	// fnOutput holds the functions' output lines of the shared stack.
	fnOutput = &lineLog{}
)

// lineLog collects written lines, safe for concurrent writers.
type lineLog struct {
	mu    sync.Mutex
	lines []string
	tee   io.Writer
}

func (l *lineLog) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for line := range strings.Lines(string(b)) {
		l.lines = append(l.lines, strings.TrimRight(line, "\n"))
	}
	if l.tee != nil {
		_, _ = l.tee.Write(b)
	}
	return len(b), nil
}

// Lines returns a copy of the lines so far.
func (l *lineLog) Lines() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.lines...)
}

func (l *lineLog) String() string { return strings.Join(l.Lines(), "\n") }

const e2eInstances = 3

func TestMain(m *testing.M) {
	flag.Parse()
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	root, err := filepath.Abs("../..")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	testRoot = root
	stackState, err = os.MkdirTemp("", "devstack-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	defer os.RemoveAll(stackState)
	var out io.Writer = io.Discard
	if testing.Verbose() {
		out = os.Stderr
		fnOutput.tee = os.Stderr
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	stack, err = Start(ctx, Config{
		Root:      root,
		Template:  filepath.Join(root, "local", "testdata", "template.yaml"),
		Port:      0,
		Instances: e2eInstances,
		StateDir:  stackState,
		Logger:    log.New(out, "devstack: ", log.Lmicroseconds),
		// FunctionOutput is what the REPORT test reads.
		FunctionOutput: fnOutput,
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "devstack e2e: cannot start the stack:", err)
		return 2
	}
	code := m.Run()
	if err := stack.Close(); err != nil {
		fmt.Fprintln(os.Stderr, "close:", err)
		if code == 0 {
			code = 1
		}
	}
	return code
}

var httpClient = &http.Client{Timeout: 30 * time.Second}

func token(t *testing.T, claims map[string]any) string {
	t.Helper()
	base := map[string]any{"sub": "user-1", "aud": "checkout-local", "exp": time.Now().Add(time.Hour).Unix(), "tenant": "t1", "scope": "orders:write"}
	for k, v := range claims {
		base[k] = v
	}
	return "Bearer " + gateway.UnsignedJWT(base)
}

func do(t *testing.T, method, path, body string, hdr map[string]string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, stack.URL()+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

func TestE2EEchoV2(t *testing.T) {
	resp, body := do(t, "POST", "/echo/42?a=1&a=2", `{"x":1}`, map[string]string{
		"Authorization": token(t, nil), "Content-Type": "application/json", "Cookie": "c1=v1; c2=v2", "Idempotency-Key": "k-1",
	})
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	if got := resp.Header.Get("X-Function-Name"); got != "EchoFunction" {
		t.Errorf("AWS_LAMBDA_FUNCTION_NAME seen by the function = %q", got)
	}
	var ev events.APIGatewayV2HTTPRequest
	if err := json.Unmarshal(body, &ev); err != nil {
		t.Fatalf("%v: %s", err, body)
	}
	rc := ev.RequestContext
	if ev.Version != "2.0" || ev.RouteKey != "ANY /echo/{id}" || ev.RawPath != "/echo/42" || ev.RawQueryString != "a=1&a=2" ||
		ev.QueryStringParameters["a"] != "1,2" || ev.PathParameters["id"] != "42" || ev.Body != `{"x":1}` || ev.IsBase64Encoded {
		t.Errorf("event = %s", body)
	}
	if ev.Headers["idempotency-key"] != "k-1" || len(ev.Cookies) != 2 || rc.HTTP.Method != "POST" || rc.HTTP.Path != "/echo/42" || rc.HTTP.SourceIP != "127.0.0.1" {
		t.Errorf("event = %s", body)
	}
	if d := time.Since(time.UnixMilli(rc.TimeEpoch)); d < 0 || d > time.Minute {
		t.Errorf("timeEpoch %d is not a millisecond epoch of now", rc.TimeEpoch)
	}
	if rc.Authorizer == nil || rc.Authorizer.JWT == nil || rc.Authorizer.JWT.Claims["tenant"] != "t1" || rc.Authorizer.JWT.Claims["sub"] != "user-1" ||
		len(rc.Authorizer.JWT.Scopes) != 1 || rc.Authorizer.JWT.Scopes[0] != "orders:write" {
		t.Errorf("authorizer = %+v", rc.Authorizer)
	}
	// A fresh request id per request.
	_, body2 := do(t, "POST", "/echo/43", "", map[string]string{"Authorization": token(t, nil)})
	var ev2 events.APIGatewayV2HTTPRequest
	if err := json.Unmarshal(body2, &ev2); err != nil {
		t.Fatal(err)
	}
	if ev2.RequestContext.RequestID == "" || ev2.RequestContext.RequestID == rc.RequestID {
		t.Errorf("request ids %q, %q", rc.RequestID, ev2.RequestContext.RequestID)
	}
}

func TestE2EAuthorizer(t *testing.T) {
	for name, hdr := range map[string]map[string]string{
		"missing":   nil,
		"malformed": {"Authorization": "Bearer abc"},
		"expired":   {"Authorization": token(t, map[string]any{"exp": time.Now().Add(-time.Minute).Unix()})},
		"audience":  {"Authorization": token(t, map[string]any{"aud": "someone-else"})},
	} {
		resp, body := do(t, "POST", "/echo/1", "", hdr)
		if resp.StatusCode != 401 || strings.TrimSpace(string(body)) != `{"message":"Unauthorized"}` {
			t.Errorf("%s: %d %s", name, resp.StatusCode, body)
		}
	}
	// Auth.Authorizer: NONE opens a route of an API with a default authorizer.
	if resp, body := do(t, "GET", "/open/x", "", nil); resp.StatusCode != 200 {
		t.Errorf("open route: %d %s", resp.StatusCode, body)
	}
	if resp, _ := do(t, "GET", "/nowhere", "", nil); resp.StatusCode != 404 {
		t.Errorf("unknown route: %d", resp.StatusCode)
	}
}

func TestE2EEchoV1(t *testing.T) {
	resp, body := do(t, "POST", "/v1/echo/7?q=1&q=2", "hello", map[string]string{"Content-Type": "text/plain", "X-Multi": "a"})
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	var ev events.APIGatewayProxyRequest
	if err := json.Unmarshal(body, &ev); err != nil {
		t.Fatal(err)
	}
	if ev.Resource != "/v1/echo/{id}" || ev.Path != "/v1/echo/7" || ev.HTTPMethod != "POST" || ev.Body != "hello" ||
		ev.PathParameters["id"] != "7" || len(ev.MultiValueQueryStringParameters["q"]) != 2 || ev.MultiValueHeaders["X-Multi"][0] != "a" ||
		ev.RequestContext.RequestTimeEpoch == 0 || ev.RequestContext.RequestID == "" {
		t.Errorf("event = %s", body)
	}
}

func TestE2EResponseShapes(t *testing.T) {
	resp, body := do(t, "GET", "/open/bin", "", map[string]string{"X-Cookies": "1"})
	if resp.StatusCode != 201 || string(body) != "\x00\x01\x02\xff" || len(resp.Header.Values("Set-Cookie")) != 2 ||
		len(resp.Header.Values("X-Multi")) != 2 || resp.Header.Get("Idempotent-Replayed") != "true" {
		t.Errorf("envelope response: %d %v %q", resp.StatusCode, resp.Header, body)
	}
	resp, body = do(t, "GET", "/open/simple", "", map[string]string{"X-Simple": "1"})
	if resp.StatusCode != 200 || string(body) != `{"hello":"world"}` || resp.Header.Get("Content-Type") != "application/json" {
		t.Errorf("simple response: %d %v %q", resp.StatusCode, resp.Header, body)
	}
}

func TestE2EFunctionFailures(t *testing.T) {
	before := stack.Restarts("EchoFunction")
	for _, h := range []string{"X-Crash", "X-Panic", "X-Error"} {
		resp, body := do(t, "GET", "/open/fail", "", map[string]string{h: "1"})
		if resp.StatusCode != 502 || strings.TrimSpace(string(body)) != `{"message":"Internal server error"}` {
			t.Errorf("%s: %d %s", h, resp.StatusCode, body)
		}
		// The stack keeps serving.
		if resp, body := do(t, "GET", "/open/after", "", nil); resp.StatusCode != 200 {
			t.Errorf("after %s: %d %s", h, resp.StatusCode, body)
		}
	}
	if got := stack.Restarts("EchoFunction"); got < before+1 {
		t.Errorf("a crashed runtime's instance was not replaced (restarts %d -> %d)", before, got)
	}
}

func TestE2ETimeout(t *testing.T) {
	before := stack.Restarts("SlowFunction")
	start := time.Now()
	resp, body := do(t, "GET", "/slow?sleep=1", "", nil)
	took := time.Since(start)
	if resp.StatusCode != 502 || strings.TrimSpace(string(body)) != `{"message":"Internal server error"}` {
		t.Errorf("timeout: %d %s", resp.StatusCode, body)
	}
	if took < time.Second || took > 5*time.Second {
		t.Errorf("timeout answered after %s, want just over the 1s template Timeout", took)
	}
	if got := stack.Restarts("SlowFunction"); got != before+1 {
		t.Errorf("timed-out instance not replaced: restarts %d -> %d", before, got)
	}
	// All instances serve again (the replacement joins the pool when ready).
	for i := 0; i < e2eInstances*2; i++ {
		if resp, body := do(t, "GET", "/slow", "", nil); resp.StatusCode != 200 {
			t.Fatalf("after timeout: %d %s", resp.StatusCode, body)
		}
	}
}

func TestE2EParallel(t *testing.T) {
	const n = 20
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequest("POST", fmt.Sprintf("%s/echo/%d", stack.URL(), i), strings.NewReader(fmt.Sprint(i)))
			req.Header.Set("Authorization", token(t, nil))
			resp, err := httpClient.Do(req)
			if err != nil {
				errs <- err
				return
			}
			defer resp.Body.Close()
			var ev events.APIGatewayV2HTTPRequest
			if err := json.NewDecoder(resp.Body).Decode(&ev); err != nil || resp.StatusCode != 200 || ev.PathParameters["id"] != fmt.Sprint(i) || ev.Body != fmt.Sprint(i) {
				errs <- fmt.Errorf("request %d: status %d, err %v, event %+v", i, resp.StatusCode, err, ev.PathParameters)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestE2EDynamoDB(t *testing.T) {
	resp, body := do(t, "PUT", "/items/abc", "payload", map[string]string{"Authorization": token(t, nil)})
	if resp.StatusCode != 201 || string(body) != "ItemsTable/abc" {
		t.Fatalf("write: %d %s", resp.StatusCode, body)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := provision.NewClients(stack.EngineEndpoint(), "us-east-1").DynamoDB
	out, err := c.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String("ItemsTable"), Key: map[string]types.AttributeValue{"id": &types.AttributeValueMemberS{Value: "abc"}}})
	if err != nil {
		t.Fatal(err)
	}
	if v, ok := out.Item["body"].(*types.AttributeValueMemberS); !ok || v.Value != "payload" {
		t.Errorf("item = %v", out.Item)
	}
	ttl, err := c.DescribeTimeToLive(ctx, &dynamodb.DescribeTimeToLiveInput{TableName: aws.String("ItemsTable")})
	if err != nil {
		t.Fatal(err)
	}
	if d := ttl.TimeToLiveDescription; d == nil || d.TimeToLiveStatus != types.TimeToLiveStatusEnabled || aws.ToString(d.AttributeName) != "expires_at" {
		t.Errorf("TTL = %+v", ttl.TimeToLiveDescription)
	}
	named, err := c.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String("named-dev")})
	if err != nil {
		t.Fatal(err)
	}
	if ks := named.Table.KeySchema; len(ks) != 2 || aws.ToString(ks[1].AttributeName) != "sk" || ks[1].KeyType != types.KeyTypeRange {
		t.Errorf("named-dev key schema = %+v", ks)
	}
	if stack.TableName("NamedTable") != "named-dev" {
		t.Errorf("TableName(NamedTable) = %q", stack.TableName("NamedTable"))
	}
}

func TestE2ESecondStackFailsFast(t *testing.T) {
	start := time.Now()
	s2, err := Start(context.Background(), Config{Root: testRoot, Template: filepath.Join(testRoot, "local", "testdata", "template.yaml"), StateDir: stackState, Logger: log.New(io.Discard, "", 0)})
	if err == nil {
		s2.Close()
		t.Fatal("a second stack on the same state dir started")
	}
	if !errors.Is(err, ErrAlreadyRunning) || !strings.Contains(err.Error(), fmt.Sprint(os.Getpid())) {
		t.Errorf("err = %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("took %s to refuse", d)
	}
	// The same for a busy port.
	port := stack.ln.Addr().(interface{ String() string }).String()
	var p int
	fmt.Sscanf(port[strings.LastIndexByte(port, ':')+1:], "%d", &p)
	_, err = Start(context.Background(), Config{Root: testRoot, Template: filepath.Join(testRoot, "local", "testdata", "template.yaml"), Port: p, StateDir: t.TempDir(), Logger: log.New(io.Discard, "", 0)})
	if err == nil || !strings.Contains(err.Error(), "in use") {
		t.Errorf("busy port: err = %v", err)
	}
}

// A second stack on the first one's engine (as with AWS_ENDPOINT_URL_DYNAMODB)
// reuses the existing tables, and Close leaves no process behind.
func TestE2EExternalEngineAndCleanup(t *testing.T) {
	before := map[int]bool{}
	for _, p := range lambda.Descendants(os.Getpid()) {
		before[p] = true
	}
	var logs strings.Builder
	var mu sync.Mutex
	s2, err := Start(context.Background(), Config{
		Root: testRoot, Template: filepath.Join(testRoot, "local", "testdata", "template.yaml"),
		EngineEndpoint: stack.EngineEndpoint(), Instances: 1, StateDir: t.TempDir(),
		Logger: log.New(writerFunc(func(b []byte) (int, error) { mu.Lock(); defer mu.Unlock(); return logs.Write(b) }), "", 0),
	})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := httpClient.Get(s2.URL() + "/slow")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("second stack: %d", resp.StatusCode)
	}
	var mine []int
	for _, p := range lambda.Descendants(os.Getpid()) {
		if !before[p] {
			mine = append(mine, p)
		}
	}
	if len(mine) < 3 {
		t.Errorf("expected emulator processes of the second stack, found %v", mine)
	}
	if err := s2.Close(); err != nil {
		t.Fatal(err)
	}
	for _, p := range mine {
		if alive(p) {
			t.Errorf("process %d survived Close", p)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if !strings.Contains(logs.String(), "table ItemsTable reused") {
		t.Errorf("tables not reused:\n%s", logs.String())
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(b []byte) (int, error) { return f(b) }

// alive reports whether pid is a live (non-zombie) process.
func alive(pid int) bool {
	if err := syscall.Kill(pid, 0); err != nil {
		return false
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || !strings.HasPrefix(strings.TrimSpace(s[i+1:]), "Z")
}

// TestE2ECORS: the fixture's HttpApi has a CorsConfiguration (origins from
// a !Split parameter). Through the running stack, a preflight is answered
// by the gateway (204, no token needed), an ANY route takes its own
// preflight (the authorizer's 401), and a function's answer carries the
// configured CORS headers for an allowed origin, its own CORS headers
// replaced, and none for another origin.
func TestE2ECORS(t *testing.T) {
	const origin = "http://127.0.0.1:4000"
	resp, body := do(t, "OPTIONS", "/items/1", "", map[string]string{
		"Origin": origin, "Access-Control-Request-Method": "PUT", "Access-Control-Request-Headers": "authorization,content-type",
	})
	if resp.StatusCode != 204 || len(body) != 0 || resp.Header.Get("Access-Control-Allow-Origin") != origin ||
		resp.Header.Get("Access-Control-Allow-Methods") != "GET,POST,PUT" || resp.Header.Get("Access-Control-Allow-Headers") != "Authorization,Content-Type" ||
		resp.Header.Get("Access-Control-Max-Age") != "300" || resp.Header.Get("Access-Control-Expose-Headers") != "" {
		t.Errorf("preflight: %d %v %q", resp.StatusCode, resp.Header, body)
	}
	resp, _ = do(t, "OPTIONS", "/items/1", "", map[string]string{"Origin": "https://evil.example", "Access-Control-Request-Method": "PUT"})
	if resp.StatusCode != 204 || resp.Header.Get("Access-Control-Allow-Origin") != "" || resp.Header.Get("Access-Control-Allow-Methods") != "" {
		t.Errorf("refused preflight: %d %v", resp.StatusCode, resp.Header)
	}
	resp, _ = do(t, "OPTIONS", "/echo/1", "", map[string]string{"Origin": origin, "Access-Control-Request-Method": "POST"})
	if resp.StatusCode != 401 || resp.Header.Get("Access-Control-Allow-Origin") != origin {
		t.Errorf("preflight to an ANY route with an authorizer: %d %v, want its 401 with CORS headers", resp.StatusCode, resp.Header)
	}
	resp, body = do(t, "POST", "/open/x", "", map[string]string{"Origin": origin, "X-Cors": "1"})
	if resp.StatusCode != 200 || string(body) != "cors" || resp.Header.Get("X-Function-Name") != "EchoFunction" ||
		resp.Header.Get("Access-Control-Allow-Origin") != origin || resp.Header.Get("Access-Control-Expose-Headers") != "X-Function-Name,Idempotent-Replayed" ||
		resp.Header.Get("Access-Control-Allow-Credentials") != "" {
		t.Errorf("function answer to an allowed origin: %d %v %q", resp.StatusCode, resp.Header, body)
	}
	resp, body = do(t, "POST", "/open/x", "", map[string]string{"Origin": "https://evil.example", "X-Cors": "1"})
	if resp.StatusCode != 200 || string(body) != "cors" {
		t.Fatalf("function answer to another origin: %d %q", resp.StatusCode, body)
	}
	for k := range resp.Header {
		if strings.HasPrefix(k, "Access-Control-") {
			t.Errorf("function answer to another origin carries %s: %v", k, resp.Header)
		}
	}
	resp, _ = do(t, "POST", "/echo/1", "", map[string]string{"Origin": origin})
	if resp.StatusCode != 401 || resp.Header.Get("Access-Control-Allow-Origin") != origin {
		t.Errorf("the authorizer's 401 to an allowed origin: %d %v", resp.StatusCode, resp.Header)
	}
}
