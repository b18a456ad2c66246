package checkout

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/acme/idemcheckout/pkg/idemddb"
	"github.com/acme/idemcheckout/pkg/idemddb/apigw"
	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// Payment request limits.
const (
	MaxOrderIDBytes       = 128
	MaxPaymentMethodBytes = 64
)

// PaymentIDPrefix starts every payment id.
const PaymentIDPrefix = "pay_"

// PaymentRequest is a validated POST /payments body.
type PaymentRequest struct {
	OrderID       string
	Amount        int64
	Currency      string
	PaymentMethod string
}

type paymentBody struct {
	OrderID       *string `json:"order_id"`
	Amount        *int64  `json:"amount"`
	Currency      *string `json:"currency"`
	PaymentMethod *string `json:"payment_method"`
}

// ParsePaymentRequest decodes and validates a POST /payments body. Its
// error is a *ValidationError naming every invalid field.
func ParsePaymentRequest(body []byte) (PaymentRequest, error) {
	var in paymentBody
	var v validator
	if fe := decodeStrict(body, &in, ""); fe != nil {
		v.addErr(fe)
		return PaymentRequest{}, v.err()
	}
	out := PaymentRequest{
		OrderID:       v.checkToken("order_id", in.OrderID, MaxOrderIDBytes),
		Currency:      v.checkCurrency("currency", in.Currency),
		PaymentMethod: v.checkToken("payment_method", in.PaymentMethod, MaxPaymentMethodBytes),
	}
	out.Amount, _ = v.checkInt("amount", in.Amount, 1, "must be at least 1 (minor units)")
	if err := v.err(); err != nil {
		return PaymentRequest{}, err
	}
	return out, nil
}

// Payment is a captured payment as returned to the client.
type Payment struct {
	PaymentID string `json:"payment_id" dynamodbav:"payment_id"`
	OrderID   string `json:"order_id" dynamodbav:"order_id"`
	Amount    int64  `json:"amount" dynamodbav:"amount"`
	Currency  string `json:"currency" dynamodbav:"currency"`
	Status    string `json:"status" dynamodbav:"status"`
	// CreatedAt is RFC 3339 in UTC.
	CreatedAt string `json:"created_at" dynamodbav:"created_at"`
}

// PaymentAnswer is the body of POST /payments' success answers: the
// payment, and AlreadyPaid. The 201 (this request paid) omits
// already_paid, so its bytes are the Payment's; the 200 (another request,
// under another Idempotency-Key, paid the order) says "already_paid":
// true. Both are final: stored under the key and replayed.
type PaymentAnswer struct {
	Payment
	AlreadyPaid bool `json:"already_paid,omitempty"`
}

// paymentRecord is a PAY# item of the payments table.
type paymentRecord struct {
	PK   string `dynamodbav:"pk"`
	Kind string `dynamodbav:"kind"`
	Payment
	CustomerID             string `dynamodbav:"customer_id"`
	PaymentMethod          string `dynamodbav:"payment_method"`
	AuthorizationID        string `dynamodbav:"authorization_id"`
	ProviderIdempotencyKey string `dynamodbav:"provider_idempotency_key"`
	// Attempt is the order attempt that captured it.
	Attempt int `dynamodbav:"attempt"`
}

// PaymentsConfig configures Payments.
type PaymentsConfig struct {
	// DB reaches the orders and payments tables.
	DB DB
	// OrdersTable (key order_id) and PaymentsTable (key pk).
	OrdersTable, PaymentsTable string
	// Provider charges payments, typically a *Ledger on PaymentsTable.
	Provider Provider
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Logger receives server-side failures (default slog.Default()).
	Logger *slog.Logger
}

// Payments serves POST /payments and GET /payments/{id}.
type Payments struct {
	machine machine
	now     func() time.Time
	logger  *slog.Logger
}

// Routes of the create-payment function (API Gateway route keys).
const (
	RouteCreatePayment = "POST /payments"
	RouteGetPayment    = "GET /payments/{id}"
)

// NewPayments returns the payments handlers' owner.
func NewPayments(cfg PaymentsConfig) (*Payments, error) {
	if cfg.DB == nil || cfg.OrdersTable == "" || cfg.PaymentsTable == "" || cfg.Provider == nil {
		return nil, errors.New("checkout: PaymentsConfig needs DB, OrdersTable, PaymentsTable and Provider")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Payments{
		machine: machine{db: cfg.DB, orders: cfg.OrdersTable, payments: cfg.PaymentsTable, provider: cfg.Provider},
		now:     cfg.Now, logger: cfg.Logger,
	}, nil
}

// Handle is the create-payment function's handler: it dispatches on the
// route key to CreatePayment (POST /payments, which the wrapper makes
// idempotent) and GetPayment (GET /payments/{id}, passed through by the
// wrapper: no Idempotency-Key needed).
func (p *Payments) Handle(ctx context.Context, req events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	return dispatch(ctx, p.logger, req, map[string]apigw.HandlerV2{RouteCreatePayment: p.CreatePayment, RouteGetPayment: p.GetPayment})
}

// GetPayment handles GET /payments/{id}: 200 with the payment, as
// POST /payments answered it, when it belongs to the caller; the same 404
// for another caller's payment and an unknown id. One strongly consistent
// GetItem.
func (p *Payments) GetPayment(ctx context.Context, req events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	return serveOwned(ctx, p.logger, p.machine.db, p.machine.payments, attrPK, PaymentKeyPrefix, req, paymentNotFound(),
		func(_ context.Context, r paymentRecord) (Payment, error) { return r.Payment, nil })
}

// CreatePayment handles POST /payments inside the idempotency wrapper. See
// the state machine in attempt.go; in order:
//
//  1. Lock: one conditional UpdateItem starts the order's next attempt. If
//     it is refused, the order that refused it says why: 404 (unknown, or
//     another caller's), 422 (amount or currency differ), 200 with the
//     order's payment and "already_paid": true when another key paid it
//     (201 with that payment when this very key paid it and its answer was
//     lost), 409 payment-in-progress with Retry-After until the other
//     attempt's lease ends (not stored, so the client may retry).
//  2. Settle: earlier attempts the order has not settled (after a crash or
//     a lapsed lease) are settled at the provider. A capture among them is
//     the order's payment: the order is completed with it and the answer is
//     200 already_paid naming it (201 when it was this key's). Everything
//     else is voided.
//  3. Authorize the new attempt under ProviderIdempotencyKey(order, n).
//     CAPTURED adds the order's PAYING -> PAID update and the PAY# record
//     to the claim (201); DECLINED adds PAYING -> PENDING with the attempt
//     in the history (402, stored); VOIDED means another request settled
//     this attempt after its lease lapsed (409 payment-in-progress, nothing
//     committed). A provider failure is a 503 (the key is released; the
//     order stays PAYING under this key, which a retry with the same key
//     can lock again at once).
//
// The additions commit with the idempotency record in one
// TransactWriteItems, conditional on the order still being PAYING under
// this attempt; a cancellation reaches the wrapper, whose hook
// TransactionConflictProblem answers 409 payment-in-progress with
// Retry-After, which WrapV2 turns into the order's own answer (200
// already_paid when another key paid it) with one GetItem. The happy path
// is three DynamoDB requests of its own (claim, lock, commit) plus the
// provider call. The error result is always nil.
func (p *Payments) CreatePayment(ctx context.Context, req events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	a, prob := accept(ctx, p.logger, "CreatePayment", req, ParsePaymentRequest)
	if prob != nil {
		return prob.ResponseV2(), nil
	}
	claim, sub, in := a.claim, a.caller, a.in
	owner := attemptOwner(claim.Key)
	if w, ok := ctx.Value(commitWatchKey{}).(*commitWatch); ok {
		w.sub, w.owner, w.in = sub, owner, in
	}
	res, err := p.machine.run(ctx, runRequest{
		OrderID: in.OrderID, CustomerID: sub, Amount: in.Amount, Currency: in.Currency,
		PaymentMethod: in.PaymentMethod, Claim: claim, Now: p.now,
	})
	switch {
	case err != nil:
		return p.failed(ctx, in.OrderID, err), nil
	case !res.Locked:
		return p.refused(res.Refused, sub, in, owner, res.Now)
	case res.CommittedAlone:
		p.logger.InfoContext(ctx, "checkout: completed the order with an earlier attempt's capture",
			"order_id", in.OrderID, "attempt", res.Captured, "payment_id", res.Payment.PaymentID)
		return alreadyPaid(res.Payment)
	case res.To == OrderPaid:
		return created(res.Payment)
	case res.To == OrderPending:
		pr := ProblemPaymentDeclined.Problem("the payment was declined by the provider")
		pr.Extensions = extensions("order_id", in.OrderID, "payment_id", res.Auth.PaymentID, "decline_code", res.Auth.DeclineCode)
		return pr.ResponseV2(), nil
	case res.Auth.Status == AuthVoided:
		return paymentInProgress(in.OrderID, retryAfterTransientSeconds).ResponseV2(), nil
	}
	p.logger.ErrorContext(ctx, "checkout: unknown authorization status", "status", res.Auth.Status, "authorization_id", res.Auth.ID)
	return internalError("the payment provider answered with an unknown status").ResponseV2(), nil
}

// failed answers a payment whose run of the state machine failed, by the
// step that failed (see CreatePayment).
func (p *Payments) failed(ctx context.Context, orderID string, err error) events.APIGatewayV2HTTPResponse {
	var re *runError
	if !errors.As(err, &re) {
		re = &runError{stage: stageLock, err: err}
	}
	var tce *types.TransactionCanceledException
	switch {
	case re.stage == stageLock:
		p.logger.ErrorContext(ctx, "checkout: lock order", "order_id", orderID, "error", err)
		return serviceUnavailable().ResponseV2()
	case re.stage == stageSettle:
		p.logger.ErrorContext(ctx, "checkout: settle earlier attempts", "order_id", orderID, "attempt", re.attempt, "error", err)
		return providerUnavailable().ResponseV2()
	case re.stage == stageAuthorize && errors.Is(err, ErrProviderKeyReused):
		// Attempt keys are never shared between requests: a bug.
		p.logger.ErrorContext(ctx, "checkout: provider key of a new attempt was already used", "order_id", orderID, "attempt", re.attempt, "error", err)
		return internalError("the payment attempt could not be started").ResponseV2()
	case re.stage == stageAuthorize:
		p.logger.ErrorContext(ctx, "checkout: payment provider failed; the outcome is unknown until the attempt is settled",
			"order_id", orderID, "attempt", re.attempt, "error", err)
		return providerUnavailable().ResponseV2()
	case re.stage == stageEncode:
		p.logger.ErrorContext(ctx, "checkout: encode payment writes", "error", err)
		return internalError("could not encode the payment").ResponseV2()
	case errors.As(err, &tce):
		return paymentInProgress(orderID, retryAfterTransientSeconds).ResponseV2()
	}
	p.logger.ErrorContext(ctx, "checkout: complete the order with an earlier capture", "order_id", orderID, "error", err)
	return serviceUnavailable().ResponseV2()
}

// refused answers a payment whose lock the order o refused (nil: no such
// order).
func (p *Payments) refused(o *Order, sub string, in PaymentRequest, owner string, now time.Time) (events.APIGatewayV2HTTPResponse, error) {
	if o == nil || o.CustomerID != sub {
		return orderNotFound().ResponseV2(), nil
	}
	if prob := mismatch(*o, in); prob != nil {
		return prob.ResponseV2(), nil
	}
	switch o.Status {
	case OrderPaid:
		if o.PaidBy == owner { // this key's own payment, whose answer was lost
			return created(o.payment())
		}
		return alreadyPaid(o.payment())
	case OrderPaying:
		return paymentInProgress(o.OrderID, secondsUntil(time.UnixMilli(o.AttemptUntil), now)).ResponseV2(), nil
	}
	// PENDING: it changed between the refusal and our read of it.
	return paymentInProgress(o.OrderID, retryAfterTransientSeconds).ResponseV2(), nil
}

// created is the 201 answer of a payment this key made.
func created(pay Payment) (events.APIGatewayV2HTTPResponse, error) {
	return jsonResponse(http.StatusCreated, PaymentAnswer{Payment: pay}, map[string]string{headerLocation: "/payments/" + pay.PaymentID})
}

// alreadyPaid is the 200 answer to a payment for an order another key
// paid: that payment, "already_paid": true, and its Location. Final, like
// the 201: a client that retries it (stripe-go and stripe-node retry a
// 409) would only be told the same.
func alreadyPaid(pay Payment) (events.APIGatewayV2HTTPResponse, error) {
	return jsonResponse(http.StatusOK, PaymentAnswer{Payment: pay, AlreadyPaid: true}, map[string]string{headerLocation: "/payments/" + pay.PaymentID})
}

// mismatch returns the 422 problem when the payment does not match the
// order, listing every differing field.
func mismatch(order Order, in PaymentRequest) *apigw.Problem {
	var errs []FieldError
	if in.Amount != order.Amount {
		errs = append(errs, FieldError{Field: "amount", Detail: "must equal the order's amount, " + strconv.FormatInt(order.Amount, 10)})
	}
	if in.Currency != order.Currency {
		errs = append(errs, FieldError{Field: "currency", Detail: "must equal the order's currency, " + order.Currency})
	}
	if len(errs) == 0 {
		return nil
	}
	pr := ProblemPaymentMismatch.Problem("the payment does not match the order")
	pr.Extensions = map[string]any{"errors": errs, "order_id": order.OrderID}
	return &pr
}

// TransactionConflictProblem is the create-payment function's hook for
// apigw.WithTransactionCanceled (WrapV2 installs it). The wrapper calls it
// with the *idemddb.TransactionCanceledError of a cancelled completion
// (nothing was committed and the key was released). When the order's
// write failed its condition – the order left this attempt: another key
// took it over after the attempt's lease lapsed, and settled or paid it –
// or the payment record already existed, it returns 409
// payment-in-progress with Retry-After (the order's state is not known
// here), and tells WrapV2, which reads the order and answers what a retry
// would be told: 200 already_paid when another key paid it. Any other
// cancellation (a transient TransactionConflict, say) gets the wrapper's
// default 409 transaction-conflict problem.
//
// A capture of the cancelled attempt is never left behind: whoever took
// the order over settles the attempt (adopts or voids its capture), and the
// reconciler covers the rest.
func TransactionConflictProblem(ctx context.Context, err *idemddb.TransactionCanceledError) apigw.Problem {
	if err != nil && err.Index >= writeOrder && err.Index <= writePaymentRecord && err.Index < len(err.Reasons) &&
		err.Reasons[err.Index].Code == "ConditionalCheckFailed" {
		if w, ok := ctx.Value(commitWatchKey{}).(*commitWatch); ok {
			w.orderMoved = true
		}
		return paymentInProgress("", retryAfterTransientSeconds)
	}
	return apigw.Problem{Type: apigw.ProblemTransactionConflict, Title: "Conflicting state", Status: http.StatusConflict,
		Detail: "The request conflicts with the current state of a resource; nothing was changed."}
}

// commitWatch follows one request through WrapV2: the payment the handler
// worked on, and whether its completion was cancelled because the order
// moved on (TransactionConflictProblem).
type commitWatch struct {
	sub, owner string
	in         PaymentRequest
	orderMoved bool
}

type commitWatchKey struct{}

// WrapV2 wraps Handle in the idempotency wrapper as the create-payment
// function serves it: apigw.WrapV2 with opts and the
// TransactionConflictProblem hook. When a payment's completion is
// cancelled because the order moved on, it reads the order (one GetItem,
// on that path only) and answers as a retry with the key would be
// answered: 200 already_paid naming the payment another key made, or 409
// payment-in-progress with Retry-After while another attempt holds the
// order. That answer is not stored (the wrapper released the key); a retry
// gets the same answer, stored then. If the order cannot be read, the
// hook's 409 payment-in-progress with Retry-After stands.
func (p *Payments) WrapV2(store *idemddb.Store, opts ...apigw.Option) apigw.HandlerV2 {
	inner := apigw.WrapV2(store, p.Handle, append(opts[:len(opts):len(opts)], apigw.WithTransactionCanceled(TransactionConflictProblem))...)
	return func(ctx context.Context, req events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
		w := &commitWatch{}
		resp, err := inner(context.WithValue(ctx, commitWatchKey{}, w), req)
		if err != nil || !w.orderMoved || w.owner == "" {
			return resp, err
		}
		item, found, gerr := getItem(ctx, p.machine.db, p.machine.orders, attrOrderID, w.in.OrderID)
		var o Order
		if gerr == nil && found {
			gerr = attributevalue.UnmarshalMap(item, &o)
		}
		if gerr != nil || !found {
			p.logger.WarnContext(ctx, "checkout: read the order after a cancelled payment", "order_id", w.in.OrderID, "found", found, "error", gerr)
			return resp, nil
		}
		return p.refused(&o, w.sub, w.in, w.owner, p.now())
	}
}
