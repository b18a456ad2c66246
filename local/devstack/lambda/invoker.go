package lambda

import (
	"context"
	"crypto/rand"
	"encoding/hex"
)

// Invoker runs one event (payload) through a function of the template,
// named by its logical id, and returns the function's result. A function
// that fails answers a *FunctionError. The gateway, the Lambda Invoke API
// and the event sources invoke through it; *Pools is the local stack's.
type Invoker interface {
	Invoke(ctx context.Context, function string, payload []byte) ([]byte, error)
}

// MaxInvokePayload is Lambda's limit on a synchronous invoke's request
// (the whole event) and response: 6,291,456 bytes.
const MaxInvokePayload = 6 << 20

// NewRequestID returns a random request id in Lambda's format
// (8-4-4-4-12 hex digits), for the events the local stack makes up.
func NewRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	h := hex.EncodeToString(b[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}
