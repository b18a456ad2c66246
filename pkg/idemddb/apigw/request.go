package apigw

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"hash"
	"mime"
	"net/url"
	"strings"

	"github.com/aws/aws-lambda-go/events"
)

// request is the version-neutral view of an API Gateway request the
// wrapper needs.
type request struct {
	method      string
	route       string // method and route template: "POST /orders/{id}/pay"
	path        string // concrete path
	query       string // canonical query string
	keyValues   []string
	prefer      []string // Prefer header values
	contentType string
	body        string
	base64      bool
	principal   string // "" when anonymous
	requestID   string
}

// headerValues returns every value of the header name in headers, matching
// the name case-insensitively.
func headerValues(headers map[string]string, name string) []string {
	var vals []string
	for k, v := range headers {
		if strings.EqualFold(k, name) {
			vals = append(vals, v)
		}
	}
	return vals
}

// headerValuesV1 prefers multiValueHeaders, which API Gateway fills with
// every occurrence, over headers, which holds the last one.
func headerValuesV1(r *events.APIGatewayProxyRequest, name string) []string {
	var vals []string
	for k, vs := range r.MultiValueHeaders {
		if strings.EqualFold(k, name) {
			vals = append(vals, vs...)
		}
	}
	if len(vals) == 0 {
		vals = headerValues(r.Headers, name)
	}
	return vals
}

func first(vals []string) string {
	if len(vals) == 0 {
		return ""
	}
	return vals[0]
}

func fromV1(r *events.APIGatewayProxyRequest) *request {
	method := strings.ToUpper(firstNonEmpty(r.HTTPMethod, r.RequestContext.HTTPMethod))
	resource := firstNonEmpty(r.Resource, r.RequestContext.ResourcePath, r.Path)
	q := url.Values(r.MultiValueQueryStringParameters)
	if len(q) == 0 && len(r.QueryStringParameters) > 0 {
		q = url.Values{}
		for k, v := range r.QueryStringParameters {
			q.Set(k, v)
		}
	}
	return &request{
		method:      method,
		route:       method + " " + resource,
		path:        r.Path,
		query:       q.Encode(),
		keyValues:   headerValuesV1(r, HeaderName),
		prefer:      headerValuesV1(r, PreferHeader),
		contentType: first(headerValuesV1(r, "Content-Type")),
		body:        r.Body,
		base64:      r.IsBase64Encoded,
		principal:   principalV1(&r.RequestContext),
		requestID:   r.RequestContext.RequestID,
	}
}

func fromV2(r *events.APIGatewayV2HTTPRequest) *request {
	method := strings.ToUpper(r.RequestContext.HTTP.Method)
	rk := firstNonEmpty(r.RouteKey, r.RequestContext.RouteKey, r.RawPath)
	route := method + " " + rk
	if _, p, ok := strings.Cut(rk, " "); ok && strings.HasPrefix(p, "/") {
		route = method + " " + p // "POST /orders", "ANY /orders" → "POST /orders"
	}
	query := r.RawQueryString
	if q, err := url.ParseQuery(r.RawQueryString); err == nil {
		query = q.Encode()
	}
	return &request{
		method:      method,
		route:       route,
		path:        firstNonEmpty(r.RawPath, r.RequestContext.HTTP.Path),
		query:       query,
		keyValues:   headerValues(r.Headers, HeaderName),
		prefer:      headerValues(r.Headers, PreferHeader),
		contentType: first(headerValues(r.Headers, "Content-Type")),
		body:        r.Body,
		base64:      r.IsBase64Encoded,
		principal:   principalV2(r.RequestContext.Authorizer),
		requestID:   r.RequestContext.RequestID,
	}
}

func firstNonEmpty(vals ...string) string {
	for _, v := range vals {
		if v != "" {
			return v
		}
	}
	return ""
}

func asString(v any) string {
	s, _ := v.(string)
	return s
}

// principalV1 names the caller of a REST API request, in this order: a
// Cognito user pool authorizer's claims (sub, qualified by iss), a Lambda
// authorizer's principalId, a Cognito identity pool identity, an IAM
// caller (userArn, else caller), an API key id. "" means anonymous.
func principalV1(rc *events.APIGatewayProxyRequestContext) string {
	if claims, ok := rc.Authorizer["claims"].(map[string]any); ok {
		if sub := asString(claims["sub"]); sub != "" {
			return JWTPrincipal(asString(claims["iss"]), sub)
		}
	}
	if p := asString(rc.Authorizer["principalId"]); p != "" {
		return LambdaPrincipal(p)
	}
	id := &rc.Identity
	switch {
	case id.CognitoIdentityID != "":
		return CognitoIdentityPrincipal(id.CognitoIdentityID)
	case id.UserArn != "":
		return IAMPrincipal(id.UserArn)
	case id.Caller != "":
		return IAMCallerPrincipal(id.Caller)
	case id.APIKeyID != "":
		return APIKeyPrincipal(id.APIKeyID)
	}
	return ""
}

// principalV2 names the caller of an HTTP API request, in this order: a JWT
// authorizer's sub claim (qualified by iss), a Lambda authorizer's
// principalId context value, a Cognito identity pool identity (whose
// callers share one role ARN, so the ARN would not tell them apart), an IAM
// userArn, an IAM callerId. "" means anonymous.
func principalV2(a *events.APIGatewayV2HTTPRequestContextAuthorizerDescription) string {
	if a == nil {
		return ""
	}
	if a.JWT != nil {
		if sub := a.JWT.Claims["sub"]; sub != "" {
			return JWTPrincipal(a.JWT.Claims["iss"], sub)
		}
	}
	if p := asString(a.Lambda["principalId"]); p != "" {
		return LambdaPrincipal(p)
	}
	if iam := a.IAM; iam != nil {
		switch {
		case iam.CognitoIdentity.IdentityID != "":
			return CognitoIdentityPrincipal(iam.CognitoIdentity.IdentityID)
		case iam.UserARN != "":
			return IAMPrincipal(iam.UserARN)
		case iam.CallerID != "":
			return IAMCallerPrincipal(iam.CallerID)
		}
	}
	return ""
}

// writeField writes a length-prefixed field, so field boundaries are
// unambiguous.
func writeField(h hash.Hash, s string) { writeBytes(h, []byte(s)) }

func writeBytes(h hash.Hash, b []byte) {
	var n [binary.MaxVarintLen64]byte
	h.Write(n[:binary.PutUvarint(n[:], uint64(len(b)))])
	h.Write(b)
}

// keyPrefix starts every record key the adapter writes.
const keyPrefix = "apigw1:"

// scopedKey is the record key: SHA-256 over route, principal and client
// key, base64url, 50 bytes in all.
func scopedKey(route, principal, key string) string {
	h := sha256.New()
	writeField(h, "idemddb/apigw scope v1")
	writeField(h, route)
	writeField(h, principal)
	writeField(h, key)
	return keyPrefix + base64.RawURLEncoding.EncodeToString(h.Sum(nil))
}

// isJSON reports whether a Content-Type is application/json or +json.
func isJSON(contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return false
	}
	return mt == "application/json" || (strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+json"))
}

// fingerprint digests what makes two requests with one key the same
// request: method, route, concrete path, canonical query and the body,
// canonicalised when it is valid JSON with a JSON content type.
func fingerprint(in *request, body []byte) []byte {
	h := sha256.New()
	writeField(h, "idemddb/apigw fingerprint v1")
	writeField(h, in.method)
	writeField(h, in.route)
	writeField(h, in.path)
	writeField(h, in.query)
	if isJSON(in.contentType) {
		if c, err := canonicalJSON(body); err == nil {
			writeField(h, "json")
			writeBytes(h, c)
			return h.Sum(nil)
		}
	}
	writeField(h, "raw")
	writeBytes(h, body)
	return h.Sum(nil)
}
