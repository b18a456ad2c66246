package apigw

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"

	"github.com/aws/aws-lambda-go/events"
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
// raw idempotency key. Handlers can answer with it too (ResponseV2,
// ResponseV1), so that one API speaks one problem format.
//
// The JSON object has the members type, title, status and detail (omitted
// when empty), followed by every entry of Extensions: RFC 9457 extension
// members such as "errors" or "order_id". An extension never replaces one
// of the four members above; such an entry is left out. Unmarshalling puts
// every other member into Extensions, so a Problem survives a round trip.
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
	// Extensions are extension members, merged into the JSON object after
	// the standard members (in key order). Values must be JSON-encodable;
	// if one is not, the problem is rendered without its extensions.
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

// body is p's JSON, without its extensions if they cannot be encoded.
func (p Problem) body() string {
	b, err := json.Marshal(p)
	if err != nil {
		p.Extensions = nil
		b, _ = json.Marshal(p) // strings and an int always encode
	}
	return string(b)
}

// headers are the headers of p's response: Content-Type
// application/problem+json, Cache-Control no-store, and Retry-After when
// RetryAfter is positive.
func (p Problem) headers() map[string]string {
	h := map[string]string{
		"Content-Type":  ProblemContentType,
		"Cache-Control": "no-store",
	}
	if p.RetryAfter > 0 {
		h["Retry-After"] = strconv.Itoa(p.RetryAfter)
	}
	return h
}

// ResponseV2 renders p as an HTTP API (payload 2.0) response: status
// p.Status, the problem's JSON body, Content-Type application/problem+json,
// Cache-Control no-store, and Retry-After when RetryAfter is positive.
func (p Problem) ResponseV2() events.APIGatewayV2HTTPResponse {
	return events.APIGatewayV2HTTPResponse{StatusCode: p.Status, Headers: p.headers(), Body: p.body()}
}

// ResponseV1 renders p as a REST API (payload 1.0) response, as ResponseV2
// does.
func (p Problem) ResponseV1() events.APIGatewayProxyResponse {
	return events.APIGatewayProxyResponse{StatusCode: p.Status, Headers: p.headers(), Body: p.body()}
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
	return &response{Status: p.Status, Headers: p.headers(), Body: p.body()}
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
