// Package checkout is the domain of the checkout API: creating orders and
// paying for them exactly once.
//
// The HTTP handlers (Orders.CreateOrder, Payments.CreatePayment) are plain
// API Gateway HTTP API (payload 2.0) handlers meant to run inside the
// idempotency wrapper of pkg/idemddb/apigw, which claims the request's
// Idempotency-Key before calling them. A handler finds its claim with
// idemddb.ClaimFromContext and derives every id from the claim's
// ResourceID, so a retry after a crash reuses the ids of the first attempt.
// A handler never writes its business records directly: it adds them to the
// claim (Claim.AddWrites), so they commit in the same TransactWriteItems as
// the idempotency record, or not at all.
//
// Amounts are int64 in the currency's minor unit (paise for INR, cents for
// USD). Every sum and product is overflow-checked.
//
// Client errors are RFC 9457 problem details (application/problem+json)
// whose type URIs are the Type* constants.
package checkout
