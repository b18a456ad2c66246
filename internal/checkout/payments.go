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
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// Payment request limits.
const (
	MaxOrderIDBytes       = 128
	MaxPaymentMethodBytes = 64
)

// PaymentIDPrefix starts every payment id.
const PaymentIDPrefix = "pay_"

// PaymentCaptured is the status of a recorded payment.
const PaymentCaptured = "CAPTURED"

// TypeIdempotencyKeyReused (422): the payment provider already saw this
// Idempotency-Key with other payment details (possible only after an
// earlier attempt with the key failed and released it). It is the idempotency
// wrapper's own type for a key reused with a different request, because that
// is what it means.
const TypeIdempotencyKeyReused = ProblemBase + apigw.ProblemKeyReused

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

// paymentRecord is a PAY# item of the payments table.
type paymentRecord struct {
	PK   string `dynamodbav:"pk"`
	Kind string `dynamodbav:"kind"`
	Payment
	CustomerID             string `dynamodbav:"customer_id"`
	PaymentMethod          string `dynamodbav:"payment_method"`
	AuthorizationID        string `dynamodbav:"authorization_id"`
	ProviderIdempotencyKey string `dynamodbav:"provider_idempotency_key"`
}

// PaymentsConfig configures Payments.
type PaymentsConfig struct {
	// DB reads orders.
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

// Payments serves POST /payments.
type Payments struct {
	db               DB
	orders, payments string
	provider         Provider
	now              func() time.Time
	logger           *slog.Logger
}

// NewPayments returns the POST /payments handler's owner.
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
	return &Payments{db: cfg.DB, orders: cfg.OrdersTable, payments: cfg.PaymentsTable, provider: cfg.Provider,
		now: cfg.Now, logger: cfg.Logger}, nil
}

// PaymentID returns the id of the payment made under claim: stable across
// takeovers of the claim after a crash.
func PaymentID(claim *idemddb.Claim) string { return PaymentIDPrefix + claim.ResourceID }

// CreatePayment handles POST /payments inside the idempotency wrapper.
//
// It checks that the order exists and belongs to the caller (404 either
// way), that amount and currency match it (422) and that it is unpaid
// (409 order-already-paid), then authorizes with the provider under
// ProviderIdempotencyKey. A decline is a 402 problem. A capture adds two
// writes to the claim, committed with the idempotency record in one
// transaction: the order's PENDING → PAID transition, conditional on the
// order still being PENDING, the caller's, and of this amount and currency;
// and the PAY# payment record, conditional on being new. If the order was
// paid meanwhile under another key the transaction is cancelled and the
// wrapper gets an *idemddb.TransactionCanceledError, which
// TransactionConflictProblem turns into the same 409. The error result is
// always nil.
func (p *Payments) CreatePayment(ctx context.Context, req events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	a, prob := accept(ctx, p.logger, "CreatePayment", req, ParsePaymentRequest)
	if prob != nil {
		return prob.Response(), nil
	}
	claim, sub, in := a.claim, a.caller, a.in

	order, found, err := p.loadOrder(ctx, in.OrderID)
	if err != nil {
		p.logger.ErrorContext(ctx, "checkout: read order", "order_id", in.OrderID, "error", err)
		return serviceUnavailable().Response(), nil
	}
	if !found || order.CustomerID != sub {
		return orderNotFound().Response(), nil
	}
	if prob := mismatch(order, in); prob != nil {
		return prob.Response(), nil
	}
	if order.Status != OrderPending {
		return orderAlreadyPaid(order.OrderID, order.PaymentID).Response(), nil
	}

	pspKey := ProviderIdempotencyKey(claim)
	auth, err := p.provider.Authorize(ctx, AuthorizationRequest{
		IdempotencyKey: pspKey,
		OrderID:        order.OrderID,
		PaymentID:      PaymentID(claim),
		Amount:         in.Amount,
		Currency:       in.Currency,
		PaymentMethod:  in.PaymentMethod,
	})
	var reuse *KeyReuseError
	switch {
	case errors.As(err, &reuse):
		pr := newProblem(http.StatusUnprocessableEntity, TypeIdempotencyKeyReused,
			"this Idempotency-Key was already used for a payment with a different "+reuse.Field+"; use a new key for a new payment")
		return pr.Response(), nil
	case err != nil:
		p.logger.ErrorContext(ctx, "checkout: payment provider failed; the outcome is unknown until a retry with the same key",
			"order_id", order.OrderID, "error", err)
		pr := newProblem(http.StatusBadGateway, TypeProviderUnavailable,
			"the payment provider did not answer; retry with the same Idempotency-Key, you will not be charged twice")
		return pr.Response(), nil
	}
	// The provider keeps the payment id of the first request with the key,
	// so a retry whose claim was released meanwhile reuses it.
	paymentID := auth.PaymentID
	if paymentID == "" {
		paymentID = PaymentID(claim)
	}
	switch auth.Status {
	case AuthCaptured:
	case AuthDeclined:
		pr := newProblem(http.StatusPaymentRequired, TypePaymentDeclined, "the payment was declined by the provider")
		pr.Title = "Payment declined"
		pr.OrderID, pr.PaymentID, pr.DeclineCode = order.OrderID, paymentID, auth.DeclineCode
		return pr.Response(), nil
	default:
		p.logger.ErrorContext(ctx, "checkout: unknown authorization status", "status", auth.Status, "authorization_id", auth.ID)
		return internalError("the payment provider answered with an unknown status").Response(), nil
	}

	pay := Payment{
		PaymentID: paymentID,
		OrderID:   order.OrderID,
		Amount:    in.Amount,
		Currency:  in.Currency,
		Status:    PaymentCaptured,
		CreatedAt: p.now().UTC().Format(time.RFC3339),
	}
	writes, err := p.captureWrites(sub, pay, paymentRecord{
		PK: PaymentKeyPrefix + paymentID, Kind: "PAYMENT", Payment: pay, CustomerID: sub,
		PaymentMethod: in.PaymentMethod, AuthorizationID: auth.ID, ProviderIdempotencyKey: pspKey,
	})
	if err != nil {
		p.logger.ErrorContext(ctx, "checkout: encode payment writes", "error", err)
		return internalError("could not encode the payment").Response(), nil
	}
	claim.AddWrites(writes...)
	return jsonResponse(http.StatusCreated, pay, map[string]string{headerLocation: "/payments/" + paymentID})
}

// mismatch returns the 422 problem when the payment does not match the
// order, listing every differing field.
func mismatch(order Order, in PaymentRequest) *Problem {
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
	pr := newProblem(http.StatusUnprocessableEntity, TypePaymentMismatch, "the payment does not match the order")
	pr.Title = "Payment does not match the order"
	pr.Errors, pr.OrderID = errs, order.OrderID
	return pr
}

// loadOrder reads an order with a strongly consistent GetItem.
func (p *Payments) loadOrder(ctx context.Context, id string) (Order, bool, error) {
	out, err := p.db.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      aws.String(p.orders),
		Key:            map[string]types.AttributeValue{"order_id": &types.AttributeValueMemberS{Value: id}},
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return Order{}, false, err
	}
	if out.Item == nil {
		return Order{}, false, nil
	}
	var o Order
	if err := attributevalue.UnmarshalMap(out.Item, &o); err != nil {
		return Order{}, false, err
	}
	return o, true, nil
}

// Indexes of the capture writes, as reported by
// idemddb.TransactionCanceledError.Index.
const (
	writeOrderPaid     = 0
	writePaymentRecord = 1
)

// captureWrites returns the order's guarded PENDING → PAID update and the
// payment record's Put, in the order of the write* indexes.
func (p *Payments) captureWrites(sub string, pay Payment, rec paymentRecord) ([]types.TransactWriteItem, error) {
	cond := expression.Name("status").Equal(expression.Value(OrderPending)).
		And(expression.Name("customer_id").Equal(expression.Value(sub))).
		And(expression.Name("amount").Equal(expression.Value(pay.Amount))).
		And(expression.Name("currency").Equal(expression.Value(pay.Currency)))
	upd := expression.Set(expression.Name("status"), expression.Value(OrderPaid)).
		Set(expression.Name("payment_id"), expression.Value(pay.PaymentID)).
		Set(expression.Name("paid_at"), expression.Value(pay.CreatedAt))
	ue, err := expression.NewBuilder().WithCondition(cond).WithUpdate(upd).Build()
	if err != nil {
		return nil, err
	}
	item, err := attributevalue.MarshalMap(rec)
	if err != nil {
		return nil, err
	}
	pe, err := expression.NewBuilder().WithCondition(expression.Name("pk").AttributeNotExists()).Build()
	if err != nil {
		return nil, err
	}
	writes := make([]types.TransactWriteItem, 2)
	writes[writeOrderPaid] = types.TransactWriteItem{Update: &types.Update{
		TableName:                 aws.String(p.orders),
		Key:                       map[string]types.AttributeValue{"order_id": &types.AttributeValueMemberS{Value: pay.OrderID}},
		UpdateExpression:          ue.Update(),
		ConditionExpression:       ue.Condition(),
		ExpressionAttributeNames:  ue.Names(),
		ExpressionAttributeValues: ue.Values(),
	}}
	writes[writePaymentRecord] = types.TransactWriteItem{Put: &types.Put{
		TableName:                aws.String(p.payments),
		Item:                     item,
		ConditionExpression:      pe.Condition(),
		ExpressionAttributeNames: pe.Names(),
	}}
	return writes, nil
}

// TransactionConflictProblem is the create-payment function's hook for
// apigw.WithTransactionCanceled. The wrapper calls it with the
// *idemddb.TransactionCanceledError of a cancelled completion (nothing was
// committed and the key was released). When a capture write failed its
// condition – the order was paid (or changed) after the handler checked it,
// by a payment under another Idempotency-Key – it returns the 409
// order-already-paid problem, the same type the handler answers when it
// finds the order paid. Any other cancellation (a transient
// TransactionConflict, say) gets the wrapper's default 409
// transaction-conflict problem.
//
// The provider authorization of the losing attempt stays in the ledger
// without a PAY# record; reconciliation (or a real PSP's void) settles it.
func TransactionConflictProblem(_ context.Context, err *idemddb.TransactionCanceledError) apigw.Problem {
	if err != nil && err.Index >= writeOrderPaid && err.Index <= writePaymentRecord && err.Index < len(err.Reasons) &&
		err.Reasons[err.Index].Code == "ConditionalCheckFailed" {
		p := orderAlreadyPaid("", "")
		return apigw.Problem{Type: p.Type, Title: p.Title, Status: p.Status, Detail: p.Detail}
	}
	return apigw.Problem{Type: apigw.ProblemTransactionConflict, Title: "Conflicting state", Status: http.StatusConflict,
		Detail: "The request conflicts with the current state of a resource; nothing was changed."}
}
