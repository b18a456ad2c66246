package apigw

import (
	"github.com/acme/idemcheckout/pkg/idemddb/internal/httpcontract"
	"github.com/aws/aws-lambda-go/events"
)

// Problem type slugs; a problem's type URI is the problem base (see
// WithProblemBase) followed by one of these.
const (
	// ProblemKeyMissing (400): the method requires an Idempotency-Key.
	ProblemKeyMissing = httpcontract.SlugKeyMissing
	// ProblemKeyInvalid (400): empty, too long, bad characters, bad
	// quoting, or more than one value.
	ProblemKeyInvalid = httpcontract.SlugKeyInvalid
	// ProblemBodyInvalid (400): IsBase64Encoded is set but the body is not
	// valid base64.
	ProblemBodyInvalid = httpcontract.SlugBodyInvalid
	// ProblemPrincipalRequired (403): WithPrincipalRequired is set and the
	// authorizer context names no caller.
	ProblemPrincipalRequired = httpcontract.SlugPrincipalRequired
	// ProblemBodyTooLarge (413): the decoded body exceeds the limit.
	ProblemBodyTooLarge = httpcontract.SlugBodyTooLarge
	// ProblemKeyInUse (409, Retry-After): a request with the same key is
	// still being processed.
	ProblemKeyInUse = httpcontract.SlugKeyInUse
	// ProblemKeyReused (422): the key was used with a different request
	// (method, route, path, query or body).
	ProblemKeyReused = httpcontract.SlugKeyReused
	// ProblemLeaseLost (409, Retry-After): the handler ran but another
	// instance had taken the key over, so this response was not recorded;
	// retrying returns the recorded outcome.
	ProblemLeaseLost = httpcontract.SlugLeaseLost
	// ProblemTransactionConflict (409): a write the handler added with
	// Claim.AddWrites failed its condition; nothing was committed.
	ProblemTransactionConflict = httpcontract.SlugTransactionConflict
	// ProblemResultNotRetained (409): the request with this key was
	// processed, but its response was too large to keep, so it cannot be
	// replayed; retrying does not help.
	ProblemResultNotRetained = httpcontract.SlugResultNotRetained
	// ProblemStoreUnavailable (503, Retry-After): the idempotency store
	// could not be reached.
	ProblemStoreUnavailable = httpcontract.SlugStoreUnavailable
	// ProblemInternal (500): an unexpected error of the idempotency layer.
	ProblemInternal = httpcontract.SlugInternal
)

// ProblemContentType is the media type of problem responses (RFC 9457).
const ProblemContentType = httpcontract.ProblemContentType

// ReplayedHeader is set to "true" on a replayed response.
const ReplayedHeader = httpcontract.ReplayedHeader

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

// MarshalJSON encodes the standard members, then the extension members.
func (p Problem) MarshalJSON() ([]byte, error) { return httpcontract.Problem(p).MarshalJSON() }

// UnmarshalJSON decodes the standard members and puts every other member
// into Extensions (as json.Unmarshal decodes into an any).
func (p *Problem) UnmarshalJSON(data []byte) error {
	return (*httpcontract.Problem)(p).UnmarshalJSON(data)
}

// ResponseV2 renders p as an HTTP API (payload 2.0) response: status
// p.Status, the problem's JSON body, Content-Type application/problem+json,
// Cache-Control no-store, and Retry-After when RetryAfter is positive.
func (p Problem) ResponseV2() events.APIGatewayV2HTTPResponse {
	c := httpcontract.Problem(p)
	return events.APIGatewayV2HTTPResponse{StatusCode: p.Status, Headers: c.Headers(), Body: c.Body()}
}

// ResponseV1 renders p as a REST API (payload 1.0) response, as ResponseV2
// does.
func (p Problem) ResponseV1() events.APIGatewayProxyResponse {
	c := httpcontract.Problem(p)
	return events.APIGatewayProxyResponse{StatusCode: p.Status, Headers: c.Headers(), Body: c.Body()}
}
