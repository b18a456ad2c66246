package idemhttp

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/acme/idemcheckout/pkg/idemddb"
	"github.com/acme/idemcheckout/pkg/idemddb/apigw"
	"github.com/acme/idemcheckout/pkg/idemddb/internal/httpcontract"
)

// Problem is an RFC 9457 problem detail, the one type of both front doors
// (see apigw.Problem).
type Problem = apigw.Problem

// WithPrincipal sets how the caller of a request is named (default: every
// caller is anonymous). See PrincipalFunc and the ready ones.
func WithPrincipal(f PrincipalFunc) Option {
	return func(c *config) { c.principal = f }
}

// WithRoute sets the route of a request, the first part of the scope and
// of the fingerprint (default RouteFromPattern): for example the router's
// route template with the method, "POST /orders/{id}/pay".
func WithRoute(f func(*http.Request) string) Option {
	return func(c *config) {
		if f != nil {
			c.route = f
		}
	}
}

// WithMaxResponseBytes sets how much of a response body is buffered
// (default DefaultMaxResponseBytes); a longer one is streamed and not
// stored (see the package documentation). n <= 0 keeps the default.
func WithMaxResponseBytes(n int) Option {
	return func(c *config) {
		if n > 0 {
			c.maxResponse = n
		}
	}
}

// WithRequiredMethods sets the HTTP methods whose requests must carry an
// Idempotency-Key (default: POST), as apigw.WithRequiredMethods.
func WithRequiredMethods(methods ...string) Option {
	return contractOption(httpcontract.RequiredMethods(methods))
}

// WithOptionalMethods sets the HTTP methods (default: none) for which a key
// is honoured when present, as apigw.WithOptionalMethods.
func WithOptionalMethods(methods ...string) Option {
	return contractOption(httpcontract.OptionalMethods(methods))
}

// WithPrincipalRequired refuses an anonymous caller (a principal of "")
// with a 403 problem.
func WithPrincipalRequired() Option {
	return contractOption(httpcontract.NeedPrincipal())
}

// WithMaxBodyBytes sets the largest request body accepted (default
// apigw.DefaultMaxBodyBytes, 1 MiB); a larger one gets a 413 problem
// before any DynamoDB request. n <= 0 keeps the default.
func WithMaxBodyBytes(n int) Option {
	return contractOption(httpcontract.MaxBodyBytes(n))
}

// WithStorePolicy sets which response status codes are stored and replayed
// (default apigw.DefaultStorePolicy).
func WithStorePolicy(store func(status int) bool) Option {
	return contractOption(httpcontract.StorePolicy(store))
}

// WithDropHeaders replaces the response headers that are not stored nor
// replayed (default apigw.DefaultDropHeaders()).
func WithDropHeaders(names ...string) Option {
	return contractOption(httpcontract.DropHeaders(names))
}

// WithProblemBase sets the URI prefix of problem types (default
// apigw.DefaultProblemBase).
func WithProblemBase(base string) Option {
	return contractOption(httpcontract.ProblemBase(base))
}

// WithTransactionCanceled maps a *idemddb.TransactionCanceledError (a write
// the handler added with Claim.AddWrites failed its condition; nothing was
// committed and the key was released) to the problem returned to the
// client, as apigw.WithTransactionCanceled. The default is a 409
// transaction-conflict problem.
func WithTransactionCanceled(f func(ctx context.Context, err *idemddb.TransactionCanceledError) Problem) Option {
	if f == nil {
		return contractOption(httpcontract.TransactionCanceled(nil))
	}
	return contractOption(httpcontract.TransactionCanceled(func(ctx context.Context, err *idemddb.TransactionCanceledError) httpcontract.Problem {
		return httpcontract.Problem(f(ctx, err))
	}))
}

// WithLogger sets the logger receiving one line per request (default: a
// JSON handler on os.Stdout).
func WithLogger(l *slog.Logger) Option {
	return contractOption(httpcontract.Logger(l))
}

// WithMetrics sets where the per-request CloudWatch Embedded Metric Format
// document is written (default os.Stdout); nil disables metrics.
func WithMetrics(w io.Writer) Option {
	return contractOption(httpcontract.Metrics(w))
}

// WithNamespace sets the CloudWatch metric namespace (default
// "Idempotency").
func WithNamespace(ns string) Option {
	return contractOption(httpcontract.Namespace(ns))
}

// WithWait makes a duplicate of a request still running wait up to d for
// its response (default 0: 409 at once), as apigw.WithWait.
func WithWait(d time.Duration) Option {
	return contractOption(httpcontract.Wait(d))
}

// WithMaxWait caps the wait a client asks for with "Prefer: wait=N"
// (default 10 s), as apigw.WithMaxWait; d <= 0 ignores the preference.
func WithMaxWait(d time.Duration) Option {
	return contractOption(httpcontract.MaxWait(d))
}

// contractOption makes a contract option one of this package's.
func contractOption(f func(*httpcontract.Config)) Option {
	return func(c *config) { f(c.Config) }
}
