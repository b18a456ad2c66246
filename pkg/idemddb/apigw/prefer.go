package apigw

import "github.com/acme/idemcheckout/pkg/idemddb/internal/httpcontract"

// PreferHeader is the request header carrying RFC 7240 preferences; the
// wrapper honours "wait". PreferenceAppliedHeader answers it.
const (
	PreferHeader            = httpcontract.PreferHeader
	PreferenceAppliedHeader = httpcontract.PreferenceAppliedHeader
)

// DefaultMaxWait caps the wait a client asks for with "Prefer: wait=N"
// (see WithMaxWait).
const DefaultMaxWait = httpcontract.DefaultMaxWait

// preferWait is httpcontract.PreferWait.
func preferWait(values []string) (secs int64, ok bool) { return httpcontract.PreferWait(values) }
