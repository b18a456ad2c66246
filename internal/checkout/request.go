package checkout

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"reflect"
	"strconv"
	"strings"

	"github.com/acme/idemcheckout/pkg/idemddb"
	"github.com/acme/idemcheckout/pkg/idemddb/apigw"
	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// MaxBodyBytes bounds a request body. It is far above what MaxOrderItems
// items need. The functions pass it to the wrapper
// (apigw.WithMaxBodyBytes), which answers a larger body with 413 before
// any handler or DynamoDB request runs.
const MaxBodyBytes = 64 << 10

// CallerID returns the authenticated caller: the JWT authorizer's "sub"
// claim. ok is false when the request carries none.
func CallerID(req events.APIGatewayV2HTTPRequest) (sub string, ok bool) {
	a := req.RequestContext.Authorizer
	if a == nil || a.JWT == nil {
		return "", false
	}
	sub = strings.TrimSpace(a.JWT.Claims["sub"])
	return sub, sub != ""
}

// accepted is a request a handler accepted inside the idempotency wrapper:
// its claim, its caller (the JWT sub) and its validated body.
type accepted[T any] struct {
	claim  *idemddb.Claim
	caller string
	in     T
}

// accept does what each handler does first, in this order: it takes the
// idempotency claim from ctx (a handler run without one is a wiring bug,
// logged and answered 500), the caller (401 without one), the body
// (requestBody's media type, base64 and size checks) and parses it with
// parse. It returns the problem to answer when any step fails.
func accept[T any](ctx context.Context, logger *slog.Logger, handler string, req events.APIGatewayV2HTTPRequest, parse func([]byte) (T, error)) (accepted[T], *apigw.Problem) {
	fail := func(p apigw.Problem) (accepted[T], *apigw.Problem) { return accepted[T]{}, &p }
	claim, ok := idemddb.ClaimFromContext(ctx)
	if !ok {
		logger.ErrorContext(ctx, "checkout: "+handler+" called without an idempotency claim; is it wrapped by apigw.WrapV2?")
		return fail(internalError("the request was not processed under an idempotency key"))
	}
	sub, ok := CallerID(req)
	if !ok {
		return fail(unauthenticated())
	}
	body, p := requestBody(req)
	if p != nil {
		return accepted[T]{}, p
	}
	in, err := parse(body)
	if err != nil {
		return fail(problemFor(err))
	}
	return accepted[T]{claim: claim, caller: sub, in: in}, nil
}

// problemFor maps a parse error to its problem.
func problemFor(err error) apigw.Problem {
	var ve *ValidationError
	if errors.As(err, &ve) {
		return ve.Problem()
	}
	return internalError("")
}

// header returns the value of a header, matching its name case-insensitively
// (HTTP APIs deliver lower-case names; tests and other callers may not).
func header(req events.APIGatewayV2HTTPRequest, name string) string {
	if v, ok := req.Headers[strings.ToLower(name)]; ok {
		return v
	}
	for k, v := range req.Headers {
		if strings.EqualFold(k, name) {
			return v
		}
	}
	return ""
}

// requestBody returns the decoded body after checking its media type. A
// missing Content-Type is accepted as JSON. (Its size is the wrapper's
// check: see MaxBodyBytes.)
func requestBody(req events.APIGatewayV2HTTPRequest) ([]byte, *apigw.Problem) {
	if ct := header(req, headerContentType); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != contentTypeJSON && !strings.HasSuffix(mt, "+json")) {
			p := ProblemUnsupportedMediaType.Problem("Content-Type must be application/json")
			return nil, &p
		}
	}
	if !req.IsBase64Encoded {
		return []byte(req.Body), nil
	}
	body, err := base64.StdEncoding.DecodeString(req.Body)
	if err != nil {
		p := validationProblem([]FieldError{{Field: "body", Detail: "is not valid base64"}})
		return nil, &p
	}
	return body, nil
}

// decodeStrict decodes one JSON value from data into v, rejecting unknown
// fields and trailing data. prefix is the path of data in the request body
// ("" for the body itself); the error names the offending field.
func decodeStrict(data []byte, v any, prefix string) *FieldError {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		fe := jsonFieldError(prefix, err)
		return &fe
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return &FieldError{Field: fieldOr(prefix, "body"), Detail: "has data after the JSON value"}
	}
	return nil
}

// jsonFieldError turns a decoding error into the field it is about.
func jsonFieldError(prefix string, err error) FieldError {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.Is(err, io.EOF):
		return FieldError{Field: fieldOr(prefix, "body"), Detail: "is empty; a JSON object is required"}
	case errors.Is(err, io.ErrUnexpectedEOF):
		return FieldError{Field: fieldOr(prefix, "body"), Detail: "is not valid JSON: unexpected end of input"}
	case errors.As(err, &syn):
		return FieldError{Field: fieldOr(prefix, "body"), Detail: "is not valid JSON at offset " + strconv.FormatInt(syn.Offset, 10)}
	case errors.As(err, &typ):
		field := joinField(prefix, typ.Field)
		return FieldError{Field: fieldOr(field, "body"), Detail: typeDetail(typ)}
	}
	if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		if unq, uerr := strconv.Unquote(name); uerr == nil {
			name = unq
		}
		return FieldError{Field: joinField(prefix, name), Detail: "is not a known field"}
	}
	return FieldError{Field: fieldOr(prefix, "body"), Detail: "could not be decoded"}
}

func typeDetail(e *json.UnmarshalTypeError) string {
	switch e.Type.Kind() {
	case reflect.Int64, reflect.Int, reflect.Int32:
		if strings.HasPrefix(e.Value, "number") {
			return "must be an integer between -9223372036854775808 and 9223372036854775807 (minor units)"
		}
		return "must be an integer"
	case reflect.String:
		return "must be a string"
	case reflect.Slice:
		return "must be an array"
	case reflect.Struct, reflect.Map:
		return "must be an object"
	}
	return "has the wrong type"
}

func joinField(prefix, name string) string {
	switch {
	case prefix == "":
		return name
	case name == "":
		return prefix
	}
	return prefix + "." + name
}

func fieldOr(field, fallback string) string {
	if field == "" {
		return fallback
	}
	return field
}

// rawJSONObject holds one undecoded JSON value of an array, so each element
// can be decoded on its own and its errors named by index.
type rawJSONObject = json.RawMessage

// dispatch calls the handler routes holds for req's route key. A route the
// function does not serve is a wiring bug (template.yaml routes it here),
// logged and answered 500.
func dispatch(ctx context.Context, logger *slog.Logger, req events.APIGatewayV2HTTPRequest, routes map[string]apigw.HandlerV2) (events.APIGatewayV2HTTPResponse, error) {
	if h, ok := routes[req.RouteKey]; ok {
		return h(ctx, req)
	}
	if req.RouteKey == "" {
		// Not an API Gateway HTTP API event at all (an empty or hand-made
		// payload): the caller's mistake, not the template's.
		logger.ErrorContext(ctx, "checkout: the event has no routeKey: not an API Gateway HTTP API (payload 2.0) event; `make event FN=<function>` writes one")
		return internalError("the event is not an API Gateway HTTP API request").ResponseV2(), nil
	}
	logger.ErrorContext(ctx, "checkout: route not served by this function; check template.yaml", "route", req.RouteKey)
	return internalError("this route is not served by this function").ResponseV2(), nil
}

// serveOwned serves GET <collection>/{id}: it reads the item whose key
// attribute keyName is keyPrefix + the id path parameter, with one strongly
// consistent GetItem, and answers 200 with view of it when its customer_id
// is the caller. An unknown id and another caller's item both get notFound,
// byte for byte the same (view runs only for the caller's own item). No
// caller is 401; a failed read, the GetItem's or view's, 503.
func serveOwned[T any, V any](ctx context.Context, logger *slog.Logger, db DB, table, keyName, keyPrefix string,
	req events.APIGatewayV2HTTPRequest, notFound apigw.Problem, view func(context.Context, T) (V, error)) (events.APIGatewayV2HTTPResponse, error) {
	sub, ok := CallerID(req)
	if !ok {
		return unauthenticated().ResponseV2(), nil
	}
	id := req.PathParameters["id"]
	if id == "" || len(id) > MaxOrderIDBytes {
		return notFound.ResponseV2(), nil
	}
	item, found, err := getItem(ctx, db, table, keyName, keyPrefix+id)
	if err != nil {
		logger.ErrorContext(ctx, "checkout: read", "table", table, "error", err)
		return serviceUnavailable().ResponseV2(), nil
	}
	if owner, _ := item[attrCustomer].(*types.AttributeValueMemberS); !found || owner == nil || owner.Value != sub {
		return notFound.ResponseV2(), nil
	}
	var v T
	if err := attributevalue.UnmarshalMap(item, &v); err != nil {
		logger.ErrorContext(ctx, "checkout: decode", "table", table, "error", err)
		return internalError("a stored item could not be read").ResponseV2(), nil
	}
	out, err := view(ctx, v)
	if err != nil {
		logger.ErrorContext(ctx, "checkout: read", "table", table, "error", err)
		return serviceUnavailable().ResponseV2(), nil
	}
	return jsonResponse(http.StatusOK, out, nil)
}
