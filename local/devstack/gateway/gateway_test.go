package gateway

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/acme/idemcheckout/internal/samtemplate"
	"github.com/aws/aws-lambda-go/events"
)

func makeJWT(claims map[string]any) string { return UnsignedJWT(claims) }

func TestJWTAuthorizer(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	cfg := &samtemplate.Authorizer{Name: "J", IdentitySource: "$request.header.Authorization", JWT: &samtemplate.JWTConfiguration{Issuer: "https://iss/", Audience: []string{"api"}}}
	good := map[string]any{"iss": "https://iss/", "aud": "api", "sub": "u1", "exp": now.Unix() + 60, "scope": "orders:write pay", "groups": []any{"a", "b"}, "tenant": "t1"}
	with := func(k string, v any) map[string]any {
		m := map[string]any{}
		for kk, vv := range good {
			m[kk] = vv
		}
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
		return m
	}
	for _, tc := range []struct {
		name   string
		header string
		scopes []string
		want   error
	}{
		{"missing", "", nil, errUnauthorized},
		{"malformed", "Bearer not-a-jwt", nil, errUnauthorized},
		{"bad base64", "Bearer a.!!!.c", nil, errUnauthorized},
		{"payload not json", "Bearer " + base64.RawURLEncoding.EncodeToString([]byte(`{}`)) + "." + base64.RawURLEncoding.EncodeToString([]byte("nope")) + ".s", nil, errUnauthorized},
		{"expired", "Bearer " + makeJWT(with("exp", now.Unix()-1)), nil, errUnauthorized},
		{"not before", "Bearer " + makeJWT(with("nbf", now.Unix()+60)), nil, errUnauthorized},
		{"wrong issuer", "Bearer " + makeJWT(with("iss", "https://other/")), nil, errUnauthorized},
		{"wrong audience", "Bearer " + makeJWT(with("aud", []any{"x", "y"})), nil, errUnauthorized},
		{"audience via client_id", "Bearer " + makeJWT(with("aud", nil)), nil, errUnauthorized},
		{"ok", "Bearer " + makeJWT(good), nil, nil},
		{"ok without Bearer prefix", makeJWT(good), nil, nil},
		{"ok aud array", "Bearer " + makeJWT(with("aud", []any{"x", "api"})), nil, nil},
		{"ok scope", "Bearer " + makeJWT(good), []string{"pay"}, nil},
		{"missing scope", "Bearer " + makeJWT(good), []string{"admin"}, errForbidden},
	} {
		h := http.Header{}
		if tc.header != "" {
			h.Set("Authorization", tc.header)
		}
		res, err := authorize(cfg, h, tc.scopes, now)
		if tc.want != nil {
			if !errors.Is(err, tc.want) {
				t.Errorf("%s: err = %v, want %v", tc.name, err, tc.want)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if tc.name == "ok" {
			want := map[string]string{"iss": "https://iss/", "aud": "api", "sub": "u1", "exp": "1800000060", "scope": "orders:write pay", "groups": "[a b]", "tenant": "t1"}
			if !reflect.DeepEqual(res.Claims, want) {
				t.Errorf("claims = %v, want %v", res.Claims, want)
			}
			if !reflect.DeepEqual(res.Scopes, []string{"orders:write", "pay"}) {
				t.Errorf("scopes = %v", res.Scopes)
			}
		}
	}
	// client_id satisfies the audience (Cognito access tokens).
	h := http.Header{"Authorization": {"Bearer " + makeJWT(with("aud", nil))}}
	c := with("aud", nil)
	c["client_id"] = "api"
	h.Set("Authorization", "Bearer "+makeJWT(c))
	if _, err := authorize(cfg, h, nil, now); err != nil {
		t.Errorf("client_id as audience: %v", err)
	}
	// Unresolved issuer/audience disable those checks.
	open := &samtemplate.Authorizer{Name: "J", JWT: &samtemplate.JWTConfiguration{}}
	h.Set("Authorization", "Bearer "+makeJWT(map[string]any{"sub": "x"}))
	if _, err := authorize(open, h, nil, now); err != nil {
		t.Errorf("no iss/aud configured: %v", err)
	}
}

func TestRouterMatch(t *testing.T) {
	rt := NewRouter([]*Route{
		route("Orders", "POST", "/orders"),
		route("OrderAny", "ANY", "/orders"),
		route("OrderGet", "GET", "/orders/{id}"),
		route("OrderItems", "GET", "/orders/{id}/items/{item}"),
		route("Proxy", "ANY", "/files/{proxy+}"),
		route("Latest", "GET", "/files/latest"),
		route("Default", "ANY", "$default"),
	})
	for _, tc := range []struct {
		method, path, want string
		params             map[string]string
	}{
		{"POST", "/orders", "Orders", nil},
		{"DELETE", "/orders", "OrderAny", nil},
		{"GET", "/orders/42", "OrderGet", map[string]string{"id": "42"}},
		{"GET", "/orders/42/items/7", "OrderItems", map[string]string{"id": "42", "item": "7"}},
		{"GET", "/files/a/b/c.txt", "Proxy", map[string]string{"proxy": "a/b/c.txt"}},
		{"GET", "/files/latest", "Latest", nil},
		{"PUT", "/files/latest", "Proxy", map[string]string{"proxy": "latest"}},
		{"GET", "/nothing/here", "Default", nil},
		{"POST", "/orders/42", "Default", nil},
	} {
		r, params, ok := rt.match(tc.method, tc.path)
		if !ok || r.Function.ID != tc.want || !reflect.DeepEqual(params, tc.params) {
			got := "<none>"
			if ok {
				got = r.Function.ID
			}
			t.Errorf("%s %s -> %s %v, want %s %v", tc.method, tc.path, got, params, tc.want, tc.params)
		}
	}
	rt2 := NewRouter([]*Route{route("Only", "POST", "/orders")})
	if _, _, ok := rt2.match("GET", "/orders"); ok {
		t.Error("GET /orders must not match POST /orders")
	}
	if _, _, ok := rt2.match("POST", "/orders/x"); ok {
		t.Error("/orders/x must not match /orders")
	}
}

// route is an HttpApi route of a function id.
func route(id, method, path string) *Route {
	return &Route{Function: &samtemplate.Function{ID: id}, Event: samtemplate.Event{Type: samtemplate.EventHTTPAPI,
		HTTP: &samtemplate.HTTPEvent{Method: method, Path: path, PayloadFormatVersion: "2.0"}}}
}

func newReq(method, target, body string, hdr map[string][]string) *http.Request {
	r := httptest.NewRequest(method, target, strings.NewReader(body))
	r.RemoteAddr = "127.0.0.1:55555"
	for k, vs := range hdr {
		for _, v := range vs {
			r.Header.Add(k, v)
		}
	}
	return r
}

func TestBuildV2Event(t *testing.T) {
	route := route("F", "POST", "/orders/{id}")
	r := newReq("POST", "http://127.0.0.1:3000/orders/42?a=1&a=2&b=x%20y", `{"k":1}`, map[string][]string{
		"Content-Type": {"application/json"}, "X-Multi": {"1", "2"}, "Cookie": {"c1=v1; c2=v2"}, "User-Agent": {"ua/1"}, "Idempotency-Key": {"k1"},
	})
	now := time.UnixMilli(1_800_000_000_123)
	ri := &requestInfo{Req: r, Body: []byte(`{"k":1}`), Route: route, PathParams: map[string]string{"id": "42"},
		JWT: &jwtResult{Claims: map[string]string{"sub": "u1"}, Scopes: []string{"s"}}, Now: now, RequestID: "rid-1"}
	b, err := json.Marshal(buildV2Event(ri))
	if err != nil {
		t.Fatal(err)
	}
	var ev events.APIGatewayV2HTTPRequest
	if err := json.Unmarshal(b, &ev); err != nil {
		t.Fatal(err)
	}
	rc := ev.RequestContext
	checks := map[string][2]any{
		"version":        {ev.Version, "2.0"},
		"routeKey":       {ev.RouteKey, "POST /orders/{id}"},
		"rc.routeKey":    {rc.RouteKey, "POST /orders/{id}"},
		"rawPath":        {ev.RawPath, "/orders/42"},
		"rawQueryString": {ev.RawQueryString, "a=1&a=2&b=x%20y"},
		"query a":        {ev.QueryStringParameters["a"], "1,2"},
		"query b":        {ev.QueryStringParameters["b"], "x y"},
		"header multi":   {ev.Headers["x-multi"], "1,2"},
		"header ct":      {ev.Headers["content-type"], "application/json"},
		"header idem":    {ev.Headers["idempotency-key"], "k1"},
		"no cookie hdr":  {ev.Headers["cookie"], ""},
		"path param":     {ev.PathParameters["id"], "42"},
		"body":           {ev.Body, `{"k":1}`},
		"b64":            {ev.IsBase64Encoded, false},
		"method":         {rc.HTTP.Method, "POST"},
		"path":           {rc.HTTP.Path, "/orders/42"},
		"sourceIp":       {rc.HTTP.SourceIP, "127.0.0.1"},
		"userAgent":      {rc.HTTP.UserAgent, "ua/1"},
		"protocol":       {rc.HTTP.Protocol, "HTTP/1.1"},
		"timeEpoch":      {rc.TimeEpoch, int64(1_800_000_000_123)},
		"requestId":      {rc.RequestID, "rid-1"},
		"stage":          {rc.Stage, "$default"},
		"claim":          {rc.Authorizer.JWT.Claims["sub"], "u1"},
	}
	for name, c := range checks {
		if !reflect.DeepEqual(c[0], c[1]) {
			t.Errorf("%s = %#v, want %#v", name, c[0], c[1])
		}
	}
	if !reflect.DeepEqual(ev.Cookies, []string{"c1=v1", "c2=v2"}) {
		t.Errorf("cookies = %v", ev.Cookies)
	}
	if !reflect.DeepEqual(rc.Authorizer.JWT.Scopes, []string{"s"}) {
		t.Errorf("scopes = %v", rc.Authorizer.JWT.Scopes)
	}
	for k := range ev.Headers {
		if k != strings.ToLower(k) {
			t.Errorf("header %q is not lower case", k)
		}
	}
	// Binary bodies are base64-encoded.
	r2 := newReq("POST", "http://127.0.0.1:3000/orders/42", "\x00\x01", map[string][]string{"Content-Type": {"application/octet-stream"}})
	ri2 := &requestInfo{Req: r2, Body: []byte{0, 1}, Route: route, Now: now, RequestID: "rid-2"}
	ev2 := buildV2Event(ri2)
	if !ev2.IsBase64Encoded || ev2.Body != "AAE=" {
		t.Errorf("binary body = %q b64=%v", ev2.Body, ev2.IsBase64Encoded)
	}
	if ev2.RequestContext.Authorizer != nil {
		t.Error("no JWT: authorizer must be absent")
	}
}

func TestBuildV1Event(t *testing.T) {
	route := &Route{Event: samtemplate.Event{Type: samtemplate.EventAPI, HTTP: &samtemplate.HTTPEvent{Method: "POST", Path: "/v1/{id}", PayloadFormatVersion: "1.0"}}}
	r := newReq("POST", "http://127.0.0.1:3000/v1/7?q=1&q=2", "hi", map[string][]string{"X-Multi": {"1", "2"}, "Content-Type": {"text/plain"}})
	now := time.UnixMilli(1_800_000_000_456)
	b, err := json.Marshal(buildV1Event(&requestInfo{Req: r, Body: []byte("hi"), Route: route, PathParams: map[string]string{"id": "7"}, Now: now, RequestID: "rid"}))
	if err != nil {
		t.Fatal(err)
	}
	var ev events.APIGatewayProxyRequest
	if err := json.Unmarshal(b, &ev); err != nil {
		t.Fatal(err)
	}
	if ev.Resource != "/v1/{id}" || ev.Path != "/v1/7" || ev.HTTPMethod != "POST" || ev.Body != "hi" || ev.IsBase64Encoded {
		t.Errorf("event = %+v", ev)
	}
	if !reflect.DeepEqual(ev.MultiValueHeaders["X-Multi"], []string{"1", "2"}) || ev.Headers["X-Multi"] != "2" {
		t.Errorf("headers = %v / %v", ev.Headers, ev.MultiValueHeaders)
	}
	if !reflect.DeepEqual(ev.MultiValueQueryStringParameters["q"], []string{"1", "2"}) || ev.QueryStringParameters["q"] != "2" {
		t.Errorf("query = %v / %v", ev.QueryStringParameters, ev.MultiValueQueryStringParameters)
	}
	if ev.PathParameters["id"] != "7" || ev.RequestContext.RequestTimeEpoch != 1_800_000_000_456 || ev.RequestContext.Identity.SourceIP != "127.0.0.1" || ev.RequestContext.RequestID != "rid" {
		t.Errorf("context = %+v", ev.RequestContext)
	}
}

func TestParseResponses(t *testing.T) {
	resp, err := parseV2Response([]byte(`{"statusCode":201,"headers":{"X-A":"1","Content-Type":"text/plain"},"multiValueHeaders":{"X-M":["a","b"]},"cookies":["c=1","d=2"],"body":"aGk=","isBase64Encoded":true}`))
	if err != nil {
		t.Fatal(err)
	}
	if resp.Status != 201 || string(resp.Body) != "hi" || resp.Header.Get("X-A") != "1" ||
		!reflect.DeepEqual(resp.Header.Values("X-M"), []string{"a", "b"}) || !reflect.DeepEqual(resp.Header.Values("Set-Cookie"), []string{"c=1", "d=2"}) {
		t.Errorf("v2 envelope = %+v %q", resp.Header, resp.Body)
	}
	resp, err = parseV2Response([]byte(`{"hello":"world"}`))
	if err != nil || resp.Status != 200 || string(resp.Body) != `{"hello":"world"}` || resp.Header.Get("Content-Type") != "application/json" {
		t.Errorf("v2 simple object = %+v, %v", resp, err)
	}
	resp, err = parseV2Response([]byte(`"plain"`))
	if err != nil || resp.Status != 200 || string(resp.Body) != "plain" {
		t.Errorf("v2 simple string = %+v, %v", resp, err)
	}
	if _, err := parseV2Response([]byte(`not json`)); err == nil {
		t.Error("v2: non-JSON output must be an error")
	}
	resp, err = parseV1Response([]byte(`{"statusCode":200,"headers":{"A":"1"},"multiValueHeaders":{"B":["x","y"]},"body":"ok"}`))
	if err != nil || resp.Status != 200 || string(resp.Body) != "ok" || resp.Header.Get("A") != "1" || len(resp.Header.Values("B")) != 2 {
		t.Errorf("v1 = %+v, %v", resp, err)
	}
	if _, err := parseV1Response([]byte(`{"hello":"world"}`)); err == nil {
		t.Error("v1 without statusCode must be an error")
	}
}
