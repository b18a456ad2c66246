package apigw

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/acme/idemcheckout/pkg/idemddb"
)

// Defaults used where no Option says otherwise.
const (
	// DefaultMaxBodyBytes is the largest request body accepted, measured
	// after base64 decoding (1 MiB).
	DefaultMaxBodyBytes = 1 << 20
	// DefaultProblemBase prefixes every problem type URI.
	DefaultProblemBase = "https://docs.acme.dev/problems/"
	// DefaultNamespace is the CloudWatch metric namespace.
	DefaultNamespace = "Idempotency"
)

// DefaultDropHeaders returns the response headers that are not stored, and
// so not replayed: per-request identifiers and the response date, which
// would be wrong on a replay. A new slice on every call.
func DefaultDropHeaders() []string {
	return []string{
		"Date",
		"X-Request-Id",
		"X-Amzn-RequestId",
		"X-Amzn-Trace-Id",
		"X-Amz-Apigw-Id",
		"X-Amz-Cf-Id",
		"X-Correlation-Id",
		"Server-Timing",
	}
}

// DefaultStorePolicy reports whether a response with this status code is
// stored and replayed. It stores 2xx, 3xx other than 304, and 4xx other
// than the transient ones: 408 Request Timeout, 409 Conflict, 423 Locked,
// 425 Too Early and 429 Too Many Requests. It does not store 1xx, 304,
// 5xx, or a code outside 100-599; for those the key is released so a retry
// runs the handler again.
func DefaultStorePolicy(status int) bool {
	switch {
	case status >= 200 && status < 300:
		return true
	case status >= 300 && status < 400:
		return status != http.StatusNotModified
	case status >= 400 && status < 500:
		switch status {
		case http.StatusRequestTimeout, http.StatusConflict, http.StatusLocked,
			http.StatusTooEarly, http.StatusTooManyRequests:
			return false
		}
		return true
	}
	return false
}

// Option configures WrapV1 and WrapV2.
type Option func(*config)

type config struct {
	required      map[string]bool
	optional      map[string]bool
	needPrincipal bool
	maxBody       int
	storeStatus   func(int) bool
	drop          map[string]bool
	problemBase   string
	txCanceled    func(context.Context, *idemddb.TransactionCanceledError) Problem
	logger        *slog.Logger
	metrics       io.Writer
	namespace     string
	wait          time.Duration
	maxWait       time.Duration
}

func newConfig(opts []Option) *config {
	c := &config{
		required:    methodSet([]string{http.MethodPost}),
		optional:    map[string]bool{},
		maxBody:     DefaultMaxBodyBytes,
		storeStatus: DefaultStorePolicy,
		problemBase: DefaultProblemBase,
		metrics:     os.Stdout,
		namespace:   DefaultNamespace,
		maxWait:     DefaultMaxWait,
	}
	WithDropHeaders(DefaultDropHeaders()...)(c)
	for _, o := range opts {
		o(c)
	}
	if c.logger == nil {
		c.logger = slog.New(slog.NewJSONHandler(os.Stdout, nil))
	}
	return c
}

func methodSet(methods []string) map[string]bool {
	m := make(map[string]bool, len(methods))
	for _, v := range methods {
		m[strings.ToUpper(v)] = true
	}
	return m
}

// WithRequiredMethods sets the HTTP methods whose requests must carry an
// Idempotency-Key (default: POST). A request with another method, unless
// listed in WithOptionalMethods, is passed to the handler untouched.
func WithRequiredMethods(methods ...string) Option {
	return func(c *config) { c.required = methodSet(methods) }
}

// WithOptionalMethods sets the HTTP methods (default: none) for which a
// key is honoured when present; without a key such a request goes to the
// handler untouched. A malformed key is still rejected with 400.
func WithOptionalMethods(methods ...string) Option {
	return func(c *config) { c.optional = methodSet(methods) }
}

// WithPrincipalRequired rejects, with a 403 problem, a request for which no
// caller principal is found in the authorizer context. By default such a
// request is processed in the shared anonymous scope.
func WithPrincipalRequired() Option {
	return func(c *config) { c.needPrincipal = true }
}

// WithMaxBodyBytes sets the largest request body accepted, measured after
// base64 decoding (default DefaultMaxBodyBytes). A larger body gets a 413
// problem before any DynamoDB request. n <= 0 keeps the default.
func WithMaxBodyBytes(n int) Option {
	return func(c *config) {
		if n > 0 {
			c.maxBody = n
		}
	}
}

// WithStorePolicy sets which response status codes are stored and replayed
// (default DefaultStorePolicy). For the others the key is released and the
// handler's response returned as is.
func WithStorePolicy(store func(status int) bool) Option {
	return func(c *config) {
		if store != nil {
			c.storeStatus = store
		}
	}
}

// WithDropHeaders replaces the list of response headers that are not stored
// nor replayed (default DefaultDropHeaders), matched case-insensitively.
// Idempotent-Replayed is always dropped.
func WithDropHeaders(names ...string) Option {
	return func(c *config) {
		c.drop = map[string]bool{strings.ToLower(ReplayedHeader): true}
		for _, n := range names {
			c.drop[strings.ToLower(n)] = true
		}
	}
}

// WithProblemBase sets the URI prefix of problem types (default
// DefaultProblemBase); a type is the base followed by a Problem* slug.
func WithProblemBase(base string) Option {
	return func(c *config) {
		if base != "" {
			c.problemBase = base
		}
	}
}

// WithTransactionCanceled maps a *idemddb.TransactionCanceledError (a write
// the handler added with Claim.AddWrites failed its condition; nothing was
// committed and the key was released) to the problem returned to the
// client, for example 409 "order already paid" when err.Index names the
// order's ConditionCheck. A Type without ":" is resolved against the
// problem base; a zero Status means 409. The default is a 409
// ProblemTransactionConflict.
func WithTransactionCanceled(f func(ctx context.Context, err *idemddb.TransactionCanceledError) Problem) Option {
	return func(c *config) { c.txCanceled = f }
}

// WithLogger sets the logger receiving one line per request (default: a
// JSON handler on os.Stdout).
func WithLogger(l *slog.Logger) Option {
	return func(c *config) { c.logger = l }
}

// WithMetrics sets where the per-request CloudWatch Embedded Metric Format
// document is written (default os.Stdout); nil disables metrics.
func WithMetrics(w io.Writer) Option {
	return func(c *config) { c.metrics = w }
}

// WithNamespace sets the CloudWatch metric namespace (default
// DefaultNamespace).
func WithNamespace(ns string) Option {
	return func(c *config) {
		if ns != "" {
			c.namespace = ns
		}
	}
}

// WithWait makes a request that finds its key in progress (a duplicate of
// a request still running) wait up to d for that request's response and
// answer with it, as a replay, instead of answering 409 at once (default 0:
// no wait). A client's "Prefer: wait=N" overrides d (see WithMaxWait).
// Every wait ends before the invocation's deadline (idemddb.WaitMargin) and
// costs at most idemddb.MaxWaitReads(d) reads; if the first request fails
// and releases the key meanwhile, the waiting one runs the handler itself.
func WithWait(d time.Duration) Option {
	return func(c *config) { c.wait = max(d, 0) }
}

// WithMaxWait caps the wait a client asks for with the RFC 7240 preference
// "Prefer: wait=N" (seconds; default DefaultMaxWait). A request carrying
// it waits min(N, d) as WithWait describes, and the response says so with
// "Preference-Applied: wait=<seconds>". d <= 0 ignores the preference.
func WithMaxWait(d time.Duration) Option {
	return func(c *config) { c.maxWait = d }
}
