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
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// Order limits.
const (
	// MaxOrderItems caps the items of one order.
	MaxOrderItems = 100
	// MaxSKUBytes caps a SKU.
	MaxSKUBytes = 64
)

// OrderIDPrefix starts every order id.
const OrderIDPrefix = "ord_"

// Item is one line of an order. UnitPrice is in minor units.
type Item struct {
	SKU       string `json:"sku" dynamodbav:"sku"`
	Quantity  int64  `json:"quantity" dynamodbav:"quantity"`
	UnitPrice int64  `json:"unit_price" dynamodbav:"unit_price"`
}

// Order is an order as stored in the orders table (key order_id) and, less
// its owner and the attempt's internals, as returned to the client.
type Order struct {
	OrderID string `json:"order_id" dynamodbav:"order_id"`
	// CustomerID is the owner: the JWT sub of the caller that created it.
	CustomerID string `json:"-" dynamodbav:"customer_id"`
	// Status is OrderPending, OrderPaying or OrderPaid (see attempt.go).
	Status OrderStatus `json:"status" dynamodbav:"status"`
	// Amount is Σ quantity × unit_price, in minor units.
	Amount   int64  `json:"amount" dynamodbav:"amount"`
	Currency string `json:"currency" dynamodbav:"currency"`
	Items    []Item `json:"items" dynamodbav:"items"`
	// CreatedAt is RFC 3339 in UTC.
	CreatedAt string `json:"created_at" dynamodbav:"created_at"`

	// Attempt is the number of the latest payment attempt (0: none yet).
	Attempt int `json:"attempt,omitempty" dynamodbav:"attempt"`
	// AttemptOwner is the digest of the idempotency key holding the
	// current attempt, and AttemptUntil (epoch ms) the end of its lease;
	// both are set only while the order is PAYING.
	AttemptOwner string `json:"-" dynamodbav:"attempt_owner,omitempty"`
	AttemptUntil int64  `json:"-" dynamodbav:"attempt_until,omitempty"`
	// AttemptExpiresAt is AttemptUntil in RFC 3339, shown while PAYING:
	// after it another Idempotency-Key may take the attempt over.
	AttemptExpiresAt string `json:"attempt_expires_at,omitempty" dynamodbav:"-"`
	// Settled is the highest attempt number whose outcome is final.
	Settled int `json:"-" dynamodbav:"settled"`
	// Attempts is the history of settled attempts that did not pay.
	Attempts []AttemptOutcome `json:"attempts,omitempty" dynamodbav:"attempts,omitempty"`

	// PaymentID and PaidAt are set by the payment that paid the order,
	// PaidBy (the digest of its idempotency key) too.
	PaymentID string `json:"payment_id,omitempty" dynamodbav:"payment_id,omitempty"`
	PaidAt    string `json:"paid_at,omitempty" dynamodbav:"paid_at,omitempty"`
	PaidBy    string `json:"-" dynamodbav:"paid_by,omitempty"`

	// ReceiptID is shown once the fulfilment has created the paid order's
	// receipt (it is not stored on the order: see Fulfilment).
	ReceiptID string `json:"receipt_id,omitempty" dynamodbav:"-"`
}

// view is o as a client sees it.
func (o Order) view() Order {
	if o.Status == OrderPaying && o.AttemptUntil > 0 {
		o.AttemptExpiresAt = time.UnixMilli(o.AttemptUntil).UTC().Format(time.RFC3339Nano)
	}
	return o
}

// payment is the payment that paid o, as POST /payments answered it.
func (o Order) payment() Payment {
	return Payment{PaymentID: o.PaymentID, OrderID: o.OrderID, Amount: o.Amount, Currency: o.Currency,
		Status: PaymentCaptured, CreatedAt: o.PaidAt}
}

// OrderRequest is a validated POST /orders body.
type OrderRequest struct {
	Currency string
	Items    []Item
	// Amount is the overflow-checked total.
	Amount int64
}

type orderBody struct {
	Currency *string          `json:"currency"`
	Items    *[]rawJSONObject `json:"items"`
}

type itemBody struct {
	SKU       *string `json:"sku"`
	Quantity  *int64  `json:"quantity"`
	UnitPrice *int64  `json:"unit_price"`
}

// ParseOrderRequest decodes and validates a POST /orders body. Its error is
// a *ValidationError naming every invalid field.
func ParseOrderRequest(body []byte) (OrderRequest, error) {
	var in orderBody
	var v validator
	if fe := decodeStrict(body, &in, ""); fe != nil {
		v.addErr(fe)
		return OrderRequest{}, v.err()
	}
	out := OrderRequest{Currency: v.checkCurrency("currency", in.Currency)}
	switch {
	case in.Items == nil:
		v.add("items", "is required")
		return out, v.err()
	case len(*in.Items) == 0:
		v.add("items", "must contain at least one item")
		return out, v.err()
	case len(*in.Items) > MaxOrderItems:
		v.add("items", "must contain at most "+itoa(MaxOrderItems)+" items")
		return out, v.err()
	}
	total, totalOK := int64(0), true
	for i, raw := range *in.Items {
		path := "items[" + itoa(i) + "]"
		var ib itemBody
		if fe := decodeStrict(raw, &ib, path); fe != nil {
			v.addErr(fe)
			totalOK = false
			continue
		}
		it := Item{SKU: v.checkToken(path+".sku", ib.SKU, MaxSKUBytes)}
		var qok, pok bool
		it.Quantity, qok = v.checkInt(path+".quantity", ib.Quantity, 1, "must be at least 1")
		it.UnitPrice, pok = v.checkInt(path+".unit_price", ib.UnitPrice, 0, "must not be negative")
		ok := qok && pok
		out.Items = append(out.Items, it)
		if !ok || !totalOK {
			totalOK = false
			continue
		}
		line, ok := mulAmount(it.Quantity, it.UnitPrice)
		if !ok {
			v.add(path, "quantity × unit_price overflows a 64-bit amount")
			totalOK = false
			continue
		}
		if total, ok = addAmount(total, line); !ok {
			v.add("items", "the order total overflows a 64-bit amount")
			totalOK = false
		}
	}
	if totalOK && total <= 0 {
		v.add("items", "the order total must be greater than zero")
	}
	out.Amount = total
	if err := v.err(); err != nil {
		return OrderRequest{}, err
	}
	return out, nil
}

// OrdersConfig configures Orders.
type OrdersConfig struct {
	// DB reads orders (GET /orders/{id}).
	DB DB
	// Table is the orders table (key order_id).
	Table string
	// ReceiptsTable, when set, is the receipts table (key receipt_id) GET
	// /orders/{id} reads a paid order's receipt id from.
	ReceiptsTable string
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Logger receives server-side failures (default slog.Default()).
	Logger *slog.Logger
}

// Orders serves POST /orders and GET /orders/{id}.
type Orders struct {
	db       DB
	table    string
	receipts string
	now      func() time.Time
	logger   *slog.Logger
}

// Routes of the create-order function (API Gateway route keys).
const (
	RouteCreateOrder = "POST /orders"
	RouteGetOrder    = "GET /orders/{id}"
)

// NewOrders returns the orders handlers' owner.
func NewOrders(cfg OrdersConfig) (*Orders, error) {
	if cfg.DB == nil || cfg.Table == "" {
		return nil, errors.New("checkout: OrdersConfig needs DB and Table")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Orders{db: cfg.DB, table: cfg.Table, receipts: cfg.ReceiptsTable, now: cfg.Now, logger: cfg.Logger}, nil
}

// Handle is the create-order function's handler: it dispatches on the
// route key to CreateOrder (POST /orders, which the wrapper makes
// idempotent) and GetOrder (GET /orders/{id}, which the wrapper passes
// through: no Idempotency-Key needed).
func (o *Orders) Handle(ctx context.Context, req events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	return dispatch(ctx, o.logger, req, map[string]apigw.HandlerV2{RouteCreateOrder: o.CreateOrder, RouteGetOrder: o.GetOrder})
}

// GetOrder handles GET /orders/{id}: 200 with the order (its status, its
// attempts and, once paid, its payment id and, once the fulfilment made
// it, its receipt id) when it belongs to the caller; the same 404 for
// another caller's order and an unknown id. It reads with one strongly
// consistent GetItem, and a paid order's receipt with a second one (with
// ReceiptsTable set).
func (o *Orders) GetOrder(ctx context.Context, req events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	return serveOwned(ctx, o.logger, o.db, o.table, attrOrderID, "", req, orderNotFound(), o.view)
}

// view is the caller's own order as GET /orders/{id} shows it.
func (o *Orders) view(ctx context.Context, order Order) (Order, error) {
	order = order.view()
	if o.receipts == "" || order.Status != OrderPaid || order.PaymentID == "" {
		return order, nil
	}
	id := ReceiptID(order.OrderID, order.PaymentID)
	if _, found, err := getItem(ctx, o.db, o.receipts, attrReceiptID, id); err != nil || !found {
		return order, err
	}
	order.ReceiptID = id
	return order, nil
}

// OrderID returns the id of the order created under claim: stable across
// takeovers of the claim after a crash.
func OrderID(claim *idemddb.Claim) string { return OrderIDPrefix + claim.ResourceID }

// CreateOrder handles POST /orders inside the idempotency wrapper. It
// answers 201 with the order and its Location, and adds the order's Put
// (conditional on the id being new) to the claim, so the order exists if and
// only if the idempotency record completes. Client errors are problem
// responses; the error result is always nil.
func (o *Orders) CreateOrder(ctx context.Context, req events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	a, p := accept(ctx, o.logger, "CreateOrder", req, ParseOrderRequest)
	if p != nil {
		return p.ResponseV2(), nil
	}
	claim, sub, in := a.claim, a.caller, a.in
	order := Order{
		OrderID:    OrderID(claim),
		CustomerID: sub,
		Status:     OrderPending,
		Amount:     in.Amount,
		Currency:   in.Currency,
		Items:      in.Items,
		CreatedAt:  o.now().UTC().Format(time.RFC3339),
	}
	put, err := newItemPut(o.table, attrOrderID, order)
	if err == nil {
		err = checkTransition("", order.Status)
	}
	if err != nil {
		o.logger.ErrorContext(ctx, "checkout: encode order", "error", err)
		return internalError("could not encode the order").ResponseV2(), nil
	}
	claim.AddWrites(put)
	return jsonResponse(http.StatusCreated, order.view(), map[string]string{headerLocation: "/orders/" + order.OrderID})
}

// newItemPut is the Put of v as a new item of table, conditional on its
// key attribute keyName being unused: an order, a payment record, a
// receipt.
func newItemPut(table, keyName string, v any) (types.TransactWriteItem, error) {
	item, err := attributevalue.MarshalMap(v)
	if err != nil {
		return types.TransactWriteItem{}, err
	}
	expr, err := expression.NewBuilder().WithCondition(expression.Name(keyName).AttributeNotExists()).Build()
	if err != nil {
		return types.TransactWriteItem{}, err
	}
	return types.TransactWriteItem{Put: &types.Put{
		TableName:                aws.String(table),
		Item:                     item,
		ConditionExpression:      expr.Condition(),
		ExpressionAttributeNames: expr.Names(),
	}}, nil
}

func itoa(n int) string { return strconv.Itoa(n) }
