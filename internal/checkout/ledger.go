package checkout

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
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

// ledgerRecord is an AUTH# item. A tombstone (a key voided before any
// authorization) has only PK, Kind, IdempotencyKey, Status VOIDED and the
// times.
type ledgerRecord struct {
	PK              string            `dynamodbav:"pk"`
	Kind            string            `dynamodbav:"kind"`
	AuthorizationID string            `dynamodbav:"authorization_id,omitempty"`
	IdempotencyKey  string            `dynamodbav:"idempotency_key"`
	Status          AuthStatus        `dynamodbav:"status"`
	DeclineCode     string            `dynamodbav:"decline_code,omitempty"`
	OrderID         string            `dynamodbav:"order_id,omitempty"`
	Attempt         int               `dynamodbav:"attempt,omitempty"`
	PaymentID       string            `dynamodbav:"payment_id,omitempty"`
	Amount          int64             `dynamodbav:"amount,omitempty"`
	Currency        string            `dynamodbav:"currency,omitempty"`
	PaymentMethod   string            `dynamodbav:"payment_method,omitempty"`
	Metadata        map[string]string `dynamodbav:"metadata,omitempty"`
	CreatedAt       string            `dynamodbav:"created_at"`
	// CreatedMS is CreatedAt in epoch milliseconds, for range filters.
	CreatedMS    int64  `dynamodbav:"created_ms"`
	VoidedAt     string `dynamodbav:"voided_at,omitempty"`
	ReconciledAt string `dynamodbav:"reconciled_at,omitempty"`
}

// The ledger item kind, and the payments table's key attribute.
const (
	kindAuthorization = "AUTHORIZATION"
	attrPK            = "pk"
)

func (r *ledgerRecord) authorization(replayed bool) Authorization {
	created, _ := time.Parse(time.RFC3339Nano, r.CreatedAt)
	return Authorization{
		Key: r.IdempotencyKey, ID: r.AuthorizationID, Status: r.Status, DeclineCode: r.DeclineCode,
		PaymentID: r.PaymentID, OrderID: r.OrderID, Attempt: r.Attempt, Amount: r.Amount, Currency: r.Currency,
		PaymentMethod: r.PaymentMethod, Metadata: r.Metadata, CreatedAt: created, Replayed: replayed,
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
// captures everything else. Lookup is one strongly consistent GetItem,
// Void one conditional UpdateItem, and the Ledger is also the reconciler's
// CaptureReport (a filtered Scan: a real PSP's settlement report, or a
// sparse index, in production). Every call waits the simulated latency
// first.
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
// *KeyReuseError. A voided key replays AuthVoided whatever the parameters. Failures are *ProviderError (ErrProviderUnavailable),
// after which the outcome is unknown and the request must be retried with
// the same key.
func (l *Ledger) Authorize(ctx context.Context, req AuthorizationRequest) (Authorization, error) {
	if req.IdempotencyKey == "" {
		return Authorization{}, errors.New("checkout: AuthorizationRequest.IdempotencyKey is required")
	}
	if err := sleep(ctx, l.latency); err != nil {
		return Authorization{}, &ProviderError{Op: "authorize", Err: err}
	}
	now := l.now()
	rec := ledgerRecord{
		PK:              AuthorizationKeyPrefix + req.IdempotencyKey,
		Kind:            kindAuthorization,
		AuthorizationID: "auth_" + rand.Text(),
		IdempotencyKey:  req.IdempotencyKey,
		Status:          AuthCaptured,
		OrderID:         req.OrderID,
		Attempt:         req.Attempt,
		PaymentID:       req.PaymentID,
		Amount:          req.Amount,
		Currency:        req.Currency,
		PaymentMethod:   req.PaymentMethod,
		Metadata:        req.Metadata,
		CreatedAt:       now.UTC().Format(time.RFC3339Nano),
		CreatedMS:       now.UnixMilli(),
	}
	if req.PaymentMethod == DeclinedPaymentMethod {
		rec.Status, rec.DeclineCode = AuthDeclined, "card_declined"
	}
	item, err := attributevalue.MarshalMap(rec)
	if err != nil {
		return Authorization{}, &ProviderError{Op: "encode", Err: err}
	}
	expr, err := expression.NewBuilder().WithCondition(expression.Name(attrPK).AttributeNotExists()).Build()
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
	old, err := l.current(ctx, rec.PK, ccf)
	if err != nil {
		return Authorization{}, err
	}
	if old == nil {
		return Authorization{}, &ProviderError{Op: "GetItem", Err: errors.New("authorization record vanished")}
	}
	var prev ledgerRecord
	if err := attributevalue.UnmarshalMap(old, &prev); err != nil {
		return Authorization{}, &ProviderError{Op: "decode", Err: err}
	}
	switch {
	case prev.Status == AuthVoided:
		// Voided, possibly before it was ever used: nothing to charge.
		return prev.authorization(true), nil
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

// current returns the item that failed a condition: the one the engine sent
// back (ALL_OLD), or else one strongly consistent read of it; nil when there
// is none.
func (l *Ledger) current(ctx context.Context, pk string, ccf *types.ConditionalCheckFailedException) (map[string]types.AttributeValue, error) {
	if ccf.Item != nil {
		return ccf.Item, nil
	}
	item, _, err := getItem(ctx, l.db, l.table, attrPK, pk)
	if err != nil {
		return nil, &ProviderError{Op: "GetItem", Err: err}
	}
	return item, nil
}

// Lookup returns the outcome recorded for providerKey with one strongly
// consistent GetItem; found is false when the key was never used.
func (l *Ledger) Lookup(ctx context.Context, providerKey string) (Authorization, bool, error) {
	if err := sleep(ctx, l.latency); err != nil {
		return Authorization{}, false, &ProviderError{Op: "lookup", Err: err}
	}
	item, found, err := getItem(ctx, l.db, l.table, attrPK, AuthorizationKeyPrefix+providerKey)
	if err != nil || !found {
		if err != nil {
			err = &ProviderError{Op: "GetItem", Err: err}
		}
		return Authorization{}, false, err
	}
	var rec ledgerRecord
	if err := attributevalue.UnmarshalMap(item, &rec); err != nil {
		return Authorization{}, false, &ProviderError{Op: "decode", Err: err}
	}
	return rec.authorization(true), true, nil
}

// Void makes providerKey unable to charge, with one conditional UpdateItem:
// a CAPTURED authorization becomes VOIDED (voided_at set), an unknown key
// becomes a VOIDED tombstone (so an Authorize still in flight with it
// replays VOIDED instead of capturing), and a DECLINED or VOIDED one is
// left unchanged. It returns the outcome the key now has.
func (l *Ledger) Void(ctx context.Context, providerKey string) (Authorization, error) {
	return l.void(ctx, providerKey, expression.Name(attrPK).AttributeNotExists().Or(expression.Name(attrStatus).Equal(expression.Value(AuthCaptured))))
}

// Tombstone is Void for a key nobody saw used: its one conditional
// UpdateItem writes the VOIDED tombstone only where no authorization
// exists, so a capture that landed first (even while the tombstone was in
// flight) is returned unchanged, never voided.
func (l *Ledger) Tombstone(ctx context.Context, providerKey string) (Authorization, error) {
	return l.void(ctx, providerKey, expression.Name(attrPK).AttributeNotExists())
}

// void marks providerKey VOIDED where cond holds, and returns the outcome
// the key has after it.
func (l *Ledger) void(ctx context.Context, providerKey string, cond expression.ConditionBuilder) (Authorization, error) {
	if providerKey == "" {
		return Authorization{}, errors.New("checkout: Void needs a provider key")
	}
	if err := sleep(ctx, l.latency); err != nil {
		return Authorization{}, &ProviderError{Op: "void", Err: err}
	}
	now := l.now()
	pk := AuthorizationKeyPrefix + providerKey
	upd := expression.Set(expression.Name(attrStatus), expression.Value(AuthVoided)).
		Set(expression.Name("voided_at"), expression.Value(now.UTC().Format(time.RFC3339Nano))).
		Set(expression.Name("kind"), expression.IfNotExists(expression.Name("kind"), expression.Value(kindAuthorization))).
		Set(expression.Name("idempotency_key"), expression.Value(providerKey)).
		Set(expression.Name("created_at"), expression.IfNotExists(expression.Name("created_at"), expression.Value(now.UTC().Format(time.RFC3339Nano)))).
		Set(expression.Name("created_ms"), expression.IfNotExists(expression.Name("created_ms"), expression.Value(now.UnixMilli())))
	expr, err := expression.NewBuilder().WithCondition(cond).WithUpdate(upd).Build()
	if err != nil {
		return Authorization{}, &ProviderError{Op: "encode", Err: err}
	}
	out, err := l.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                           aws.String(l.table),
		Key:                                 map[string]types.AttributeValue{attrPK: &types.AttributeValueMemberS{Value: pk}},
		UpdateExpression:                    expr.Update(),
		ConditionExpression:                 expr.Condition(),
		ExpressionAttributeNames:            expr.Names(),
		ExpressionAttributeValues:           expr.Values(),
		ReturnValues:                        types.ReturnValueAllNew,
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	item, unchanged := map[string]types.AttributeValue(nil), false
	var ccf *types.ConditionalCheckFailedException
	switch {
	case err == nil:
		item = out.Attributes
	case errors.As(err, &ccf):
		// Already DECLINED or VOIDED (or, for a tombstone, used): unchanged.
		unchanged = true
		if item, err = l.current(ctx, pk, ccf); err != nil {
			return Authorization{}, err
		}
	default:
		return Authorization{}, &ProviderError{Op: "UpdateItem", Err: err}
	}
	var rec ledgerRecord
	if err := attributevalue.UnmarshalMap(item, &rec); err != nil || rec.Status == "" {
		return Authorization{}, &ProviderError{Op: "decode", Err: fmt.Errorf("void of %s: unreadable record (%v)", providerKey, err)}
	}
	return rec.authorization(unchanged), nil
}

// OpenCaptures returns up to limit CAPTURED authorizations created before
// the given time and not marked reconciled, oldest pages first as the Scan
// meets them. It is a filtered Scan of the payments table: fine for this
// simulated provider; with a real PSP this is its settlement report.
func (l *Ledger) OpenCaptures(ctx context.Context, before time.Time, limit int) ([]Authorization, error) {
	if err := sleep(ctx, l.latency); err != nil {
		return nil, &ProviderError{Op: "report", Err: err}
	}
	filter := expression.Name(attrPK).BeginsWith(AuthorizationKeyPrefix).
		And(expression.Name(attrStatus).Equal(expression.Value(AuthCaptured))).
		And(expression.Name("created_ms").LessThan(expression.Value(before.UnixMilli()))).
		And(expression.Name("reconciled_at").AttributeNotExists())
	items, err := scanFiltered(ctx, l.db, l.table, filter, limit)
	if err != nil {
		return nil, &ProviderError{Op: "Scan", Err: err}
	}
	out := make([]Authorization, 0, len(items))
	for _, it := range items {
		var rec ledgerRecord
		if err := attributevalue.UnmarshalMap(it, &rec); err != nil {
			return nil, &ProviderError{Op: "decode", Err: err}
		}
		out = append(out, rec.authorization(true))
	}
	return out, nil
}

// MarkReconciled sets reconciled_at on the CAPTURED authorization of
// providerKey, so OpenCaptures no longer returns it. A key that is not
// CAPTURED (voided meanwhile, or unknown) is left alone.
func (l *Ledger) MarkReconciled(ctx context.Context, providerKey string) error {
	if err := sleep(ctx, l.latency); err != nil {
		return &ProviderError{Op: "mark", Err: err}
	}
	expr, err := expression.NewBuilder().
		WithCondition(expression.Name(attrStatus).Equal(expression.Value(AuthCaptured))).
		WithUpdate(expression.Set(expression.Name("reconciled_at"), expression.Value(l.now().UTC().Format(time.RFC3339Nano)))).
		Build()
	if err != nil {
		return &ProviderError{Op: "encode", Err: err}
	}
	_, err = l.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 aws.String(l.table),
		Key:                       map[string]types.AttributeValue{attrPK: &types.AttributeValueMemberS{Value: AuthorizationKeyPrefix + providerKey}},
		UpdateExpression:          expr.Update(),
		ConditionExpression:       expr.Condition(),
		ExpressionAttributeNames:  expr.Names(),
		ExpressionAttributeValues: expr.Values(),
	})
	var ccf *types.ConditionalCheckFailedException
	if err != nil && !errors.As(err, &ccf) {
		return &ProviderError{Op: "UpdateItem", Err: err}
	}
	return nil
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
