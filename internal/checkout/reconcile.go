package checkout

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/acme/idemcheckout/pkg/idemddb"
	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
)

// Reconciler defaults.
const (
	// DefaultVoidAfter is how old a capture that is no order's payment must
	// be before the reconciler voids it.
	DefaultVoidAfter = 10 * time.Minute
	// DefaultReconcileGrace is how long after its attempt's lease a PAYING
	// order is left to the payment requests (any key may take it over)
	// before the reconciler settles it.
	DefaultReconcileGrace = time.Minute
	// DefaultReconcileBatch bounds the orders, and separately the captures,
	// one Run handles.
	DefaultReconcileBatch = 100
)

// ReconcilerConfig configures a Reconciler.
type ReconcilerConfig struct {
	// DB reaches the orders and payments tables.
	DB DB
	// Store holds the idempotency record of every reconciliation step.
	Store *idemddb.Store
	// OrdersTable (key order_id) and PaymentsTable (key pk).
	OrdersTable, PaymentsTable string
	// Provider looks up and voids authorizations; Report lists the open
	// captures. The Ledger is both.
	Provider Provider
	Report   CaptureReport
	// VoidAfter (default DefaultVoidAfter), Grace (default
	// DefaultReconcileGrace) and Batch (default DefaultReconcileBatch): see
	// the defaults.
	VoidAfter, Grace time.Duration
	Batch            int
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Logger receives one line per action (default slog.Default()).
	Logger *slog.Logger
}

// Reconciler settles what the payment requests left unsettled. Run it on a
// schedule (template.yaml: every 5 minutes); each Run:
//
//   - settles orders stranded in PAYING: attempt lease ended more than Grace
//     ago (a crashed function whose client never came back). It locks the
//     order as a new attempt of its own, settles the earlier attempts at the
//     provider exactly as a payment request does, and completes the order
//     with the capture it found (PAID) or, everything voided, returns it to
//     PENDING;
//   - voids captures older than VoidAfter that are no order's payment: the
//     order is not PAID with that payment (nor PAYING: that order's attempt
//     settles them), marking the ones that are as reconciled.
//
// Every step runs under the idempotency store (idemddb.Do), keyed
// "reconcile:order:<order id>:<attempt>" and "reconcile:void:<provider
// key>", and an order's completion commits in the same transaction as the
// step's record (Claim.AddWrites): a step interrupted by a crash is redone
// or replayed, never doubled, and concurrent runs do not repeat one
// another's work. A second Run over the same state changes nothing.
//
// Bound: an order stranded by a crash is settled at most Grace + the
// schedule's period (+ one Run) after its attempt's lease ended, and the
// lease is the function's timeout + 2 s; a stray capture is voided at most
// VoidAfter + the period after it was made. Each Run handles at most Batch
// stranded orders and Batch open captures.
//
// Against Stripe's key window: Stripe keeps an idempotency key at least 24
// hours (StripeKeyWindow), and an Authorize with a key is in flight at
// most one lease (the function's timeout + 2 s) after its attempt began.
// So the tombstone a settlement leaves under an unused key outlives every
// request that could still carry the key, whenever the settlement runs.
// Settling itself does not depend on the window: the StripeProvider finds
// an attempt by metadata search, which still works after Stripe pruned the
// key (a run more than 24 h late, after an outage, settles the same way).
type Reconciler struct {
	machine   machine
	store     *idemddb.Store
	report    CaptureReport
	voidAfter time.Duration
	grace     time.Duration
	batch     int
	now       func() time.Time
	logger    *slog.Logger
}

// NewReconciler returns a Reconciler.
func NewReconciler(cfg ReconcilerConfig) (*Reconciler, error) {
	if cfg.DB == nil || cfg.Store == nil || cfg.OrdersTable == "" || cfg.PaymentsTable == "" || cfg.Provider == nil || cfg.Report == nil {
		return nil, errors.New("checkout: ReconcilerConfig needs DB, Store, OrdersTable, PaymentsTable, Provider and Report")
	}
	if cfg.VoidAfter < 0 || cfg.Grace < 0 || cfg.Batch < 0 {
		return nil, errors.New("checkout: ReconcilerConfig.VoidAfter, Grace and Batch must not be negative")
	}
	if cfg.VoidAfter == 0 {
		cfg.VoidAfter = DefaultVoidAfter
	}
	if cfg.Grace == 0 {
		cfg.Grace = DefaultReconcileGrace
	}
	if cfg.Batch == 0 {
		cfg.Batch = DefaultReconcileBatch
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Reconciler{
		machine: machine{db: cfg.DB, orders: cfg.OrdersTable, payments: cfg.PaymentsTable, provider: cfg.Provider},
		store:   cfg.Store, report: cfg.Report, voidAfter: cfg.VoidAfter, grace: cfg.Grace, batch: cfg.Batch,
		now: cfg.Now, logger: cfg.Logger,
	}, nil
}

// ReconcileSummary counts what one Run found and did.
type ReconcileSummary struct {
	// StrandedOrders were PAYING past their lease and the grace.
	StrandedOrders int `json:"stranded_orders"`
	// OrdersPaid were completed with a capture found at the provider.
	OrdersPaid int `json:"orders_paid"`
	// OrdersReleased went back to PENDING, every attempt voided.
	OrdersReleased int `json:"orders_released"`
	// OrdersSkipped had moved on (paid or taken over) before the lock.
	OrdersSkipped int `json:"orders_skipped"`
	// OpenCaptures were captured more than VoidAfter ago and not yet
	// reconciled.
	OpenCaptures int `json:"open_captures"`
	// CapturesKept are orders' payments, now marked reconciled.
	CapturesKept int `json:"captures_kept"`
	// CapturesVoided were no order's payment.
	CapturesVoided int `json:"captures_voided"`
	// CapturesDeferred belong to PAYING orders, whose attempts settle them.
	CapturesDeferred int `json:"captures_deferred"`
	// Replayed steps had been done by an earlier run (their record said so).
	Replayed int `json:"replayed"`
	// Failed steps are retried by the next run.
	Failed int `json:"failed"`
}

// Reconciliation actions, as logged and stored in a step's record.
const (
	actionPaid     = "order_paid"
	actionReleased = "order_released"
	actionSkipped  = "order_skipped"
	actionKept     = "capture_kept"
	actionVoided   = "capture_voided"
	actionDeferred = "capture_deferred"
)

// reconcileStep is the stored result of one step.
type reconcileStep struct {
	Action    string `json:"action"`
	OrderID   string `json:"order_id,omitempty"`
	PaymentID string `json:"payment_id,omitempty"`
	Status    string `json:"status,omitempty"`
}

// HandleSchedule is the reconcile-payments function's handler for its
// EventBridge schedule: one Run.
func (r *Reconciler) HandleSchedule(ctx context.Context, _ events.EventBridgeEvent) (ReconcileSummary, error) {
	return r.Run(ctx)
}

// Run makes one reconciliation pass (see Reconciler) and returns what it
// did. A failed step is counted, logged and retried by the next run; the
// error joins the failures, so a scheduled invocation that left work
// behind reports it.
func (r *Reconciler) Run(ctx context.Context) (ReconcileSummary, error) {
	var s ReconcileSummary
	var errs []error
	now := r.now()

	stranded := expression.Name(attrStatus).Equal(expression.Value(OrderPaying)).
		And(expression.Name(attrUntil).LessThan(expression.Value(now.Add(-r.grace).UnixMilli())))
	items, err := scanFiltered(ctx, r.machine.db, r.machine.orders, stranded, r.batch)
	if err != nil {
		return s, fmt.Errorf("checkout: reconcile: scan orders: %w", err)
	}
	s.StrandedOrders = len(items)
	for _, it := range items {
		var o Order
		if err := attributevalue.UnmarshalMap(it, &o); err != nil {
			s.Failed++
			errs = append(errs, err)
			continue
		}
		step, replayed, err := r.settleOrder(ctx, o)
		r.count(ctx, &s, step, replayed, err, "order_id", o.OrderID, "attempt", o.Attempt)
		if err != nil {
			errs = append(errs, err)
		}
	}

	caps, err := r.report.OpenCaptures(ctx, now.Add(-r.voidAfter), r.batch)
	if err != nil {
		return s, errors.Join(append(errs, err)...)
	}
	s.OpenCaptures = len(caps)
	for _, a := range caps {
		step, replayed, err := r.settleCapture(ctx, a)
		r.count(ctx, &s, step, replayed, err, "order_id", a.OrderID, "provider_key", a.Key, "authorization_id", a.ID)
		if err != nil {
			errs = append(errs, err)
		}
	}
	return s, errors.Join(errs...)
}

// count adds a step's outcome to s and logs it.
func (r *Reconciler) count(ctx context.Context, s *ReconcileSummary, step reconcileStep, replayed bool, err error, attrs ...any) {
	if err != nil {
		s.Failed++
		r.logger.ErrorContext(ctx, "reconcile: step failed; the next run retries it", append(attrs, "error", err)...)
		return
	}
	if replayed {
		s.Replayed++
	}
	switch step.Action {
	case actionPaid:
		s.OrdersPaid++
	case actionReleased:
		s.OrdersReleased++
	case actionSkipped:
		s.OrdersSkipped++
	case actionKept:
		s.CapturesKept++
	case actionVoided:
		s.CapturesVoided++
	case actionDeferred:
		s.CapturesDeferred++
	}
	r.logger.InfoContext(ctx, "reconcile", append(attrs, "action", step.Action, "payment_id", step.PaymentID,
		"status", step.Status, "replayed", replayed)...)
}

// settleOrder settles an order stranded in PAYING, as one idempotent
// step: one run of the state machine that settles only (no new
// authorization), its commit joining the step's claim.
func (r *Reconciler) settleOrder(ctx context.Context, o Order) (reconcileStep, bool, error) {
	key := "reconcile:order:" + o.OrderID + ":" + itoa(o.Attempt)
	return idemddb.Do(ctx, r.store, key, []byte(key), func(ctx context.Context, c *idemddb.Claim) (reconcileStep, error) {
		now := r.now()
		res, err := r.machine.run(ctx, runRequest{
			OrderID: o.OrderID, CustomerID: o.CustomerID, Amount: o.Amount, Currency: o.Currency,
			Claim: c, SettleOnly: true, Now: func() time.Time { return now },
		})
		switch {
		case err != nil:
			return reconcileStep{}, err
		case !res.Locked:
			step := reconcileStep{Action: actionSkipped, OrderID: o.OrderID}
			if res.Refused != nil {
				step.Status = string(res.Refused.Status)
			}
			return step, nil
		case res.To == OrderPaid:
			return reconcileStep{Action: actionPaid, OrderID: o.OrderID, PaymentID: res.Payment.PaymentID, Status: string(OrderPaid)}, nil
		}
		return reconcileStep{Action: actionReleased, OrderID: o.OrderID, Status: string(OrderPending)}, nil
	})
}

// settleCapture accounts for one open capture: kept (and marked
// reconciled) when it is its order's payment, deferred when its order is
// PAYING, voided – as one idempotent step – otherwise.
func (r *Reconciler) settleCapture(ctx context.Context, a Authorization) (reconcileStep, bool, error) {
	var o Order
	item, found, err := getItem(ctx, r.machine.db, r.machine.orders, attrOrderID, a.OrderID)
	if err == nil && found {
		err = attributevalue.UnmarshalMap(item, &o)
	}
	switch {
	case err != nil:
		return reconcileStep{}, false, err
	case found && o.Status == OrderPaid && o.PaymentID == a.PaymentID:
		return reconcileStep{Action: actionKept, OrderID: a.OrderID, PaymentID: a.PaymentID}, false, r.report.MarkReconciled(ctx, a.Key)
	case found && o.Status == OrderPaying:
		return reconcileStep{Action: actionDeferred, OrderID: a.OrderID, Status: string(OrderPaying)}, false, nil
	}
	key := "reconcile:void:" + a.Key
	return idemddb.Do(ctx, r.store, key, []byte(key), func(ctx context.Context, _ *idemddb.Claim) (reconcileStep, error) {
		v, err := r.machine.provider.Void(ctx, a.Key)
		return reconcileStep{Action: actionVoided, OrderID: a.OrderID, PaymentID: a.PaymentID, Status: string(v.Status)}, err
	})
}
