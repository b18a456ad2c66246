package httpcontract

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
)

// Problem type slugs; a problem's type URI is the problem base followed by
// one of these. The front doors re-export them (apigw.ProblemKeyMissing...).
const (
	SlugKeyMissing           = "idempotency-key-missing"
	SlugKeyInvalid           = "idempotency-key-invalid"
	SlugBodyInvalid          = "request-body-invalid"
	SlugPrincipalRequired    = "idempotency-principal-required"
	SlugPrincipalUnavailable = "idempotency-principal-unavailable"
	SlugBodyTooLarge         = "request-body-too-large"
	SlugKeyInUse             = "idempotency-key-in-use"
	SlugKeyReused            = "idempotency-key-reused"
	SlugLeaseLost            = "idempotency-lease-lost"
	SlugTransactionConflict  = "transaction-conflict"
	SlugResultNotRetained    = "idempotency-result-not-retained"
	SlugStoreUnavailable     = "idempotency-store-unavailable"
	SlugInternal             = "idempotency-internal-error"
)

// ProblemContentType is the media type of problem responses (RFC 9457).
const ProblemContentType = "application/problem+json"

// ReplayedHeader is set to "true" on a replayed response.
const ReplayedHeader = "Idempotent-Replayed"

// Kind names one row of the problem table: every problem the contract
// answers with is built from its row (Kind.Spec), never from literals.
type Kind int

// The rows of the problem table.
const (
	KeyMissing           Kind = iota // 400; detail takes the method
	KeyInvalid                       // 400; detail takes the KeyError text
	BodyInvalid                      // 400: base64 flag on a body that is not base64
	BodyUnreadable                   // 400: the body could not be read (net/http)
	PrincipalUnavailable             // 401: the principal function failed
	PrincipalRequired                // 403
	BodyTooLarge                     // 413; detail takes the size (a string) and the limit
	KeyInUse                         // 409, Retry-After: the lease's rest
	KeyReused                        // 422
	LeaseLost                        // 409, Retry-After: 1
	TransactionConflict              // 409
	ResultNotRetained                // 409
	StoreUnavailable                 // 503, Retry-After: 1; the handler did not run
	OutcomeUnknown                   // 503, Retry-After: the lease's rest; the handler ran
	StoredUnreadable                 // 500
	Internal                         // 500
	numKinds
)

// RetryAfterLease in Spec.RetryAfter means the Retry-After is computed: the
// whole seconds until the lease of the request in question ends.
const RetryAfterLease = -1

// Spec is one row of the problem table. Detail is a fmt format when the
// row's comment says it takes arguments.
type Spec struct {
	Slug       string
	Status     int
	Title      string
	Detail     string
	RetryAfter int // seconds; 0 none; RetryAfterLease computed
}

// Kinds returns every row's Kind, in table order.
func Kinds() []Kind {
	ks := make([]Kind, numKinds)
	for i := range ks {
		ks[i] = Kind(i)
	}
	return ks
}

// Spec returns k's row of the problem table.
func (k Kind) Spec() Spec {
	switch k {
	case KeyMissing:
		return Spec{SlugKeyMissing, http.StatusBadRequest, "Idempotency-Key required",
			"%s requests to this endpoint require an Idempotency-Key header.", 0}
	case KeyInvalid:
		return Spec{SlugKeyInvalid, http.StatusBadRequest, "Invalid Idempotency-Key", "The Idempotency-Key header %s.", 0}
	case BodyInvalid:
		return Spec{SlugBodyInvalid, http.StatusBadRequest, "Invalid request body",
			"The request body is marked base64-encoded but is not valid base64.", 0}
	case BodyUnreadable:
		return Spec{SlugBodyInvalid, http.StatusBadRequest, "Invalid request body",
			"The request body could not be read.", 0}
	case PrincipalUnavailable:
		return Spec{SlugPrincipalUnavailable, http.StatusUnauthorized, "Caller identity unavailable",
			"The caller of this request could not be identified.", 0}
	case PrincipalRequired:
		return Spec{SlugPrincipalRequired, http.StatusForbidden, "Caller identity required",
			"Idempotent requests to this endpoint need an authenticated caller.", 0}
	case BodyTooLarge:
		return Spec{SlugBodyTooLarge, http.StatusRequestEntityTooLarge, "Request body too large",
			"The request body is %s bytes; the limit is %d bytes.", 0}
	case KeyInUse:
		return Spec{SlugKeyInUse, http.StatusConflict, "Request in progress",
			"A request with this Idempotency-Key is still being processed; retry after the indicated delay.", RetryAfterLease}
	case KeyReused:
		return Spec{SlugKeyReused, http.StatusUnprocessableEntity, "Idempotency-Key reused",
			"This Idempotency-Key was already used with a different request (method, path, query or body).", 0}
	case LeaseLost:
		return Spec{SlugLeaseLost, http.StatusConflict, "Request superseded",
			"Another attempt with this Idempotency-Key took over before this one finished; retry to get its outcome.", 1}
	case TransactionConflict:
		return Spec{SlugTransactionConflict, http.StatusConflict, "Conflicting state",
			"The request conflicts with the current state of a resource; nothing was changed. This answer is final while that state holds.", 0}
	case ResultNotRetained:
		return Spec{SlugResultNotRetained, http.StatusConflict, "Response not retained",
			"The request with this Idempotency-Key was processed, but its response was too large to keep and cannot be replayed.", 0}
	case StoreUnavailable:
		return Spec{SlugStoreUnavailable, http.StatusServiceUnavailable, "Idempotency store unavailable",
			"The request could not be checked for idempotency; it was not processed. Retry later.", 1}
	case OutcomeUnknown:
		return Spec{SlugStoreUnavailable, http.StatusServiceUnavailable, "Idempotency store unavailable",
			"The outcome of the request could not be recorded; retry with the same Idempotency-Key after the indicated delay.", RetryAfterLease}
	case StoredUnreadable:
		return Spec{SlugInternal, http.StatusInternalServerError, "Stored response unreadable",
			"The stored response for this Idempotency-Key could not be read.", 0}
	case Internal:
		return Spec{SlugInternal, http.StatusInternalServerError, "Internal error", "The request could not be processed.", 0}
	}
	return Spec{SlugInternal, http.StatusInternalServerError, "Internal error", "The request could not be processed.", 0}
}

// Problem is an RFC 9457 problem detail. Its JSON form is the body of every
// error response of the contract; it never contains the request body or
// the raw idempotency key.
//
// The JSON object has the members type, title, status and detail (omitted
// when empty), followed by every entry of Extensions. An extension never
// replaces one of the four members above; such an entry is left out.
// Unmarshalling puts every other member into Extensions, so a Problem
// survives a round trip.
type Problem struct {
	Type       string         `json:"type"`
	Title      string         `json:"title"`
	Status     int            `json:"status"`
	Detail     string         `json:"detail,omitempty"`
	RetryAfter int            `json:"-"`
	Extensions map[string]any `json:"-"`
}

// problemCore is the standard members of a Problem, in their JSON order.
type problemCore struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail,omitempty"`
}

// isCoreMember reports whether name is a member Problem encodes itself.
func isCoreMember(name string) bool {
	switch name {
	case "type", "title", "status", "detail":
		return true
	}
	return false
}

// MarshalJSON encodes the standard members, then the extension members.
func (p Problem) MarshalJSON() ([]byte, error) {
	core, err := json.Marshal(problemCore{Type: p.Type, Title: p.Title, Status: p.Status, Detail: p.Detail})
	if err != nil || len(p.Extensions) == 0 {
		return core, err
	}
	ext := make(map[string]any, len(p.Extensions))
	for k, v := range p.Extensions {
		if !isCoreMember(k) {
			ext[k] = v
		}
	}
	if len(ext) == 0 {
		return core, nil
	}
	rest, err := json.Marshal(ext) // map keys are sorted
	if err != nil {
		return nil, err
	}
	out := make([]byte, 0, len(core)+len(rest))
	out = append(out, core[:len(core)-1]...)
	out = append(out, ',')
	return append(out, rest[1:]...), nil
}

// UnmarshalJSON decodes the standard members and puts every other member
// into Extensions (as json.Unmarshal decodes into an any).
func (p *Problem) UnmarshalJSON(data []byte) error {
	var core problemCore
	if err := json.Unmarshal(data, &core); err != nil {
		return err
	}
	var all map[string]any
	if err := json.Unmarshal(data, &all); err != nil {
		return err
	}
	*p = Problem{Type: core.Type, Title: core.Title, Status: core.Status, Detail: core.Detail}
	for k, v := range all {
		if isCoreMember(k) {
			continue
		}
		if p.Extensions == nil {
			p.Extensions = map[string]any{}
		}
		p.Extensions[k] = v
	}
	return nil
}

// Body is p's JSON, without its extensions if they cannot be encoded.
func (p Problem) Body() string {
	b, err := json.Marshal(p)
	if err != nil {
		p.Extensions = nil
		b, _ = json.Marshal(p) // strings and an int always encode
	}
	return string(b)
}

// Headers are the headers of p's response: Content-Type
// application/problem+json, Cache-Control no-store, and Retry-After when
// RetryAfter is positive.
func (p Problem) Headers() map[string]string {
	h := map[string]string{
		"Content-Type":  ProblemContentType,
		"Cache-Control": "no-store",
	}
	if p.RetryAfter > 0 {
		h["Retry-After"] = strconv.Itoa(p.RetryAfter)
	}
	return h
}

// Response renders p as a Response.
func (p Problem) Response() *Response {
	return &Response{Status: p.Status, Headers: p.Headers(), Body: p.Body()}
}

// Write renders p on a net/http ResponseWriter.
func (p Problem) Write(w http.ResponseWriter) {
	h := w.Header()
	for k, v := range p.Headers() {
		h.Set(k, v)
	}
	w.WriteHeader(p.Status)
	_, _ = w.Write([]byte(p.Body()))
}

// Problem returns the problem of row k, with the problem base and the
// detail's arguments, if the row takes any. A computed Retry-After is left
// 0 for the caller to set.
func (c *Config) Problem(k Kind, args ...any) Problem {
	sp := k.Spec()
	detail := sp.Detail
	if len(args) > 0 {
		detail = fmt.Sprintf(detail, args...)
	}
	return Problem{Type: c.ProblemBase + sp.Slug, Title: sp.Title, Status: sp.Status, Detail: detail, RetryAfter: max(sp.RetryAfter, 0)}
}

// Normalise fills a problem returned by a hook (WithTransactionCanceled).
func (c *Config) Normalise(p Problem) Problem {
	if p.Status == 0 {
		p.Status = http.StatusConflict
	}
	if p.Type == "" {
		p.Type = SlugTransactionConflict
	}
	if !strings.Contains(p.Type, ":") {
		p.Type = c.ProblemBase + p.Type
	}
	if p.Title == "" {
		p.Title = http.StatusText(p.Status)
	}
	return p
}
