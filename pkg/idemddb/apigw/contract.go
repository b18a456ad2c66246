package apigw

import (
	"time"

	"github.com/acme/idemcheckout/pkg/idemddb/internal/httpcontract"
)

// The contract itself lives in internal/httpcontract, shared with the
// net/http front door (pkg/idemddb/idemhttp). These are the names this
// package's own tests know it by.

// HeaderName is the request header carrying the client's idempotency key.
const HeaderName = httpcontract.HeaderName

// MaxKeyLen is the longest accepted idempotency key, in bytes (characters)
// after decoding.
const MaxKeyLen = httpcontract.MaxKeyLen

const (
	errKeyMissing  = httpcontract.ErrKeyMissing
	errKeyEmpty    = httpcontract.ErrKeyEmpty
	errKeyTooLong  = httpcontract.ErrKeyTooLong
	errKeyChar     = httpcontract.ErrKeyChar
	errKeyRepeated = httpcontract.ErrKeyRepeated
	errKeyQuote    = httpcontract.ErrKeyQuote
)

func parseKey(values []string) (string, error) { return httpcontract.ParseKey(values) }
func quoteKey(key string) string               { return httpcontract.QuoteKey(key) }
func validKey(k string) bool                   { return httpcontract.ValidKey(k) }
func canonicalJSON(b []byte) ([]byte, error)   { return httpcontract.CanonicalJSON(b) }
func ceilSeconds(d time.Duration) int          { return httpcontract.CeilSeconds(d) }
