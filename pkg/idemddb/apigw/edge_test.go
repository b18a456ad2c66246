package apigw_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/acme/idemcheckout/ddblocal/ddbtest"
	"github.com/acme/idemcheckout/pkg/idemddb"
	"github.com/acme/idemcheckout/pkg/idemddb/apigw"
	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

func loadFixture[T any](t *testing.T, name string) T {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return v
}

// toJSON marshals a response as the Lambda runtime does and decodes it
// generically, as API Gateway reads it.
func toJSON(t *testing.T, v any) map[string]any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestFixtureV2JWT(t *testing.T) {
	f := newFixture(t, idemddb.Config{})
	req := loadFixture[events.APIGatewayV2HTTPRequest](t, "apigw-v2-jwt-post.json")
	var runs atomic.Int64
	var rid string
	h := apigw.WrapV2(f.store, func(ctx context.Context, r events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
		runs.Add(1)
		c, ok := idemddb.ClaimFromContext(ctx)
		if !ok || c.ResourceID == "" {
			return events.APIGatewayV2HTTPResponse{}, errors.New("no claim")
		}
		rid = c.ResourceID
		return events.APIGatewayV2HTTPResponse{
			StatusCode: 201,
			Headers:    map[string]string{"Content-Type": "application/json", "Location": "/orders/" + rid, "X-Request-Id": r.RequestContext.RequestID},
			Cookies:    []string{"last_order=" + rid + "; Secure; HttpOnly"},
			Body:       `{"orderId":"` + rid + `","status":"CREATED"}`,
		}, nil
	}, f.opts()...)
	fresh, err := h(bg, req)
	if err != nil {
		t.Fatal(err)
	}
	freshJSON := toJSON(t, fresh)
	if freshJSON["statusCode"] != float64(201) || runs.Load() != 1 {
		t.Fatalf("fresh %v", freshJSON)
	}

	// The client retries: same event, another request id, whitespace and
	// member order changed in the body, the key as a bare token.
	b, _ := json.Marshal(req)
	var retry events.APIGatewayV2HTTPRequest
	_ = json.Unmarshal(b, &retry)
	retry.RequestContext.RequestID = "retry-1"
	retry.Body = `{"total":5000.0,"currency":"INR","cartId":"c-1001"}`
	retry.Headers["idempotency-key"] = "8e03978e-40d5-43e8-bc93-6894a57f9324"
	replay, err := h(bg, retry)
	if err != nil || runs.Load() != 1 {
		t.Fatalf("replay: %v runs %d", err, runs.Load())
	}
	got := toJSON(t, replay)
	want := freshJSON
	hdr := want["headers"].(map[string]any)
	delete(hdr, "X-Request-Id")
	hdr[apigw.ReplayedHeader] = "true"
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("replay JSON\n got %v\nwant %v", got, want)
	}

	// Another user of the same issuer, same key: a fresh request.
	other := retry
	other.RequestContext.Authorizer = &events.APIGatewayV2HTTPRequestContextAuthorizerDescription{JWT: &events.APIGatewayV2HTTPRequestContextAuthorizerJWTDescription{
		Claims: map[string]string{"sub": "someone-else", "iss": req.RequestContext.Authorizer.JWT.Claims["iss"]}}}
	if r, _ := h(bg, other); r.Headers[apigw.ReplayedHeader] != "" || runs.Load() != 2 {
		t.Fatal("another principal got a replay")
	}
}

func TestFixtureV1(t *testing.T) {
	for _, tc := range []struct {
		file, wantBody string
	}{
		{"apigw-v1-cognito-post.json", `{"orderId":"o1001","amount":5000,"currency":"INR"}`},
		{"apigw-v1-lambda-authorizer-post.json", `{"amount": 1200, "reason": "damaged"}`},
	} {
		t.Run(tc.file, func(t *testing.T) {
			f := newFixture(t, idemddb.Config{})
			req := loadFixture[events.APIGatewayProxyRequest](t, tc.file)
			var runs atomic.Int64
			h := apigw.WrapV1(f.store, func(ctx context.Context, r events.APIGatewayProxyRequest) (events.APIGatewayProxyResponse, error) {
				runs.Add(1)
				return events.APIGatewayProxyResponse{
					StatusCode:        201,
					Headers:           map[string]string{"Content-Type": "application/json", "Location": r.Path + "/1"},
					MultiValueHeaders: map[string][]string{"Set-Cookie": {"a=1", "b=2"}},
					Body:              `{"ok":true}`,
				}, nil
			}, f.opts()...)
			fresh, err := h(bg, req)
			if err != nil || fresh.StatusCode != 201 {
				t.Fatalf("fresh %+v %v", fresh, err)
			}
			replay, err := h(bg, req)
			if err != nil || runs.Load() != 1 {
				t.Fatalf("replay %v runs %d", err, runs.Load())
			}
			got, want := toJSON(t, replay), toJSON(t, fresh)
			want["headers"].(map[string]any)[apigw.ReplayedHeader] = "true"
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("replay JSON\n got %v\nwant %v", got, want)
			}
			// The log names the route template, not the body.
			if logs := f.logs.String(); !strings.Contains(logs, `"route":"POST `+req.Resource+`"`) || strings.Contains(logs, tc.wantBody) {
				t.Fatalf("log %s", logs)
			}
			// A different body with the same key is a mismatch.
			req.Body, req.IsBase64Encoded = `{"amount":1}`, false
			r, _ := h(bg, req)
			wantProblem(t, r.StatusCode, r.Headers, r.Body, 422, apigw.ProblemKeyReused)
		})
	}
}

func TestLogAndMetrics(t *testing.T) {
	f := newFixture(t, idemddb.Config{})
	var runs atomic.Int64
	const secretBody = `{"card":"4111111111111111"}`
	const rawKey = "RAW-KEY-do-not-log-0001"
	h := apigw.WrapV2(f.store, handlerV2(&runs, 201, `{"echo":"4111111111111111"}`), f.opts(apigw.WithNamespace("Checkout"))...)
	req := v2req("POST", "/payments", "/payments", "alice", rawKey, secretBody)
	_, _ = h(bg, req)
	_, _ = h(bg, req)
	bad := req
	bad.Headers = map[string]string{"idempotency-key": "a, " + rawKey}
	_, _ = h(bg, bad)

	lines := strings.Split(strings.TrimSpace(f.logs.String()), "\n")
	wantOutcomes := []string{"claimed", "replayed", "invalid_key"}
	if len(lines) != len(wantOutcomes) {
		t.Fatalf("%d log lines, want one per request:\n%s", len(lines), f.logs.String())
	}
	for i, line := range lines {
		if strings.Contains(line, "4111111111111111") || strings.Contains(line, rawKey) || strings.Contains(line, "alice") {
			t.Fatalf("log line leaks body, key or principal: %s", line)
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatal(err)
		}
		if m["outcome"] != wantOutcomes[i] || m["route"] != "POST /payments" || m["latency_ms"] == nil {
			t.Fatalf("line %d: %v", i, m)
		}
		if p, _ := m["principal"].(string); len(p) != 12 {
			t.Fatalf("principal tag %q", p)
		}
		if i < 2 {
			if k, _ := m["key"].(string); len(k) != 16 || m["status"] != float64(201) {
				t.Fatalf("line %d: key tag %q status %v", i, k, m["status"])
			}
		}
	}

	docs := strings.Split(strings.TrimSpace(f.metrics.String()), "\n")
	wantMetrics := []string{"Claimed", "Replayed", "InvalidKey"}
	if len(docs) != len(wantMetrics) {
		t.Fatalf("%d EMF documents:\n%s", len(docs), f.metrics.String())
	}
	for i, d := range docs {
		var doc struct {
			AWS struct {
				Timestamp         int64
				CloudWatchMetrics []struct {
					Namespace  string
					Dimensions [][]string
					Metrics    []struct{ Name, Unit string }
				}
			} `json:"_aws"`
		}
		if err := json.Unmarshal([]byte(d), &doc); err != nil {
			t.Fatal(err)
		}
		var flat map[string]any
		_ = json.Unmarshal([]byte(d), &flat)
		cw := doc.AWS.CloudWatchMetrics
		if doc.AWS.Timestamp == 0 || len(cw) != 1 || cw[0].Namespace != "Checkout" ||
			!reflect.DeepEqual(cw[0].Dimensions, [][]string{{"Route"}}) ||
			len(cw[0].Metrics) != 1 || cw[0].Metrics[0] != (struct{ Name, Unit string }{wantMetrics[i], "Count"}) {
			t.Fatalf("EMF %d: %s", i, d)
		}
		if flat[wantMetrics[i]] != float64(1) || flat["Route"] != "POST /payments" {
			t.Fatalf("EMF %d values: %s", i, d)
		}
		if strings.Contains(d, rawKey) || strings.Contains(d, "4111") {
			t.Fatalf("EMF leaks: %s", d)
		}
	}
}

func TestStoreUnavailable(t *testing.T) {
	if os.Getenv("AWS_ENDPOINT_URL_DYNAMODB") != "" {
		t.Skip("needs an engine of its own to stop; AWS_ENDPOINT_URL_DYNAMODB is set")
	}
	e, err := ddbtest.StartMoto()
	if err != nil {
		t.Fatal(err)
	}
	defer e.Stop()
	raw := e.Client()
	table := ddbtest.NewTable(t, raw, "id")
	s, err := idemddb.New(raw, idemddb.Config{Table: table})
	if err != nil {
		t.Fatal(err)
	}
	logs := &ddbtest.Buffer{}
	var runs atomic.Int64
	h := apigw.WrapV2(s, handlerV2(&runs, 201, `{}`), apigw.WithLogger(newJSONLogger(logs)), apigw.WithMetrics(nil))
	e.Stop()
	ctx, cancel := context.WithTimeout(bg, 10*time.Second)
	defer cancel()
	resp, err := h(ctx, v2req("POST", "/orders", "/orders", "u", "k", `{}`))
	if err != nil {
		t.Fatal(err)
	}
	wantProblem(t, resp.StatusCode, resp.Headers, resp.Body, 503, apigw.ProblemStoreUnavailable)
	retryAfter(t, resp.Headers)
	if runs.Load() != 0 {
		t.Fatal("handler ran without the store")
	}
	if !strings.Contains(logs.String(), `"outcome":"unavailable"`) {
		t.Fatalf("log %s", logs.String())
	}
}

func TestCompletionUnknown(t *testing.T) {
	f := newFixture(t, idemddb.Config{})
	var runs atomic.Int64
	h := apigw.WrapV2(f.store, handlerV2(&runs, 201, `{}`), f.opts()...)
	f.client.Before(func(op string, _ any) error {
		if op == "UpdateItem" { // the completion
			return errors.New("connection reset")
		}
		return nil
	})
	resp, err := h(bg, v2req("POST", "/orders", "/orders", "u", "k", `{}`))
	if err != nil {
		t.Fatal(err)
	}
	p := wantProblem(t, resp.StatusCode, resp.Headers, resp.Body, 503, apigw.ProblemStoreUnavailable)
	// The key stays claimed until the lease (30s without a deadline) ends.
	if ra := retryAfter(t, resp.Headers); ra < 20 || ra > 30 || runs.Load() != 1 || !strings.Contains(p.Detail, "could not be recorded") {
		t.Fatalf("Retry-After %d runs %d detail %q", ra, runs.Load(), p.Detail)
	}
}

func TestFencedCompletion(t *testing.T) {
	clk := ddbtest.NewClock(time.Now())
	f := newFixture(t, idemddb.Config{Now: clk.Now})
	started, release := make(chan struct{}), make(chan struct{})
	var runs atomic.Int64
	rids := make([]string, 2)
	h := apigw.WrapV2(f.store, func(ctx context.Context, r events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
		n := runs.Add(1)
		c, _ := idemddb.ClaimFromContext(ctx)
		rids[n-1] = c.ResourceID
		if n == 1 {
			close(started)
			<-release
			return events.APIGatewayV2HTTPResponse{StatusCode: 201, Body: "first"}, nil
		}
		return events.APIGatewayV2HTTPResponse{StatusCode: 201, Body: "second"}, nil
	}, f.opts()...)
	req := v2req("POST", "/orders", "/orders", "u", "fence", `{}`)
	done := make(chan events.APIGatewayV2HTTPResponse, 1)
	go func() {
		r, _ := h(bg, req)
		done <- r
	}()
	<-started
	clk.Advance(idemddb.DefaultLease + time.Second) // the first lease lapses
	second, err := h(bg, req)
	if err != nil || second.Body != "second" {
		t.Fatalf("takeover: %+v %v", second, err)
	}
	close(release)
	first := <-done
	wantProblem(t, first.StatusCode, first.Headers, first.Body, 409, apigw.ProblemLeaseLost)
	retryAfter(t, first.Headers)
	if rids[0] == "" || rids[0] != rids[1] {
		t.Fatalf("ResourceID changed across the takeover: %q", rids)
	}
	if r, _ := h(bg, req); r.Body != "second" || r.Headers[apigw.ReplayedHeader] != "true" {
		t.Fatalf("after: %+v", r)
	}
	if !strings.Contains(f.logs.String(), `"outcome":"fenced"`) {
		t.Fatal("no fenced log line")
	}
}

func TestAddWrites(t *testing.T) {
	f := newFixture(t, idemddb.Config{})
	orderKey := func(id string) map[string]types.AttributeValue {
		return map[string]types.AttributeValue{"id": &types.AttributeValueMemberS{Value: "order#" + id}}
	}
	var runs atomic.Int64
	// The handler creates the order with a write that commits with the
	// record, and requires a cart item to exist.
	h := func(opts ...apigw.Option) apigw.HandlerV2 {
		return apigw.WrapV2(f.store, func(ctx context.Context, r events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
			runs.Add(1)
			c, _ := idemddb.ClaimFromContext(ctx)
			item := orderKey(c.ResourceID)
			c.AddWrites(
				types.TransactWriteItem{ConditionCheck: &types.ConditionCheck{TableName: aws.String(f.table),
					Key: map[string]types.AttributeValue{"id": &types.AttributeValueMemberS{Value: "cart#" + r.Body}}, ConditionExpression: aws.String("attribute_exists(id)")}},
				types.TransactWriteItem{Put: &types.Put{TableName: aws.String(f.table), Item: item}},
			)
			return events.APIGatewayV2HTTPResponse{StatusCode: 201, Body: c.ResourceID}, nil
		}, f.opts(opts...)...)
	}
	_, err := f.raw.PutItem(bg, &dynamodb.PutItemInput{TableName: aws.String(f.table),
		Item: map[string]types.AttributeValue{"id": &types.AttributeValueMemberS{Value: "cart#1"}}})
	if err != nil {
		t.Fatal(err)
	}
	plain := h()
	resp, err := plain(bg, v2req("POST", "/orders", "/orders", "u", "tx-ok", "1"))
	if err != nil || resp.StatusCode != 201 {
		t.Fatalf("%+v %v", resp, err)
	}
	got, err := f.raw.GetItem(bg, &dynamodb.GetItemInput{TableName: aws.String(f.table), Key: orderKey(resp.Body), ConsistentRead: aws.Bool(true)})
	if err != nil || got.Item == nil {
		t.Fatalf("order not written with the record: %v", err)
	}

	// The cart is missing: nothing commits, default 409, key released.
	runs.Store(0)
	req := v2req("POST", "/orders", "/orders", "u", "tx-fail", "2")
	resp, _ = plain(bg, req)
	wantProblem(t, resp.StatusCode, resp.Headers, resp.Body, 409, apigw.ProblemTransactionConflict)
	// A hook maps it to the function's own problem.
	hooked := h(apigw.WithTransactionCanceled(func(ctx context.Context, err *idemddb.TransactionCanceledError) apigw.Problem {
		if err.Index == 0 && err.Reasons[0].Code == "ConditionalCheckFailed" {
			return apigw.Problem{Type: "cart-missing", Title: "Cart not found", Status: 404, Detail: "The cart does not exist."}
		}
		return apigw.Problem{}
	}))
	resp, _ = hooked(bg, req)
	if resp.StatusCode != 404 || runs.Load() != 2 {
		t.Fatalf("hooked: %+v runs %d", resp, runs.Load())
	}
	var p apigw.Problem
	_ = json.Unmarshal([]byte(resp.Body), &p)
	if p.Type != apigw.DefaultProblemBase+"cart-missing" || p.Status != 404 || resp.Headers["Content-Type"] != apigw.ProblemContentType {
		t.Fatalf("hook problem %+v", p)
	}
}

func TestResultNotRetained(t *testing.T) {
	f := newFixture(t, idemddb.Config{MaxResultBytes: 256, CompressMinBytes: -1})
	var runs atomic.Int64
	big := strings.Repeat("x", 1000)
	h := apigw.WrapV2(f.store, handlerV2(&runs, 200, big), f.opts()...)
	req := v2req("POST", "/reports", "/reports", "u", "big", `{}`)
	if resp, _ := h(bg, req); resp.Body != big {
		t.Fatal("fresh response changed")
	}
	resp, _ := h(bg, req)
	wantProblem(t, resp.StatusCode, resp.Headers, resp.Body, 409, apigw.ProblemResultNotRetained)
	if runs.Load() != 1 || !strings.Contains(f.logs.String(), `"response_retained":false`) {
		t.Fatalf("runs %d log %s", runs.Load(), f.logs.String())
	}
}

func TestProblemBase(t *testing.T) {
	f := newFixture(t, idemddb.Config{})
	var runs atomic.Int64
	h := apigw.WrapV2(f.store, handlerV2(&runs, 200, ``), f.opts(apigw.WithProblemBase("urn:acme:problem:"))...)
	resp, _ := h(bg, v2req("POST", "/o", "/o", "u", noKey, `{"secret":1}`))
	var p apigw.Problem
	_ = json.Unmarshal([]byte(resp.Body), &p)
	if p.Type != "urn:acme:problem:"+apigw.ProblemKeyMissing || bytes.Contains([]byte(resp.Body), []byte("secret")) {
		t.Fatalf("problem %s", resp.Body)
	}
}

// TestWrapWithoutStore: a wrapper built without a store or handler never
// panics; every call reports ErrNotConfigured.
func TestWrapWithoutStore(t *testing.T) {
	WrapV1, WrapV2, ErrNotConfigured := apigw.WrapV1, apigw.WrapV2, apigw.ErrNotConfigured
	h1 := WrapV1(nil, func(context.Context, events.APIGatewayProxyRequest) (events.APIGatewayProxyResponse, error) {
		t.Error("handler ran without a store")
		return events.APIGatewayProxyResponse{}, nil
	})
	if _, err := h1(context.Background(), events.APIGatewayProxyRequest{HTTPMethod: "POST"}); !errors.Is(err, ErrNotConfigured) {
		t.Fatalf("v1: %v", err)
	}
	h2 := WrapV2(nil, nil)
	if _, err := h2(context.Background(), events.APIGatewayV2HTTPRequest{}); !errors.Is(err, ErrNotConfigured) {
		t.Fatalf("v2: %v", err)
	}
}

// TestCompletionConflict: DynamoDB cancels the completion transaction with
// reason TransactionConflict (a duplicate's claim touched the record while
// it ran). Once: the store sends it again and the first answer is the
// handler's 201, not a 503 or a 409. On every attempt: 503 whose
// Retry-After is the rest of the lease, and the key really stays claimed:
// a retry gets 409 with Retry-After, and the handler does not run again.
func TestCompletionConflict(t *testing.T) {
	f := newFixture(t, idemddb.Config{})
	var runs atomic.Int64
	h := apigw.WrapV2(f.store, func(ctx context.Context, r events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
		runs.Add(1)
		c, _ := idemddb.ClaimFromContext(ctx)
		c.AddWrites(types.TransactWriteItem{Put: &types.Put{TableName: aws.String(f.table),
			Item: map[string]types.AttributeValue{"id": &types.AttributeValueMemberS{Value: "order#" + c.ResourceID}}}})
		return events.APIGatewayV2HTTPResponse{StatusCode: 201, Body: c.ResourceID}, nil
	}, f.opts()...)
	recordConflict := func(in any) error {
		n := len(in.(*dynamodb.TransactWriteItemsInput).TransactItems)
		return ddbtest.Cancellation(in, map[int]string{n - 1: "TransactionConflict"})
	}

	f.client.Refuse("TransactWriteItems", 1, recordConflict)
	resp, err := h(bg, v2req("POST", "/orders", "/orders", "u", "conflict-once", "{}"))
	if err != nil || resp.StatusCode != 201 || runs.Load() != 1 {
		t.Fatalf("one conflict: %+v %v runs %d; want 201", resp, err, runs.Load())
	}

	runs.Store(0)
	f.client.Refuse("TransactWriteItems", 100, recordConflict)
	req := v2req("POST", "/orders", "/orders", "u", "conflict-always", "{}")
	ctx, cancel := context.WithTimeout(bg, 20*time.Second)
	defer cancel()
	resp, _ = h(ctx, req)
	wantProblem(t, resp.StatusCode, resp.Headers, resp.Body, 503, apigw.ProblemStoreUnavailable)
	if ra := retryAfter(t, resp.Headers); ra < 10 {
		t.Fatalf("Retry-After %d, want the rest of the lease (about 22 s)", ra)
	}
	f.client.Refuse("TransactWriteItems", 0, nil)
	resp, _ = h(bg, req)
	wantProblem(t, resp.StatusCode, resp.Headers, resp.Body, 409, apigw.ProblemKeyInUse)
	retryAfter(t, resp.Headers)
	if runs.Load() != 1 {
		t.Fatalf("handler ran %d times for one key, want 1", runs.Load())
	}
}
