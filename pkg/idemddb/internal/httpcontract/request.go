package httpcontract

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"hash"
	"mime"
	"strings"

	"github.com/aws/aws-lambda-go/events"
)

// Request is the transport-neutral view of a request the contract needs.
type Request struct {
	Method      string
	Route       string // method and route template: "POST /orders/{id}/pay"
	Path        string // concrete path
	Query       string // canonical query string
	KeyValues   []string
	Prefer      []string // Prefer header values
	ContentType string
	Body        []byte
	Base64      bool   // Body is base64 text to decode first (API Gateway)
	BodyOver    bool   // Body was cut after MaxBody+1 bytes: its full size is unknown
	Principal   string // "" when anonymous
	RequestID   string
}

// WriteField writes a length-prefixed field, so field boundaries are
// unambiguous.
func WriteField(h hash.Hash, s string) { writeBytes(h, []byte(s)) }

func writeBytes(h hash.Hash, b []byte) {
	var n [binary.MaxVarintLen64]byte
	h.Write(n[:binary.PutUvarint(n[:], uint64(len(b)))])
	h.Write(b)
}

// KeyPrefix starts every record key the HTTP contract writes.
const KeyPrefix = "apigw1:"

// ScopedKey is the record key: SHA-256 over route, principal and client
// key, base64url, 50 bytes in all.
func ScopedKey(route, principal, key string) string {
	h := sha256.New()
	WriteField(h, "idemddb/apigw scope v1")
	WriteField(h, route)
	WriteField(h, principal)
	WriteField(h, key)
	return KeyPrefix + base64.RawURLEncoding.EncodeToString(h.Sum(nil))
}

// HashedKey returns prefix followed by the base64url SHA-256 of fields,
// each length-prefixed.
func HashedKey(prefix string, fields ...string) string {
	h := sha256.New()
	for _, f := range fields {
		WriteField(h, f)
	}
	return prefix + base64.RawURLEncoding.EncodeToString(h.Sum(nil))
}

// isJSON reports whether a Content-Type is application/json or +json.
func isJSON(contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return false
	}
	return mt == "application/json" || (strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+json"))
}

// Fingerprint digests what makes two requests with one key the same
// request: method, route, concrete path, canonical query and the (decoded)
// body, canonicalised when it is valid JSON with a JSON content type.
func Fingerprint(in *Request, body []byte) []byte {
	h := sha256.New()
	WriteField(h, "idemddb/apigw fingerprint v1")
	WriteField(h, in.Method)
	WriteField(h, in.Route)
	WriteField(h, in.Path)
	WriteField(h, in.Query)
	if isJSON(in.ContentType) {
		if c, err := CanonicalJSON(body); err == nil {
			WriteField(h, "json")
			writeBytes(h, c)
			return h.Sum(nil)
		}
	}
	WriteField(h, "raw")
	writeBytes(h, body)
	return h.Sum(nil)
}

// The forms of a principal, one per kind of caller identity.

// JWTPrincipal is the caller of a request authorized by a JWT: its iss and
// sub claims.
func JWTPrincipal(issuer, subject string) string { return "jwt:" + issuer + "\n" + subject }

// LambdaPrincipal is the caller named by a Lambda authorizer's principalId.
func LambdaPrincipal(principalID string) string { return "lambda:" + principalID }

// CognitoIdentityPrincipal is a Cognito identity pool identity.
func CognitoIdentityPrincipal(identityID string) string { return "cognito-identity:" + identityID }

// IAMPrincipal is an IAM caller by its user ARN.
func IAMPrincipal(userARN string) string { return "iam:" + userARN }

// IAMCallerPrincipal is an IAM caller by its caller id.
func IAMCallerPrincipal(callerID string) string { return "iam-caller:" + callerID }

// APIKeyPrincipal is a REST API caller known only by its API key id.
func APIKeyPrincipal(apiKeyID string) string { return "api-key:" + apiKeyID }

func asString(v any) string {
	s, _ := v.(string)
	return s
}

// PrincipalV1 names the caller of a REST API request, in this order: a
// Cognito user pool authorizer's claims (sub, qualified by iss), a Lambda
// authorizer's principalId, a Cognito identity pool identity, an IAM
// caller (userArn, else caller), an API key id. "" means anonymous.
func PrincipalV1(rc *events.APIGatewayProxyRequestContext) string {
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

// PrincipalV2 names the caller of an HTTP API request, in this order: a JWT
// authorizer's sub claim (qualified by iss), a Lambda authorizer's
// principalId context value, a Cognito identity pool identity (whose
// callers share one role ARN, so the ARN would not tell them apart), an IAM
// userArn, an IAM callerId. "" means anonymous.
func PrincipalV2(a *events.APIGatewayV2HTTPRequestContextAuthorizerDescription) string {
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
