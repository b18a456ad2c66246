package apigw

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/acme/idemcheckout/pkg/idemddb"
	"github.com/aws/aws-lambda-go/events"
)

// HandlerV1 is an API Gateway REST API (payload format 1.0) Lambda handler.
type HandlerV1 = func(context.Context, events.APIGatewayProxyRequest) (events.APIGatewayProxyResponse, error)

// HandlerV2 is an API Gateway HTTP API (payload format 2.0) Lambda handler.
type HandlerV2 = func(context.Context, events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error)

// WrapV1 returns h speaking the Idempotency-Key contract (see the package
// documentation) for a REST API, with s as the store. If s or h is nil,
// every call returns ErrNotConfigured (Lambda reports it; API Gateway
// answers 502).
func WrapV1(s *idemddb.Store, h HandlerV1, opts ...Option) HandlerV1 {
	if s == nil || h == nil {
		return func(context.Context, events.APIGatewayProxyRequest) (events.APIGatewayProxyResponse, error) {
			return events.APIGatewayProxyResponse{}, ErrNotConfigured
		}
	}
	w := newWrapper(s, opts)
	return func(ctx context.Context, req events.APIGatewayProxyRequest) (events.APIGatewayProxyResponse, error) {
		var fresh events.APIGatewayProxyResponse
		out, useFresh, err := w.serve(ctx, fromV1(&req), func(ctx context.Context) (*response, error) {
			r, err := h(ctx, req)
			if err != nil {
				return nil, err
			}
			fresh = r
			return &response{Status: r.StatusCode, Headers: r.Headers, MultiValueHeaders: r.MultiValueHeaders,
				Body: r.Body, Base64: r.IsBase64Encoded}, nil
		})
		switch {
		case err != nil:
			return events.APIGatewayProxyResponse{}, err
		case useFresh:
			return fresh, nil
		}
		return events.APIGatewayProxyResponse{StatusCode: out.Status, Headers: out.Headers,
			MultiValueHeaders: out.MultiValueHeaders, Body: out.Body, IsBase64Encoded: out.Base64}, nil
	}
}

// WrapV2 returns h speaking the Idempotency-Key contract (see the package
// documentation) for an HTTP API, with s as the store. If s or h is nil,
// every call returns ErrNotConfigured.
func WrapV2(s *idemddb.Store, h HandlerV2, opts ...Option) HandlerV2 {
	if s == nil || h == nil {
		return func(context.Context, events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
			return events.APIGatewayV2HTTPResponse{}, ErrNotConfigured
		}
	}
	w := newWrapper(s, opts)
	return func(ctx context.Context, req events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
		var fresh events.APIGatewayV2HTTPResponse
		out, useFresh, err := w.serve(ctx, fromV2(&req), func(ctx context.Context) (*response, error) {
			r, err := h(ctx, req)
			if err != nil {
				return nil, err
			}
			fresh = r
			return &response{Status: r.StatusCode, Headers: r.Headers, MultiValueHeaders: r.MultiValueHeaders,
				Cookies: r.Cookies, Body: r.Body, Base64: r.IsBase64Encoded}, nil
		})
		switch {
		case err != nil:
			return events.APIGatewayV2HTTPResponse{}, err
		case useFresh:
			return fresh, nil
		}
		return events.APIGatewayV2HTTPResponse{StatusCode: out.Status, Headers: out.Headers,
			MultiValueHeaders: out.MultiValueHeaders, Cookies: out.Cookies, Body: out.Body, IsBase64Encoded: out.Base64}, nil
	}
}

// ErrNotConfigured is returned by a handler wrapped without a store or
// without a handler.
var ErrNotConfigured = errors.New("apigw: handler wrapped without a store or a handler")

type wrapper struct {
	s  *idemddb.Store
	c  *config
	mu sync.Mutex // serialises metric documents on a shared writer
}

func newWrapper(s *idemddb.Store, opts []Option) *wrapper {
	return &wrapper{s: s, c: newConfig(opts)}
}

// handlerError carries the handler's own error through Store.Run.
type handlerError struct{ err error }

func (e *handlerError) Error() string { return e.err.Error() }

// notStoredError makes Store.Run release the key of a response the store
// policy keeps out of the record.
type notStoredError struct{}

func (notStoredError) Error() string { return "apigw: response status not stored" }

// serve runs the contract. It returns the response to send, or useFresh
// when the handler's own response is to be sent unchanged, or the
// handler's error.
func (w *wrapper) serve(ctx context.Context, in *request, call func(context.Context) (*response, error)) (out *response, useFresh bool, err error) {
	required, optional := w.c.required[in.method], w.c.optional[in.method]
	if !required && !optional {
		_, err := call(ctx)
		return nil, err == nil, err
	}
	ev := event{start: time.Now(), route: in.route, requestID: in.requestID, principal: in.principal}
	key, kerr := parseKey(in.keyValues)
	if kerr == errKeyMissing && !required {
		_, err := call(ctx)
		return nil, err == nil, err
	}
	if kerr != nil {
		ev.outcome = outInvalidKey
		var why keyError
		errors.As(kerr, &why)
		p := w.c.problem(ProblemKeyInvalid, http.StatusBadRequest, "Invalid Idempotency-Key", "The Idempotency-Key header "+string(why)+".")
		if kerr == errKeyMissing {
			p = w.c.problem(ProblemKeyMissing, http.StatusBadRequest, "Idempotency-Key required",
				fmt.Sprintf("%s requests to this endpoint require an Idempotency-Key header.", in.method))
		}
		return w.reply(ctx, &ev, p)
	}
	body := []byte(in.body)
	if in.base64 {
		if body, err = base64.StdEncoding.DecodeString(in.body); err != nil {
			ev.outcome = outInvalidRequest
			return w.reply(ctx, &ev, w.c.problem(ProblemBodyInvalid, http.StatusBadRequest, "Invalid request body",
				"The request body is marked base64-encoded but is not valid base64."))
		}
	}
	if len(body) > w.c.maxBody {
		ev.outcome = outTooLarge
		return w.reply(ctx, &ev, w.c.problem(ProblemBodyTooLarge, http.StatusRequestEntityTooLarge, "Request body too large",
			fmt.Sprintf("The request body is %d bytes; the limit is %d bytes.", len(body), w.c.maxBody)))
	}
	if in.principal == "" && w.c.needPrincipal {
		ev.outcome = outInvalidRequest
		return w.reply(ctx, &ev, w.c.problem(ProblemPrincipalRequired, http.StatusForbidden, "Caller identity required",
			"Idempotent requests to this endpoint need an authenticated caller."))
	}
	ev.key = scopedKey(in.route, in.principal, key)
	wait, applied := w.c.waitFor(in.prefer)

	var (
		claim *idemddb.Claim
		fresh *response
	)
	res, err := w.s.Run(ctx, idemddb.Request{Key: ev.key, Fingerprint: fingerprint(in, body), Wait: wait},
		func(ctx context.Context, c *idemddb.Claim) ([]byte, error) {
			claim = c
			r, err := call(ctx)
			if err != nil {
				return nil, &handlerError{err}
			}
			fresh = r
			if !w.c.storeStatus(r.Status) {
				return nil, notStoredError{}
			}
			return encodeResponse(r, w.c.drop), nil
		})
	ev.waited, ev.waitReads = res.Waited, res.WaitReads
	var busy *idemddb.InProgressError
	if errors.As(err, &busy) {
		ev.waited, ev.waitReads = busy.Waited, busy.WaitReads
	}
	if ev.waitReads > 0 {
		ev.applied = applied
	}
	return w.finish(ctx, &ev, res, err, claim, fresh)
}

// finish maps the outcome of Store.Run to the response.
func (w *wrapper) finish(ctx context.Context, ev *event, res idemddb.Result, err error, claim *idemddb.Claim, fresh *response) (*response, bool, error) {
	var (
		herr  *handlerError
		inpr  *idemddb.InProgressError
		mis   *idemddb.MismatchError
		fence *idemddb.FencedError
		tce   *idemddb.TransactionCanceledError
		big   *idemddb.ResultTooLargeError
	)
	switch {
	case err == nil && !res.Replayed:
		ev.outcome, ev.status, ev.notRetained = outClaimed, fresh.Status, !res.Retained
		w.record(ctx, ev)
		return nil, true, nil
	case err == nil:
		r, derr := decodeResponse(res.Data)
		if derr != nil {
			ev.outcome, ev.err = outError, derr
			return w.reply(ctx, ev, w.c.problem(ProblemInternal, http.StatusInternalServerError, "Stored response unreadable",
				"The stored response for this Idempotency-Key could not be read."))
		}
		if r.Headers == nil {
			r.Headers = map[string]string{}
		}
		r.Headers[ReplayedHeader] = "true"
		if ev.applied != "" {
			r.Headers[PreferenceAppliedHeader] = ev.applied
		}
		ev.outcome, ev.status = outReplayed, r.Status
		w.record(ctx, ev)
		return r, false, nil
	case errors.As(err, &herr):
		ev.outcome, ev.reason = outReleased, "handler_error"
		w.record(ctx, ev)
		return nil, false, herr.err
	case errors.As(err, new(notStoredError)):
		ev.outcome, ev.reason, ev.status = outReleased, "status_not_stored", fresh.Status
		w.record(ctx, ev)
		return nil, true, nil
	case errors.As(err, &inpr):
		ev.outcome = outConflict
		p := w.c.problem(ProblemKeyInUse, http.StatusConflict, "Request in progress",
			"A request with this Idempotency-Key is still being processed; retry after the indicated delay.")
		p.RetryAfter = ceilSeconds(inpr.RetryAfter)
		out, useFresh, err := w.reply(ctx, ev, p)
		if ev.applied != "" {
			out.Headers[PreferenceAppliedHeader] = ev.applied
		}
		return out, useFresh, err
	case errors.As(err, &mis):
		ev.outcome = outMismatch
		return w.reply(ctx, ev, w.c.problem(ProblemKeyReused, http.StatusUnprocessableEntity, "Idempotency-Key reused",
			"This Idempotency-Key was already used with a different request (method, path, query or body)."))
	case errors.As(err, &fence):
		ev.outcome, ev.err = outFenced, err
		p := w.c.problem(ProblemLeaseLost, http.StatusConflict, "Request superseded",
			"Another attempt with this Idempotency-Key took over before this one finished; retry to get its outcome.")
		p.RetryAfter = 1
		return w.reply(ctx, ev, p)
	case errors.As(err, &tce):
		ev.outcome, ev.reason = outCanceled, fmt.Sprintf("write %d: %s", tce.Index, reasonCode(tce))
		p := w.c.problem(ProblemTransactionConflict, http.StatusConflict, "Conflicting state",
			"The request conflicts with the current state of a resource; nothing was changed. This answer is final while that state holds.")
		if w.c.txCanceled != nil {
			p = w.c.normalise(w.c.txCanceled(ctx, tce))
		}
		return w.reply(ctx, ev, p)
	case errors.As(err, &big):
		ev.outcome = outNotRetained
		return w.reply(ctx, ev, w.c.problem(ProblemResultNotRetained, http.StatusConflict, "Response not retained",
			"The request with this Idempotency-Key was processed, but its response was too large to keep and cannot be replayed."))
	case errors.Is(err, idemddb.ErrUnavailable):
		ev.outcome, ev.err = outUnavailable, err
		p := w.c.problem(ProblemStoreUnavailable, http.StatusServiceUnavailable, "Idempotency store unavailable",
			"The request could not be checked for idempotency; it was not processed. Retry later.")
		p.RetryAfter = 1
		if claim != nil {
			// The handler ran but its completion has an unknown outcome:
			// the key stays claimed until the lease ends.
			ev.reason = "completion_unknown"
			p.Detail = "The outcome of the request could not be recorded; retry with the same Idempotency-Key after the indicated delay."
			p.RetryAfter = ceilSeconds(time.Until(claim.LeaseUntil))
		}
		return w.reply(ctx, ev, p)
	default:
		ev.outcome, ev.err = outError, err
		return w.reply(ctx, ev, w.c.problem(ProblemInternal, http.StatusInternalServerError, "Internal error",
			"The request could not be processed."))
	}
}

func reasonCode(e *idemddb.TransactionCanceledError) string {
	if e.Index >= 0 && e.Index < len(e.Reasons) {
		return e.Reasons[e.Index].Code
	}
	return ""
}

// reply records the event and returns p as the response.
func (w *wrapper) reply(ctx context.Context, ev *event, p Problem) (*response, bool, error) {
	ev.status = p.Status
	w.record(ctx, ev)
	return p.response(), false, nil
}

// ceilSeconds rounds d up to whole seconds, at least 1.
func ceilSeconds(d time.Duration) int {
	s := int(math.Ceil(d.Seconds()))
	if s < 1 {
		s = 1
	}
	return s
}

// storedVersion marks the record layout.
const storedVersion = 1

type storedMeta struct {
	V int `json:"v"`
	response
}

// encodeResponse is the stored form: a JSON line with status, headers,
// cookies and the base64 flag, a newline, then the body's bytes verbatim
// (JSON never contains a raw newline). Dropped headers are left out.
func encodeResponse(r *response, drop map[string]bool) []byte {
	m := storedMeta{V: storedVersion, response: response{Status: r.Status, Cookies: r.Cookies, Base64: r.Base64}}
	for k, v := range r.Headers {
		if !drop[strings.ToLower(k)] {
			if m.Headers == nil {
				m.Headers = map[string]string{}
			}
			m.Headers[k] = v
		}
	}
	for k, v := range r.MultiValueHeaders {
		if !drop[strings.ToLower(k)] {
			if m.MultiValueHeaders == nil {
				m.MultiValueHeaders = map[string][]string{}
			}
			m.MultiValueHeaders[k] = v
		}
	}
	b, _ := json.Marshal(m) // maps of strings always marshal
	b = append(b, '\n')
	return append(b, r.Body...)
}

func decodeResponse(data []byte) (*response, error) {
	meta, body, ok := bytes.Cut(data, []byte{'\n'})
	if !ok {
		return nil, errors.New("apigw: stored response has no header line")
	}
	var m storedMeta
	if err := json.Unmarshal(meta, &m); err != nil {
		return nil, fmt.Errorf("apigw: stored response: %w", err)
	}
	if m.V != storedVersion {
		return nil, fmt.Errorf("apigw: stored response version %d", m.V)
	}
	r := m.response
	r.Body = string(body)
	return &r, nil
}
