package checkout

import (
	"context"
	"errors"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// The order's payment state machine.
//
// An order is PENDING until a payment attempt locks it: one conditional
// UpdateItem moves it to PAYING and starts attempt N+1, owned by the
// idempotency claim that locked it (attempt_owner, a digest of the claim's
// key) until the claim's lease ends (attempt_until). While the attempt's
// lease lasts no other key can lock the order (409 payment-in-progress);
// the same key can (its claim was released after a 502, or taken over after
// a crash). The provider key and the payment id are derived from the order
// id and the attempt number (ProviderIdempotencyKey, PaymentID), never from
// a client's key.
//
// Whoever locks an order whose earlier attempts are not settled yet
// (attempts settled+1 .. N: normally just N, after a crash or a lapsed
// lease) settles them at the provider before charging anything: an
// attempt's capture IS the order's payment and completes the order;
// anything else is voided (an unknown key gets a VOIDED tombstone, so a
// request still in flight with it cannot capture later). Only then is
// attempt N+1 authorized. Its commit moves PAYING -> PAID (capture) or
// back to PENDING (decline), conditional on the order still being PAYING
// under that very attempt and owner, and records every attempt up to N+1
// as settled. So at most one attempt of an order is ever captured and not
// voided, under any number of keys, crashes and lost replies.

// Order item attribute names, as used in expressions.
const (
	attrOrderID   = "order_id"
	attrCustomer  = "customer_id"
	attrStatus    = "status"
	attrAmount    = "amount"
	attrCurrency  = "currency"
	attrAttempt   = "attempt"
	attrOwner     = "attempt_owner"
	attrUntil     = "attempt_until"
	attrSettled   = "settled"
	attrAttempts  = "attempts"
	attrPaymentID = "payment_id"
	attrPaidAt    = "paid_at"
	attrPaidBy    = "paid_by"
)

// Outcomes of a settled attempt that did not pay the order.
const (
	// OutcomeDeclined: the provider declined the attempt.
	OutcomeDeclined = "DECLINED"
	// OutcomeVoided: the attempt captured, but lost to another attempt (or
	// ended after its lease), and the capture was voided.
	OutcomeVoided = "VOIDED"
	// OutcomeAbandoned: the attempt ended without a charge: it never
	// reached the provider (its key was voided unused), or it only settled
	// earlier attempts.
	OutcomeAbandoned = "ABANDONED"
)

// AttemptOutcome is one settled payment attempt of an order that did not
// pay it, as kept in the order's history (Order.Attempts).
type AttemptOutcome struct {
	Attempt     int    `json:"attempt" dynamodbav:"attempt"`
	Outcome     string `json:"outcome" dynamodbav:"outcome"`
	DeclineCode string `json:"decline_code,omitempty" dynamodbav:"decline_code,omitempty"`
	// At is when the attempt was settled, RFC 3339 in UTC.
	At string `json:"at" dynamodbav:"at"`
}

// PaymentID is the id of the payment attempt n of an order makes: "pay_"
// and the unpadded base64url SHA-256 of "payment\n<order id>\n<n>".
func PaymentID(orderID string, attempt int) string {
	return PaymentIDPrefix + digest("payment\n"+orderID+"\n"+itoa(attempt))
}

// attemptOwner is the owner recorded for the attempts an idempotency claim
// makes: a digest of the claim's key, so it never reveals the client's key,
// and the same for every claim of that key.
func attemptOwner(claimKey string) string { return digest("attempt-owner\n" + claimKey) }

// orderBook drives the state machine on the orders and payments tables for
// the payment handler and the reconciler.
type orderBook struct {
	db               DB
	orders, payments string
	provider         Provider
}

// lockRequest asks for the next attempt of an order.
type lockRequest struct {
	OrderID, CustomerID string
	Amount              int64
	Currency            string
	// Owner and Until are the new attempt's owner and lease end.
	Owner string
	Until time.Time
	Now   time.Time
	// TakeoverOnly locks only a PAYING order whose attempt lease has
	// lapsed (the reconciler), never a PENDING one.
	TakeoverOnly bool
}

// attemptLock is a successful lock: attempt n of the order is owner's.
type attemptLock struct {
	// prev is the order as it was just before the lock.
	prev  Order
	n     int
	owner string
}

// lock starts the next attempt of an order with one conditional UpdateItem.
// The condition checks that the order exists, belongs to r.CustomerID, has
// this amount and currency, and is PENDING, or PAYING with a lapsed attempt
// lease, or PAYING under r.Owner's own attempt. On success it returns the
// lock (the order before it, from ReturnValues ALL_OLD). When the condition
// fails it returns the order that refused it
// (ReturnValuesOnConditionCheckFailure ALL_OLD, or one GetItem on an engine
// that ignores it), nil when there is no such order. Any other error has an
// unknown outcome: the order may be locked by r.Owner, which only r.Owner
// itself (a retry with the same key) or a later takeover can undo.
func (b *orderBook) lock(ctx context.Context, r lockRequest) (*attemptLock, *Order, error) {
	paying := expression.Name(attrStatus).Equal(expression.Value(OrderPaying))
	lapsed := expression.Name(attrUntil).LessThanEqual(expression.Value(r.Now.UnixMilli()))
	state := paying.And(lapsed)
	if !r.TakeoverOnly {
		state = expression.Name(attrStatus).Equal(expression.Value(OrderPending)).
			Or(paying.And(lapsed.Or(expression.Name(attrOwner).Equal(expression.Value(r.Owner)))))
	}
	cond := expression.Name(attrOrderID).AttributeExists().And(
		expression.Name(attrCustomer).Equal(expression.Value(r.CustomerID)),
		expression.Name(attrAmount).Equal(expression.Value(r.Amount)),
		expression.Name(attrCurrency).Equal(expression.Value(r.Currency)),
		state)
	upd := expression.Set(expression.Name(attrStatus), expression.Value(OrderPaying)).
		Set(expression.Name(attrAttempt), expression.Plus(expression.IfNotExists(expression.Name(attrAttempt), expression.Value(0)), expression.Value(1))).
		Set(expression.Name(attrOwner), expression.Value(r.Owner)).
		Set(expression.Name(attrUntil), expression.Value(r.Until.UnixMilli())).
		Set(expression.Name(attrSettled), expression.IfNotExists(expression.Name(attrSettled), expression.Value(0)))
	expr, err := expression.NewBuilder().WithCondition(cond).WithUpdate(upd).Build()
	if err != nil {
		return nil, nil, err
	}
	out, err := b.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                           aws.String(b.orders),
		Key:                                 orderKey(r.OrderID),
		UpdateExpression:                    expr.Update(),
		ConditionExpression:                 expr.Condition(),
		ExpressionAttributeNames:            expr.Names(),
		ExpressionAttributeValues:           expr.Values(),
		ReturnValues:                        types.ReturnValueAllOld,
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	if err != nil {
		var ccf *types.ConditionalCheckFailedException
		if !errors.As(err, &ccf) {
			return nil, nil, err
		}
		item := ccf.Item
		if item == nil {
			if item, _, err = getItem(ctx, b.db, b.orders, attrOrderID, r.OrderID); err != nil {
				return nil, nil, err
			}
		}
		if item == nil {
			return nil, nil, nil
		}
		var o Order
		if err := attributevalue.UnmarshalMap(item, &o); err != nil {
			return nil, nil, err
		}
		return nil, &o, nil
	}
	var prev Order
	if err := attributevalue.UnmarshalMap(out.Attributes, &prev); err != nil {
		return nil, nil, err
	}
	return &attemptLock{prev: prev, n: prev.Attempt + 1, owner: r.Owner}, nil, nil
}

func orderKey(id string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{attrOrderID: &types.AttributeValueMemberS{Value: id}}
}

// settlement is what settling an order's unsettled attempts found.
type settlement struct {
	// capture is an earlier attempt's capture: the order's payment.
	capture *Authorization
	// outcomes are the other settled attempts.
	outcomes []AttemptOutcome
}

// settle settles every attempt the lock's order had not settled
// (prev.Settled+1 .. prev.Attempt) at the provider: the first capture of
// the order's amount and currency is kept as the order's payment; every
// other attempt is voided unless it is already DECLINED or VOIDED. None
// to settle costs nothing; each one costs a Lookup, and a Void unless it
// was already final.
func (b *orderBook) settle(ctx context.Context, l *attemptLock, now time.Time) (settlement, error) {
	var s settlement
	at := rfc3339(now)
	for k := l.prev.Settled + 1; k <= l.prev.Attempt; k++ {
		key := ProviderIdempotencyKey(l.prev.OrderID, k)
		a, found, err := b.provider.Lookup(ctx, key)
		if err != nil {
			return s, err
		}
		if found && a.Status == AuthCaptured && s.capture == nil && a.Amount == l.prev.Amount && a.Currency == l.prev.Currency {
			s.capture = &a
			continue
		}
		switch {
		case !found:
			// Nobody saw the key used: a tombstone, which returns a
			// capture that landed first instead of voiding it.
			if a, err = b.provider.Tombstone(ctx, key); err != nil {
				return s, err
			}
			if a.Status == AuthCaptured && s.capture == nil && a.Amount == l.prev.Amount && a.Currency == l.prev.Currency {
				s.capture = &a
				continue
			}
			if a.Status == AuthCaptured { // seen now, and not the payment
				if a, err = b.provider.Void(ctx, key); err != nil {
					return s, err
				}
			}
		case a.Status == AuthCaptured:
			if a, err = b.provider.Void(ctx, key); err != nil {
				return s, err
			}
		}
		s.outcomes = append(s.outcomes, outcomeOf(k, a, at))
	}
	return s, nil
}

// outcomeOf is the history entry of attempt k, settled as a.
func outcomeOf(k int, a Authorization, at string) AttemptOutcome {
	o := AttemptOutcome{Attempt: k, At: at}
	switch {
	case a.Status == AuthDeclined:
		o.Outcome, o.DeclineCode = OutcomeDeclined, a.DeclineCode
	case a.ID == "":
		o.Outcome = OutcomeAbandoned
	default:
		o.Outcome = OutcomeVoided
	}
	return o
}

// abandoned is the history entry of an attempt that only settled others.
func abandoned(n int, now time.Time) AttemptOutcome {
	return AttemptOutcome{Attempt: n, Outcome: OutcomeAbandoned, At: rfc3339(now)}
}

// Indexes of the payment commit's writes, as reported by
// idemddb.TransactionCanceledError.Index.
const (
	writeOrder         = 0
	writePaymentRecord = 1
)

// paidWrites are the writes that make pay the order's payment under lock
// l: the order's PAYING -> PAID update (see closeAttempt) naming the
// payment and its payer, and the PAY# record's Put, conditional on being
// new, in the order of the write* indexes.
func (b *orderBook) paidWrites(l *attemptLock, pay Payment, rec paymentRecord, paidBy string, outcomes []AttemptOutcome) ([]types.TransactWriteItem, error) {
	order, err := b.closeAttempt(l, expression.Set(expression.Name(attrStatus), expression.Value(OrderPaid)).
		Set(expression.Name(attrPaymentID), expression.Value(pay.PaymentID)).
		Set(expression.Name(attrPaidAt), expression.Value(pay.CreatedAt)).
		Set(expression.Name(attrPaidBy), expression.Value(paidBy)), outcomes)
	if err != nil {
		return nil, err
	}
	put, err := newItemPut(b.payments, attrPK, rec)
	if err != nil {
		return nil, err
	}
	writes := make([]types.TransactWriteItem, 2)
	writes[writeOrder], writes[writePaymentRecord] = order, put
	return writes, nil
}

// pendingWrite is the order's PAYING -> PENDING update ending lock l
// without a payment (see closeAttempt).
func (b *orderBook) pendingWrite(l *attemptLock, outcomes []AttemptOutcome) (types.TransactWriteItem, error) {
	return b.closeAttempt(l, expression.Set(expression.Name(attrStatus), expression.Value(OrderPending)), outcomes)
}

// closeAttempt is the order update that ends attempt l.n with upd:
// conditional on the order still being PAYING under that attempt and
// owner, it marks every attempt up to l.n settled, appends outcomes to the
// history and drops the attempt's lease.
func (b *orderBook) closeAttempt(l *attemptLock, upd expression.UpdateBuilder, outcomes []AttemptOutcome) (types.TransactWriteItem, error) {
	cond := expression.Name(attrStatus).Equal(expression.Value(OrderPaying)).And(
		expression.Name(attrAttempt).Equal(expression.Value(l.n)),
		expression.Name(attrOwner).Equal(expression.Value(l.owner)))
	upd = upd.Set(expression.Name(attrSettled), expression.Value(l.n)).
		Remove(expression.Name(attrOwner)).
		Remove(expression.Name(attrUntil))
	if len(outcomes) > 0 {
		upd = upd.Set(expression.Name(attrAttempts), expression.ListAppend(
			expression.IfNotExists(expression.Name(attrAttempts), expression.Value([]AttemptOutcome{})),
			expression.Value(outcomes)))
	}
	expr, err := expression.NewBuilder().WithCondition(cond).WithUpdate(upd).Build()
	if err != nil {
		return types.TransactWriteItem{}, err
	}
	return types.TransactWriteItem{Update: &types.Update{
		TableName:                 aws.String(b.orders),
		Key:                       orderKey(l.prev.OrderID),
		UpdateExpression:          expr.Update(),
		ConditionExpression:       expr.Condition(),
		ExpressionAttributeNames:  expr.Names(),
		ExpressionAttributeValues: expr.Values(),
	}}, nil
}

// commit writes writes in one TransactWriteItems of its own, for a commit
// that must not wait for an idempotency record (an answer the wrapper does
// not store). Its client request token, derived from the order and the
// attempt, makes an SDK retry of it idempotent. A cancellation (the order
// left lock l's attempt meanwhile) is a *types.TransactionCanceledException;
// any other error has an unknown outcome.
func (b *orderBook) commit(ctx context.Context, l *attemptLock, writes []types.TransactWriteItem) error {
	_, err := b.db.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{
		TransactItems:      writes,
		ClientRequestToken: aws.String(digest("commit\n" + l.prev.OrderID + "\n" + itoa(l.n))[:36]),
	})
	return err
}

// paymentFor is the payment a capture makes of order o. It is created when
// the provider captured (now if the provider gave no time), so whoever
// records it – the attempt itself, or a takeover that adopts it – records
// the same payment.
func paymentFor(o Order, a Authorization, now time.Time) (Payment, paymentRecord) {
	id := a.PaymentID
	if id == "" {
		id = PaymentID(o.OrderID, a.Attempt)
	}
	at := a.CreatedAt
	if at.IsZero() {
		at = now
	}
	pay := Payment{
		PaymentID: id, OrderID: o.OrderID, Amount: a.Amount, Currency: a.Currency,
		Status: PaymentCaptured, CreatedAt: rfc3339(at),
	}
	return pay, paymentRecord{
		PK: PaymentKeyPrefix + id, Kind: "PAYMENT", Payment: pay, CustomerID: o.CustomerID,
		PaymentMethod: a.PaymentMethod, AuthorizationID: a.ID, ProviderIdempotencyKey: a.Key, Attempt: a.Attempt,
	}
}

// rfc3339 formats t as RFC 3339 in UTC, to the second.
func rfc3339(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// secondsUntil is the whole seconds from now until t, rounded up, at least 1.
func secondsUntil(t, now time.Time) int {
	d := t.Sub(now)
	s := int((d + time.Second - 1) / time.Second)
	return max(s, 1)
}
