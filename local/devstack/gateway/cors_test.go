package gateway

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/acme/idemcheckout/internal/samtemplate"
	"github.com/acme/idemcheckout/local/devstack/template"
)

// The storefront's configuration, as template.yaml has it.
var storefrontCORS = &corsConfig{
	AllowOrigins:  []string{"http://localhost:4000", "http://127.0.0.1:4000"},
	AllowHeaders:  []string{"Authorization", "Content-Type", "Idempotency-Key", "Prefer"},
	AllowMethods:  []string{"GET", "POST"},
	ExposeHeaders: []string{"Idempotent-Replayed", "Retry-After", "Location", "Preference-Applied"},
	MaxAge:        600 * time.Second,
}

const shop = "http://localhost:4000"

// corsGateway is a gateway over routes with no function running: a
// request that reaches a function gets 502 ("function ... is not
// running"), so a 204 or 401 shows that none was invoked. The routes are
// those of template.yaml's API, plus an ANY route and an open one.
func corsGateway(t *testing.T, c *corsConfig) (*Gateway, *[]string) {
	t.Helper()
	jwt := &samtemplate.Authorizer{Name: "JwtAuthorizer", IdentitySource: "$request.header.Authorization",
		JWT: &samtemplate.JWTConfiguration{Issuer: "https://issuer.example.com/", Audience: []string{"checkout-api"}}}
	mk := func(id, method, path string, auth *samtemplate.Authorizer) *Route {
		r := route(id, method, path)
		r.Authorizer, r.CORS = auth, c
		return r
	}
	var logs []string
	router := NewRouter([]*Route{
		mk("CreatePaymentFunction", "POST", "/payments", jwt),
		mk("GetPaymentFunction", "GET", "/payments/{id}", jwt),
		mk("AnyFunction", "ANY", "/any/{proxy+}", jwt),
		mk("OpenFunction", "POST", "/open", nil),
	})
	s := New(router, notRunning{}, func(f string, a ...any) { logs = append(logs, fmt.Sprintf(f, a...)) })
	return s, &logs
}

// notRunning is an Invoker with no function running, as the local stack's
// pools answer for a function they do not run.
type notRunning struct{}

func (notRunning) Invoke(_ context.Context, function string, _ []byte) ([]byte, error) {
	return nil, fmt.Errorf("function %s is not running", function)
}

func serveGW(s *Gateway, method, path string, hdr map[string]string, body string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, "http://127.0.0.1:3000"+path, strings.NewReader(body))
	r.RemoteAddr = "127.0.0.1:55555"
	for k, v := range hdr {
		r.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	s.ServeHTTP(w, r)
	return w
}

// corsHeaders returns the response's Access-Control-* headers.
func corsHeaders(h http.Header) map[string]string {
	out := map[string]string{}
	for k, v := range h {
		if strings.HasPrefix(k, "Access-Control-") {
			out[k] = strings.Join(v, "|")
		}
	}
	return out
}

func preflightHeaders(origin, method, headers string) map[string]string {
	h := map[string]string{"Origin": origin, "Access-Control-Request-Method": method}
	if headers != "" {
		h["Access-Control-Request-Headers"] = headers
	}
	return h
}

// An allowed preflight gets 204 and the configured headers from the
// gateway itself: the route's authorizer does not run (no token is sent)
// and no function is invoked (none runs here), even for a path no route
// serves.
func TestCORSPreflightAllowed(t *testing.T) {
	s, logs := corsGateway(t, storefrontCORS)
	for _, tc := range []struct{ path, origin, method, headers string }{
		{"/payments", shop, "POST", "authorization,content-type,idempotency-key"},
		{"/payments", "http://127.0.0.1:4000", "POST", "Authorization, Content-Type, Idempotency-Key, Prefer"},
		{"/payments/pay_1", shop, "GET", "authorization"},
		{"/payments", shop, "POST", ""},
		{"/no/such/route", shop, "POST", "idempotency-key"},
	} {
		w := serveGW(s, "OPTIONS", tc.path, preflightHeaders(tc.origin, tc.method, tc.headers), "")
		want := map[string]string{
			"Access-Control-Allow-Origin":  tc.origin,
			"Access-Control-Allow-Methods": "GET,POST",
			"Access-Control-Allow-Headers": "Authorization,Content-Type,Idempotency-Key,Prefer",
			"Access-Control-Max-Age":       "600",
		}
		if w.Code != http.StatusNoContent || w.Body.Len() != 0 || !reflect.DeepEqual(corsHeaders(w.Header()), want) {
			t.Errorf("preflight %+v: %d %v %q, want 204 %v", tc, w.Code, corsHeaders(w.Header()), w.Body, want)
		}
		if w.Header().Get("Vary") != "Origin" || w.Header().Get("Apigw-Requestid") == "" {
			t.Errorf("preflight %+v: Vary %q, Apigw-Requestid %q", tc, w.Header().Get("Vary"), w.Header().Get("Apigw-Requestid"))
		}
	}
	for _, l := range *logs {
		if !strings.Contains(l, " 204 ") || !strings.Contains(l, " - ") || !strings.Contains(l, "(preflight)") {
			t.Errorf("log line %q: want a 204 answered by the gateway (function -)", l)
		}
	}
	// Credentials, when configured, are said on the preflight.
	withCreds := *storefrontCORS
	withCreds.AllowCredentials = true
	s2, _ := corsGateway(t, &withCreds)
	w := serveGW(s2, "OPTIONS", "/payments", preflightHeaders(shop, "POST", "authorization"), "")
	if w.Code != 204 || w.Header().Get("Access-Control-Allow-Credentials") != "true" {
		t.Errorf("with credentials: %d %v", w.Code, corsHeaders(w.Header()))
	}
	// A '*' origin answers '*' (and so needs no Vary).
	star := *storefrontCORS
	star.AllowOrigins = []string{"*"}
	s3, _ := corsGateway(t, &star)
	w = serveGW(s3, "OPTIONS", "/payments", preflightHeaders("https://anyone.example", "POST", ""), "")
	if w.Code != 204 || w.Header().Get("Access-Control-Allow-Origin") != "*" || w.Header().Get("Vary") != "" {
		t.Errorf("'*' origin: %d %v vary %q", w.Code, corsHeaders(w.Header()), w.Header().Get("Vary"))
	}
}

// A preflight the configuration does not allow (origin, method or one
// requested header) is still answered by the gateway, 204 without any
// CORS header, so the browser refuses the request; nothing runs. So is
// one with a malformed Origin: never a 5xx.
func TestCORSPreflightRefused(t *testing.T) {
	s, logs := corsGateway(t, storefrontCORS)
	for name, hdr := range map[string]map[string]string{
		"other origin":           preflightHeaders("https://evil.example", "POST", "authorization"),
		"other port":             preflightHeaders("http://localhost:4001", "POST", ""),
		"other scheme":           preflightHeaders("https://localhost:4000", "POST", ""),
		"method not allowed":     preflightHeaders(shop, "DELETE", ""),
		"method wrong case":      preflightHeaders(shop, "post", ""),
		"header not allowed":     preflightHeaders(shop, "POST", "authorization,x-debug"),
		"null origin":            preflightHeaders("null", "POST", ""),
		"origin with slash":      preflightHeaders(shop+"/", "POST", ""),
		"origin with path":       preflightHeaders(shop+"/checkout", "POST", ""),
		"origin without scheme":  preflightHeaders("localhost:4000", "POST", ""),
		"origin with bad port":   preflightHeaders("http://localhost:port", "POST", ""),
		"origin with userinfo":   preflightHeaders("http://a@localhost:4000", "POST", ""),
		"origin with query":      preflightHeaders(shop+"?x=1", "POST", ""),
		"origin not a url":       preflightHeaders("%%%", "POST", ""),
		"origin scheme only":     preflightHeaders("http://", "POST", ""),
		"origin huge":            preflightHeaders("http://"+strings.Repeat("a", 5000)+".example", "POST", ""),
		"origin control bytes":   preflightHeaders("http://local\x7fhost:4000", "POST", ""),
		"origin with whitespace": preflightHeaders("http://localhost:4000 http://x", "POST", ""),
	} {
		w := serveGW(s, "OPTIONS", "/payments", hdr, "")
		if w.Code != http.StatusNoContent || len(corsHeaders(w.Header())) != 0 || w.Body.Len() != 0 {
			t.Errorf("%s: %d %v %q, want 204 without CORS headers", name, w.Code, corsHeaders(w.Header()), w.Body)
		}
	}
	for _, l := range *logs {
		if !strings.Contains(l, " 204 ") || !strings.Contains(l, " - ") || !strings.Contains(l, "preflight refused") {
			t.Errorf("log line %q: want a refused preflight answered by the gateway", l)
		}
	}
}

// A route that takes OPTIONS (ANY here) takes the preflight too, as AWS
// documents for $default: its authorizer runs (401, with the CORS headers,
// which the browser then reports as a failed preflight). An OPTIONS that
// is not a preflight is routed like any request (404: no OPTIONS route).
func TestCORSPreflightToAnyRoute(t *testing.T) {
	s, _ := corsGateway(t, storefrontCORS)
	w := serveGW(s, "OPTIONS", "/any/x", preflightHeaders(shop, "POST", "authorization"), "")
	if w.Code != http.StatusUnauthorized || w.Header().Get("Access-Control-Allow-Origin") != shop {
		t.Errorf("preflight to an ANY route: %d %v, want the authorizer's 401 with CORS headers", w.Code, corsHeaders(w.Header()))
	}
	w = serveGW(s, "OPTIONS", "/payments", map[string]string{"Origin": shop}, "")
	if w.Code != http.StatusNotFound || w.Header().Get("Access-Control-Allow-Methods") != "" {
		t.Errorf("OPTIONS without Access-Control-Request-Method: %d %v, want 404 (not a preflight)", w.Code, corsHeaders(w.Header()))
	}
}

// The gateway's own answers to an allowed origin carry the CORS headers
// (so the page can read a 401, 404 or 413), and to any other origin, or a
// malformed one, none; never a 5xx for an Origin.
func TestCORSGatewayAnswers(t *testing.T) {
	s, _ := corsGateway(t, storefrontCORS)
	allowed := map[string]string{
		"Access-Control-Allow-Origin":   shop,
		"Access-Control-Expose-Headers": "Idempotent-Replayed,Retry-After,Location,Preference-Applied",
	}
	big := strings.Repeat("x", maxBody+1)
	for _, tc := range []struct {
		name, method, path, body string
		status                   int
	}{
		{"401 from the JWT authorizer", "POST", "/payments", "{}", 401},
		{"401 on a GET", "GET", "/payments/pay_1", "", 401},
		{"404 no route", "GET", "/nowhere", "", 404},
		{"404 method without route", "DELETE", "/payments", "", 404},
		{"413 body over 10 MB", "POST", "/open", big, 413},
		{"502 function not running", "POST", "/open", "{}", 502},
	} {
		w := serveGW(s, tc.method, tc.path, map[string]string{"Origin": shop}, tc.body)
		if w.Code != tc.status || !reflect.DeepEqual(corsHeaders(w.Header()), allowed) || w.Header().Get("Vary") != "Origin" {
			t.Errorf("%s: %d %v vary %q, want %d %v", tc.name, w.Code, corsHeaders(w.Header()), w.Header().Get("Vary"), tc.status, allowed)
		}
		for _, origin := range []string{"", "https://evil.example", "null", shop + "/", "http://localhost:x", "\x01"} {
			w := serveGW(s, tc.method, tc.path, map[string]string{"Origin": origin}, tc.body)
			if w.Code != tc.status || len(corsHeaders(w.Header())) != 0 {
				t.Errorf("%s from origin %q: %d %v, want %d without CORS headers", tc.name, origin, w.Code, corsHeaders(w.Header()), tc.status)
			}
		}
	}
	if w := serveGW(s, "POST", "/payments", map[string]string{"Origin": shop}, "{}"); w.Header().Get("WWW-Authenticate") != "Bearer" {
		t.Errorf("401: WWW-Authenticate %q", w.Header().Get("WWW-Authenticate"))
	}
}

// Without a CorsConfiguration the gateway answers no preflight and adds no
// CORS header: an OPTIONS goes to routing like any request.
func TestCORSUnconfigured(t *testing.T) {
	s, _ := corsGateway(t, nil)
	w := serveGW(s, "OPTIONS", "/payments", preflightHeaders(shop, "POST", "authorization"), "")
	if w.Code != http.StatusNotFound || len(corsHeaders(w.Header())) != 0 {
		t.Errorf("preflight without CORS: %d %v, want 404 without CORS headers", w.Code, corsHeaders(w.Header()))
	}
	if w := serveGW(s, "POST", "/payments", map[string]string{"Origin": shop}, "{}"); w.Code != 401 || len(corsHeaders(w.Header())) != 0 {
		t.Errorf("POST without CORS: %d %v", w.Code, corsHeaders(w.Header()))
	}
}

// The function's own Access-Control-* headers are replaced by the
// configured ones (or dropped, for an origin not allowed).
func TestApplyCORSReplacesTheFunctionsHeaders(t *testing.T) {
	fromFunction := func() http.Header {
		return http.Header{
			"access-control-allow-origin":      {"*"},
			"Access-Control-Allow-Credentials": {"true"},
			"Access-Control-Expose-Headers":    {"X-Secret"},
			"Access-Control-Max-Age":           {"99999"},
			"Vary":                             {"Accept-Encoding, origin"},
			"Content-Type":                     {"application/json"},
		}
	}
	h := fromFunction()
	applyCORS(h, storefrontCORS, shop)
	want := map[string]string{"Access-Control-Allow-Origin": shop, "Access-Control-Expose-Headers": "Idempotent-Replayed,Retry-After,Location,Preference-Applied"}
	if !reflect.DeepEqual(corsHeaders(h), want) || hasRawKey(h, "access-control-allow-origin") || h.Get("Content-Type") != "application/json" || len(h.Values("Vary")) != 1 {
		t.Errorf("allowed origin: %v", h)
	}
	h = fromFunction()
	applyCORS(h, storefrontCORS, "https://evil.example")
	if len(corsHeaders(h)) != 0 || hasRawKey(h, "access-control-allow-origin") {
		t.Errorf("other origin: the function's CORS headers must be dropped: %v", h)
	}
}

// hasRawKey reports whether h has key exactly as written (a function's
// headers reach the gateway uncanonicalized).
func hasRawKey(h http.Header, key string) bool {
	for k := range h {
		if k == key {
			return true
		}
	}
	return false
}

// `make dev PARAMS=AllowedOrigins=...` reaches the CorsConfiguration of the
// repository's template like any override (!Split of !Ref resolved), and
// the default is the local storefront.
func TestTemplateAllowedOriginsOverride(t *testing.T) {
	path := filepath.Join("..", "..", "..", "template.yaml")
	ov, err := template.ParseOverrides("AllowedOrigins=https://shop.example.com,http://localhost:4000 LogLevel=DEBUG")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		overrides map[string]string
		want      []string
	}{
		{nil, []string{"http://localhost:4000", "http://127.0.0.1:4000"}},
		{map[string]string{"AllowedOrigins": "http://localhost:4000"}, []string{"http://localhost:4000"}},
		{ov, []string{"https://shop.example.com", "http://localhost:4000"}},
	} {
		tm, err := template.Load(path, tc.overrides, "")
		if err != nil {
			t.Fatal(err)
		}
		rs, err := Routes(tm)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rs {
			if r.CORS == nil || !reflect.DeepEqual(r.CORS.AllowOrigins, tc.want) || r.CORS.MaxAge != 600*time.Second {
				t.Errorf("overrides %v: route %s CORS = %+v, want origins %v", tc.overrides, r.RouteKey(), r.CORS, tc.want)
			}
		}
	}
	if _, err := template.Load(path, map[string]string{"AllowedOrigins": "https://shop.example.com/"}, ""); err == nil || !strings.Contains(err.Error(), "AllowedOrigins") {
		t.Errorf("an origin with a trailing slash: err = %v, want the parameter's constraint", err)
	}
}
