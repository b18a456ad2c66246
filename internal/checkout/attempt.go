package checkout

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/acme/idemcheckout/pkg/idemddb"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// The order's payment state machine. This file holds all of it: its
// vocabulary (OrderStatus, AuthStatus, Outcome), its transition table
// (orderTransitions), and its one driver (machine.run), which the payment
// handler (Payments.CreatePayment) and the reconciler
// (Reconciler.settleOrder) both call.
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
//
// The order transitions (orderTransitions states them in code;
// TestTransitionTableMatchesDoc checks that this table lists the same):
//
//	from     to       by
//	-        PENDING  CreateOrder: a new order
//	PENDING  PAYING   lock: attempt N+1 starts
//	PAYING   PAYING   lock: a lapsed attempt is taken over, or its own key comes back
//	PAYING   PAID     commit: the new attempt's capture, or an earlier attempt's
//	PAYING   PENDING  commit: a decline, or (reconciler) every attempt voided
//
// The driver, machine.run, in order: lock (PENDING or a lapsed PAYING ->
// PAYING), settle the earlier attempts, authorize the new one (the payment
// handler; the reconciler settles only), commit (PAYING -> PAID or back to
// PENDING). Its commit joins the caller's idempotency claim
// (Claim.AddWrites), except a payment request's completion of the order
// with another key's capture, which commits on its own (machine.commit).
//
// To add a transition: a row in the table above, one in orderTransitions,
// and the step of machine.run that makes it.

// OrderStatus is an order's state in the payment state machine, as stored
// in the order's status attribute.
type OrderStatus string

// Order statuses: PENDING -> PAYING -> PAID, and PAYING -> PENDING when an
// attempt ends without a payment (see orderTransitions).
const (
	OrderPending OrderStatus = "PENDING"
	OrderPaying  OrderStatus = "PAYING"
	OrderPaid    OrderStatus = "PAID"
)

// AuthStatus is a provider's outcome for an idempotency key
// (Authorization.Status), as the Ledger stores it in an AUTH# record.
type AuthStatus string

// Authorization statuses.
const (
	AuthCaptured AuthStatus = "CAPTURED"
	AuthDeclined AuthStatus = "DECLINED"
	// AuthVoided: the authorization was reversed, or its key was voided
	// before any authorization with it (a tombstone): a later Authorize
	// with the key replays VOIDED and charges nothing.
	AuthVoided AuthStatus = "VOIDED"
)

// Outcome is how a settled attempt that did not pay its order ended
// (AttemptOutcome.Outcome, in the order's history).
type Outcome string

// Outcomes of a settled attempt that did not pay the order. DECLINED and
// VOIDED are spelled as the authorization statuses they come from.
const (
	// OutcomeDeclined: the provider declined the attempt.
	OutcomeDeclined = Outcome(AuthDeclined)
	// OutcomeVoided: the attempt captured, but lost to another attempt (or
	// ended after its lease), and the capture was voided.
	OutcomeVoided = Outcome(AuthVoided)
	// OutcomeAbandoned: the attempt ended without a charge: it never
	// reached the provider (its key was voided unused), or it only settled
	// earlier attempts.
	OutcomeAbandoned Outcome = "ABANDONED"
)

// PaymentCaptured is the status of a recorded payment: its capture.
const PaymentCaptured = string(AuthCaptured)

// orderTransition is one allowed move of an order's status; from "" is
// the order's creation.
type orderTransition struct {
	from, to OrderStatus
}

// orderTransitions is the state machine's transition table, the one in
// the comment above.
func orderTransitions() []orderTransition {
	return []orderTransition{
		{"", OrderPending},
		{OrderPending, OrderPaying},
		{OrderPaying, OrderPaying},
		{OrderPaying, OrderPaid},
		{OrderPaying, OrderPending},
	}
}

// errTransition reports a move the transition table does not allow: a bug.
var errTransition = errors.New("checkout: order transition not in the state machine")

// checkTransition returns nil when the table allows from -> to, else an
// error wrapping errTransition.
func checkTransition(from, to OrderStatus) error {
	for _, t := range orderTransitions() {
		if t.from == from && t.to == to {
			return nil
		}
	}
	return fmt.Errorf("%w: %q -> %q", errTransition, from, to)
}

// AttemptOutcome is one settled payment attempt of an order that did not
// pay it, as kept in the order's history (Order.Attempts).
type AttemptOutcome struct {
	Attempt     int     `json:"attempt" dynamodbav:"attempt"`
	Outcome     Outcome `json:"outcome" dynamodbav:"outcome"`
	DeclineCode string  `json:"decline_code,omitempty" dynamodbav:"decline_code,omitempty"`
	// At is when the attempt was settled, RFC 3339 in UTC.
	At string `json:"at" dynamodbav:"at"`
}

// machine drives the state machine on the orders and payments tables for
// the payment handler and the reconciler: run is its one entry point.
type machine struct {
	db               DB
	orders, payments string
	provider         Provider
}

// runRequest asks machine.run for one pass over an order.
type runRequest struct {
	OrderID, CustomerID string
	Amount              int64
	Currency            string
	// PaymentMethod is the new attempt's (ignored when SettleOnly).
	PaymentMethod string
	// Claim is the caller's idempotency claim: its key owns the new
	// attempt (attemptOwner), its lease is the attempt's lease, and the
	// commit joins it (Claim.AddWrites).
	Claim *idemddb.Claim
	// SettleOnly (the reconciler) locks only a PAYING order whose attempt
	// lease has lapsed, authorizes nothing, and commits whatever it settled
	// with the claim.
	SettleOnly bool
	// Now is the clock, read once for the lock and the settlement and once
	// more for the commit's times.
	Now func() time.Time
}

// runResult is what machine.run did.
type runResult struct {
	// Locked is false when the lock was refused; Refused is then the order
	// that refused it (nil: no such order).
	Locked  bool
	Refused *Order
	// Now is the clock's reading at the lock.
	Now time.Time
	// To is the status the commit moves the order to: OrderPaid or
	// OrderPending; "" when nothing is committed (the new authorization
	// was VOIDED, or has an unknown status: see Auth).
	To OrderStatus
	// Payment is the order's payment when To is OrderPaid.
	Payment Payment
	// Captured is set when the payment is an earlier attempt's capture:
	// that attempt. CommittedAlone is set when its commit did not join the
	// claim (another key's capture, in a payment request).
	Captured       int
	CommittedAlone bool
	// Auth is the new attempt's authorization (not SettleOnly).
	Auth Authorization
}

// runStage names the step of machine.run that failed.
type runStage int

// Steps of machine.run.
const (
	stageLock runStage = iota
	stageSettle
	stageAuthorize
	stageEncode
	stageCommit
)

// runError is a failed step of machine.run; its message and its Unwrap are
// the step's error.
type runError struct {
	stage   runStage
	attempt int
	err     error
}

func (e *runError) Error() string { return e.err.Error() }
func (e *runError) Unwrap() error { return e.err }

// run drives one pass of the state machine over an order: lock (a new
// attempt n), settle the attempts before n, authorize attempt n (unless
// SettleOnly), commit (PAYING -> PAID or -> PENDING). A refused lock is
// not an error: the result says which order refused it. Errors are
// *runError. See the state machine above, and CreatePayment for what each
// outcome answers.
func (m *machine) run(ctx context.Context, r runRequest) (runResult, error) {
	now := r.Now()
	owner := attemptOwner(r.Claim.Key)
	l, refused, err := m.lock(ctx, lockRequest{
		OrderID: r.OrderID, CustomerID: r.CustomerID, Amount: r.Amount, Currency: r.Currency,
		Owner: owner, Until: r.Claim.LeaseUntil, Now: now, TakeoverOnly: r.SettleOnly,
	})
	res := runResult{Now: now, Refused: refused}
	if err != nil {
		return res, &runError{stage: stageLock, err: err}
	}
	if l == nil {
		return res, nil
	}
	res.Locked = true
	st, err := m.settle(ctx, l, now)
	if err != nil {
		return res, &runError{stage: stageSettle, attempt: l.n, err: err}
	}
	if st.capture != nil {
		return m.adopt(ctx, r, l, st, res)
	}
	if r.SettleOnly {
		res.To = OrderPending
		w, err := m.pendingWrite(l, append(st.outcomes, abandoned(l.n, now)))
		return res, m.join(r.Claim, l, []types.TransactWriteItem{w}, err)
	}
	return m.authorize(ctx, r, l, st, res)
}

// authorize charges attempt l.n and commits its outcome with the claim:
// PAYING -> PAID on a capture, -> PENDING on a decline, nothing when the
// key was voided meanwhile (or the status is unknown).
func (m *machine) authorize(ctx context.Context, r runRequest, l *attemptLock, st settlement, res runResult) (runResult, error) {
	auth, err := m.provider.Authorize(ctx, AuthorizationRequest{
		IdempotencyKey: ProviderIdempotencyKey(r.OrderID, l.n),
		OrderID:        r.OrderID,
		Attempt:        l.n,
		PaymentID:      PaymentID(r.OrderID, l.n),
		Amount:         r.Amount,
		Currency:       r.Currency,
		PaymentMethod:  r.PaymentMethod,
		Metadata:       map[string]string{MetadataOwner: l.owner},
	})
	if err != nil {
		return res, &runError{stage: stageAuthorize, attempt: l.n, err: err}
	}
	res.Auth = auth
	switch auth.Status {
	case AuthCaptured:
		pay, rec := paymentFor(l.prev, auth, r.Now())
		res.To, res.Payment = OrderPaid, pay
		writes, err := m.paidWrites(l, pay, rec, l.owner, st.outcomes)
		return res, m.join(r.Claim, l, writes, err)
	case AuthDeclined:
		res.To = OrderPending
		w, err := m.pendingWrite(l, append(st.outcomes, outcomeOf(l.n, auth, rfc3339(r.Now()))))
		return res, m.join(r.Claim, l, []types.TransactWriteItem{w}, err)
	}
	return res, nil
}

// adopt completes the order with the capture an earlier attempt made
// (PAYING -> PAID), recording attempt l.n as abandoned. The completion
// joins the claim when settling only, or when the capture was the claim's
// own key's; otherwise (a payment request finding another key's capture)
// it commits on its own first: it is the order's, whatever becomes of
// this key's answer.
func (m *machine) adopt(ctx context.Context, r runRequest, l *attemptLock, st settlement, res runResult) (runResult, error) {
	now := r.Now()
	pay, rec := paymentFor(l.prev, *st.capture, now)
	paidBy := st.capture.Metadata[MetadataOwner]
	res.To, res.Payment, res.Captured = OrderPaid, pay, st.capture.Attempt
	writes, err := m.paidWrites(l, pay, rec, paidBy, append(st.outcomes, abandoned(l.n, now)))
	if err != nil || r.SettleOnly || paidBy == l.owner {
		return res, m.join(r.Claim, l, writes, err)
	}
	res.CommittedAlone = true
	if err := m.commit(ctx, l, writes); err != nil {
		return res, &runError{stage: stageCommit, attempt: l.n, err: err}
	}
	return res, nil
}

// join adds a commit's writes to the claim; err is their encoding's.
func (m *machine) join(c *idemddb.Claim, l *attemptLock, writes []types.TransactWriteItem, err error) error {
	if err != nil {
		return &runError{stage: stageEncode, attempt: l.n, err: err}
	}
	c.AddWrites(writes...)
	return nil
}

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

// PaymentID is the id of the payment attempt n of an order makes: "pay_"
// and the unpadded base64url SHA-256 of "payment\n<order id>\n<n>".
func PaymentID(orderID string, attempt int) string {
	return PaymentIDPrefix + digest("payment\n"+orderID+"\n"+itoa(attempt))
}

// attemptOwner is the owner recorded for the attempts an idempotency claim
// makes: a digest of the claim's key, so it never reveals the client's key,
// and the same for every claim of that key.
func attemptOwner(claimKey string) string { return digest("attempt-owner\n" + claimKey) }

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
func (m *machine) lock(ctx context.Context, r lockRequest) (*attemptLock, *Order, error) {
	if err := checkTransition(OrderPaying, OrderPaying); err != nil {
		return nil, nil, err
	}
	if err := checkTransition(OrderPending, OrderPaying); err != nil && !r.TakeoverOnly {
		return nil, nil, err
	}
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
	out, err := m.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                           aws.String(m.orders),
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
			if item, _, err = getItem(ctx, m.db, m.orders, attrOrderID, r.OrderID); err != nil {
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
func (m *machine) settle(ctx context.Context, l *attemptLock, now time.Time) (settlement, error) {
	var s settlement
	at := rfc3339(now)
	for k := l.prev.Settled + 1; k <= l.prev.Attempt; k++ {
		key := ProviderIdempotencyKey(l.prev.OrderID, k)
		a, found, err := m.provider.Lookup(ctx, key)
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
			if a, err = m.provider.Tombstone(ctx, key); err != nil {
				return s, err
			}
			if a.Status == AuthCaptured && s.capture == nil && a.Amount == l.prev.Amount && a.Currency == l.prev.Currency {
				s.capture = &a
				continue
			}
			if a.Status == AuthCaptured { // seen now, and not the payment
				if a, err = m.provider.Void(ctx, key); err != nil {
					return s, err
				}
			}
		case a.Status == AuthCaptured:
			if a, err = m.provider.Void(ctx, key); err != nil {
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
func (m *machine) paidWrites(l *attemptLock, pay Payment, rec paymentRecord, paidBy string, outcomes []AttemptOutcome) ([]types.TransactWriteItem, error) {
	order, err := m.closeAttempt(l, OrderPaid, func(upd expression.UpdateBuilder) expression.UpdateBuilder {
		return upd.Set(expression.Name(attrPaymentID), expression.Value(pay.PaymentID)).
			Set(expression.Name(attrPaidAt), expression.Value(pay.CreatedAt)).
			Set(expression.Name(attrPaidBy), expression.Value(paidBy))
	}, outcomes)
	if err != nil {
		return nil, err
	}
	put, err := newItemPut(m.payments, attrPK, rec)
	if err != nil {
		return nil, err
	}
	writes := make([]types.TransactWriteItem, 2)
	writes[writeOrder], writes[writePaymentRecord] = order, put
	return writes, nil
}

// pendingWrite is the order's PAYING -> PENDING update ending lock l
// without a payment (see closeAttempt).
func (m *machine) pendingWrite(l *attemptLock, outcomes []AttemptOutcome) (types.TransactWriteItem, error) {
	return m.closeAttempt(l, OrderPending, nil, outcomes)
}

// closeAttempt is the order update that ends attempt l.n, moving the
// order PAYING -> to (a transition orderTransitions must allow), with the
// further sets of with (nil: none): conditional on the order still being
// PAYING under that attempt and owner, it marks every attempt up to l.n
// settled, appends outcomes to the history and drops the attempt's lease.
func (m *machine) closeAttempt(l *attemptLock, to OrderStatus, with func(expression.UpdateBuilder) expression.UpdateBuilder, outcomes []AttemptOutcome) (types.TransactWriteItem, error) {
	if err := checkTransition(OrderPaying, to); err != nil {
		return types.TransactWriteItem{}, err
	}
	upd := expression.Set(expression.Name(attrStatus), expression.Value(to))
	if with != nil {
		upd = with(upd)
	}
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
		TableName:                 aws.String(m.orders),
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
func (m *machine) commit(ctx context.Context, l *attemptLock, writes []types.TransactWriteItem) error {
	_, err := m.db.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{
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
