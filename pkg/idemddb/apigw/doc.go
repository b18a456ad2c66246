// Package apigw puts the Idempotency-Key HTTP contract (the IETF HTTPAPI
// "The Idempotency-Key HTTP Header Field" draft, as Stripe implements it) in
// front of an AWS Lambda handler for Amazon API Gateway, on top of the
// idemddb store:
//
//	lambda.Start(apigw.WrapV2(store, handler)) // HTTP API, payload 2.0
//	lambda.Start(apigw.WrapV1(store, handler)) // REST API, payload 1.0
//
// # Which requests
//
// POST requests must carry an Idempotency-Key header (WithRequiredMethods
// changes the set). Requests with other methods go to the handler untouched,
// unless listed in WithOptionalMethods, where a key is honoured when present.
//
// # The key
//
// The header name matches case-insensitively; on REST APIs both headers and
// multiValueHeaders are read. The value is an RFC 9651 sf-string ("abc",
// escapes \" and \\ only) or a bare token (abc); optional whitespace around
// it is ignored, and both spellings denote the same key. The decoded key is
// 1 to 255 characters of visible ASCII (0x21-0x7E): a space is rejected even
// inside quotes. A missing key, an empty one, a longer one, other
// characters, sf-string parameters, or more than one value (a repeated
// header, or a comma outside quotes, which is how HTTP APIs deliver a
// repeated header) get a 400 problem. A bad key never falls back to
// processing without idempotency.
//
// # Scope and fingerprint
//
// The record key is a SHA-256 (base64url, 50 bytes with its prefix) of the
// route (method and route template: REST resource, HTTP API route key), the
// caller principal and the client's key, so the same key from another
// principal or on another route is independent, and one principal never
// receives another's response. The principal comes from the authorizer
// context: a JWT or Cognito user pool sub (qualified by iss), a Lambda
// authorizer's principalId (payload 2.0: a "principalId" value in the
// authorizer's context), a Cognito identity pool identity id, an IAM user
// ARN or caller id, or (REST) an API key id. Requests without any of these
// are anonymous and all anonymous callers share one scope per route;
// WithPrincipalRequired refuses them with 403 instead.
//
// The fingerprint is the method, the route, the concrete path, the query
// string (parameters sorted by name) and the body (base64-decoded first when
// isBase64Encoded). A body with a JSON content type (application/json or
// application/*+json) that is valid JSON is canonicalised first: member
// order and insignificant whitespace do not matter, strings compare by
// value, numbers by exact decimal value (1, 1.0 and 1e0 are equal; no
// float64 rounding). Invalid JSON, and objects with duplicate member names,
// are fingerprinted as raw bytes. The same key with a different fingerprint
// gets a 422 problem and the handler does not run. Reusing a key on another
// path under one route template (/orders/{id}) is such a mismatch.
//
// # Responses
//
//   - First request: the handler runs with the claim in its context
//     (idemddb.ClaimFromContext gives ResourceID and AddWrites) and its
//     response is returned unchanged.
//   - Repeat: the stored status, headers, multi-value headers, cookies,
//     body (byte for byte) and isBase64Encoded, plus
//     "Idempotent-Replayed: true". Headers in the drop list
//     (DefaultDropHeaders: Date, X-Request-Id, X-Amzn-RequestId, trace ids
//     and the like; WithDropHeaders) are not stored.
//   - While the first request runs: 409 with Retry-After (whole seconds
//     until its lease ends, at least 1), unless the request may wait.
//
// # Waiting for the first request
//
// A duplicate that arrives while the first request still runs ("Pay Now"
// clicked three times) can wait for it instead of getting 409: per request
// with the RFC 7240 preference "Prefer: wait=N" (seconds, capped by
// WithMaxWait, default 10 s; WithMaxWait(0) ignores it), or for every
// request with WithWait (default: no wait). The wrapper waits up to that
// long, and never past the invocation's deadline minus idemddb.WaitMargin,
// then answers the first request's stored response as a replay, with
// "Idempotent-Replayed: true" and, when it honoured the header,
// "Preference-Applied: wait=<seconds>". If the first request fails and
// releases the key meanwhile (or its lease lapses), the waiting request
// claims the key and runs the handler itself. If the wait ends first, the
// answer is the usual 409 with Retry-After (and Preference-Applied). A
// mismatch (422) is answered at once, never waited for.
//
// The cost: the waiting invocation stays busy (it is billed, and holds one
// unit of the function's concurrency) and polls the record with strongly
// consistent GetItems at 100 ms, 200 ms, 400 ms, 800 ms, then every second:
// at most idemddb.MaxWaitReads(N) reads, 8 for a 5 s wait, 13 for 10 s,
// plus the claim that starts it. The log line of a request that waited
// carries waited_ms and wait_reads.
//
// Only some statuses are stored (DefaultStorePolicy, WithStorePolicy):
// 2xx, 3xx but 304, and 4xx but 408, 409, 423, 425 and 429. For the others,
// and when the handler returns a Go error, the key is released, so a retry
// runs the handler again; the response, or the error, is returned as is
// (Lambda reports the error, and API Gateway answers 502).
//
// # Errors
//
// Errors are RFC 9457 application/problem+json documents whose type is the
// problem base (DefaultProblemBase, WithProblemBase) followed by one of the
// Problem* slugs. They never contain the request body nor the key.
//
//	400 idempotency-key-missing, idempotency-key-invalid, request-body-invalid
//	403 idempotency-principal-required (WithPrincipalRequired)
//	413 request-body-too-large (decoded body over WithMaxBodyBytes, default
//	    1 MiB; checked before any DynamoDB request)
//	409 idempotency-key-in-use (Retry-After)
//	422 idempotency-key-reused
//	409 idempotency-lease-lost (Retry-After: 1): the handler ran, but another
//	    instance took the key over before its completion, which was refused;
//	    its AddWrites did not commit. A retry gets the new owner's outcome.
//	409 transaction-conflict (final, no Retry-After): a write added with
//	    Claim.AddWrites failed its condition; nothing committed, key
//	    released. WithTransactionCanceled maps it to the function's own
//	    problem.
//	409 idempotency-result-not-retained (final, no Retry-After): the request
//	    was processed but its response was too large for the record; it
//	    cannot be replayed and a retry does not help.
//	503 idempotency-store-unavailable (Retry-After): DynamoDB unreachable;
//	    the handler did not run. When DynamoDB fails after the handler ran,
//	    the outcome is unknown, the key stays claimed and Retry-After is the
//	    rest of the lease.
//	500 idempotency-internal-error
//
// Every 409 either carries Retry-After (in flight: retry the same key after
// it) or is final. A transient TransactionConflict on the completion never
// reaches the client: the store sends the completion again (see idemddb)
// and the first answer is the handler's own.
//
// Handlers answer their own errors with the same Problem type: its
// Extensions carry RFC 9457 extension members (merged into the JSON object
// after type, title, status and detail), and ResponseV2 / ResponseV1 render
// it with Content-Type application/problem+json, Cache-Control no-store and
// Retry-After when RetryAfter is set. Such a response is stored or not by the
// store policy like any other.
//
// # Observability
//
// Each request handled under the contract logs one line (WithLogger;
// default JSON on stdout) with outcome, route, status, a hash prefix of the
// principal and of the record key, latency and request id: never a body or
// a key. Outcomes: claimed, replayed, conflict, mismatch, released, fenced,
// canceled, not_retained, invalid_key, invalid_request, unavailable,
// too_large, error. It also writes one CloudWatch Embedded Metric Format
// document (WithMetrics; default stdout) counting the outcome as a metric
// named in PascalCase (Claimed, Replayed, InvalidKey, ...) in namespace
// "Idempotency" (WithNamespace) with the dimension Route. Pass-through
// requests log nothing.
package apigw
