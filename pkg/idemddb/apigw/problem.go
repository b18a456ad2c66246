package apigw

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
)

// Problem type slugs; a problem's type URI is the problem base (see
// WithProblemBase) followed by one of these.
const (
	// ProblemKeyMissing (400): the method requires an Idempotency-Key.
	ProblemKeyMissing = "idempotency-key-missing"
	// ProblemKeyInvalid (400): empty, too long, bad characters, bad
	// quoting, or more than one value.
	ProblemKeyInvalid = "idempotency-key-invalid"
	// ProblemBodyInvalid (400): IsBase64Encoded is set but the body is not
	// valid base64.
	ProblemBodyInvalid = "request-body-invalid"
	// ProblemPrincipalRequired (403): WithPrincipalRequired is set and the
	// authorizer context names no caller.
	ProblemPrincipalRequired = "idempotency-principal-required"
	// ProblemBodyTooLarge (413): the decoded body exceeds the limit.
	ProblemBodyTooLarge = "request-body-too-large"
	// ProblemKeyInUse (409, Retry-After): a request with the same key is
	// still being processed.
	ProblemKeyInUse = "idempotency-key-in-use"
	// ProblemKeyReused (422): the key was used with a different request
	// (method, route, path, query or body).
	ProblemKeyReused = "idempotency-key-reused"
	// ProblemLeaseLost (409, Retry-After): the handler ran but another
	// instance had taken the key over, so this response was not recorded;
	// retrying returns the recorded outcome.
	ProblemLeaseLost = "idempotency-lease-lost"
	// ProblemTransactionConflict (409): a write the handler added with
	// Claim.AddWrites failed its condition; nothing was committed.
	ProblemTransactionConflict = "transaction-conflict"
	// ProblemResultNotRetained (409): the request with this key was
	// processed, but its response was too large to keep, so it cannot be
	// replayed; retrying does not help.
	ProblemResultNotRetained = "idempotency-result-not-retained"
	// ProblemStoreUnavailable (503, Retry-After): the idempotency store
	// could not be reached.
	ProblemStoreUnavailable = "idempotency-store-unavailable"
	// ProblemInternal (500): an unexpected error of the idempotency layer.
	ProblemInternal = "idempotency-internal-error"
)

// ProblemContentType is the media type of problem responses (RFC 9457).
const ProblemContentType = "application/problem+json"

// ReplayedHeader is set to "true" on a replayed response.
const ReplayedHeader = "Idempotent-Replayed"

// Problem is an RFC 9457 problem detail. Its JSON form is the body of every
// error response of the wrapper; it never contains the request body or the
// raw idempotency key.
type Problem struct {
	// Type is a URI identifying the problem type.
	Type string `json:"type"`
	// Title is a short, human-readable summary of the type.
	Title string `json:"title"`
	// Status is the HTTP status code, equal to the response's.
	Status int `json:"status"`
	// Detail explains this occurrence.
	Detail string `json:"detail,omitempty"`
	// RetryAfter, when positive, is sent as a Retry-After header (seconds).
	RetryAfter int `json:"-"`
}

// response is the version-neutral form of an API Gateway response.
type response struct {
	Status            int                 `json:"s"`
	Headers           map[string]string   `json:"h,omitempty"`
	MultiValueHeaders map[string][]string `json:"m,omitempty"`
	Cookies           []string            `json:"c,omitempty"`
	Base64            bool                `json:"b64,omitempty"`
	Body              string              `json:"-"`
}

func (c *config) problem(slug string, status int, title, detail string) Problem {
	return Problem{Type: c.problemBase + slug, Title: title, Status: status, Detail: detail}
}

func (p Problem) response() *response {
	b, _ := json.Marshal(p)
	h := map[string]string{
		"Content-Type":  ProblemContentType,
		"Cache-Control": "no-store",
	}
	if p.RetryAfter > 0 {
		h["Retry-After"] = strconv.Itoa(p.RetryAfter)
	}
	return &response{Status: p.Status, Headers: h, Body: string(b)}
}

// normalise fills a problem returned by a hook.
func (c *config) normalise(p Problem) Problem {
	if p.Status == 0 {
		p.Status = http.StatusConflict
	}
	if p.Type == "" {
		p.Type = ProblemTransactionConflict
	}
	if !strings.Contains(p.Type, ":") {
		p.Type = c.problemBase + p.Type
	}
	if p.Title == "" {
		p.Title = http.StatusText(p.Status)
	}
	return p
}
