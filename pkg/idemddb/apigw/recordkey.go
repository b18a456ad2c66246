package apigw

import (
	"encoding/base64"
	"fmt"
	"net/http"

	"github.com/acme/idemcheckout/pkg/idemddb/internal/httpcontract"
)

// Finding a request's record. Support staff know the route, the caller and
// the client's Idempotency-Key, not the hashed key the wrapper stores the
// outcome under: RecordKey computes it, with the principal in one of the
// forms below (the ones WrapV1 and WrapV2 derive from the request), and
// idemddb.Store.Lookup reads the record. DecodeStoredResponse turns a
// completed record's result back into the HTTP response a replay sends.

// RecordKey returns the key of the record WrapV1 and WrapV2 keep for a
// request: route is the method and route template ("POST /orders",
// "POST /orders/{id}/pay"; for an ANY route, the request's own method),
// principal the caller as one of the Principal functions give it ("" for
// an anonymous caller), clientKey the Idempotency-Key header's value.
func RecordKey(route, principal, clientKey string) string {
	return httpcontract.ScopedKey(route, principal, clientKey)
}

// JWTPrincipal is the caller of a request authorized by a JWT (HTTP API
// JWT authorizer, REST API Cognito user pool authorizer): its iss and sub
// claims.
func JWTPrincipal(issuer, subject string) string { return httpcontract.JWTPrincipal(issuer, subject) }

// LambdaPrincipal is the caller named by a Lambda authorizer's
// principalId.
func LambdaPrincipal(principalID string) string { return httpcontract.LambdaPrincipal(principalID) }

// CognitoIdentityPrincipal is a Cognito identity pool identity.
func CognitoIdentityPrincipal(identityID string) string {
	return httpcontract.CognitoIdentityPrincipal(identityID)
}

// IAMPrincipal is an IAM caller by its user ARN.
func IAMPrincipal(userARN string) string { return httpcontract.IAMPrincipal(userARN) }

// IAMCallerPrincipal is an IAM caller by its caller id (when there is no
// user ARN).
func IAMCallerPrincipal(callerID string) string { return httpcontract.IAMCallerPrincipal(callerID) }

// APIKeyPrincipal is a REST API caller known only by its API key id.
func APIKeyPrincipal(apiKeyID string) string { return httpcontract.APIKeyPrincipal(apiKeyID) }

// StoredResponse is the response a completed record replays, without the
// Idempotent-Replayed header a replay adds.
type StoredResponse struct {
	Status            int
	Headers           map[string]string
	MultiValueHeaders map[string][]string
	Cookies           []string
	// Body is the body's bytes (decoded when the handler returned it
	// base64-encoded; Base64 says so).
	Body   []byte
	Base64 bool
}

// DecodeStoredResponse decodes the result of a record the wrapper
// completed (idemddb.Record.Result).
func DecodeStoredResponse(data []byte) (*StoredResponse, error) {
	r, err := httpcontract.DecodeResponse(data)
	if err != nil {
		return nil, err
	}
	out := &StoredResponse{Status: r.Status, Headers: r.Headers, MultiValueHeaders: r.MultiValueHeaders, Cookies: r.Cookies, Body: []byte(r.Body), Base64: r.Base64}
	if r.Base64 {
		if out.Body, err = base64.StdEncoding.DecodeString(r.Body); err != nil {
			return nil, fmt.Errorf("apigw: stored response body is marked base64 but is not: %w", err)
		}
	}
	return out, nil
}

// Header returns the response's headers in one http.Header.
func (r *StoredResponse) Header() http.Header {
	h := http.Header{}
	for k, vs := range r.MultiValueHeaders {
		for _, v := range vs {
			h.Add(k, v)
		}
	}
	for k, v := range r.Headers {
		h.Set(k, v)
	}
	for _, c := range r.Cookies {
		h.Add("Set-Cookie", c)
	}
	return h
}
