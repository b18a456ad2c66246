package idemhttp

import (
	"net/http"

	"github.com/acme/idemcheckout/pkg/idemddb/apigw"
	"github.com/acme/idemcheckout/pkg/idemddb/internal/httpcontract"
)

// Problem is an RFC 9457 problem detail, the one type of both front doors
// (see apigw.Problem).
type Problem = apigw.Problem

// Option configures Middleware. It is apigw.Option: the contract's settings
// are apigw's (apigw.WithRequiredMethods, apigw.WithWait, apigw.WithLogger,
// ...), defined once for both front doors; the functions below are the
// settings only net/http has.
type Option = apigw.Option

// WithPrincipal sets how the caller of a request is named (default: every
// caller is anonymous). See PrincipalFunc and the ready ones.
func WithPrincipal(f PrincipalFunc) Option {
	return func(c *httpcontract.Config) { c.HTTP.Principal, c.HTTP.Set = f, true }
}

// WithRoute sets the route of a request, the first part of the scope and
// of the fingerprint (default RouteFromPattern): for example the router's
// route template with the method, "POST /orders/{id}/pay".
func WithRoute(f func(*http.Request) string) Option {
	return func(c *httpcontract.Config) {
		c.HTTP.Set = true
		if f != nil {
			c.HTTP.Route = f
		}
	}
}

// WithMaxResponseBytes sets how much of a response body is buffered
// (default DefaultMaxResponseBytes); a longer one is streamed and not
// stored (see the package documentation). n <= 0 keeps the default.
func WithMaxResponseBytes(n int) Option {
	return func(c *httpcontract.Config) {
		c.HTTP.Set = true
		if n > 0 {
			c.HTTP.MaxResponse = n
		}
	}
}
