package devstack

import (
	"sort"
	"strings"
)

// Route is one API Gateway route served by a function.
type Route struct {
	Event    Event
	Function *Function
	segs     []string // path segments, "" for the $default route
}

// RouteKey is API Gateway's route key, e.g. "POST /orders" or "$default".
func (r *Route) RouteKey() string {
	if r.Event.Path == "$default" {
		return "$default"
	}
	return r.Event.Method + " " + r.Event.Path
}

// Router matches requests to routes by API Gateway's rules: the most
// specific path wins (literal segment over {param} over {proxy+}), then an
// exact method over ANY. HttpApi and Api events share one listener locally,
// as `sam local start-api` does.
type Router struct{ routes []*Route }

// NewRouter builds a router over every HttpApi/Api event of the functions.
func NewRouter(fns []*Function) *Router {
	rt := &Router{}
	for _, f := range fns {
		for _, ev := range f.Events {
			r := &Route{Event: ev, Function: f}
			if ev.Path != "$default" {
				r.segs = splitPath(ev.Path)
			}
			rt.routes = append(rt.routes, r)
		}
	}
	sort.SliceStable(rt.routes, func(i, j int) bool {
		return rt.routes[i].Event.Path+" "+rt.routes[i].Event.Method < rt.routes[j].Event.Path+" "+rt.routes[j].Event.Method
	})
	return rt
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

// Match finds the route for method and path and returns its path
// parameters. ok is false when nothing matches.
func (rt *Router) Match(method, path string) (route *Route, params map[string]string, ok bool) {
	segs := splitPath(path)
	var best *Route
	var bestScore []int
	var bestParams map[string]string
	for _, r := range rt.routes {
		if r.Event.Method != "ANY" && r.Event.Method != method {
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
		if r.Event.Method != "ANY" {
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
