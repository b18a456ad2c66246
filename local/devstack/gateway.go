package devstack

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
)

// ServeHTTP is the API Gateway emulation.
func (s *Stack) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rec := &statusRecorder{ResponseWriter: w}
	s.serve(rec, r, start)
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
	s.logf("%s %s %d %s %s%s%s", r.Method, r.URL.RequestURI(), rec.status, time.Since(start).Round(100*time.Microsecond), fn, replayed, note)
}

type statusRecorder struct {
	http.ResponseWriter
	status   int
	function string
	note     string // why the gateway answered an error itself
	// cors is the configuration whose headers every answer gets (the
	// gateway's own and the function's), for a request from origin.
	cors   *CORS
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

// Payload limits: API Gateway's request body, and Lambda's synchronous
// invoke request (the whole event) and response.
const (
	maxBody          = 10 << 20
	maxInvokePayload = 6 << 20 // 6,291,456 bytes
)

func (s *Stack) serve(w *statusRecorder, r *http.Request, now time.Time) {
	reqID := newRequestID()
	w.Header().Set("Apigw-Requestid", reqID)
	w.origin = r.Header.Get("Origin")
	route, params, ok := s.router.Match(r.Method, r.URL.Path)
	if isPreflight(r) && (!ok || !takesOptions(route)) {
		// API Gateway answers the preflight itself: no authorizer, no
		// function, whatever the path.
		c := s.router.CORSFor(r.Header.Get("Access-Control-Request-Method"), r.URL.Path)
		if c != nil {
			w.note = "preflight"
			if why := writePreflight(w, c, r); why != "" {
				w.note = "preflight refused: " + why
			}
			return
		}
	}
	if !ok {
		w.cors = s.router.CORSFor(r.Method, r.URL.Path)
		writeMessage(w, http.StatusNotFound, "Not Found")
		return
	}
	if route.Event.Type == samtemplate.EventHTTPAPI {
		w.cors = route.CORS
	}
	w.function = route.Function.ID
	var jwt *JWTResult
	if a := route.Authorizer; a != nil {
		res, err := authorize(a, r.Header, route.Event.HTTP.Scopes, now)
		if err != nil {
			w.note = "authorizer " + a.Name + ": " + err.Error()
			if errors.Is(err, errForbidden) {
				writeMessage(w, http.StatusForbidden, "Forbidden")
			} else {
				w.Header().Set("WWW-Authenticate", "Bearer")
				writeMessage(w, http.StatusUnauthorized, "Unauthorized")
			}
			return
		}
		jwt = res
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		writeMessage(w, http.StatusBadRequest, "Bad Request")
		return
	}
	if len(body) > maxBody {
		writeMessage(w, http.StatusRequestEntityTooLarge, "Request Entity Too Large")
		return
	}
	ri := &RequestInfo{Req: r, Body: body, Route: route, PathParams: params, JWT: jwt, Now: now, RequestID: reqID}
	var payload []byte
	if route.v1() {
		payload, err = json.Marshal(BuildV1Event(ri))
	} else {
		payload, err = json.Marshal(BuildV2Event(ri))
	}
	if err != nil {
		writeMessage(w, http.StatusInternalServerError, "Internal server error")
		return
	}
	if len(payload) > maxInvokePayload {
		// Lambda refuses the invoke (RequestEntityTooLargeException) and
		// API Gateway answers 413.
		w.note = fmt.Sprintf("event of %d bytes is over Lambda's %d-byte invoke limit", len(payload), maxInvokePayload)
		writeMessage(w, http.StatusRequestEntityTooLarge, "Request Entity Too Large")
		return
	}
	// A client that goes away does not stop the invocation: API Gateway
	// lets the function run to its end and drops the answer, so a payment
	// whose reply is lost still commits (its timeout still bounds it).
	out, err := s.invoke(context.WithoutCancel(r.Context()), route.Function.ID, payload)
	if err != nil {
		w.note = err.Error()
		writeMessage(w, http.StatusBadGateway, "Internal server error")
		return
	}
	var resp *Response
	if route.v1() {
		resp, err = ParseV1Response(out)
	} else {
		resp, err = ParseV2Response(out)
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
