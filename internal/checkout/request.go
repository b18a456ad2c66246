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
	"github.com/aws/aws-lambda-go/events"
)

// MaxBodyBytes bounds a request body. It is far above what MaxOrderItems
// items need.
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
func accept[T any](ctx context.Context, logger *slog.Logger, handler string, req events.APIGatewayV2HTTPRequest, parse func([]byte) (T, error)) (accepted[T], *Problem) {
	claim, ok := idemddb.ClaimFromContext(ctx)
	if !ok {
		logger.ErrorContext(ctx, "checkout: "+handler+" called without an idempotency claim; is it wrapped by apigw.WrapV2?")
		return accepted[T]{}, internalError("the request was not processed under an idempotency key")
	}
	sub, ok := CallerID(req)
	if !ok {
		return accepted[T]{}, unauthenticated()
	}
	body, p := requestBody(req)
	if p != nil {
		return accepted[T]{}, p
	}
	in, err := parse(body)
	if err != nil {
		return accepted[T]{}, problemFor(err)
	}
	return accepted[T]{claim: claim, caller: sub, in: in}, nil
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

// requestBody returns the decoded body after checking its media type and
// size. A missing Content-Type is accepted as JSON.
func requestBody(req events.APIGatewayV2HTTPRequest) ([]byte, *Problem) {
	if ct := header(req, headerContentType); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != contentTypeJSON && !strings.HasSuffix(mt, "+json")) {
			return nil, newProblem(http.StatusUnsupportedMediaType, TypeUnsupportedMediaType,
				"Content-Type must be application/json")
		}
	}
	body := []byte(req.Body)
	if req.IsBase64Encoded {
		var err error
		body, err = base64.StdEncoding.DecodeString(req.Body)
		if err != nil {
			return nil, validationProblem([]FieldError{{Field: "body", Detail: "is not valid base64"}})
		}
	}
	if len(body) > MaxBodyBytes {
		return nil, newProblem(http.StatusRequestEntityTooLarge, TypeBodyTooLarge,
			"the body is larger than "+strconv.Itoa(MaxBodyBytes)+" bytes")
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
