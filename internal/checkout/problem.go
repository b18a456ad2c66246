package checkout

import (
	"encoding/json"
	"net/http"

	"github.com/acme/idemcheckout/pkg/idemddb/apigw"
	"github.com/aws/aws-lambda-go/events"
)

// ProblemBase prefixes the checkout's problem types: the idempotency
// wrapper's base, so a client sees one family of types.
const ProblemBase = apigw.DefaultProblemBase

// HTTP names and values the handlers use.
const (
	contentTypeJSON            = "application/json"
	headerContentType          = "Content-Type"
	headerLocation             = "Location"
	headerCacheControl         = "Cache-Control"
	retryAfterTransientSeconds = 1
)

// ProblemKind is one kind of problem the checkout API answers with. Every
// answer is an apigw.Problem (RFC 9457, application/problem+json), the
// same type the idempotency wrapper answers with; a kind gives its slug,
// status and title, all from one table. Each kind names one failure a
// client can branch on; payment-in-progress is deliberately distinct from
// the wrapper's own conflict types (idempotency-key-in-use,
// transaction-conflict). Every 409 means "in flight, retry later" and
// carries Retry-After (stripe-go and stripe-node retry a 409 on their
// own); an order another key already paid is not a problem but a 200
// (PaymentAnswer with already_paid).
type ProblemKind int

// The checkout's problems. A request body over MaxBodyBytes is answered by
// the wrapper (apigw.ProblemBodyTooLarge, 413) before the handler runs.
const (
	// ProblemValidation (400): the body is invalid; extension "errors"
	// lists every invalid field.
	ProblemValidation ProblemKind = iota + 1
	// ProblemUnsupportedMediaType (415): the body is not JSON.
	ProblemUnsupportedMediaType
	// ProblemUnauthenticated (401): no JWT sub claim.
	ProblemUnauthenticated
	// ProblemOrderNotFound (404): the order is unknown or another
	// caller's; the two answers are byte for byte the same.
	ProblemOrderNotFound
	// ProblemPaymentNotFound (404): the payment is unknown or another
	// caller's; the two answers are byte for byte the same.
	ProblemPaymentNotFound
	// ProblemPaymentMismatch (422): amount or currency differ from the
	// order's; extensions "errors" and "order_id".
	ProblemPaymentMismatch
	// ProblemPaymentInProgress (409, Retry-After): another payment attempt
	// for the order holds it; retry after the delay, or poll
	// GET /orders/{id}. Extension "order_id".
	ProblemPaymentInProgress
	// ProblemPaymentDeclined (402): the provider declined; extensions
	// "order_id", "payment_id" and "decline_code". Stored and replayed.
	ProblemPaymentDeclined
	// ProblemProviderUnavailable (503, Retry-After): the provider did not
	// answer; retry with the same Idempotency-Key.
	ProblemProviderUnavailable
	// ProblemServiceUnavailable (503, Retry-After): a table could not be
	// reached.
	ProblemServiceUnavailable
	// ProblemInternal (500, Retry-After): an unexpected failure.
	ProblemInternal
)

// problemSpec is one row of the problem table.
type problemSpec struct {
	slug   string
	status int
	title  string
}

// spec is the one table of the checkout's problems: slug, status and title
// of every kind. A switch, so that nothing can modify it.
func (k ProblemKind) spec() problemSpec {
	switch k {
	case ProblemValidation:
		return problemSpec{"validation-error", http.StatusBadRequest, "Invalid request"}
	case ProblemUnsupportedMediaType:
		return problemSpec{"unsupported-media-type", http.StatusUnsupportedMediaType, "Unsupported media type"}
	case ProblemUnauthenticated:
		return problemSpec{"unauthenticated", http.StatusUnauthorized, "Unauthenticated"}
	case ProblemOrderNotFound:
		return problemSpec{"order-not-found", http.StatusNotFound, "Order not found"}
	case ProblemPaymentNotFound:
		return problemSpec{"payment-not-found", http.StatusNotFound, "Payment not found"}
	case ProblemPaymentMismatch:
		return problemSpec{"payment-does-not-match-order", http.StatusUnprocessableEntity, "Payment does not match the order"}
	case ProblemPaymentInProgress:
		return problemSpec{"payment-in-progress", http.StatusConflict, "Payment in progress"}
	case ProblemPaymentDeclined:
		return problemSpec{"payment-declined", http.StatusPaymentRequired, "Payment declined"}
	case ProblemProviderUnavailable:
		return problemSpec{"payment-provider-unavailable", http.StatusServiceUnavailable, "Payment provider unavailable"}
	case ProblemServiceUnavailable:
		return problemSpec{"service-unavailable", http.StatusServiceUnavailable, "Service unavailable"}
	}
	return problemSpec{"internal-error", http.StatusInternalServerError, "Internal error"}
}

// Slug is the last segment of the kind's type URI.
func (k ProblemKind) Slug() string { return k.spec().slug }

// Type is the kind's problem type URI: ProblemBase + Slug.
func (k ProblemKind) Type() string { return ProblemBase + k.spec().slug }

// Status is the kind's HTTP status code.
func (k ProblemKind) Status() int { return k.spec().status }

// Title is the kind's problem title.
func (k ProblemKind) Title() string { return k.spec().title }

// Problem returns a problem of kind k explaining this occurrence in detail.
// 5xx problems carry Retry-After, since they are transient.
func (k ProblemKind) Problem(detail string) apigw.Problem {
	s := k.spec()
	p := apigw.Problem{Type: ProblemBase + s.slug, Title: s.title, Status: s.status, Detail: detail}
	if s.status >= 500 {
		p.RetryAfter = retryAfterTransientSeconds
	}
	return p
}

// FieldError names one invalid request field. Field is a path into the
// JSON body such as "items[0].quantity"; "body" stands for the body itself.
type FieldError struct {
	Field  string `json:"field"`
	Detail string `json:"detail"`
}

// extensions returns the non-empty string members of kv (name, value
// pairs) as problem extension members.
func extensions(kv ...string) map[string]any {
	m := map[string]any{}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] != "" {
			m[kv[i]] = kv[i+1]
		}
	}
	return m
}

func validationProblem(errs []FieldError) apigw.Problem {
	detail := itoa(len(errs)) + " fields are invalid; see errors"
	if len(errs) == 1 {
		detail = errs[0].Field + ": " + errs[0].Detail
	}
	p := ProblemValidation.Problem(detail)
	p.Extensions = map[string]any{"errors": errs}
	return p
}

func unauthenticated() apigw.Problem {
	return ProblemUnauthenticated.Problem("the request has no authenticated caller (JWT sub claim)")
}

func internalError(detail string) apigw.Problem { return ProblemInternal.Problem(detail) }

func serviceUnavailable() apigw.Problem {
	return ProblemServiceUnavailable.Problem("a backing store is unavailable; retry (a POST with the same Idempotency-Key)")
}

func providerUnavailable() apigw.Problem {
	return ProblemProviderUnavailable.Problem("the payment provider did not answer; retry with the same Idempotency-Key, you will not be charged twice")
}

// orderNotFound is byte for byte the same for an unknown order and another
// customer's order (it does not even echo the id), so it reveals nothing
// about orders the caller does not own.
func orderNotFound() apigw.Problem {
	return ProblemOrderNotFound.Problem("no order with this order_id belongs to the caller")
}

// paymentNotFound is orderNotFound's counterpart for GET /payments/{id}.
func paymentNotFound() apigw.Problem {
	return ProblemPaymentNotFound.Problem("no payment with this payment_id belongs to the caller")
}

// paymentInProgress answers a payment for an order another attempt holds:
// retry after retryAfter seconds (at least 1), or poll the order.
func paymentInProgress(orderID string, retryAfter int) apigw.Problem {
	p := ProblemPaymentInProgress.Problem("another payment attempt for this order is in progress; retry after the indicated delay, or poll GET /orders/{id}")
	p.Extensions = extensions("order_id", orderID)
	p.RetryAfter = max(retryAfter, 1)
	return p
}

func jsonResponse(status int, v any, headers map[string]string) (events.APIGatewayV2HTTPResponse, error) {
	body, err := json.Marshal(v)
	if err != nil {
		return internalError("could not encode the response").ResponseV2(), nil
	}
	h := map[string]string{headerContentType: contentTypeJSON, headerCacheControl: "no-store"}
	for k, v := range headers {
		h[k] = v
	}
	return events.APIGatewayV2HTTPResponse{StatusCode: status, Headers: h, Body: string(body)}, nil
}
