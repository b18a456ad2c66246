package idemhttp

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"runtime/debug"
	"strings"

	"github.com/acme/idemcheckout/pkg/idemddb"
	"github.com/acme/idemcheckout/pkg/idemddb/internal/httpcontract"
	"github.com/aws/aws-lambda-go/events"
)

// DefaultMaxResponseBytes is how much of a response is buffered before it
// is streamed instead (1 MiB); see WithMaxResponseBytes.
const DefaultMaxResponseBytes = 1 << 20

// ErrNoRequestContext is the error of a ready principal function that found
// no API Gateway request context: the handler is not running behind the
// proxy or the adapter it expects.
var ErrNoRequestContext = errors.New("idemhttp: no API Gateway request context")

// PrincipalFunc names the caller of a request, "" for an anonymous one. An
// error refuses the request with a 401 problem before the handler runs.
type PrincipalFunc func(*http.Request) (string, error)

// Middleware returns a middleware that serves the Idempotency-Key contract
// (see the package documentation) in front of a handler, with store as the
// store. If store is nil every request under the contract gets a 500
// problem.
func Middleware(store *idemddb.Store, opts ...Option) func(http.Handler) http.Handler {
	c := httpcontract.NewConfig(func(c *httpcontract.Config) {
		c.HTTP.Route, c.HTTP.MaxResponse = RouteFromPattern, DefaultMaxResponseBytes
		for _, o := range opts {
			o(c)
		}
	})
	m := &middleware{c: c}
	if store != nil {
		m.engine = httpcontract.NewEngine(store, c)
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { m.serve(w, r, next) })
	}
}

type middleware struct {
	c      *httpcontract.Config
	engine *httpcontract.Engine // nil without a store
}

// panicError carries a handler's panic through the store, which releases
// the key.
type panicError struct {
	value any
	stack []byte
}

func (e *panicError) Error() string { return fmt.Sprintf("idemhttp: handler panicked: %v", e.value) }

func (m *middleware) serve(w http.ResponseWriter, r *http.Request, next http.Handler) {
	required, optional := m.c.Applies(r.Method)
	keys := r.Header.Values(httpcontract.HeaderName)
	if (!required && !optional) || (!required && len(keys) == 0) {
		next.ServeHTTP(w, r)
		return
	}
	in := &httpcontract.Request{
		Method:      r.Method,
		Route:       m.c.HTTP.Route(r),
		Path:        r.URL.Path,
		Query:       canonicalQuery(r.URL.RawQuery),
		KeyValues:   keys,
		Prefer:      r.Header.Values(httpcontract.PreferHeader),
		ContentType: r.Header.Get("Content-Type"),
		RequestID:   firstNonEmpty(r.Header.Get("X-Request-Id"), r.Header.Get("X-Amzn-Trace-Id")),
	}
	if m.engine == nil {
		writeResponse(w, m.c.Problem(httpcontract.Internal).Response())
		return
	}
	ctx := context.WithoutCancel(r.Context())
	if m.c.HTTP.Principal != nil {
		p, err := m.c.HTTP.Principal(r)
		if err != nil {
			m.c.Logger.LogAttrs(ctx, slog.LevelInfo, "idempotency: principal unavailable", slog.String("error", err.Error()))
			writeResponse(w, m.engine.Reject(ctx, in, m.c.Problem(httpcontract.PrincipalUnavailable)))
			return
		}
		in.Principal = p
	}
	body, err := readBody(r, m.c.MaxBody)
	if err != nil {
		writeResponse(w, m.engine.Reject(ctx, in, m.c.Problem(httpcontract.BodyUnreadable)))
		return
	}
	in.Body, in.BodyOver = body, len(body) > m.c.MaxBody

	var rec *recorder
	out, useFresh, err := m.engine.Serve(ctx, in, func(ctx context.Context) (resp *httpcontract.Response, err error) {
		rec = &recorder{w: w, h: http.Header{}, limit: m.c.HTTP.MaxResponse}
		r2 := r.WithContext(ctx)
		r2.Body, r2.ContentLength = &memBody{Reader: *bytes.NewReader(body)}, int64(len(body))
		defer func() {
			if v := recover(); v != nil {
				err = &panicError{value: v, stack: debug.Stack()}
			}
		}()
		next.ServeHTTP(rec, r2)
		return rec.response(), nil
	})
	var pe *panicError
	switch {
	case errors.As(err, &pe):
		m.c.Logger.LogAttrs(ctx, slog.LevelError, "idempotency: handler panicked; key released",
			slog.String("route", in.Route), slog.String("panic", fmt.Sprint(pe.value)), slog.String("stack", string(pe.stack)))
		if rec.committed {
			panic(http.ErrAbortHandler)
		}
		writeResponse(w, m.c.Problem(httpcontract.Internal).Response())
	case err != nil: // the handler returns no error of its own: cannot happen
		writeResponse(w, m.c.Problem(httpcontract.Internal).Response())
	case useFresh:
		rec.commit()
	default:
		writeResponse(w, out)
	}
}

// readBody reads at most limit+1 bytes of the request's body: in one
// allocation when the Content-Length is known.
func readBody(r *http.Request, limit int) ([]byte, error) {
	if r.Body == nil || r.Body == http.NoBody {
		return nil, nil
	}
	if n := r.ContentLength; n >= 0 && n <= int64(limit) {
		buf := make([]byte, n+1)
		got, err := io.ReadFull(r.Body, buf)
		if err == io.ErrUnexpectedEOF || err == io.EOF {
			err = nil
		}
		return buf[:got], err
	}
	return io.ReadAll(io.LimitReader(r.Body, int64(limit)+1))
}

// memBody is the body the handler reads: the bytes read before it ran.
type memBody struct{ bytes.Reader }

// Close does nothing: the body is in memory.
func (*memBody) Close() error { return nil }

// writeResponse sends a stored or problem response.
func writeResponse(w http.ResponseWriter, out *httpcontract.Response) {
	h := w.Header()
	for k, vs := range out.MultiValueHeaders {
		h[k] = vs
	}
	for k, v := range out.Headers {
		h.Set(k, v)
	}
	for _, c := range out.Cookies {
		h.Add("Set-Cookie", c)
	}
	if out.Base64 { // a record an API Gateway front door stored
		if b, err := base64.StdEncoding.DecodeString(out.Body); err == nil {
			w.WriteHeader(out.Status)
			_, _ = w.Write(b)
			return
		}
	}
	w.WriteHeader(out.Status)
	_, _ = io.WriteString(w, out.Body)
}

// recorder buffers a handler's response, up to limit bytes of body; a
// Flush, or a body over the limit, commits it: what is buffered is sent and
// the rest streams through.
type recorder struct {
	w           http.ResponseWriter
	h           http.Header
	status      int
	wroteHeader bool
	buf         bytes.Buffer
	limit       int
	committed   bool // sent to w: streamed, or done
	streamed    bool // committed before the handler returned
}

func (r *recorder) Header() http.Header {
	if r.committed {
		return r.w.Header()
	}
	return r.h
}

func (r *recorder) WriteHeader(code int) {
	if r.wroteHeader {
		return
	}
	if code >= 100 && code < 200 && code != http.StatusSwitchingProtocols {
		// Informational (103 Early Hints): sent at once, not recorded.
		copyHeader(r.w.Header(), r.h)
		r.w.WriteHeader(code)
		return
	}
	r.status, r.wroteHeader = code, true
	if r.committed {
		r.w.WriteHeader(code)
	}
}

func (r *recorder) Write(p []byte) (int, error) {
	if !r.wroteHeader {
		r.WriteHeader(http.StatusOK)
	}
	if r.committed {
		return r.w.Write(p)
	}
	if r.buf.Len()+len(p) > r.limit {
		r.stream()
		return r.w.Write(p)
	}
	return r.buf.Write(p)
}

// Flush streams the response from now on.
func (r *recorder) Flush() {
	if !r.wroteHeader {
		r.WriteHeader(http.StatusOK)
	}
	r.stream()
	_ = http.NewResponseController(r.w).Flush()
}

func (r *recorder) stream() {
	if !r.committed {
		r.streamed = true
		r.commit()
	}
}

// commit sends the recorded status, headers and body.
func (r *recorder) commit() {
	if r.committed {
		return
	}
	r.committed = true
	if !r.wroteHeader {
		r.status, r.wroteHeader = http.StatusOK, true
	}
	copyHeader(r.w.Header(), r.h)
	r.w.WriteHeader(r.status)
	if r.buf.Len() > 0 {
		_, _ = r.w.Write(r.buf.Bytes())
	}
	r.buf = bytes.Buffer{}
}

// response is what the contract stores: the recorded response, or only
// its status when it was streamed.
func (r *recorder) response() *httpcontract.Response {
	status := r.status
	if !r.wroteHeader {
		status = http.StatusOK
	}
	if r.streamed {
		return &httpcontract.Response{Status: status, NotRetained: true}
	}
	return &httpcontract.Response{Status: status, MultiValueHeaders: r.h, Body: r.buf.String()}
}

func copyHeader(dst, src http.Header) {
	for k, vs := range src {
		dst[k] = vs
	}
}

func canonicalQuery(raw string) string {
	if raw == "" {
		return ""
	}
	if q, err := url.ParseQuery(raw); err == nil {
		return q.Encode()
	}
	return raw
}

func firstNonEmpty(vals ...string) string {
	for _, v := range vals {
		if v != "" {
			return v
		}
	}
	return ""
}

// RouteFromPattern is the default route: the http.ServeMux pattern that
// matched (Go 1.22+), with the request's method when the pattern has none;
// without a pattern (the middleware wraps the mux rather than a route's
// handler), the method and the concrete path.
func RouteFromPattern(r *http.Request) string {
	p := r.Pattern
	if p == "" {
		return r.Method + " " + r.URL.Path
	}
	if method, rest, ok := strings.Cut(p, " "); ok && !strings.Contains(method, "/") {
		return strings.ToUpper(method) + " " + strings.TrimLeft(rest, " \t")
	}
	return r.Method + " " + p
}

// APIGatewayV2Principal returns a PrincipalFunc reading the HTTP API
// request context that aws-lambda-go-api-proxy's httpadapter.NewV2 puts in
// the request's context; get is core.GetAPIGatewayV2ContextFromContext. A
// missing context is ErrNoRequestContext.
func APIGatewayV2Principal(get func(context.Context) (events.APIGatewayV2HTTPRequestContext, bool)) PrincipalFunc {
	return func(r *http.Request) (string, error) {
		rc, ok := get(r.Context())
		if !ok {
			return "", ErrNoRequestContext
		}
		return httpcontract.PrincipalV2(rc.Authorizer), nil
	}
}

// APIGatewayV1Principal returns a PrincipalFunc reading the REST API
// request context that aws-lambda-go-api-proxy's httpadapter.New puts in
// the request's context; get is core.GetAPIGatewayContextFromContext.
func APIGatewayV1Principal(get func(context.Context) (events.APIGatewayProxyRequestContext, bool)) PrincipalFunc {
	return func(r *http.Request) (string, error) {
		rc, ok := get(r.Context())
		if !ok {
			return "", ErrNoRequestContext
		}
		return httpcontract.PrincipalV1(&rc), nil
	}
}

// LambdaWebAdapterHeader is the header in which the Lambda Web Adapter
// passes the API Gateway request context, as JSON.
const LambdaWebAdapterHeader = "X-Amzn-Request-Context"

// LambdaWebAdapterPrincipal names the caller from the request context the
// Lambda Web Adapter passes in the x-amzn-request-context header (HTTP API
// or REST API shape). Use it only behind the adapter: anyone who reaches
// the server directly can send that header. A missing header is
// ErrNoRequestContext; one that is not JSON is an error too.
func LambdaWebAdapterPrincipal(r *http.Request) (string, error) {
	raw := r.Header.Get(LambdaWebAdapterHeader)
	if raw == "" {
		return "", ErrNoRequestContext
	}
	var shape struct {
		HTTP json.RawMessage `json:"http"`
	}
	if err := json.Unmarshal([]byte(raw), &shape); err != nil {
		return "", fmt.Errorf("idemhttp: %s: %w", LambdaWebAdapterHeader, err)
	}
	if len(shape.HTTP) > 0 { // HTTP API, payload 2.0
		var rc events.APIGatewayV2HTTPRequestContext
		if err := json.Unmarshal([]byte(raw), &rc); err != nil {
			return "", fmt.Errorf("idemhttp: %s: %w", LambdaWebAdapterHeader, err)
		}
		return httpcontract.PrincipalV2(rc.Authorizer), nil
	}
	var rc events.APIGatewayProxyRequestContext
	if err := json.Unmarshal([]byte(raw), &rc); err != nil {
		return "", fmt.Errorf("idemhttp: %s: %w", LambdaWebAdapterHeader, err)
	}
	return httpcontract.PrincipalV1(&rc), nil
}
