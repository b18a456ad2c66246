package apigw

import (
	"context"
	"io"
	"log/slog"
	"time"

	"github.com/acme/idemcheckout/pkg/idemddb"
	"github.com/acme/idemcheckout/pkg/idemddb/internal/httpcontract"
)

// Defaults used where no Option says otherwise.
const (
	// DefaultMaxBodyBytes is the largest request body accepted, measured
	// after base64 decoding (1 MiB).
	DefaultMaxBodyBytes = httpcontract.DefaultMaxBodyBytes
	// DefaultProblemBase prefixes every problem type URI.
	DefaultProblemBase = httpcontract.DefaultProblemBase
	// DefaultNamespace is the CloudWatch metric namespace.
	DefaultNamespace = httpcontract.DefaultNamespace
)

// DefaultDropHeaders returns the response headers that are not stored, and
// so not replayed: per-request identifiers and the response date, which
// would be wrong on a replay. A new slice on every call.
func DefaultDropHeaders() []string { return httpcontract.DefaultDropHeaders() }

// DefaultStorePolicy reports whether a response with this status code is
// stored and replayed. It stores 2xx, 3xx other than 304, and 4xx other
// than the transient ones: 408 Request Timeout, 409 Conflict, 423 Locked,
// 425 Too Early and 429 Too Many Requests. It does not store 1xx, 304,
// 5xx, or a code outside 100-599; for those the key is released so a retry
// runs the handler again.
func DefaultStorePolicy(status int) bool { return httpcontract.DefaultStorePolicy(status) }

// Option is one setting of the Idempotency-Key contract, for WrapV1 and
// WrapV2 and for idemhttp.Middleware alike (idemhttp.Option is this type):
// each setting is defined once. idemhttp's own settings (WithPrincipal,
// WithRoute, WithMaxResponseBytes) are Options too, which WrapV1 and WrapV2
// refuse (ErrNotConfigured) rather than ignore.
type Option func(*httpcontract.Config)

// newConfig returns the contract's configuration with opts applied.
func newConfig(opts []Option) *httpcontract.Config {
	return httpcontract.NewConfig(func(c *httpcontract.Config) {
		for _, o := range opts {
			o(c)
		}
	})
}

// WithRequiredMethods sets the HTTP methods whose requests must carry an
// Idempotency-Key (default: POST). A request with another method, unless
// listed in WithOptionalMethods, is passed to the handler untouched.
func WithRequiredMethods(methods ...string) Option {
	return httpcontract.RequiredMethods(methods)
}

// WithOptionalMethods sets the HTTP methods (default: none) for which a
// key is honoured when present; without a key such a request goes to the
// handler untouched. A malformed key is still rejected with 400.
func WithOptionalMethods(methods ...string) Option {
	return httpcontract.OptionalMethods(methods)
}

// WithPrincipalRequired rejects, with a 403 problem, a request for which no
// caller principal is found in the authorizer context. By default such a
// request is processed in the shared anonymous scope.
func WithPrincipalRequired() Option {
	return httpcontract.NeedPrincipal()
}

// WithMaxBodyBytes sets the largest request body accepted, measured after
// base64 decoding (default DefaultMaxBodyBytes). A larger body gets a 413
// problem before any DynamoDB request. n <= 0 keeps the default.
func WithMaxBodyBytes(n int) Option {
	return httpcontract.MaxBodyBytes(n)
}

// WithStorePolicy sets which response status codes are stored and replayed
// (default DefaultStorePolicy). For the others the key is released and the
// handler's response returned as is.
func WithStorePolicy(store func(status int) bool) Option {
	return httpcontract.StorePolicy(store)
}

// WithDropHeaders replaces the list of response headers that are not stored
// nor replayed (default DefaultDropHeaders), matched case-insensitively.
// Idempotent-Replayed is always dropped.
func WithDropHeaders(names ...string) Option {
	return httpcontract.DropHeaders(names)
}

// WithProblemBase sets the URI prefix of problem types (default
// DefaultProblemBase); a type is the base followed by a Problem* slug.
func WithProblemBase(base string) Option {
	return httpcontract.ProblemBase(base)
}

// WithTransactionCanceled maps a *idemddb.TransactionCanceledError (a write
// the handler added with Claim.AddWrites failed its condition; nothing was
// committed and the key was released) to the problem returned to the
// client, for example 409 "order already paid" when err.Index names the
// order's ConditionCheck. A Type without ":" is resolved against the
// problem base; a zero Status means 409. The default is a 409
// ProblemTransactionConflict.
func WithTransactionCanceled(f func(ctx context.Context, err *idemddb.TransactionCanceledError) Problem) Option {
	if f == nil {
		return httpcontract.TransactionCanceled(nil)
	}
	return httpcontract.TransactionCanceled(func(ctx context.Context, err *idemddb.TransactionCanceledError) httpcontract.Problem {
		return httpcontract.Problem(f(ctx, err))
	})
}

// WithLogger sets the logger receiving one line per request (default: a
// JSON handler on os.Stdout).
func WithLogger(l *slog.Logger) Option {
	return httpcontract.Logger(l)
}

// WithMetrics sets where the per-request CloudWatch Embedded Metric Format
// document is written (default os.Stdout); nil disables metrics.
func WithMetrics(w io.Writer) Option {
	return httpcontract.Metrics(w)
}

// WithNamespace sets the CloudWatch metric namespace (default
// DefaultNamespace).
func WithNamespace(ns string) Option {
	return httpcontract.Namespace(ns)
}

// WithWait makes a request that finds its key in progress (a duplicate of
// a request still running) wait up to d for that request's response and
// answer with it, as a replay, instead of answering 409 at once (default 0:
// no wait). A client's "Prefer: wait=N" overrides d (see WithMaxWait).
// Every wait ends before the invocation's deadline (idemddb.WaitMargin) and
// costs at most idemddb.MaxWaitReads(d) reads; if the first request fails
// and releases the key meanwhile, the waiting one runs the handler itself.
func WithWait(d time.Duration) Option {
	return httpcontract.Wait(d)
}

// WithMaxWait caps the wait a client asks for with the RFC 7240 preference
// "Prefer: wait=N" (seconds; default DefaultMaxWait). A request carrying
// it waits min(N, d) as WithWait describes, and the response says so with
// "Preference-Applied: wait=<seconds>". d <= 0 ignores the preference.
func WithMaxWait(d time.Duration) Option {
	return httpcontract.MaxWait(d)
}
