package apigw_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/acme/idemcheckout/pkg/idemddb"
	"github.com/acme/idemcheckout/pkg/idemddb/apigw"
	"github.com/aws/aws-lambda-go/events"
)

var bg = context.Background()

// handlerV2 returns a handler answering status with body and counting runs.
func handlerV2(runs *atomic.Int64, status int, body string) apigw.HandlerV2 {
	return func(ctx context.Context, r events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
		runs.Add(1)
		if _, ok := idemddb.ClaimFromContext(ctx); !ok {
			return events.APIGatewayV2HTTPResponse{}, errors.New("no claim in the handler's context")
		}
		return events.APIGatewayV2HTTPResponse{StatusCode: status, Body: body,
			Headers: map[string]string{"Content-Type": "application/json"}}, nil
	}
}

func handlerV1(runs *atomic.Int64, status int, body string) apigw.HandlerV1 {
	return func(ctx context.Context, r events.APIGatewayProxyRequest) (events.APIGatewayProxyResponse, error) {
		runs.Add(1)
		if _, ok := idemddb.ClaimFromContext(ctx); !ok {
			return events.APIGatewayProxyResponse{}, errors.New("no claim in the handler's context")
		}
		return events.APIGatewayProxyResponse{StatusCode: status, Body: body,
			Headers: map[string]string{"Content-Type": "application/json"}}, nil
	}
}

// wantProblem checks a problem response and returns it.
func wantProblem(t *testing.T, status int, headers map[string]string, body string, wantStatus int, slug string) apigw.Problem {
	t.Helper()
	if status != wantStatus {
		t.Fatalf("status %d, want %d (body %s)", status, wantStatus, body)
	}
	if ct := headers["Content-Type"]; ct != apigw.ProblemContentType {
		t.Fatalf("Content-Type %q, want %q", ct, apigw.ProblemContentType)
	}
	var p apigw.Problem
	var raw map[string]any
	if err := json.Unmarshal([]byte(body), &p); err != nil {
		t.Fatalf("problem body %q: %v", body, err)
	}
	_ = json.Unmarshal([]byte(body), &raw)
	for _, f := range []string{"type", "title", "status", "detail"} {
		if _, ok := raw[f]; !ok {
			t.Fatalf("problem %s lacks %q", body, f)
		}
	}
	if p.Status != wantStatus || p.Type != apigw.DefaultProblemBase+slug || p.Title == "" {
		t.Fatalf("problem %+v, want status %d type %s", p, wantStatus, apigw.DefaultProblemBase+slug)
	}
	return p
}

func retryAfter(t *testing.T, h map[string]string) int {
	t.Helper()
	n, err := strconv.Atoi(h["Retry-After"])
	if err != nil || n < 1 {
		t.Fatalf("Retry-After %q", h["Retry-After"])
	}
	return n
}

// headerCase is one Idempotency-Key header test. values are the header's
// occurrences; want is the decoded key, or "" when the request gets 400.
type headerCase struct {
	name   string
	values []string
	want   string
	slug   string
}

func headerCases() []headerCase {
	long := strings.Repeat("k", 255)
	return []headerCase{
		{"valid token", []string{"abc-123"}, "abc-123", ""},
		{"valid sf-string with escapes", []string{`"a\"b\\c"`}, `a"b\c`, ""},
		{"comma inside quotes", []string{`"x,y"`}, "x,y", ""},
		{"OWS trimmed", []string{"  tok-1\t"}, "tok-1", ""},
		{"255 chars", []string{long}, long, ""},
		{"missing", nil, "", apigw.ProblemKeyMissing},
		{"empty", []string{""}, "", apigw.ProblemKeyInvalid},
		{"empty sf-string", []string{`""`}, "", apigw.ProblemKeyInvalid},
		{"256 chars", []string{long + "k"}, "", apigw.ProblemKeyInvalid},
		{"non-ASCII", []string{"clé"}, "", apigw.ProblemKeyInvalid},
		{"control char", []string{"a\x07b"}, "", apigw.ProblemKeyInvalid},
		{"repeated header", []string{"a", "b"}, "", apigw.ProblemKeyInvalid},
		{"comma list", []string{"a, b"}, "", apigw.ProblemKeyInvalid},
		{"bad escape", []string{`"a\x"`}, "", apigw.ProblemKeyInvalid},
	}
}

// otherSpelling is the key spelled differently from the case's header:
// quoted for a token, bare for a quoted key that can be a token, and with
// added whitespace otherwise.
func otherSpelling(tc headerCase) string {
	switch {
	case !strings.HasPrefix(strings.TrimSpace(tc.values[0]), `"`):
		return quote(tc.want)
	case strings.ContainsAny(tc.want, `",`):
		return " " + quote(tc.want) + "\t"
	}
	return tc.want
}

// quote spells a key as an sf-string, so a valid case's second request
// reaches the same record through the other spelling.
func quote(k string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(k) + `"`
}

func TestHeaderV2(t *testing.T) {
	f := newFixture(t, idemddb.Config{})
	var runs atomic.Int64
	h := apigw.WrapV2(f.store, handlerV2(&runs, 201, `{"id":1}`), f.opts()...)
	for _, tc := range headerCases() {
		t.Run(tc.name, func(t *testing.T) {
			runs.Store(0)
			req := v2req("POST", "/orders", "/orders", "user-"+tc.name, noKey, `{"a":1}`)
			switch len(tc.values) {
			case 0:
			case 1:
				req.Headers["idempotency-key"] = tc.values[0]
			default:
				// HTTP APIs join repeated headers with commas; a second
				// spelling of the name is another occurrence.
				req.Headers["idempotency-key"] = tc.values[0]
				req.Headers["Idempotency-Key"] = tc.values[1]
			}
			f.client.Reset()
			resp, err := h(bg, req)
			if err != nil {
				t.Fatal(err)
			}
			if tc.want == "" {
				wantProblem(t, resp.StatusCode, resp.Headers, resp.Body, 400, tc.slug)
				if runs.Load() != 0 || f.client.Total() != 0 {
					t.Fatalf("handler runs %d, DynamoDB requests %d; want none", runs.Load(), f.client.Total())
				}
				return
			}
			if resp.StatusCode != 201 || runs.Load() != 1 {
				t.Fatalf("fresh: status %d runs %d", resp.StatusCode, runs.Load())
			}
			// The other spelling of the decoded key is the same key.
			other := otherSpelling(tc)
			req.Headers["idempotency-key"] = other
			resp, err = h(bg, req)
			if err != nil || resp.StatusCode != 201 || resp.Headers[apigw.ReplayedHeader] != "true" || runs.Load() != 1 {
				t.Fatalf("replay via %q: %+v %v runs %d", other, resp, err, runs.Load())
			}
		})
	}
}

func TestHeaderV1(t *testing.T) {
	f := newFixture(t, idemddb.Config{})
	var runs atomic.Int64
	h := apigw.WrapV1(f.store, handlerV1(&runs, 201, `{"id":1}`), f.opts()...)
	for _, tc := range headerCases() {
		t.Run(tc.name, func(t *testing.T) {
			runs.Store(0)
			// REST APIs deliver every occurrence in multiValueHeaders and
			// the last one in headers.
			req := v1req("POST", "/orders", "/orders", "user-"+tc.name, tc.values, `{"a":1}`)
			f.client.Reset()
			resp, err := h(bg, req)
			if err != nil {
				t.Fatal(err)
			}
			if tc.want == "" {
				wantProblem(t, resp.StatusCode, resp.Headers, resp.Body, 400, tc.slug)
				if runs.Load() != 0 || f.client.Total() != 0 {
					t.Fatalf("handler runs %d, DynamoDB requests %d; want none", runs.Load(), f.client.Total())
				}
				return
			}
			if resp.StatusCode != 201 || runs.Load() != 1 {
				t.Fatalf("fresh: status %d runs %d", resp.StatusCode, runs.Load())
			}
			other := otherSpelling(tc)
			// Only headers this time, with a lower-case name.
			req.MultiValueHeaders = nil
			req.Headers = map[string]string{"content-type": "application/json", "idempotency-key": other}
			resp, err = h(bg, req)
			if err != nil || resp.StatusCode != 201 || resp.Headers[apigw.ReplayedHeader] != "true" || runs.Load() != 1 {
				t.Fatalf("replay via %q: %+v %v runs %d", other, resp, err, runs.Load())
			}
		})
	}
	t.Run("headers only, two spellings", func(t *testing.T) {
		req := v1req("POST", "/orders", "/orders", "p", nil, `{}`)
		req.MultiValueHeaders = nil
		req.Headers["Idempotency-Key"] = "a"
		req.Headers["idempotency-key"] = "b"
		resp, _ := h(bg, req)
		wantProblem(t, resp.StatusCode, resp.Headers, resp.Body, 400, apigw.ProblemKeyInvalid)
	})
}

func TestMethods(t *testing.T) {
	f := newFixture(t, idemddb.Config{})
	var runs atomic.Int64
	h := apigw.WrapV2(f.store, handlerV2(&runs, 200, `{}`), f.opts(apigw.WithOptionalMethods("PATCH"))...)
	plain := func(ctx context.Context, r events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
		runs.Add(1)
		return events.APIGatewayV2HTTPResponse{StatusCode: 200, Body: "plain"}, nil
	}
	hp := apigw.WrapV2(f.store, plain, f.opts(apigw.WithOptionalMethods("PATCH"))...)

	// GET passes through, even with a malformed key, with no request.
	resp, err := hp(bg, v2req("GET", "/orders", "/orders", "u", "bad key", ""))
	if err != nil || resp.Body != "plain" || f.client.Total() != 0 {
		t.Fatalf("GET: %+v %v, requests %d", resp, err, f.client.Total())
	}
	// PATCH without a key passes through; with a malformed one gets 400;
	// with a valid one is idempotent.
	resp, _ = hp(bg, v2req("PATCH", "/orders/{id}", "/orders/1", "u", noKey, ""))
	if resp.Body != "plain" || f.client.Total() != 0 {
		t.Fatalf("PATCH without key: %+v", resp)
	}
	resp, _ = h(bg, v2req("PATCH", "/orders/{id}", "/orders/1", "u", "bad key", ""))
	wantProblem(t, resp.StatusCode, resp.Headers, resp.Body, 400, apigw.ProblemKeyInvalid)
	runs.Store(0)
	for range 2 {
		resp, _ = h(bg, v2req("PATCH", "/orders/{id}", "/orders/1", "u", "k1", `{}`))
	}
	if resp.Headers[apigw.ReplayedHeader] != "true" || runs.Load() != 1 {
		t.Fatalf("PATCH with key: %+v runs %d", resp, runs.Load())
	}
	// WithRequiredMethods replaces POST.
	hr := apigw.WrapV2(f.store, plain, f.opts(apigw.WithRequiredMethods("put"))...)
	resp, _ = hr(bg, v2req("POST", "/orders", "/orders", "u", noKey, ""))
	if resp.Body != "plain" {
		t.Fatalf("POST no longer required: %+v", resp)
	}
	resp, _ = hr(bg, v2req("PUT", "/orders", "/orders", "u", noKey, ""))
	wantProblem(t, resp.StatusCode, resp.Headers, resp.Body, 400, apigw.ProblemKeyMissing)
}

func TestReplayIsByteExactV2(t *testing.T) {
	f := newFixture(t, idemddb.Config{})
	for _, b64 := range []bool{false, true} {
		t.Run(fmt.Sprintf("base64=%v", b64), func(t *testing.T) {
			var runs atomic.Int64
			body := "line 1\nline 2\r\n\xff\xfe not UTF-8 \x00 {\"k\":\"v\"}"
			if b64 {
				body = base64.StdEncoding.EncodeToString([]byte(body))
			}
			fresh := events.APIGatewayV2HTTPResponse{
				StatusCode: 201,
				Headers: map[string]string{
					"Content-Type": "application/vnd.acme+json; charset=utf-8", "Location": "/orders/42",
					"ETag": `"v1"`, "X-Request-Id": "r-1", "date": "Mon, 01 Jan 2024 00:00:00 GMT",
				},
				MultiValueHeaders: map[string][]string{"Link": {"</a>; rel=a", "</b>; rel=b"}, "X-Amzn-RequestId": {"x"}},
				Cookies:           []string{"session=abc; HttpOnly", "pref=dark; Path=/"},
				Body:              body,
				IsBase64Encoded:   b64,
			}
			h := apigw.WrapV2(f.store, func(ctx context.Context, r events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
				runs.Add(1)
				return fresh, nil
			}, f.opts()...)
			req := v2req("POST", "/orders", "/orders", "u", fmt.Sprint("k-", b64), `{"x":1}`)
			got1, err := h(bg, req)
			if err != nil || !reflect.DeepEqual(got1, fresh) {
				t.Fatalf("fresh response changed: %+v %v", got1, err)
			}
			got2, err := h(bg, req)
			if err != nil || runs.Load() != 1 {
				t.Fatalf("replay: %v runs %d", err, runs.Load())
			}
			want := fresh
			want.Headers = map[string]string{"Content-Type": fresh.Headers["Content-Type"], "Location": "/orders/42",
				"ETag": `"v1"`, apigw.ReplayedHeader: "true"}
			want.MultiValueHeaders = map[string][]string{"Link": fresh.MultiValueHeaders["Link"]}
			if !reflect.DeepEqual(got2, want) {
				t.Fatalf("replay\n got %#v\nwant %#v", got2, want)
			}
			if got2.Body != fresh.Body {
				t.Fatal("body differs")
			}
		})
	}
}

func TestReplayIsByteExactV1(t *testing.T) {
	f := newFixture(t, idemddb.Config{})
	var runs atomic.Int64
	fresh := events.APIGatewayProxyResponse{
		StatusCode: 200,
		Headers:    map[string]string{"Content-Type": "text/plain", "X-Amzn-RequestId": "drop-me"},
		MultiValueHeaders: map[string][]string{
			"Set-Cookie": {"a=1", "b=2"}, "Vary": {"Accept", "Origin"},
		},
		Body: "\x00\x01\xff",
	}
	h := apigw.WrapV1(f.store, func(ctx context.Context, r events.APIGatewayProxyRequest) (events.APIGatewayProxyResponse, error) {
		runs.Add(1)
		return fresh, nil
	}, f.opts()...)
	req := v1req("POST", "/orders", "/orders", "p", []string{"k"}, "plain body")
	req.Headers["Content-Type"], req.MultiValueHeaders["Content-Type"] = "text/plain", []string{"text/plain"}
	if got, _ := h(bg, req); !reflect.DeepEqual(got, fresh) {
		t.Fatalf("fresh changed: %+v", got)
	}
	got, err := h(bg, req)
	want := events.APIGatewayProxyResponse{StatusCode: 200,
		Headers:           map[string]string{"Content-Type": "text/plain", apigw.ReplayedHeader: "true"},
		MultiValueHeaders: fresh.MultiValueHeaders, Body: fresh.Body}
	if err != nil || runs.Load() != 1 || !reflect.DeepEqual(got, want) {
		t.Fatalf("replay %#v %v runs %d", got, err, runs.Load())
	}
}

func TestDropHeadersOption(t *testing.T) {
	f := newFixture(t, idemddb.Config{})
	h := apigw.WrapV2(f.store, func(ctx context.Context, r events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
		return events.APIGatewayV2HTTPResponse{StatusCode: 200, Headers: map[string]string{"Date": "d", "X-Secret": "s", "Idempotent-Replayed": "x"}}, nil
	}, f.opts(apigw.WithDropHeaders("x-secret"))...)
	req := v2req("POST", "/o", "/o", "u", "k", "")
	_, _ = h(bg, req)
	got, _ := h(bg, req)
	want := map[string]string{"Date": "d", apigw.ReplayedHeader: "true"}
	if !reflect.DeepEqual(got.Headers, want) {
		t.Fatalf("headers %v, want %v", got.Headers, want)
	}
}

func TestTenantIsolation(t *testing.T) {
	f := newFixture(t, idemddb.Config{})
	var runs atomic.Int64
	h := apigw.WrapV2(f.store, func(ctx context.Context, r events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
		runs.Add(1)
		sub := "anonymous"
		if a := r.RequestContext.Authorizer; a != nil {
			sub = a.JWT.Claims["sub"]
		}
		return events.APIGatewayV2HTTPResponse{StatusCode: 201, Body: `{"owner":"` + sub + `"}`}, nil
	}, f.opts()...)
	for round := range 2 {
		for _, sub := range []string{"alice", "bob", ""} {
			resp, err := h(bg, v2req("POST", "/payments", "/payments", sub, "shared-key", `{"amount":5000}`))
			want := sub
			if want == "" {
				want = "anonymous"
			}
			if err != nil || resp.Body != `{"owner":"`+want+`"}` {
				t.Fatalf("round %d %s got %q %v", round, want, resp.Body, err)
			}
			if replayed := resp.Headers[apigw.ReplayedHeader] == "true"; replayed != (round == 1) {
				t.Fatalf("round %d %s replayed=%v", round, want, replayed)
			}
		}
	}
	if runs.Load() != 3 {
		t.Fatalf("runs %d, want 3", runs.Load())
	}
	// Same sub from another issuer is another principal.
	r := v2req("POST", "/payments", "/payments", "alice", "shared-key", `{"amount":5000}`)
	r.RequestContext.Authorizer.JWT.Claims["iss"] = "https://other.example"
	if resp, _ := h(bg, r); resp.Headers[apigw.ReplayedHeader] != "" {
		t.Fatal("another issuer's alice got a replay")
	}
}

func TestPrincipalSources(t *testing.T) {
	f := newFixture(t, idemddb.Config{})
	var runs atomic.Int64
	h := apigw.WrapV1(f.store, handlerV1(&runs, 201, `{}`), f.opts()...)
	mk := func(edit func(*events.APIGatewayProxyRequestContext)) events.APIGatewayProxyRequest {
		r := v1req("POST", "/orders", "/orders", "", []string{"same"}, `{}`)
		edit(&r.RequestContext)
		return r
	}
	reqs := []events.APIGatewayProxyRequest{
		mk(func(rc *events.APIGatewayProxyRequestContext) {
			rc.Authorizer = map[string]any{"claims": map[string]any{"sub": "u1", "iss": "i"}}
		}),
		mk(func(rc *events.APIGatewayProxyRequestContext) { rc.Authorizer = map[string]any{"principalId": "u1"} }),
		mk(func(rc *events.APIGatewayProxyRequestContext) { rc.Identity.CognitoIdentityID = "us-east-1:u1" }),
		mk(func(rc *events.APIGatewayProxyRequestContext) { rc.Identity.UserArn = "arn:aws:iam::1:user/u1" }),
		mk(func(rc *events.APIGatewayProxyRequestContext) { rc.Identity.APIKeyID = "u1" }),
		mk(func(rc *events.APIGatewayProxyRequestContext) {}),
	}
	for i, r := range reqs {
		if resp, _ := h(bg, r); resp.Headers[apigw.ReplayedHeader] != "" || runs.Load() != int64(i+1) {
			t.Fatalf("principal source %d shares a scope with an earlier one", i)
		}
	}
	for i, r := range reqs {
		if resp, _ := h(bg, r); resp.Headers[apigw.ReplayedHeader] != "true" {
			t.Fatalf("principal source %d: no replay", i)
		}
	}

	// WithPrincipalRequired refuses the anonymous request, without a request.
	hr := apigw.WrapV1(f.store, handlerV1(&runs, 201, `{}`), f.opts(apigw.WithPrincipalRequired())...)
	f.client.Reset()
	resp, _ := hr(bg, reqs[len(reqs)-1])
	wantProblem(t, resp.StatusCode, resp.Headers, resp.Body, 403, apigw.ProblemPrincipalRequired)
	if f.client.Total() != 0 {
		t.Fatal("DynamoDB requests for a refused request")
	}
}

func TestRouteIsolation(t *testing.T) {
	f := newFixture(t, idemddb.Config{})
	var runs atomic.Int64
	h := apigw.WrapV2(f.store, handlerV2(&runs, 201, `{}`), f.opts()...)
	for range 2 {
		for _, route := range []string{"/orders", "/payments"} {
			_, _ = h(bg, v2req("POST", route, route, "u", "k", `{}`))
		}
	}
	if runs.Load() != 2 {
		t.Fatalf("runs %d, want one per route", runs.Load())
	}
	// Same route template, other path: the key is reused for another request.
	resp, _ := h(bg, v2req("POST", "/orders/{id}/pay", "/orders/1/pay", "u", "k2", `{}`))
	if resp.StatusCode != 201 {
		t.Fatal(resp)
	}
	resp, _ = h(bg, v2req("POST", "/orders/{id}/pay", "/orders/2/pay", "u", "k2", `{}`))
	wantProblem(t, resp.StatusCode, resp.Headers, resp.Body, 422, apigw.ProblemKeyReused)
}

func TestFingerprint(t *testing.T) {
	f := newFixture(t, idemddb.Config{})
	var runs atomic.Int64
	h := apigw.WrapV2(f.store, handlerV2(&runs, 201, `{}`), f.opts()...)
	send := func(key, ct, body string, b64 bool) events.APIGatewayV2HTTPResponse {
		r := v2req("POST", "/orders", "/orders", "u", key, body)
		r.Headers["content-type"] = ct
		r.IsBase64Encoded = b64
		resp, err := h(bg, r)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	const js = "application/json"
	for _, tc := range []struct {
		name         string
		ct1, body1   string
		ct2, body2   string
		b64          bool
		sameFingerpt bool
	}{
		{"reordered JSON", js, `{"a":1,"b":[1,2]}`, js, "{ \"b\": [1, 2],\n \"a\": 1.0 }", false, true},
		{"+json type", "application/merge-patch+json; charset=utf-8", `{"a":1,"b":2}`, "application/merge-patch+json", `{"b":2,"a":1}`, false, true},
		{"changed value", js, `{"amount":5000}`, js, `{"amount":5001}`, false, false},
		{"text body reordered", "text/plain", `{"a":1,"b":2}`, "text/plain", `{"b":2,"a":1}`, false, false},
		{"invalid JSON raw", js, `{"a":`, js, `{"a": `, false, false},
		{"invalid JSON same bytes", js, `{"a":`, js, `{"a":`, false, true},
		{"duplicate keys raw", js, `{"a":1,"a":2}`, js, `{"a":2,"a":1}`, false, false},
		{"base64 decoded", js, base64.StdEncoding.EncodeToString([]byte(`{"a":1,"b":2}`)), js, base64.StdEncoding.EncodeToString([]byte(`{"b":2, "a":1}`)), true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			runs.Store(0)
			key := "fp-" + strings.ReplaceAll(tc.name, " ", "-")
			if r := send(key, tc.ct1, tc.body1, tc.b64); r.StatusCode != 201 {
				t.Fatalf("first: %+v", r)
			}
			r := send(key, tc.ct2, tc.body2, tc.b64)
			if tc.sameFingerpt {
				if r.Headers[apigw.ReplayedHeader] != "true" {
					t.Fatalf("want replay, got %+v", r)
				}
			} else {
				wantProblem(t, r.StatusCode, r.Headers, r.Body, 422, apigw.ProblemKeyReused)
				if strings.Contains(r.Body, "amount") || strings.Contains(r.Body, key) {
					t.Fatalf("problem echoes the request: %s", r.Body)
				}
			}
			if runs.Load() != 1 {
				t.Fatalf("handler ran %d times", runs.Load())
			}
		})
	}
	t.Run("query is part of the request", func(t *testing.T) {
		r := v2req("POST", "/orders", "/orders", "u", "q", `{}`)
		r.RawQueryString = "b=2&a=1"
		_, _ = h(bg, r)
		r.RawQueryString = "a=1&b=2"
		if resp, _ := h(bg, r); resp.Headers[apigw.ReplayedHeader] != "true" {
			t.Fatalf("reordered query: %+v", resp)
		}
		r.RawQueryString = "a=1&b=3"
		resp, _ := h(bg, r)
		wantProblem(t, resp.StatusCode, resp.Headers, resp.Body, 422, apigw.ProblemKeyReused)
	})
	t.Run("invalid base64", func(t *testing.T) {
		resp := send("b64", js, "!!!", true)
		wantProblem(t, resp.StatusCode, resp.Headers, resp.Body, 400, apigw.ProblemBodyInvalid)
	})
}

func TestStorePolicy(t *testing.T) {
	f := newFixture(t, idemddb.Config{})
	for _, tc := range []struct {
		status int
		stored bool
	}{
		{200, true}, {201, true}, {303, true}, {400, true}, {402, true}, {404, true}, {422, true},
		{304, false}, {408, false}, {409, false}, {425, false}, {429, false}, {500, false}, {502, false}, {503, false},
	} {
		t.Run(strconv.Itoa(tc.status), func(t *testing.T) {
			var runs atomic.Int64
			h := apigw.WrapV2(f.store, handlerV2(&runs, tc.status, `{"s":`+strconv.Itoa(tc.status)+`}`), f.opts()...)
			req := v2req("POST", "/orders", "/orders", "u", "policy-"+strconv.Itoa(tc.status), `{}`)
			r1, err := h(bg, req)
			if err != nil || r1.StatusCode != tc.status || r1.Headers[apigw.ReplayedHeader] != "" {
				t.Fatalf("first: %+v %v", r1, err)
			}
			r2, err := h(bg, req)
			if err != nil || r2.StatusCode != tc.status || r2.Body != r1.Body {
				t.Fatalf("second: %+v %v", r2, err)
			}
			wantRuns := int64(2)
			if tc.stored {
				wantRuns = 1
			}
			if runs.Load() != wantRuns || (r2.Headers[apigw.ReplayedHeader] == "true") != tc.stored {
				t.Fatalf("runs %d (want %d), replayed %q", runs.Load(), wantRuns, r2.Headers[apigw.ReplayedHeader])
			}
		})
	}
	t.Run("custom policy", func(t *testing.T) {
		var runs atomic.Int64
		h := apigw.WrapV2(f.store, handlerV2(&runs, 400, `{}`), f.opts(apigw.WithStorePolicy(func(s int) bool { return s < 400 }))...)
		req := v2req("POST", "/orders", "/orders", "u", "custom", `{}`)
		_, _ = h(bg, req)
		_, _ = h(bg, req)
		if runs.Load() != 2 {
			t.Fatalf("400 stored under a 2xx/3xx policy")
		}
	})
}

func TestHandlerErrorReleases(t *testing.T) {
	f := newFixture(t, idemddb.Config{})
	var runs atomic.Int64
	boom := errors.New("boom")
	h := apigw.WrapV1(f.store, func(ctx context.Context, r events.APIGatewayProxyRequest) (events.APIGatewayProxyResponse, error) {
		if runs.Add(1) == 1 {
			return events.APIGatewayProxyResponse{}, boom
		}
		return events.APIGatewayProxyResponse{StatusCode: 201, Body: "ok"}, nil
	}, f.opts()...)
	req := v1req("POST", "/orders", "/orders", "p", []string{"k"}, `{}`)
	if _, err := h(bg, req); err != boom {
		t.Fatalf("error %v, want the handler's error unchanged", err)
	}
	if resp, err := h(bg, req); err != nil || resp.StatusCode != 201 || runs.Load() != 2 {
		t.Fatalf("retry: %+v %v runs %d", resp, err, runs.Load())
	}
	if resp, _ := h(bg, req); resp.Headers[apigw.ReplayedHeader] != "true" || runs.Load() != 2 {
		t.Fatal("third request not replayed")
	}
	if !strings.Contains(f.logs.String(), `"reason":"handler_error"`) {
		t.Fatalf("log: %s", f.logs.String())
	}
}

func TestBodyTooLarge(t *testing.T) {
	f := newFixture(t, idemddb.Config{})
	var runs atomic.Int64
	h := apigw.WrapV2(f.store, handlerV2(&runs, 201, `{}`), f.opts(apigw.WithMaxBodyBytes(10))...)
	n := 0
	send := func(body string, b64 bool) events.APIGatewayV2HTTPResponse {
		n++
		r := v2req("POST", "/orders", "/orders", "u", fmt.Sprint("k-", n), body)
		r.IsBase64Encoded = b64
		resp, _ := h(bg, r)
		return resp
	}
	f.client.Reset()
	resp := send(`{"a":"xxxx"}`, false) // 12 bytes
	wantProblem(t, resp.StatusCode, resp.Headers, resp.Body, 413, apigw.ProblemBodyTooLarge)
	resp = send(base64.StdEncoding.EncodeToString([]byte("12345678901")), true) // 11 decoded
	wantProblem(t, resp.StatusCode, resp.Headers, resp.Body, 413, apigw.ProblemBodyTooLarge)
	if f.client.Total() != 0 || runs.Load() != 0 {
		t.Fatalf("requests %d, runs %d before the 413", f.client.Total(), runs.Load())
	}
	// 16 base64 characters decode to 10 bytes: within the limit.
	if resp = send(base64.StdEncoding.EncodeToString([]byte("1234567890")), true); resp.StatusCode != 201 {
		t.Fatalf("decoded size at the limit: %+v", resp)
	}
	// The default is 1 MiB.
	hd := apigw.WrapV2(f.store, handlerV2(&runs, 201, `{}`), f.opts()...)
	r := v2req("POST", "/orders", "/orders", "u", "big", strings.Repeat("x", apigw.DefaultMaxBodyBytes+1))
	resp, _ = hd(bg, r)
	wantProblem(t, resp.StatusCode, resp.Headers, resp.Body, 413, apigw.ProblemBodyTooLarge)
}

func TestMismatchDoesNotRun(t *testing.T) {
	f := newFixture(t, idemddb.Config{})
	var runs atomic.Int64
	h := apigw.WrapV1(f.store, handlerV1(&runs, 201, `{}`), f.opts()...)
	_, _ = h(bg, v1req("POST", "/payments", "/payments", "p", []string{"k"}, `{"amount":100}`))
	resp, _ := h(bg, v1req("POST", "/payments", "/payments", "p", []string{"k"}, `{"amount":999}`))
	wantProblem(t, resp.StatusCode, resp.Headers, resp.Body, 422, apigw.ProblemKeyReused)
	if runs.Load() != 1 {
		t.Fatalf("runs %d", runs.Load())
	}
}

func TestInFlightConflict(t *testing.T) {
	f := newFixture(t, idemddb.Config{})
	started, release := make(chan struct{}), make(chan struct{})
	var runs atomic.Int64
	h := apigw.WrapV2(f.store, func(ctx context.Context, r events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
		runs.Add(1)
		close(started)
		<-release
		return events.APIGatewayV2HTTPResponse{StatusCode: 201, Body: "first"}, nil
	}, f.opts()...)
	req := v2req("POST", "/orders", "/orders", "u", "inflight", `{}`)
	type result struct {
		resp events.APIGatewayV2HTTPResponse
		err  error
	}
	done := make(chan result, 1)
	go func() {
		resp, err := h(bg, req)
		done <- result{resp, err}
	}()
	<-started
	resp, err := h(bg, req)
	close(release)
	if err != nil {
		t.Fatal(err)
	}
	wantProblem(t, resp.StatusCode, resp.Headers, resp.Body, 409, apigw.ProblemKeyInUse)
	// No deadline in ctx: the lease is idemddb.DefaultLease (30s).
	if ra := retryAfter(t, resp.Headers); ra > int(idemddb.DefaultLease.Seconds()) {
		t.Fatalf("Retry-After %d", ra)
	}
	first := <-done
	if first.err != nil || first.resp.Body != "first" || runs.Load() != 1 {
		t.Fatalf("first: %+v runs %d", first, runs.Load())
	}
	if resp, _ := h(bg, req); resp.Body != "first" || resp.Headers[apigw.ReplayedHeader] != "true" {
		t.Fatalf("after: %+v", resp)
	}
}

func TestRetryAfterRoundsUp(t *testing.T) {
	now := time.Now()
	f := newFixture(t, idemddb.Config{Now: func() time.Time { return now }, DefaultLease: 2500 * time.Millisecond, LeaseMargin: 100 * time.Millisecond})
	started, release := make(chan struct{}), make(chan struct{})
	h := apigw.WrapV2(f.store, func(ctx context.Context, r events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
		close(started)
		<-release
		return events.APIGatewayV2HTTPResponse{StatusCode: 201}, nil
	}, f.opts()...)
	req := v2req("POST", "/orders", "/orders", "u", "ra", `{}`)
	done := make(chan struct{})
	go func() { _, _ = h(bg, req); close(done) }()
	<-started
	resp, _ := h(bg, req)
	close(release)
	<-done
	wantProblem(t, resp.StatusCode, resp.Headers, resp.Body, 409, apigw.ProblemKeyInUse)
	if ra := retryAfter(t, resp.Headers); ra != 3 {
		t.Fatalf("Retry-After %d, want 2.5s rounded up to 3", ra)
	}
}
