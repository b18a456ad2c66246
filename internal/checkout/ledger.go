package checkout

import (
	"context"
	"crypto/rand"
	"errors"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// Ledger key prefixes in the payments table (key pk).
const (
	// AuthorizationKeyPrefix + provider idempotency key: one ledger record
	// per authorization attempt.
	AuthorizationKeyPrefix = "AUTH#"
	// PaymentKeyPrefix + payment id: one record per captured payment.
	PaymentKeyPrefix = "PAY#"
)

// DeclinedPaymentMethod is the simulated payment method the Ledger always
// declines, with decline code "card_declined".
const DeclinedPaymentMethod = "card_declined"

// ledgerRecord is an AUTH# item.
type ledgerRecord struct {
	PK              string `dynamodbav:"pk"`
	Kind            string `dynamodbav:"kind"`
	AuthorizationID string `dynamodbav:"authorization_id"`
	IdempotencyKey  string `dynamodbav:"idempotency_key"`
	Status          string `dynamodbav:"status"`
	DeclineCode     string `dynamodbav:"decline_code,omitempty"`
	OrderID         string `dynamodbav:"order_id"`
	PaymentID       string `dynamodbav:"payment_id"`
	Amount          int64  `dynamodbav:"amount"`
	Currency        string `dynamodbav:"currency"`
	PaymentMethod   string `dynamodbav:"payment_method"`
	CreatedAt       string `dynamodbav:"created_at"`
}

func (r *ledgerRecord) authorization(replayed bool) Authorization {
	created, _ := time.Parse(time.RFC3339Nano, r.CreatedAt)
	return Authorization{
		ID: r.AuthorizationID, Status: r.Status, DeclineCode: r.DeclineCode,
		PaymentID: r.PaymentID, OrderID: r.OrderID, Amount: r.Amount, Currency: r.Currency,
		CreatedAt: created, Replayed: replayed,
	}
}

// LedgerConfig configures a Ledger.
type LedgerConfig struct {
	// DB reaches the payments table.
	DB DB
	// Table is the payments table (key pk).
	Table string
	// Latency is the simulated provider round trip (PSP_LATENCY_MS).
	Latency time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Ledger is the Provider shipped with the API: a simulated PSP that records
// every authorization attempt in the payments table (AUTH#<provider key>)
// with its outcome, and is idempotent on the provider key as Stripe is: the
// first request with a key is recorded with one conditional PutItem, and a
// repeat (a retry after a crash or a lost response) gets the recorded
// outcome without authorizing again. It declines DeclinedPaymentMethod and
// captures everything else.
type Ledger struct {
	db      DB
	table   string
	latency time.Duration
	now     func() time.Time
}

// NewLedger returns a Ledger.
func NewLedger(cfg LedgerConfig) (*Ledger, error) {
	if cfg.DB == nil || cfg.Table == "" {
		return nil, errors.New("checkout: LedgerConfig needs DB and Table")
	}
	if cfg.Latency < 0 {
		return nil, errors.New("checkout: LedgerConfig.Latency is negative")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Ledger{db: cfg.DB, table: cfg.Table, latency: cfg.Latency, now: cfg.Now}, nil
}

// Authorize authorizes and captures req, at most once per
// req.IdempotencyKey. A repeat with the same parameters returns the first
// outcome with Replayed set; with other parameters it returns a
// *KeyReuseError. Failures are *ProviderError (ErrProviderUnavailable),
// after which the outcome is unknown and the request must be retried with
// the same key.
func (l *Ledger) Authorize(ctx context.Context, req AuthorizationRequest) (Authorization, error) {
	if req.IdempotencyKey == "" {
		return Authorization{}, errors.New("checkout: AuthorizationRequest.IdempotencyKey is required")
	}
	if err := sleep(ctx, l.latency); err != nil {
		return Authorization{}, &ProviderError{Op: "authorize", Err: err}
	}
	rec := ledgerRecord{
		PK:              AuthorizationKeyPrefix + req.IdempotencyKey,
		Kind:            "AUTHORIZATION",
		AuthorizationID: "auth_" + rand.Text(),
		IdempotencyKey:  req.IdempotencyKey,
		Status:          AuthCaptured,
		OrderID:         req.OrderID,
		PaymentID:       req.PaymentID,
		Amount:          req.Amount,
		Currency:        req.Currency,
		PaymentMethod:   req.PaymentMethod,
		CreatedAt:       l.now().UTC().Format(time.RFC3339Nano),
	}
	if req.PaymentMethod == DeclinedPaymentMethod {
		rec.Status, rec.DeclineCode = AuthDeclined, "card_declined"
	}
	item, err := attributevalue.MarshalMap(rec)
	if err != nil {
		return Authorization{}, &ProviderError{Op: "encode", Err: err}
	}
	expr, err := expression.NewBuilder().WithCondition(expression.Name("pk").AttributeNotExists()).Build()
	if err != nil {
		return Authorization{}, &ProviderError{Op: "encode", Err: err}
	}
	_, err = l.db.PutItem(ctx, &dynamodb.PutItemInput{
		TableName:                           aws.String(l.table),
		Item:                                item,
		ConditionExpression:                 expr.Condition(),
		ExpressionAttributeNames:            expr.Names(),
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	if err == nil {
		return rec.authorization(false), nil
	}
	var ccf *types.ConditionalCheckFailedException
	if !errors.As(err, &ccf) {
		return Authorization{}, &ProviderError{Op: "PutItem", Err: err}
	}
	old := ccf.Item
	if old == nil {
		// The engine did not return the item with the failure: read it.
		out, err := l.db.GetItem(ctx, &dynamodb.GetItemInput{
			TableName:      aws.String(l.table),
			Key:            map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: rec.PK}},
			ConsistentRead: aws.Bool(true),
		})
		if err != nil {
			return Authorization{}, &ProviderError{Op: "GetItem", Err: err}
		}
		if out.Item == nil {
			return Authorization{}, &ProviderError{Op: "GetItem", Err: errors.New("authorization record vanished")}
		}
		old = out.Item
	}
	var prev ledgerRecord
	if err := attributevalue.UnmarshalMap(old, &prev); err != nil {
		return Authorization{}, &ProviderError{Op: "decode", Err: err}
	}
	switch {
	case prev.OrderID != req.OrderID:
		return Authorization{}, &KeyReuseError{Key: req.IdempotencyKey, Field: "order_id"}
	case prev.Amount != req.Amount:
		return Authorization{}, &KeyReuseError{Key: req.IdempotencyKey, Field: "amount"}
	case prev.Currency != req.Currency:
		return Authorization{}, &KeyReuseError{Key: req.IdempotencyKey, Field: "currency"}
	case prev.PaymentMethod != req.PaymentMethod:
		return Authorization{}, &KeyReuseError{Key: req.IdempotencyKey, Field: "payment_method"}
	}
	return prev.authorization(true), nil
}

// sleep waits d, or until ctx ends. It simulates the provider's latency.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
