package gateway

// CORS as an HTTP API applies its CorsConfiguration (AWS, "Configure CORS
// for HTTP APIs in API Gateway"):
//   - A preflight (OPTIONS with Origin and Access-Control-Request-Method)
//     is answered by the gateway itself, even without an OPTIONS route: no
//     authorizer, no function. A route that takes OPTIONS (an OPTIONS or
//     ANY route, or $default) takes the preflight instead, authorizer
//     included, as AWS documents for $default.
//   - A preflight the configuration allows (origin, method and every
//     requested header) gets 204 with Access-Control-Allow-Origin (the
//     request's origin, or * when * is configured), -Allow-Methods,
//     -Allow-Headers, -Max-Age and -Allow-Credentials (when true). One it
//     does not allow gets 204 without any CORS header, so the browser
//     refuses it; nothing runs either way.
//   - Every other answer to a request from an allowed origin, the
//     gateway's own (401, 403, 404, 413, 502) included, carries
//     Access-Control-Allow-Origin, -Expose-Headers and -Allow-Credentials
//     (when true). The Access-Control-* headers a function returns are
//     dropped: the configured ones replace them.
//   - Without an Origin, with an origin not allowed or one that is not an
//     origin at all ("null", a path, garbage), no CORS header is sent.

import (
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/acme/idemcheckout/internal/samtemplate"
)

// corsConfig is an API's CorsConfiguration.
type corsConfig = samtemplate.CORSConfiguration

// isPreflight reports whether r is a CORS preflight.
func isPreflight(r *http.Request) bool {
	return r.Method == http.MethodOptions && r.Header.Get("Origin") != "" && r.Header.Get("Access-Control-Request-Method") != ""
}

// takesOptions reports whether a route answers OPTIONS itself.
func takesOptions(r *Route) bool {
	m := r.Event.HTTP.Method
	return m == http.MethodOptions || m == "ANY" || r.Event.HTTP.Path == "$default"
}

// validOrigin reports whether o is a serialized origin,
// scheme://host[:port] and nothing else.
func validOrigin(o string) bool {
	if o == "" || len(o) > 2048 || strings.ContainsAny(o, " \t\r\n") {
		return false
	}
	u, err := url.Parse(o) // refuses a port that is not a number
	return err == nil && u.Scheme != "" && u.Host != "" && u.Hostname() != "" && o == u.Scheme+"://"+u.Host
}

// allowedOrigin returns the Access-Control-Allow-Origin value for a
// request from origin, "" when c does not allow it. Scheme and host
// compare case-insensitively; "*", "http://*" and "https://*" are the
// wildcards API Gateway accepts.
func allowedOrigin(c *corsConfig, origin string) string {
	if c == nil || !validOrigin(origin) {
		return ""
	}
	for _, a := range c.AllowOrigins {
		switch {
		case a == "*":
			return "*"
		case a == "http://*" || a == "https://*":
			if strings.HasPrefix(strings.ToLower(origin), strings.TrimSuffix(a, "*")) {
				return origin
			}
		case strings.EqualFold(a, origin):
			return origin
		}
	}
	return ""
}

// containsFold reports whether list has s (any case) or "*".
func containsFold(list []string, s string) bool {
	return slices.ContainsFunc(list, func(x string) bool { return x == "*" || strings.EqualFold(x, s) })
}

// preflightAllowed reports whether c allows the preflight r asks for, and
// why not.
func preflightAllowed(c *corsConfig, r *http.Request) (allowOrigin, refused string) {
	allowOrigin = allowedOrigin(c, r.Header.Get("Origin"))
	if allowOrigin == "" {
		return "", "origin not allowed"
	}
	// Methods are case-sensitive; GET, HEAD and POST need no
	// Access-Control-Allow-Methods in a browser, so an empty list allows them.
	m := r.Header.Get("Access-Control-Request-Method")
	if !slices.Contains(c.AllowMethods, m) && !slices.Contains(c.AllowMethods, "*") &&
		(len(c.AllowMethods) > 0 || (m != "GET" && m != "HEAD" && m != "POST")) {
		return "", "method " + m + " not allowed"
	}
	for _, v := range r.Header.Values("Access-Control-Request-Headers") {
		for h := range strings.SplitSeq(v, ",") {
			if h = strings.TrimSpace(h); h != "" && !containsFold(c.AllowHeaders, h) {
				return "", "header " + h + " not allowed"
			}
		}
	}
	return allowOrigin, ""
}

// writePreflight answers a preflight as the gateway does: 204, with the
// configured headers when c allows it, with none otherwise. It returns why
// the preflight was refused ("" when allowed).
func writePreflight(w http.ResponseWriter, c *corsConfig, r *http.Request) string {
	h := w.Header()
	allowOrigin, refused := preflightAllowed(c, r)
	if refused == "" {
		h.Set("Access-Control-Allow-Origin", allowOrigin)
		if len(c.AllowMethods) > 0 {
			h.Set("Access-Control-Allow-Methods", strings.Join(c.AllowMethods, ","))
		}
		if len(c.AllowHeaders) > 0 {
			h.Set("Access-Control-Allow-Headers", strings.Join(c.AllowHeaders, ","))
		}
		if c.MaxAge > 0 {
			h.Set("Access-Control-Max-Age", strconv.Itoa(int(c.MaxAge.Seconds())))
		}
		if c.AllowCredentials {
			h.Set("Access-Control-Allow-Credentials", "true")
		}
		if allowOrigin != "*" {
			h.Add("Vary", "Origin")
		}
	}
	h.Set("Content-Length", "0")
	w.WriteHeader(http.StatusNoContent)
	return refused
}

// applyCORS sets the CORS headers of an answer (the gateway's own or a
// function's) to a request from origin: the function's Access-Control-*
// headers are dropped, and the configured ones set when c allows origin.
func applyCORS(h http.Header, c *corsConfig, origin string) {
	if c == nil {
		return
	}
	for k := range h {
		if strings.HasPrefix(http.CanonicalHeaderKey(k), "Access-Control-") {
			delete(h, k)
		}
	}
	allow := allowedOrigin(c, origin)
	if allow == "" {
		return
	}
	h.Set("Access-Control-Allow-Origin", allow)
	if len(c.ExposeHeaders) > 0 {
		h.Set("Access-Control-Expose-Headers", strings.Join(c.ExposeHeaders, ","))
	}
	if c.AllowCredentials {
		h.Set("Access-Control-Allow-Credentials", "true")
	}
	if allow != "*" && !varies(h, "Origin") {
		h.Add("Vary", "Origin")
	}
}

// varies reports whether h's Vary names field (or is *).
func varies(h http.Header, field string) bool {
	for _, v := range h.Values("Vary") {
		for f := range strings.SplitSeq(v, ",") {
			if f = strings.TrimSpace(f); f == "*" || strings.EqualFold(f, field) {
				return true
			}
		}
	}
	return false
}

// AllowsOrigin reports whether the CORS configuration a POST from a page
// gets allows pages of origin to call the API; false when the API has
// none (a browser then refuses every cross-origin call).
func (rt *Router) AllowsOrigin(origin string) bool {
	for _, r := range rt.routes {
		if r.Event.HTTP.Method == http.MethodPost && r.CORS != nil {
			return allowedOrigin(r.CORS, origin) != ""
		}
	}
	return false
}
