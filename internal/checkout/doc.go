// Package checkout is the domain of the checkout API: creating orders and
// paying for each of them exactly once.
//
// The HTTP handlers (Orders.Handle, Payments.Handle, which dispatch to
// CreateOrder/GetOrder and CreatePayment/GetPayment) are plain API Gateway
// HTTP API (payload 2.0) handlers meant to run inside the idempotency
// wrapper of pkg/idemddb/apigw, which claims a POST's Idempotency-Key
// before calling them and passes GETs through. A POST handler finds its
// claim with idemddb.ClaimFromContext and adds its business records to the
// claim (Claim.AddWrites), so they commit in the same TransactWriteItems as
// the idempotency record, or not at all.
//
// Payments.WrapV2 is the create-payment function's wrapped handler (the
// wrapper, its TransactionConflictProblem hook, and the order read a
// cancelled commit needs).
//
// A POST /payments answer is either final or "retry with the same key".
// Final: 201 with the payment this key made; 200 with the payment another
// key made and "already_paid": true (PaymentAnswer; both stored and
// replayed); the 4xx problems other than 409. Retry: 409
// payment-in-progress, always with Retry-After (another attempt holds the
// order), and the 5xx problems. A 409 never means "final": stripe-go and
// stripe-node retry a 409 on their own.
//
// The key dedupes one client's retries; the order's payment state machine
// (PENDING -> PAYING -> PAID; attempt.go holds all of it: its typed
// states OrderStatus, AuthStatus and Outcome, its transition table, and
// its one driver, which CreatePayment and the Reconciler both run) makes
// sure an order is charged at most once whatever the keys: one attempt at
// a time holds the order, provider keys belong to order attempts, and
// whoever takes a lapsed attempt over settles it at the provider (its
// capture is the payment, anything else is voided) before charging. The
// Reconciler, run on a schedule, settles what no request came back for
// (the same driver, settling only). The Fulfilment, fed by
// the orders table's stream (the transactional outbox of a payment),
// creates one Receipt per paid order, however often its change is
// delivered (see fulfil.go).
//
// The payment service provider is a Provider: the Ledger (simulated in the
// payments table, the default) or the StripeProvider (Stripe
// PaymentIntents through stripe-go; see stripeprovider.go for how Stripe's
// 24 h key window, search lag, cancel-or-refund and error classes map to
// the provider's outcomes). template.yaml's PaymentProvider parameter picks
// one per deployment (lambdaenv.NewProvider).
//
// Amounts are int64 in the currency's minor unit (paise for INR, cents for
// USD). Every sum and product is overflow-checked.
//
// Client errors are RFC 9457 problem details (application/problem+json):
// apigw.Problem values, the wrapper's own type, whose slug, status and
// title come from the ProblemKind table.
package checkout
