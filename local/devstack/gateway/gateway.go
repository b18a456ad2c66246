// Package gateway is the local API Gateway: it matches a request to a
// route of the template (routes.go), answers CORS preflights (cors.go),
// runs the route's JWT authorizer without verifying signatures (jwt.go),
// maps the request to the Lambda event of the route's payload format and
// the function's answer back to an HTTP response (events.go), and invokes
// the function through a lambda.Invoker (gateway.go). It does not run
// functions, listen on a port or read template.yaml itself: the local
// stack (local/devstack) wires it to the emulator pools and its listener.
package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/acme/idemcheckout/internal/samtemplate"
	"github.com/acme/idemcheckout/local/devstack/lambda"
)

// Gateway is the API Gateway emulation, an http.Handler: HttpApi payload
// 2.0, Api payload 1.0, JWT authorizers and CORS, one log line per
// request.
type Gateway struct {
	router *Router
	invoke lambda.Invoker
	logf   func(string, ...any)
}

// New returns a gateway serving router's routes, invoking their functions
// through inv and logging through logf.
func New(router *Router, inv lambda.Invoker, logf func(string, ...any)) *Gateway {
	return &Gateway{router: router, invoke: inv, logf: logf}
}

// ServeHTTP serves one request and logs it.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rec := &statusRecorder{ResponseWriter: w}
	g.serve(rec, r, start)
	if rec.status == 0 {
		rec.status = http.StatusOK
	}
	replayed := ""
	if strings.EqualFold(rec.Header().Get("Idempotent-Replayed"), "true") {
		replayed = " replayed=true"
	}
	fn := rec.function
	if fn == "" {
		fn = "-"
	}
	note := ""
	if rec.note != "" {
		note = " (" + rec.note + ")"
	}
	g.logf("%s %s %d %s %s%s%s", r.Method, r.URL.RequestURI(), rec.status, time.Since(start).Round(100*time.Microsecond), fn, replayed, note)
}

type statusRecorder struct {
	http.ResponseWriter
	status   int
	function string
	note     string // why the gateway answered an error itself
	// cors is the configuration whose headers every answer gets (the
	// gateway's own and the function's), for a request from origin.
	cors   *corsConfig
	origin string
}

func (r *statusRecorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
		applyCORS(r.Header(), r.cors, r.origin)
	}
	r.ResponseWriter.WriteHeader(code)
}

func writeMessage(w http.ResponseWriter, status int, msg string) {
	b, _ := json.Marshal(map[string]string{"message": msg})
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// maxBody is API Gateway's limit on a request body.
const maxBody = 10 << 20

// serve answers a request: a preflight or a 404 from the gateway itself,
// else the route's authorizer, the Lambda event, the invocation and the
// function's answer.
func (g *Gateway) serve(w *statusRecorder, r *http.Request, now time.Time) {
	reqID := lambda.NewRequestID()
	w.Header().Set("Apigw-Requestid", reqID)
	w.origin = r.Header.Get("Origin")
	route, params, ok := g.router.match(r.Method, r.URL.Path)
	if isPreflight(r) && (!ok || !takesOptions(route)) && g.preflight(w, r) {
		return
	}
	if !ok {
		w.cors = g.router.corsFor(r.Method, r.URL.Path)
		writeMessage(w, http.StatusNotFound, "Not Found")
		return
	}
	if route.Event.Type == samtemplate.EventHTTPAPI {
		w.cors = route.CORS
	}
	w.function = route.Function.ID
	jwt, ok := authorizeRoute(w, r, route, now)
	if !ok {
		return
	}
	body, ok := readBody(w, r)
	if !ok {
		return
	}
	ri := &requestInfo{Req: r, Body: body, Route: route, PathParams: params, JWT: jwt, Now: now, RequestID: reqID}
	payload, ok := eventPayload(w, ri)
	if !ok {
		return
	}
	// A client that goes away does not stop the invocation: API Gateway
	// lets the function run to its end and drops the answer, so a payment
	// whose reply is lost still commits (its timeout still bounds it).
	out, err := g.invoke.Invoke(context.WithoutCancel(r.Context()), route.Function.ID, payload)
	if err != nil {
		w.note = err.Error()
		writeMessage(w, http.StatusBadGateway, "Internal server error")
		return
	}
	writeFunctionResponse(w, route, out)
}

// preflight answers a CORS preflight no route takes, as API Gateway does
// (no authorizer, no function, whatever the path); false when no CORS
// configuration applies, and the request goes on as any other.
func (g *Gateway) preflight(w *statusRecorder, r *http.Request) bool {
	c := g.router.corsFor(r.Header.Get("Access-Control-Request-Method"), r.URL.Path)
	if c == nil {
		return false
	}
	w.note = "preflight"
	if why := writePreflight(w, c, r); why != "" {
		w.note = "preflight refused: " + why
	}
	return true
}

// authorizeRoute runs the route's JWT authorizer, if any; on refusal it
// answers 401 or 403 and returns false.
func authorizeRoute(w *statusRecorder, r *http.Request, route *Route, now time.Time) (*jwtResult, bool) {
	a := route.Authorizer
	if a == nil {
		return nil, true
	}
	res, err := authorize(a, r.Header, route.Event.HTTP.Scopes, now)
	if err == nil {
		return res, true
	}
	w.note = "authorizer " + a.Name + ": " + err.Error()
	if errors.Is(err, errForbidden) {
		writeMessage(w, http.StatusForbidden, "Forbidden")
	} else {
		w.Header().Set("WWW-Authenticate", "Bearer")
		writeMessage(w, http.StatusUnauthorized, "Unauthorized")
	}
	return nil, false
}

// readBody reads the request body within API Gateway's limit; over it,
// or unreadable, it answers 413 or 400 and returns false.
func readBody(w *statusRecorder, r *http.Request) ([]byte, bool) {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		writeMessage(w, http.StatusBadRequest, "Bad Request")
		return nil, false
	}
	if len(body) > maxBody {
		writeMessage(w, http.StatusRequestEntityTooLarge, "Request Entity Too Large")
		return nil, false
	}
	return body, true
}

// eventPayload is the Lambda event of the route's payload format; an
// event over Lambda's invoke limit is answered 413, as Lambda refuses the
// invoke (RequestEntityTooLargeException) and API Gateway answers so.
func eventPayload(w *statusRecorder, ri *requestInfo) ([]byte, bool) {
	payload, err := ri.event()
	if err != nil {
		writeMessage(w, http.StatusInternalServerError, "Internal server error")
		return nil, false
	}
	if len(payload) > lambda.MaxInvokePayload {
		w.note = fmt.Sprintf("event of %d bytes is over Lambda's %d-byte invoke limit", len(payload), lambda.MaxInvokePayload)
		writeMessage(w, http.StatusRequestEntityTooLarge, "Request Entity Too Large")
		return nil, false
	}
	return payload, true
}

// writeFunctionResponse writes the function's proxy response; one that is
// not valid is a 502.
func writeFunctionResponse(w *statusRecorder, route *Route, out []byte) {
	var resp *response
	var err error
	if route.V1() {
		resp, err = parseV1Response(out)
	} else {
		resp, err = parseV2Response(out)
	}
	if err != nil {
		w.note = fmt.Sprintf("%v: %.200s", err, out)
		writeMessage(w, http.StatusBadGateway, "Internal server error")
		return
	}
	h := w.Header()
	for k, vs := range resp.Header {
		h[k] = vs
	}
	h.Set("Content-Length", strconv.Itoa(len(resp.Body)))
	w.WriteHeader(resp.Status)
	_, _ = w.Write(resp.Body)
}
