package httpcontract

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/acme/idemcheckout/pkg/idemddb"
	"github.com/acme/idemcheckout/pkg/idemddb/internal/obs"
)

// Defaults used where no option says otherwise.
const (
	// DefaultMaxBodyBytes is the largest request body accepted (1 MiB).
	DefaultMaxBodyBytes = 1 << 20
	// DefaultProblemBase prefixes every problem type URI.
	DefaultProblemBase = "https://docs.acme.dev/problems/"
	// DefaultNamespace is the CloudWatch metric namespace.
	DefaultNamespace = obs.DefaultNamespace
)

// DefaultDropHeaders returns the response headers that are not stored, and
// so not replayed. A new slice on every call.
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
// stored and replayed: 2xx, 3xx other than 304, and 4xx other than 408,
// 409, 423, 425 and 429.
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

// Config is the contract's configuration, set by the front doors' options.
type Config struct {
	Required      map[string]bool
	Optional      map[string]bool
	NeedPrincipal bool
	MaxBody       int
	StoreStatus   func(int) bool
	Drop          map[string]bool
	ProblemBase   string
	TxCanceled    func(context.Context, *idemddb.TransactionCanceledError) Problem
	// Logger, Metrics and Namespace: the options every adapter of the
	// library shares.
	obs.Options
	Wait    time.Duration
	MaxWait time.Duration
	// HTTP holds the settings of the net/http front door alone.
	HTTP HTTPSettings
}

// HTTPSettings are the settings only idemhttp serves (its WithPrincipal,
// WithRoute and WithMaxResponseBytes). The API Gateway front door refuses a
// Config with Set true rather than ignore them.
type HTTPSettings struct {
	Principal   func(*http.Request) (string, error)
	Route       func(*http.Request) string
	MaxResponse int
	// Set is true when one of these settings was given.
	Set bool
}

// NewConfig returns the defaults with opts applied. Each option is a
// function of the Config; front doors wrap their own option types.
func NewConfig(opts ...func(*Config)) *Config {
	c := &Config{
		Required:    MethodSet([]string{http.MethodPost}),
		Optional:    map[string]bool{},
		MaxBody:     DefaultMaxBodyBytes,
		StoreStatus: DefaultStorePolicy,
		ProblemBase: DefaultProblemBase,
		Options:     obs.NewOptions(),
		MaxWait:     DefaultMaxWait,
	}
	c.SetDropHeaders(DefaultDropHeaders())
	for _, o := range opts {
		o(c)
	}
	c.Finish()
	return c
}

// MethodSet is the set of methods, upper-cased.
func MethodSet(methods []string) map[string]bool {
	m := make(map[string]bool, len(methods))
	for _, v := range methods {
		m[strings.ToUpper(v)] = true
	}
	return m
}

// SetDropHeaders replaces the drop list; Idempotent-Replayed is always in it.
func (c *Config) SetDropHeaders(names []string) {
	c.Drop = map[string]bool{strings.ToLower(ReplayedHeader): true}
	for _, n := range names {
		c.Drop[strings.ToLower(n)] = true
	}
}

// Applies reports whether requests with this method are under the
// contract: required (a key must be present) or optional (a key is honoured
// when present).
func (c *Config) Applies(method string) (required, optional bool) {
	return c.Required[method], c.Optional[method]
}

// The options both front doors offer, as functions of the Config; each
// front door wraps them in its own Option type, with its own doc comment.

// RequiredMethods sets the methods whose requests must carry a key.
func RequiredMethods(methods []string) func(*Config) {
	return func(c *Config) { c.Required = MethodSet(methods) }
}

// OptionalMethods sets the methods for which a key is honoured when present.
func OptionalMethods(methods []string) func(*Config) {
	return func(c *Config) { c.Optional = MethodSet(methods) }
}

// NeedPrincipal refuses anonymous callers with 403.
func NeedPrincipal() func(*Config) { return func(c *Config) { c.NeedPrincipal = true } }

// MaxBodyBytes sets the body limit; n <= 0 keeps the default.
func MaxBodyBytes(n int) func(*Config) {
	return func(c *Config) {
		if n > 0 {
			c.MaxBody = n
		}
	}
}

// StorePolicy sets which statuses are stored; nil keeps the default.
func StorePolicy(store func(status int) bool) func(*Config) {
	return func(c *Config) {
		if store != nil {
			c.StoreStatus = store
		}
	}
}

// DropHeaders replaces the drop list.
func DropHeaders(names []string) func(*Config) { return func(c *Config) { c.SetDropHeaders(names) } }

// ProblemBase sets the problem type prefix; "" keeps the default.
func ProblemBase(base string) func(*Config) {
	return func(c *Config) {
		if base != "" {
			c.ProblemBase = base
		}
	}
}

// TransactionCanceled sets the hook mapping a canceled AddWrites to a
// problem; nil restores the default.
func TransactionCanceled(f func(context.Context, *idemddb.TransactionCanceledError) Problem) func(*Config) {
	return func(c *Config) { c.TxCanceled = f }
}

// Logger sets the logger (nil: the default JSON logger on stdout).
func Logger(l *slog.Logger) func(*Config) { return func(c *Config) { c.SetLogger(l) } }

// Metrics sets the EMF writer; nil disables metrics.
func Metrics(w io.Writer) func(*Config) { return func(c *Config) { c.SetMetrics(w) } }

// Namespace sets the metric namespace; "" keeps the default.
func Namespace(ns string) func(*Config) {
	return func(c *Config) { c.SetNamespace(ns) }
}

// Wait sets how long a duplicate waits by default (negative: 0).
func Wait(d time.Duration) func(*Config) { return func(c *Config) { c.Wait = max(d, 0) } }

// MaxWait caps "Prefer: wait"; d <= 0 ignores the preference.
func MaxWait(d time.Duration) func(*Config) { return func(c *Config) { c.MaxWait = d } }
