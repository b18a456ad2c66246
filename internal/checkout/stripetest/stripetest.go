// Package stripetest is a test double of the few Stripe API endpoints the
// checkout's StripeProvider uses, with Stripe's stateful rules, which
// stripe-mock (stateless) does not have:
//
//	POST /v1/payment_intents              create (and confirm)
//	POST /v1/payment_intents/{id}         update (metadata)
//	POST /v1/payment_intents/{id}/cancel  cancel
//	GET  /v1/payment_intents/search       search (metadata, status, created)
//	POST /v1/refunds                      refund a PaymentIntent
//
// The rules, from Stripe's documentation:
//
//   - Idempotent requests (docs.stripe.com/api/idempotent_requests): a POST
//     with an Idempotency-Key saves the status code and body of its first
//     execution, errors included, and a repeat with the key gets them back
//     with the header Idempotent-Replayed: true; a repeat with other
//     parameters is refused with 400 idempotency_error; a request that
//     conflicts with another one still executing with the key gets a 409
//     (idempotency_key_in_use, docs.stripe.com/error-codes) and nothing is
//     saved; keys are removed after they are at least 24 hours old, and a
//     key used after that is a new request.
//   - Declines (docs.stripe.com/declines, docs.stripe.com/testing): a card
//     error is a 402 card_error naming the PaymentIntent, which is left in
//     requires_payment_method with its last_payment_error. The test payment
//     methods pm_card_chargeDeclined (and the checkout's simulated
//     "card_declined") decline with decline_code generic_decline; every
//     other payment method succeeds.
//   - Cancel and refund (docs.stripe.com/refunds, api/payment_intents/cancel):
//     a PaymentIntent that is not captured yet is cancelled; a succeeded one
//     cannot be cancelled (400 payment_intent_unexpected_state) and is
//     refunded instead; a fully refunded charge cannot be refunded again
//     (400 charge_already_refunded).
//   - Search (docs.stripe.com/search, "Data freshness"): data is searchable
//     in under a minute, not at once; SearchLag models that delay on the
//     double's clock (0 by default: at once).
//
// Faults: Before lets a test fail a request before it executes (a 500 that
// executed nothing), lose its reply after it executed (the connection is
// closed without an answer), or run other requests while it is executing.
// Requests counts the requests per route.
package stripetest

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// KeyRetention is how long the double keeps an idempotency key.
const KeyRetention = 24 * time.Hour

// DeclinedPaymentMethods decline with a card error.
var declined = map[string]bool{"pm_card_chargeDeclined": true, "card_declined": true}

// Fault is what Before does to a request.
type Fault int

// Faults.
const (
	// Pass executes the request and answers it.
	Pass Fault = iota
	// FailBefore answers 500 api_error without executing it (nothing is
	// saved under its key).
	FailBefore
	// LoseReply executes it (and saves its answer under its key), then
	// closes the connection without answering.
	LoseReply
)

// Request is what Before sees of a request.
type Request struct {
	// Route is the method and path pattern ("POST /v1/payment_intents").
	Route string
	// Key is its Idempotency-Key ("" when none); Form its parameters.
	Key  string
	Form url.Values
}

// PaymentIntent is the double's PaymentIntent (the fields the checkout
// reads).
type PaymentIntent struct {
	ID               string            `json:"id"`
	Object           string            `json:"object"`
	Amount           int64             `json:"amount"`
	Currency         string            `json:"currency"`
	Status           string            `json:"status"`
	Created          int64             `json:"created"`
	Metadata         map[string]string `json:"metadata"`
	PaymentMethod    string            `json:"payment_method,omitempty"`
	LastPaymentError *apiError         `json:"last_payment_error,omitempty"`
	// Charge is its latest charge ("" when none).
	Charge string `json:"-"`
	// Refunded: its charge was refunded in full.
	Refunded bool `json:"-"`
	// changedAt is its last change on the double's clock.
	changedAt time.Time
}

type apiError struct {
	Type          string         `json:"type"`
	Code          string         `json:"code,omitempty"`
	DeclineCode   string         `json:"decline_code,omitempty"`
	Message       string         `json:"message"`
	PaymentIntent *PaymentIntent `json:"payment_intent,omitempty"`
}

// saved is an idempotency key's record.
type saved struct {
	route, fingerprint string
	at                 time.Time
	running            bool
	status             int
	body               []byte
}

// Server is the double. Its methods are safe for concurrent use.
type Server struct {
	// URL is the base URL to give stripe-go (http://127.0.0.1:port).
	URL string
	srv *httptest.Server
	now func() time.Time

	mu        sync.Mutex
	keys      map[string]*saved
	pis       map[string]*PaymentIntent
	order     []string
	requests  map[string]int
	before    func(Request) Fault
	arrival   func(Request)
	searchLag time.Duration
}

// New starts a double on 127.0.0.1 with the clock now (time.Now when nil);
// it stops when the test ends.
func New(t interface {
	Helper()
	Cleanup(func())
}, now func() time.Time) *Server {
	t.Helper()
	if now == nil {
		now = time.Now
	}
	s := &Server{now: now, keys: map[string]*saved{}, pis: map[string]*PaymentIntent{}, requests: map[string]int{}}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	s.URL = s.srv.URL
	t.Cleanup(s.srv.Close)
	return s
}

// Before sets the fault hook (nil: every request passes). It runs outside
// the double's lock, after the request's key is marked executing, so it
// may send other requests.
func (s *Server) Before(f func(Request) Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.before = f
}

// OnArrival sets a hook (nil: none) that runs before a request is looked
// at: the request is still in transit, its key not yet seen by the
// double, so the hook may use the key first.
func (s *Server) OnArrival(f func(Request)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.arrival = f
}

// SetSearchLag sets how long after its last change an object becomes
// visible to search, on the double's clock.
func (s *Server) SetSearchLag(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.searchLag = d
}

// Requests returns the requests per route since the last Reset.
func (s *Server) Requests() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]int, len(s.requests))
	for k, v := range s.requests {
		out[k] = v
	}
	return out
}

// Reset zeroes the request counts.
func (s *Server) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests = map[string]int{}
}

// PaymentIntents returns a copy of every PaymentIntent, oldest first.
func (s *Server) PaymentIntents() []PaymentIntent {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]PaymentIntent, 0, len(s.order))
	for _, id := range s.order {
		pi := *s.pis[id]
		pi.Metadata = copyMap(pi.Metadata)
		out = append(out, pi)
	}
	return out
}

var (
	rePI       = regexp.MustCompile(`^/v1/payment_intents/(pi_[A-Za-z0-9]+)$`)
	rePICancel = regexp.MustCompile(`^/v1/payment_intents/(pi_[A-Za-z0-9]+)/cancel$`)
)

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		writeJSON(w, http.StatusBadRequest, nil, errBody("invalid_request_error", "", "unparsable form: "+err.Error()))
		return
	}
	form := r.Form
	if r.Method == http.MethodPost {
		form = r.PostForm
	}
	route, id, ok := matchRoute(r.Method, r.URL.Path)
	if !ok {
		writeJSON(w, http.StatusNotFound, nil, errBody("invalid_request_error", "resource_missing", "no route "+r.Method+" "+r.URL.Path))
		return
	}
	req := Request{Route: route, Key: r.Header.Get("Idempotency-Key"), Form: form}
	s.mu.Lock()
	arrival := s.arrival
	s.mu.Unlock()
	if arrival != nil {
		arrival(req)
	}
	fp := route + "\n" + id + "\n" + form.Encode() // url.Values.Encode sorts by key
	rec, before, answered := s.admit(w, r.Method, req, fp)
	if answered {
		return
	}
	s.run(w, req, id, rec, before)
}

// matchRoute names the route of a request and the PaymentIntent id in its
// path; ok is false for a route the server does not serve.
func matchRoute(method, p string) (route, id string, ok bool) {
	switch {
	case method == http.MethodPost && p == "/v1/payment_intents":
		return "POST /v1/payment_intents", "", true
	case method == http.MethodGet && p == "/v1/payment_intents/search":
		return "GET /v1/payment_intents/search", "", true
	case method == http.MethodPost && rePICancel.MatchString(p):
		return "POST /v1/payment_intents/{id}/cancel", rePICancel.FindStringSubmatch(p)[1], true
	case method == http.MethodPost && rePI.MatchString(p):
		return "POST /v1/payment_intents/{id}", rePI.FindStringSubmatch(p)[1], true
	case method == http.MethodPost && p == "/v1/refunds":
		return "POST /v1/refunds", "", true
	}
	return "", "", false
}

// admit counts the request and applies Stripe's idempotency: a POST with a
// key seen within KeyRetention is answered here (409 while it runs, 400 on
// other parameters, else the saved reply, and answered is true); a new key
// is saved as running (rec). It returns the Before hook to run.
func (s *Server) admit(w http.ResponseWriter, method string, req Request, fp string) (rec *saved, before func(Request) Fault, answered bool) {
	s.mu.Lock()
	s.requests[req.Route]++
	now := s.now()
	if req.Key != "" && method == http.MethodPost {
		if old := s.keys[req.Key]; old != nil && now.Sub(old.at) < KeyRetention {
			running, sameParams, status, body := old.running, old.fingerprint == fp, old.status, old.body
			s.mu.Unlock()
			switch {
			case running:
				writeJSON(w, http.StatusConflict, nil, errBody("idempotency_error", "idempotency_key_in_use",
					"There is currently another in-progress request using this Idempotency-Key; retry later."))
			case !sameParams:
				writeJSON(w, http.StatusBadRequest, nil, errBody("idempotency_error", "",
					"Keys for idempotent requests can only be used with the same parameters they were first used with."))
			default:
				writeRaw(w, status, map[string]string{"Idempotent-Replayed": "true"}, body)
			}
			return nil, nil, true
		}
		rec = &saved{route: req.Route, fingerprint: fp, at: now, running: true}
		s.keys[req.Key] = rec
	}
	before = s.before
	s.mu.Unlock()
	return rec, before, false
}

// run executes an admitted request, with the fault the Before hook asks
// for, saves its reply under its key (rec), and answers it.
func (s *Server) run(w http.ResponseWriter, req Request, id string, rec *saved, before func(Request) Fault) {
	fault := Pass
	if before != nil {
		fault = before(req)
	}
	if fault == FailBefore {
		s.forget(req.Key, rec)
		writeJSON(w, http.StatusInternalServerError, nil, errBody("api_error", "", "injected failure before execution"))
		return
	}

	s.mu.Lock()
	status, body := s.execute(req.Route, id, req.Form)
	if rec != nil {
		rec.running, rec.status, rec.body = false, status, body
	}
	s.mu.Unlock()

	if fault == LoseReply {
		if hj, ok := w.(http.Hijacker); ok {
			if conn, _, err := hj.Hijack(); err == nil {
				_ = conn.Close()
				return
			}
		}
	}
	writeRaw(w, status, nil, body)
}

// forget drops a key that never executed.
func (s *Server) forget(key string, rec *saved) {
	if rec == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.keys[key] == rec {
		delete(s.keys, key)
	}
}

// execute runs a request under s.mu and returns its answer.
func (s *Server) execute(route, id string, f url.Values) (int, []byte) {
	switch route {
	case "POST /v1/payment_intents":
		return s.create(f)
	case "POST /v1/payment_intents/{id}":
		pi := s.pis[id]
		if pi == nil {
			return marshal(http.StatusNotFound, errBody("invalid_request_error", "resource_missing", "No such payment_intent: "+id))
		}
		for k, v := range metadata(f) {
			pi.Metadata[k] = v
		}
		pi.changedAt = s.now() // changed: search sees it after the lag again
		return s.piJSON(pi, false)
	case "POST /v1/payment_intents/{id}/cancel":
		pi := s.pis[id]
		switch {
		case pi == nil:
			return marshal(http.StatusNotFound, errBody("invalid_request_error", "resource_missing", "No such payment_intent: "+id))
		case pi.Status == "succeeded" || pi.Status == "canceled":
			return marshal(http.StatusBadRequest, errBody("invalid_request_error", "payment_intent_unexpected_state",
				"You cannot cancel this PaymentIntent because it has a status of "+pi.Status+"."))
		}
		pi.Status = "canceled"
		return s.piJSON(pi, false)
	case "POST /v1/refunds":
		pi := s.pis[f.Get("payment_intent")]
		switch {
		case pi == nil || pi.Status != "succeeded":
			return marshal(http.StatusBadRequest, errBody("invalid_request_error", "", "This PaymentIntent has no successful charge to refund."))
		case pi.Refunded:
			return marshal(http.StatusBadRequest, errBody("invalid_request_error", "charge_already_refunded", "Charge "+pi.Charge+" has already been refunded."))
		}
		pi.Refunded = true
		return marshal(http.StatusOK, map[string]any{"id": "re_" + rand.Text(), "object": "refund", "amount": pi.Amount,
			"currency": pi.Currency, "payment_intent": pi.ID, "charge": pi.Charge, "status": "succeeded", "metadata": metadata(f)})
	case "GET /v1/payment_intents/search":
		return s.search(f)
	}
	return marshal(http.StatusNotFound, errBody("invalid_request_error", "", "unknown route"))
}

func (s *Server) create(f url.Values) (int, []byte) {
	amount, err := strconv.ParseInt(f.Get("amount"), 10, 64)
	if err != nil || amount < 1 || f.Get("currency") == "" {
		return marshal(http.StatusBadRequest, errBody("invalid_request_error", "parameter_missing", "amount and currency are required"))
	}
	now := s.now()
	pi := &PaymentIntent{
		ID: "pi_" + rand.Text(), Object: "payment_intent", Amount: amount, Currency: f.Get("currency"),
		Status: "requires_payment_method", Created: now.Unix(), Metadata: metadata(f),
		PaymentMethod: f.Get("payment_method"), changedAt: now,
	}
	if pi.PaymentMethod != "" {
		pi.Status = "requires_confirmation"
	}
	s.pis[pi.ID] = pi
	s.order = append(s.order, pi.ID)
	if f.Get("confirm") != "true" {
		return s.piJSON(pi, false)
	}
	if pi.PaymentMethod == "" {
		return marshal(http.StatusBadRequest, errBody("invalid_request_error", "payment_intent_unexpected_state", "confirm needs a payment_method"))
	}
	if declined[pi.PaymentMethod] {
		pi.Status = "requires_payment_method"
		pi.LastPaymentError = &apiError{Type: "card_error", Code: "card_declined", DeclineCode: "generic_decline", Message: "Your card was declined."}
		e := *pi.LastPaymentError
		cp := *pi
		e.PaymentIntent = &cp
		return marshal(http.StatusPaymentRequired, map[string]any{"error": e})
	}
	pi.Status, pi.Charge = "succeeded", "ch_"+rand.Text()
	return s.piJSON(pi, false)
}

// search supports the clauses the StripeProvider sends, joined by AND:
// metadata['k']:'v' (and its negation), status:'v' and created<n.
func (s *Server) search(f url.Values) (int, []byte) {
	type clause struct {
		neg       bool
		field, op string
		value     string
	}
	var cs []clause
	re := regexp.MustCompile(`^(-?)(metadata\['[A-Za-z0-9_]+'\]|status|created)(:|<)'?([^']*)'?$`)
	for _, part := range strings.Split(f.Get("query"), " AND ") {
		m := re.FindStringSubmatch(strings.TrimSpace(part))
		if m == nil {
			return marshal(http.StatusBadRequest, errBody("invalid_request_error", "", "unsupported search clause "+strconv.Quote(part)))
		}
		cs = append(cs, clause{neg: m[1] == "-", field: m[2], op: m[3], value: m[4]})
	}
	limit := 10
	if n, err := strconv.Atoi(f.Get("limit")); err == nil && n > 0 {
		limit = min(n, 100)
	}
	expand := false
	for k, vs := range f {
		if strings.HasPrefix(k, "expand") && len(vs) > 0 && vs[0] == "data.latest_charge" {
			expand = true
		}
	}
	now := s.now()
	var data []json.RawMessage
	ids := append([]string(nil), s.order...)
	sort.SliceStable(ids, func(i, j int) bool { return s.pis[ids[i]].Created > s.pis[ids[j]].Created })
	for _, id := range ids {
		pi := s.pis[id]
		if now.Sub(pi.changedAt) < s.searchLag {
			continue
		}
		ok := true
		for _, c := range cs {
			var match bool
			switch {
			case strings.HasPrefix(c.field, "metadata"):
				k := strings.TrimSuffix(strings.TrimPrefix(c.field, "metadata['"), "']")
				match = pi.Metadata[k] == c.value
			case c.field == "status":
				match = pi.Status == c.value
			default:
				n, _ := strconv.ParseInt(c.value, 10, 64)
				match = pi.Created < n
			}
			if match == c.neg {
				ok = false
			}
		}
		if !ok {
			continue
		}
		_, b := s.piJSON(pi, expand)
		data = append(data, b)
		if len(data) == limit {
			break
		}
	}
	if data == nil {
		data = []json.RawMessage{}
	}
	return marshal(http.StatusOK, map[string]any{"object": "search_result", "url": "/v1/payment_intents/search",
		"has_more": false, "next_page": nil, "data": data})
}

func (s *Server) piJSON(pi *PaymentIntent, expand bool) (int, []byte) {
	b, _ := json.Marshal(pi)
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	switch {
	case pi.Charge == "":
		m["latest_charge"] = nil
	case expand:
		refunded := int64(0)
		if pi.Refunded {
			refunded = pi.Amount
		}
		m["latest_charge"] = map[string]any{"id": pi.Charge, "object": "charge", "amount": pi.Amount,
			"amount_refunded": refunded, "refunded": pi.Refunded, "payment_intent": pi.ID}
	default:
		m["latest_charge"] = pi.Charge
	}
	return marshal(http.StatusOK, m)
}

// metadata returns the form's metadata[k] entries.
func metadata(f url.Values) map[string]string {
	out := map[string]string{}
	for k, vs := range f {
		if strings.HasPrefix(k, "metadata[") && strings.HasSuffix(k, "]") && len(vs) > 0 {
			out[k[len("metadata["):len(k)-1]] = vs[0]
		}
	}
	return out
}

func errBody(typ, code, msg string) map[string]any {
	return map[string]any{"error": apiError{Type: typ, Code: code, Message: msg}}
}

func marshal(status int, v any) (int, []byte) {
	b, err := json.Marshal(v)
	if err != nil {
		return http.StatusInternalServerError, []byte(fmt.Sprintf(`{"error":{"type":"api_error","message":%q}}`, err.Error()))
	}
	return status, b
}

func writeJSON(w http.ResponseWriter, status int, h map[string]string, v any) {
	_, b := marshal(status, v)
	writeRaw(w, status, h, b)
}

func writeRaw(w http.ResponseWriter, status int, h map[string]string, body []byte) {
	for k, v := range h {
		w.Header().Set(k, v)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Request-Id", "req_"+rand.Text())
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

func copyMap(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}
