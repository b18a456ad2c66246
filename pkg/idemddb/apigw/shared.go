package apigw

import "github.com/acme/idemcheckout/pkg/idemddb/internal/httpcontract"

// HashedKey returns prefix followed by the base64url SHA-256 of fields,
// each length-prefixed so field boundaries are unambiguous: the form of
// this package's record keys (and pkg/idemddb/batch's), for code of one's
// own that scopes a key without storing it raw. With a
// prefix of p bytes the result is p+43 bytes.
func HashedKey(prefix string, fields ...string) string {
	return httpcontract.HashedKey(prefix, fields...)
}

// CanonicalJSON returns the canonical form of the JSON text b that this
// package fingerprints request bodies with: member order and insignificant
// whitespace removed, strings compared by value, numbers by exact decimal
// value (1, 1.0 and 1e0 are equal). It fails on invalid JSON, invalid
// UTF-8, surrogate escapes, trailing data and duplicate member names; a
// caller then fingerprints the raw bytes.
func CanonicalJSON(b []byte) ([]byte, error) { return httpcontract.CanonicalJSON(b) }
