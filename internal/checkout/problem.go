package checkout

import (
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/acme/idemcheckout/pkg/idemddb/apigw"
	"github.com/aws/aws-lambda-go/events"
)

// Problem type URIs (RFC 9457 "type"), under the idempotency wrapper's
// problem base so a client sees one family of types. Each names one kind of
// failure, so clients can branch on it; order-already-paid is deliberately
// distinct from the wrapper's own conflict types (idempotency-key-in-use,
// transaction-conflict).
const (
	ProblemBase                = apigw.DefaultProblemBase
	TypeValidation             = ProblemBase + "validation-error"
	TypeUnsupportedMediaType   = ProblemBase + "unsupported-media-type"
	TypeBodyTooLarge           = ProblemBase + "body-too-large"
	TypeUnauthenticated        = ProblemBase + "unauthenticated"
	TypeOrderNotFound          = ProblemBase + "order-not-found"
	TypePaymentMismatch        = ProblemBase + "payment-does-not-match-order"
	TypeOrderAlreadyPaid       = ProblemBase + "order-already-paid"
	TypePaymentDeclined        = ProblemBase + "payment-declined"
	TypeProviderUnavailable    = ProblemBase + "payment-provider-unavailable"
	TypeServiceUnavailable     = ProblemBase + "service-unavailable"
	TypeInternal               = ProblemBase + "internal-error"
	contentTypeJSON            = "application/json"
	contentTypeProblem         = "application/problem+json"
	headerContentType          = "Content-Type"
	headerLocation             = "Location"
	headerCacheControl         = "Cache-Control"
	headerRetryAfter           = "Retry-After"
	retryAfterTransientSeconds = 1
)

// FieldError names one invalid request field. Field is a path into the
// JSON body such as "items[0].quantity"; "body" stands for the body itself.
type FieldError struct {
	Field  string `json:"field"`
	Detail string `json:"detail"`
}

// Problem is an RFC 9457 problem details object with this API's extension
// members.
type Problem struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail,omitempty"`
	// Errors lists every invalid field of a validation error.
	Errors []FieldError `json:"errors,omitempty"`
	// OrderID names the order a payment problem is about.
	OrderID string `json:"order_id,omitempty"`
	// PaymentID names the payment a problem is about (the declined attempt,
	// or the payment that already paid the order).
	PaymentID string `json:"payment_id,omitempty"`
	// DeclineCode is the provider's reason for a declined payment.
	DeclineCode string `json:"decline_code,omitempty"`
}

// Error makes a Problem usable as an error.
func (p *Problem) Error() string {
	if p.Detail != "" {
		return p.Title + ": " + p.Detail
	}
	return p.Title
}

// Response renders p as an application/problem+json response. 5xx
// problems carry Retry-After, since they are transient.
func (p *Problem) Response() events.APIGatewayV2HTTPResponse {
	body, err := json.Marshal(p)
	if err != nil { // only strings and ints: cannot happen
		body = []byte(`{"type":"` + TypeInternal + `","title":"Internal Server Error","status":500}`)
	}
	h := map[string]string{headerContentType: contentTypeProblem, headerCacheControl: "no-store"}
	if p.Status >= 500 {
		h[headerRetryAfter] = strconv.Itoa(retryAfterTransientSeconds)
	}
	return events.APIGatewayV2HTTPResponse{StatusCode: p.Status, Headers: h, Body: string(body)}
}

func newProblem(status int, typ, detail string) *Problem {
	return &Problem{Type: typ, Title: http.StatusText(status), Status: status, Detail: detail}
}

func validationProblem(errs []FieldError) *Problem {
	p := newProblem(http.StatusBadRequest, TypeValidation, "")
	p.Title = "Invalid request"
	p.Errors = errs
	if len(errs) == 1 {
		p.Detail = errs[0].Field + ": " + errs[0].Detail
	} else {
		p.Detail = strconv.Itoa(len(errs)) + " fields are invalid; see errors"
	}
	return p
}

func unauthenticated() *Problem {
	return newProblem(http.StatusUnauthorized, TypeUnauthenticated, "the request has no authenticated caller (JWT sub claim)")
}

func internalError(detail string) *Problem {
	return newProblem(http.StatusInternalServerError, TypeInternal, detail)
}

func serviceUnavailable() *Problem {
	return newProblem(http.StatusServiceUnavailable, TypeServiceUnavailable, "a backing store is unavailable; retry with the same Idempotency-Key")
}

// orderNotFound is byte for byte the same for an unknown order and another
// customer's order (it does not even echo the id), so it reveals nothing
// about orders the caller does not own.
func orderNotFound() *Problem {
	return newProblem(http.StatusNotFound, TypeOrderNotFound, "no order with this order_id belongs to the caller")
}

func orderAlreadyPaid(orderID, paymentID string) *Problem {
	p := newProblem(http.StatusConflict, TypeOrderAlreadyPaid, "the order has already been paid")
	p.Title = "Order already paid"
	p.OrderID = orderID
	p.PaymentID = paymentID
	return p
}

func jsonResponse(status int, v any, headers map[string]string) (events.APIGatewayV2HTTPResponse, error) {
	body, err := json.Marshal(v)
	if err != nil {
		return internalError("could not encode the response").Response(), nil
	}
	h := map[string]string{headerContentType: contentTypeJSON, headerCacheControl: "no-store"}
	for k, v := range headers {
		h[k] = v
	}
	return events.APIGatewayV2HTTPResponse{StatusCode: status, Headers: h, Body: string(body)}, nil
}
