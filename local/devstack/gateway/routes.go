package gateway

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/acme/idemcheckout/internal/samtemplate"
	"github.com/acme/idemcheckout/local/devstack/template"
)

// Route is one API Gateway route served by a function.
type Route struct {
	Function *samtemplate.Function
	Event    samtemplate.Event // an HttpApi or Api event: Event.HTTP is set
	// Authorizer is the route's JWT authorizer, nil for none.
	Authorizer *samtemplate.Authorizer
	// CORS is the CorsConfiguration of the route's HttpApi, nil for none.
	CORS *samtemplate.CORSConfiguration
	segs []string // path segments, nil for the $default route
}

// RouteKey is API Gateway's route key, e.g. "POST /orders" or "$default".
func (r *Route) RouteKey() string { return r.Event.HTTP.RouteKey() }

// V1 reports whether the route gets payload format 1.0 (Api events, and
// HttpApi events with PayloadFormatVersion 1.0).
func (r *Route) V1() bool { return r.Event.HTTP.PayloadFormatVersion == "1.0" }

// Routes lists every HttpApi and Api event of the template with its
// authorizer: the event's Auth.Authorizer, else the API's
// DefaultAuthorizer; NONE (and AWS_IAM, which is not emulated) leave the
// route open.
func Routes(tm *template.Template) ([]*Route, error) {
	var out []*Route
	fns := tm.Functions()
	for i := range fns {
		f := &fns[i]
		for _, ev := range f.Events {
			if ev.HTTP == nil {
				continue
			}
			r := &Route{Function: f, Event: ev}
			if ev.Type == samtemplate.EventHTTPAPI {
				api := tm.Model.API(ev.HTTP.API)
				if api != nil {
					r.CORS = api.CORS
				}
				name := api.RouteAuthorizer(ev.HTTP)
				if name != "" && name != "NONE" && name != "AWS_IAM" {
					a, ok := api.Authorizers[name]
					switch {
					case !ok:
						return nil, fmt.Errorf("function %s event %s: authorizer %s is not defined in the API's Auth.Authorizers", f.ID, ev.Name, name)
					case a.JWT == nil:
						return nil, fmt.Errorf("function %s event %s: authorizer %s: only JWT authorizers (JwtConfiguration) are emulated locally", f.ID, ev.Name, name)
					}
					r.Authorizer = &a
				}
			}
			out = append(out, r)
		}
	}
	return out, nil
}

// Router matches requests to routes by API Gateway's rules: the most
// specific path wins (literal segment over {param} over {proxy+}), then an
// exact method over ANY. HttpApi and Api events share one listener locally,
// as `sam local start-api` does.
type Router struct {
	routes []*Route
	// cors is the one CorsConfiguration of the routes' APIs, for answers
	// no route gives (a 404, a preflight for a path no route serves); nil
	// when no API or more than one has one.
	cors *corsConfig
}

// NewRouter builds a router over routes.
func NewRouter(routes []*Route) *Router {
	rt := &Router{}
	var configs []*corsConfig
	for _, r := range routes {
		if r.CORS != nil && !slices.Contains(configs, r.CORS) {
			configs = append(configs, r.CORS)
		}
	}
	if len(configs) == 1 {
		rt.cors = configs[0]
	}
	for _, r := range routes {
		if r.Event.HTTP.Path != "$default" {
			r.segs = splitPath(r.Event.HTTP.Path)
		}
		rt.routes = append(rt.routes, r)
	}
	key := func(r *Route) string { return r.Event.HTTP.Path + " " + r.Event.HTTP.Method }
	sort.SliceStable(rt.routes, func(i, j int) bool { return key(rt.routes[i]) < key(rt.routes[j]) })
	return rt
}

// corsFor returns the CorsConfiguration that applies to a request for
// method and path that no route takes: the one of the API whose route
// serves method and path, else the only one of the template's APIs.
func (rt *Router) corsFor(method, path string) *corsConfig {
	if r, _, ok := rt.match(method, path); ok && r.Event.Type == samtemplate.EventHTTPAPI {
		return r.CORS
	}
	return rt.cors
}

// Routes lists the routes in a stable order.
func (rt *Router) Routes() []*Route { return rt.routes }

func splitPath(p string) []string {
	p = strings.Trim(p, "/")
	if p == "" {
		return []string{}
	}
	return strings.Split(p, "/")
}

// match finds the route for method and path and returns its path
// parameters. ok is false when nothing matches.
func (rt *Router) match(method, path string) (route *Route, params map[string]string, ok bool) {
	segs := splitPath(path)
	var best *Route
	var bestScore []int
	var bestParams map[string]string
	for _, r := range rt.routes {
		if r.Event.HTTP.Method != "ANY" && r.Event.HTTP.Method != method {
			continue
		}
		var score []int
		var ps map[string]string
		if r.segs == nil { // $default
			score = []int{0}
		} else {
			var matched bool
			score, ps, matched = matchSegs(r.segs, segs)
			if !matched {
				continue
			}
		}
		if r.Event.HTTP.Method != "ANY" {
			score = append(score, 1)
		} else {
			score = append(score, 0)
		}
		if best == nil || lessScore(bestScore, score) {
			best, bestScore, bestParams = r, score, ps
		}
	}
	if best == nil {
		return nil, nil, false
	}
	return best, bestParams, true
}

func matchSegs(pattern, segs []string) ([]int, map[string]string, bool) {
	score := make([]int, 0, len(pattern)+1)
	var params map[string]string
	for i, p := range pattern {
		if strings.HasPrefix(p, "{") && strings.HasSuffix(p, "+}") {
			if i != len(pattern)-1 || i >= len(segs) {
				return nil, nil, false
			}
			if params == nil {
				params = map[string]string{}
			}
			params[p[1:len(p)-2]] = strings.Join(segs[i:], "/")
			score = append(score, 1)
			return append([]int{4}, score...), params, true
		}
		if i >= len(segs) {
			return nil, nil, false
		}
		if strings.HasPrefix(p, "{") && strings.HasSuffix(p, "}") {
			if segs[i] == "" {
				return nil, nil, false
			}
			if params == nil {
				params = map[string]string{}
			}
			params[p[1:len(p)-1]] = segs[i]
			score = append(score, 2)
			continue
		}
		if p != segs[i] {
			return nil, nil, false
		}
		score = append(score, 3)
	}
	if len(segs) != len(pattern) {
		return nil, nil, false
	}
	return append([]int{4}, score...), params, true
}

// lessScore compares specificity vectors lexicographically; a longer match
// of equal prefix is more specific.
func lessScore(a, b []int) bool {
	for i := 0; i < len(a) && i < len(b); i++ {
		if a[i] != b[i] {
			return a[i] < b[i]
		}
	}
	return len(a) < len(b)
}

// Describe is the start-up banner's lines about the routes: one per route
// (method, path, function, payload format, authorizer), the CORS origins
// and the note that JWT signatures are not verified.
func (rt *Router) Describe() []string {
	var out []string
	jwt := false
	for _, r := range rt.routes {
		auth := "no auth"
		if a := r.Authorizer; a != nil {
			jwt = true
			auth = "JWT " + a.Name
			if len(r.Event.HTTP.Scopes) > 0 {
				auth += " scopes " + strings.Join(r.Event.HTTP.Scopes, ",")
			}
		}
		kind := "HttpApi v" + r.Event.HTTP.PayloadFormatVersion
		if r.Event.Type == samtemplate.EventAPI {
			kind = "Api v1.0"
		}
		out = append(out, fmt.Sprintf("  %-7s %-30s -> %s (%s, %s)", r.Event.HTTP.Method, r.Event.HTTP.Path, r.Function.ID, kind, auth))
	}
	if c := rt.cors; c != nil {
		out = append(out, fmt.Sprintf("CORS: allowed origins %s (preflights are answered by the gateway)", strings.Join(c.AllowOrigins, ", ")))
	}
	if jwt {
		out = append(out, "NOTE: JWT authorizers are emulated WITHOUT signature verification: any well-formed token with valid exp (and iss/aud when the template sets them) is accepted")
	}
	return out
}
