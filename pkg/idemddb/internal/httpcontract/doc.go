// Package httpcontract is the transport-neutral Idempotency-Key HTTP
// contract behind the library's front doors (apigw for API Gateway, idemhttp
// for net/http): key parsing, scope and fingerprint, the storage policy,
// "Prefer: wait", the stored response and its replay, the one problem table
// and the per-request log line and metric. A front door turns its request
// into a Request, calls Engine.Serve with a function that runs the handler
// and returns its Response, and renders what Serve returns.
package httpcontract
