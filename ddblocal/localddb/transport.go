package localddb

import (
	"bytes"
	"io"
	"net/http"
	"time"
)

// OwnBodyTransport sends every request with a private in-memory copy of its
// body, read before the request is handed to Base. The SDK (smithy-go)
// closes its request body as soon as the round trip returns the response
// headers; if net/http's writer goroutine has not finished writing the body
// by then, it reads the closed body, fails, and closes the connection while
// the answer is being read, so a request the engine applied is reported as
// failed ("use of closed network connection", aws-sdk-go-v2 #1825, #2737).
// The copy is held only by this transport, so nothing can close it under
// the writer. The copy gets no GetBody, so net/http never re-sends it: one
// attempt per request, as RetryMaxAttempts: 1 asks of the SDK.
type OwnBodyTransport struct {
	// Base sends the request (default: a fresh *http.Transport per client).
	Base http.RoundTripper
}

// RoundTrip implements http.RoundTripper.
func (t *OwnBodyTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body == nil || r.Body == http.NoBody {
		return t.Base.RoundTrip(r)
	}
	b, err := io.ReadAll(r.Body)
	r.Body.Close() // RoundTrip must close the caller's body
	if err != nil {
		return nil, err
	}
	own := r.Clone(r.Context())
	own.Body = io.NopCloser(bytes.NewReader(b))
	own.GetBody = nil
	own.ContentLength = int64(len(b))
	return t.Base.RoundTrip(own)
}

// NewHTTPClient returns the HTTP client of every test client: its own
// connection pool, sized for the parallel tests, behind OwnBodyTransport.
func NewHTTPClient() *http.Client {
	base := &http.Transport{
		Proxy:               nil, // loopback only
		MaxIdleConns:        256,
		MaxIdleConnsPerHost: 256,
		IdleConnTimeout:     30 * time.Second,
	}
	return &http.Client{Transport: &OwnBodyTransport{Base: base}}
}
