package idemhttp_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/acme/idemcheckout/ddblocal/ddbtest"
	"github.com/acme/idemcheckout/ddblocal/localddb"
	"github.com/acme/idemcheckout/pkg/idemddb"
	"github.com/acme/idemcheckout/pkg/idemddb/apigw"
	"github.com/acme/idemcheckout/pkg/idemddb/idemhttp"
	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// engine is the package's moto server, started once in TestMain.
var engine *localddb.Engine

func TestMain(m *testing.M) { os.Exit(ddbtest.Main(m, ddbtest.StartMoto, &engine)) }

// fixture is one table on the package engine, a store on a counting
// client, and buffers catching the middleware's logs and metrics.
type fixture struct {
	raw     *dynamodb.Client
	client  *ddbtest.Client
	table   string
	store   *idemddb.Store
	logs    *ddbtest.Buffer
	metrics *ddbtest.Buffer
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	raw := engine.Client()
	f := &fixture{raw: raw, client: ddbtest.Wrap(raw), table: ddbtest.NewTable(t, raw, "id"),
		logs: &ddbtest.Buffer{}, metrics: &ddbtest.Buffer{}}
	s, err := idemddb.New(f.client, idemddb.Config{Table: f.table, Logger: slog.New(slog.NewJSONHandler(f.logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	f.store = s
	return f
}

// server serves h under pattern, wrapped by the middleware, on a loopback
// port.
func (f *fixture) server(t *testing.T, pattern string, h http.Handler, opts ...idemhttp.Option) *httptest.Server {
	t.Helper()
	opts = append([]idemhttp.Option{apigw.WithLogger(slog.New(slog.NewJSONHandler(f.logs, nil))), apigw.WithMetrics(f.metrics)}, opts...)
	mux := http.NewServeMux()
	mux.Handle(pattern, idemhttp.Middleware(f.store, opts...)(h))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

type reply struct {
	status int
	header http.Header
	body   []byte
}

// do sends one request; key "" sends no Idempotency-Key, extra headers
// are added as given ("Name: value").
func do(t *testing.T, ctx context.Context, url, key, body string, extra ...string) reply {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	for _, h := range extra {
		k, v, _ := strings.Cut(h, ": ")
		req.Header.Add(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return reply{resp.StatusCode, resp.Header, b}
}

// wantProblem checks a problem response: status, media type, type slug.
func wantProblem(t *testing.T, r reply, status int, slug string) {
	t.Helper()
	if r.status != status || r.header.Get("Content-Type") != apigw.ProblemContentType {
		t.Fatalf("got %d %q %s, want %d problem %s", r.status, r.header.Get("Content-Type"), r.body, status, slug)
	}
	var p apigw.Problem
	if err := json.Unmarshal(r.body, &p); err != nil || !strings.HasSuffix(p.Type, "/"+slug) || p.Status != status {
		t.Fatalf("problem %s (%v), want type .../%s status %d", r.body, err, slug, status)
	}
}

// binaryBody is a response body that is not valid UTF-8 nor JSON, to prove
// the replay is byte for byte.
var binaryBody = []byte{0xff, 0x00, 'o', 'k', '\n', 0xfe, '\r', '\n'}

// The contract's DynamoDB requests, as for the API Gateway wrappers: a
// first request 2 (the claim, then one transaction completing the record
// with the handler's business write), a replay 1, a duplicate in flight 1,
// a mismatch 1. The replay is the stored status, headers (repeated ones
// too) and body byte for byte, with Idempotent-Replayed: true.
func TestRequestsAndReplay(t *testing.T) {
	f := newFixture(t)
	var runs atomic.Int64
	started, release := make(chan struct{}, 1), make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		runs.Add(1)
		c, ok := idemddb.ClaimFromContext(r.Context())
		if !ok {
			http.Error(w, "no claim", 500)
			return
		}
		if r.PathValue("id") == "slow" {
			started <- struct{}{}
			<-release
		}
		c.AddWrites(types.TransactWriteItem{Put: &types.Put{TableName: aws.String(f.table),
			Item: map[string]types.AttributeValue{"id": &types.AttributeValueMemberS{Value: "order#" + c.ResourceID}}}})
		w.Header().Add("X-Multi", "a")
		w.Header().Add("X-Multi", "b")
		w.Header().Set("Date", "Mon, 01 Jan 2024 00:00:00 GMT") // dropped: not replayed as stored
		http.SetCookie(w, &http.Cookie{Name: "s", Value: "1"})
		w.WriteHeader(http.StatusCreated)
		_, _ = w.Write(binaryBody)
	})
	srv := f.server(t, "POST /orders/{id}", h)
	ctx := context.Background()

	f.client.Reset()
	first := do(t, ctx, srv.URL+"/orders/1", "k-1", `{"a":1,"b":2}`)
	if first.status != 201 || !bytes.Equal(first.body, binaryBody) || runs.Load() != 1 {
		t.Fatalf("first: %d %q, runs %d", first.status, first.body, runs.Load())
	}
	if n := f.client.Reset(); n["PutItem"] != 1 || n["TransactWriteItems"] != 1 || len(n) != 2 {
		t.Errorf("first request made %v, want one PutItem and one TransactWriteItems", n)
	}
	// The key is the same request with its JSON members in another order.
	again := do(t, ctx, srv.URL+"/orders/1", `"k-1"`, `{ "b":2, "a":1.0 }`)
	if again.status != 201 || !bytes.Equal(again.body, binaryBody) || runs.Load() != 1 {
		t.Fatalf("replay: %d %q, runs %d", again.status, again.body, runs.Load())
	}
	if again.header.Get(apigw.ReplayedHeader) != "true" || first.header.Get(apigw.ReplayedHeader) != "" {
		t.Errorf("Idempotent-Replayed: first %q, replay %q", first.header.Get(apigw.ReplayedHeader), again.header.Get(apigw.ReplayedHeader))
	}
	if got := again.header.Values("X-Multi"); len(got) != 2 || got[0] != "a" || got[1] != "b" {
		t.Errorf("replayed X-Multi %q, want [a b]", got)
	}
	if again.header.Get("Set-Cookie") != "s=1" {
		t.Errorf("replayed Set-Cookie %q", again.header.Get("Set-Cookie"))
	}
	if again.header.Get("Date") == "Mon, 01 Jan 2024 00:00:00 GMT" {
		t.Error("the stored Date was replayed; it is in the drop list")
	}
	if n := f.client.Reset(); n["PutItem"] != 1 || len(n) != 1 {
		t.Errorf("replay made %v, want one PutItem", n)
	}
	got, err := f.raw.Scan(ctx, &dynamodb.ScanInput{TableName: aws.String(f.table)})
	if err != nil || got.Count != 2 {
		t.Fatalf("table holds %d items (%v), want the record and one order", got.Count, err)
	}

	mismatch := do(t, ctx, srv.URL+"/orders/1", "k-1", `{"a":2}`)
	wantProblem(t, mismatch, 422, apigw.ProblemKeyReused)
	if n := f.client.Reset(); n["PutItem"] != 1 || len(n) != 1 || runs.Load() != 1 {
		t.Errorf("mismatch made %v, runs %d; want one PutItem, no run", n, runs.Load())
	}

	done := make(chan reply, 1)
	go func() { done <- do(t, ctx, srv.URL+"/orders/slow", "k-slow", `{}`) }()
	<-started
	f.client.Reset()
	conflict := do(t, ctx, srv.URL+"/orders/slow", "k-slow", `{}`)
	wantProblem(t, conflict, 409, apigw.ProblemKeyInUse)
	if conflict.header.Get("Retry-After") == "" {
		t.Error("409 in progress without Retry-After")
	}
	if n := f.client.Reset(); n["PutItem"] != 1 || len(n) != 1 {
		t.Errorf("conflict made %v, want one PutItem", n)
	}
	close(release)
	if r := <-done; r.status != 201 {
		t.Fatalf("the slow first request: %d %s", r.status, r.body)
	}
}

// Bad input is refused as the API Gateway wrappers refuse it, before any
// DynamoDB request and without running the handler.
func TestBadInput(t *testing.T) {
	f := newFixture(t)
	var runs atomic.Int64
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		runs.Add(1)
		w.WriteHeader(201)
	})
	srv := f.server(t, "/orders", h, apigw.WithMaxBodyBytes(16))
	ctx := context.Background()
	f.client.Reset()
	wantProblem(t, do(t, ctx, srv.URL+"/orders", "", `{}`), 400, apigw.ProblemKeyMissing)
	wantProblem(t, do(t, ctx, srv.URL+"/orders", "a b", `{}`), 400, apigw.ProblemKeyInvalid)
	wantProblem(t, do(t, ctx, srv.URL+"/orders", "k1", `{}`, "Idempotency-Key: k2"), 400, apigw.ProblemKeyInvalid)
	wantProblem(t, do(t, ctx, srv.URL+"/orders", strings.Repeat("k", 256), `{}`), 400, apigw.ProblemKeyInvalid)
	wantProblem(t, do(t, ctx, srv.URL+"/orders", "k1", strings.Repeat("x", 17)), 413, apigw.ProblemBodyTooLarge)
	if runs.Load() != 0 || f.client.Total() != 0 {
		t.Fatalf("handler runs %d, DynamoDB requests %d; want none", runs.Load(), f.client.Total())
	}
	// Other methods pass through untouched.
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/orders", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 201 || runs.Load() != 1 || f.client.Total() != 0 {
		t.Fatalf("GET: %d, runs %d, requests %d", resp.StatusCode, runs.Load(), f.client.Total())
	}
}

// A principal function that fails refuses the request with 401: the
// handler does not run and nothing is stored. A required principal that is
// anonymous gets 403. Two callers with one key are two scopes.
func TestPrincipal(t *testing.T) {
	f := newFixture(t)
	var runs atomic.Int64
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		runs.Add(1)
		_, _ = io.WriteString(w, r.Header.Get("X-Caller"))
	})
	principal := func(r *http.Request) (string, error) {
		switch c := r.Header.Get("X-Caller"); c {
		case "broken":
			return "", errors.New("token unreadable")
		case "anon":
			return "", nil
		default:
			return "user:" + c, nil
		}
	}
	srv := f.server(t, "POST /subs", h, idemhttp.WithPrincipal(principal), apigw.WithPrincipalRequired())
	ctx := context.Background()
	f.client.Reset()
	wantProblem(t, do(t, ctx, srv.URL+"/subs", "k", `{}`, "X-Caller: broken"), 401, "idempotency-principal-unavailable")
	wantProblem(t, do(t, ctx, srv.URL+"/subs", "k", `{}`, "X-Caller: anon"), 403, apigw.ProblemPrincipalRequired)
	if runs.Load() != 0 || f.client.Total() != 0 {
		t.Fatalf("refused callers: handler runs %d, DynamoDB requests %d; want none", runs.Load(), f.client.Total())
	}
	a := do(t, ctx, srv.URL+"/subs", "k", `{}`, "X-Caller: alice")
	b := do(t, ctx, srv.URL+"/subs", "k", `{}`, "X-Caller: bob")
	if string(a.body) != "alice" || string(b.body) != "bob" || runs.Load() != 2 {
		t.Fatalf("two callers, one key: %q %q, runs %d; want each its own", a.body, b.body, runs.Load())
	}
}

// The ready principal functions name callers as apigw does.
func TestReadyPrincipals(t *testing.T) {
	want := apigw.JWTPrincipal("https://issuer.example", "u-1")
	r := httptest.NewRequest(http.MethodPost, "/x", nil)
	if _, err := idemhttp.LambdaWebAdapterPrincipal(r); !errors.Is(err, idemhttp.ErrNoRequestContext) {
		t.Errorf("no header: %v, want ErrNoRequestContext", err)
	}
	r.Header.Set("x-amzn-request-context", `{"routeKey":"POST /x","http":{"method":"POST","path":"/x"},"authorizer":{"jwt":{"claims":{"iss":"https://issuer.example","sub":"u-1"},"scopes":null}}}`)
	if got, err := idemhttp.LambdaWebAdapterPrincipal(r); err != nil || got != want {
		t.Errorf("web adapter, HTTP API: %q %v, want %q", got, err, want)
	}
	r.Header.Set("x-amzn-request-context", `{"resourcePath":"/x","httpMethod":"POST","authorizer":{"principalId":"p-9"},"identity":{}}`)
	if got, err := idemhttp.LambdaWebAdapterPrincipal(r); err != nil || got != apigw.LambdaPrincipal("p-9") {
		t.Errorf("web adapter, REST API: %q %v", got, err)
	}
	r.Header.Set("x-amzn-request-context", `{not json`)
	if _, err := idemhttp.LambdaWebAdapterPrincipal(r); err == nil {
		t.Error("a malformed header was accepted")
	}

	type ctxKey struct{}
	get := func(ctx context.Context) (events.APIGatewayV2HTTPRequestContext, bool) {
		rc, ok := ctx.Value(ctxKey{}).(events.APIGatewayV2HTTPRequestContext)
		return rc, ok
	}
	p := idemhttp.APIGatewayV2Principal(get)
	if _, err := p(r); !errors.Is(err, idemhttp.ErrNoRequestContext) {
		t.Errorf("proxy, no context: %v", err)
	}
	rc := events.APIGatewayV2HTTPRequestContext{Authorizer: &events.APIGatewayV2HTTPRequestContextAuthorizerDescription{
		JWT: &events.APIGatewayV2HTTPRequestContextAuthorizerJWTDescription{Claims: map[string]string{"iss": "https://issuer.example", "sub": "u-1"}}}}
	if got, err := p(r.WithContext(context.WithValue(r.Context(), ctxKey{}, rc))); err != nil || got != want {
		t.Errorf("proxy: %q %v, want %q", got, err, want)
	}
}

// A client that disconnects does not cancel the claimed work: the handler
// finishes with a live context and its response is stored for the retry.
func TestClientDisconnect(t *testing.T) {
	f := newFixture(t)
	var runs atomic.Int64
	started, release := make(chan struct{}), make(chan struct{})
	ctxErr := make(chan error, 1)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if runs.Add(1) == 1 {
			close(started)
			<-release
		}
		ctxErr <- r.Context().Err()
		w.WriteHeader(201)
		_, _ = io.WriteString(w, "done")
	})
	srv := f.server(t, "POST /pay", h)
	ctx, cancel := context.WithCancel(context.Background())
	gone := make(chan error, 1)
	go func() {
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL+"/pay", strings.NewReader(`{}`))
		req.Header.Set("Idempotency-Key", "k-gone")
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		gone <- err
	}()
	<-started
	cancel()
	if err := <-gone; err == nil {
		t.Fatal("the client's request did not fail after it was canceled")
	}
	close(release)
	if err := <-ctxErr; err != nil {
		t.Fatalf("the handler's context ended with the client: %v", err)
	}
	// The retry gets the stored response once the completion lands.
	deadline := time.Now().Add(10 * time.Second)
	for {
		r := do(t, context.Background(), srv.URL+"/pay", "k-gone", `{}`)
		if r.status == 201 {
			if string(r.body) != "done" || r.header.Get(apigw.ReplayedHeader) != "true" || runs.Load() != 1 {
				t.Fatalf("retry: %q replayed=%q runs %d", r.body, r.header.Get(apigw.ReplayedHeader), runs.Load())
			}
			return
		}
		if r.status != 409 || time.Now().After(deadline) {
			t.Fatalf("retry: %d %s", r.status, r.body)
		}
		time.Sleep(20 * time.Millisecond) // polling a bounded deadline
	}
}

// A handler that panics: the key is released, the client gets a 500
// problem, the panic is logged, and the server goes on (the retry runs).
func TestPanic(t *testing.T) {
	f := newFixture(t)
	var runs atomic.Int64
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if runs.Add(1) == 1 {
			w.Header().Set("X-Half", "1")
			panic("boom")
		}
		w.WriteHeader(201)
	})
	srv := f.server(t, "POST /p", h)
	r := do(t, context.Background(), srv.URL+"/p", "k-panic", `{}`)
	wantProblem(t, r, 500, "idempotency-internal-error")
	if r.header.Get("X-Half") != "" {
		t.Error("the panicking handler's header leaked into the 500")
	}
	if !strings.Contains(f.logs.String(), "boom") {
		t.Errorf("the panic is not logged: %s", f.logs.String())
	}
	if r := do(t, context.Background(), srv.URL+"/p", "k-panic", `{}`); r.status != 201 || runs.Load() != 2 {
		t.Fatalf("retry after the panic: %d, runs %d; want the handler to run again", r.status, runs.Load())
	}
}

// A streamed response (Flush) and one over the buffer reach the client
// whole, and are never half-stored: the record says the work ran and a
// repeat gets 409 result-not-retained without running the handler.
func TestStreamedNotRetained(t *testing.T) {
	f := newFixture(t)
	var runs atomic.Int64
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		runs.Add(1)
		if r.URL.Path == "/flush" {
			_, _ = io.WriteString(w, "part1;")
			http.NewResponseController(w).Flush()
			_, _ = io.WriteString(w, "part2")
			return
		}
		_, _ = io.WriteString(w, strings.Repeat("x", 100))
	})
	mw := idemhttp.Middleware(f.store, idemhttp.WithMaxResponseBytes(64),
		apigw.WithLogger(slog.New(slog.NewJSONHandler(f.logs, nil))), apigw.WithMetrics(f.metrics))
	srv := httptest.NewServer(mw(h))
	defer srv.Close()
	for path, want := range map[string]string{"/flush": "part1;part2", "/big": strings.Repeat("x", 100)} {
		first := do(t, context.Background(), srv.URL+path, "k"+path, "")
		if first.status != 200 || string(first.body) != want {
			t.Fatalf("%s: %d %q, want 200 %q", path, first.status, first.body, want)
		}
		before := runs.Load()
		wantProblem(t, do(t, context.Background(), srv.URL+path, "k"+path, ""), 409, apigw.ProblemResultNotRetained)
		if runs.Load() != before {
			t.Fatalf("%s: the repeat ran the handler", path)
		}
	}
}

// A write the handler adds with Claim.AddWrites that fails its condition:
// nothing commits, the key is released, and the client gets the 409
// transaction-conflict problem, or the hook's own problem.
func TestTransactionCanceled(t *testing.T) {
	f := newFixture(t)
	var runs atomic.Int64
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		runs.Add(1)
		c, _ := idemddb.ClaimFromContext(r.Context())
		c.AddWrites(types.TransactWriteItem{ConditionCheck: &types.ConditionCheck{TableName: aws.String(f.table),
			Key:                 map[string]types.AttributeValue{"id": &types.AttributeValueMemberS{Value: "cart#missing"}},
			ConditionExpression: aws.String("attribute_exists(id)")}})
		w.WriteHeader(201)
	})
	plain := f.server(t, "POST /orders", h)
	wantProblem(t, do(t, context.Background(), plain.URL+"/orders", "k-tx", `{}`), 409, apigw.ProblemTransactionConflict)
	hooked := f.server(t, "POST /orders", h, apigw.WithTransactionCanceled(
		func(ctx context.Context, err *idemddb.TransactionCanceledError) idemhttp.Problem {
			return idemhttp.Problem{Type: "cart-missing", Title: "Cart not found", Status: 404}
		}))
	wantProblem(t, do(t, context.Background(), hooked.URL+"/orders", "k-tx", `{}`), 404, "cart-missing")
	if runs.Load() != 2 {
		t.Fatalf("handler runs %d; want 2 (the key was released after the first)", runs.Load())
	}
}
