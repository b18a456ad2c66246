package gateway

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"time"

	"github.com/acme/idemcheckout/local/devstack/lambda"
	"github.com/acme/idemcheckout/local/devstack/template"
)

var pathParam = regexp.MustCompile(`\{[^}]+\}`)

// SampleEvent is API Gateway's event for function fn's first route (a
// POST if it has one), indented, as `make event TYPE=http` prints it:
// payload 2.0 (1.0 for Api routes), with an unsigned local JWT for subject
// dev-user when the route has a JWT authorizer, an Idempotency-Key and
// body as the JSON body.
func SampleEvent(tm *template.Template, fn, body string, now time.Time) ([]byte, error) {
	routes, err := Routes(tm)
	if err != nil {
		return nil, err
	}
	var route *Route
	for _, r := range routes {
		if r.Function.ID == fn && (route == nil || (r.Event.HTTP.Method == "POST" && route.Event.HTTP.Method != "POST")) {
			route = r
		}
	}
	if route == nil {
		return nil, fmt.Errorf("function %s has no HttpApi or Api event", fn)
	}
	method := route.Event.HTTP.Method
	if method == "ANY" {
		method = http.MethodPost
	}
	path := route.Event.HTTP.Path
	if path == "$default" {
		path = "/"
	}
	params := map[string]string{}
	for _, p := range pathParam.FindAllString(path, -1) {
		params[strings.Trim(p, "{}+")] = "sample"
	}
	path = pathParam.ReplaceAllString(path, "sample")
	r := httptest.NewRequest(method, "http://127.0.0.1:3000"+path, strings.NewReader(body))
	r.RemoteAddr = "127.0.0.1:50000"
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("Idempotency-Key", "sample-"+lambda.NewRequestID())
	r.Header.Set("User-Agent", "make-event")
	ri := &requestInfo{Req: r, Body: []byte(body), Route: route, PathParams: params, Now: now, RequestID: lambda.NewRequestID()}
	if len(params) == 0 {
		ri.PathParams = nil
	}
	if a := route.Authorizer; a != nil {
		r.Header.Set("Authorization", "Bearer "+devToken(a, route.Event.HTTP.Scopes, now))
		res, err := authorize(a, r.Header, route.Event.HTTP.Scopes, now)
		if err != nil {
			return nil, err
		}
		ri.JWT = res
	}
	if route.V1() {
		return json.MarshalIndent(buildV1Event(ri), "", "  ")
	}
	return json.MarshalIndent(buildV2Event(ri), "", "  ")
}
