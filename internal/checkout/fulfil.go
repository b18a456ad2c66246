package checkout

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/acme/idemcheckout/pkg/idemddb"
	"github.com/acme/idemcheckout/pkg/idemddb/batch"
	"github.com/aws/aws-lambda-go/events"
)

// Fulfilment: one receipt per paid order.
//
// The orders table's stream is the transactional outbox of a payment: the
// change PAYING -> PAID is on the stream if and only if the payment's
// transaction committed, so nothing is sent for a payment that did not
// happen and nothing is lost for one that did. The fulfil-order function
// consumes the stream (its event source mapping filters the transition
// to PAID; PaidTransition is the same test in Go) through pkg/idemddb/batch,
// keyed by the order id of the change (with its event name, MODIFY): a
// record delivered again, after a crash, a retry of its batch or a
// re-read of the shard, replays without running. The receipt's Put is
// conditional on the receipt being new and commits with the idempotency
// record (Claim.AddWrites), and its id is derived from the order and its
// payment, so even a record whose idempotency record expired cannot make
// a second receipt.

// ReceiptIDPrefix starts every receipt id.
const ReceiptIDPrefix = "rcpt_"

// FulfilmentConsumer names the fulfilment's use of the idempotency store
// (batch.WrapStream's consumer): it scopes its records' keys.
const FulfilmentConsumer = "fulfil-order"

// FulfilmentConcurrency is how many records of a batch the fulfilment
// processes at once (each order is its own lane: its records stay in
// stream order).
const FulfilmentConcurrency = 4

// FulfilmentWait is how long a record whose order another invocation is
// fulfilling waits for it (batch.WithWait), cut to the invocation's
// deadline. A stream retries a failed batch at once: without the wait, the
// retries after a crashed invocation would all find its key in progress
// until its lease ends (the timeout + 2 s) and could run out, sending a
// payable receipt to the dead letters. With it, the retry replays the other
// invocation's receipt or, once the crashed one's lease lapses, takes the
// key over and makes the receipt.
const FulfilmentWait = 30 * time.Second

const attrReceiptID = "receipt_id"

// Receipt is the confirmation of a paid order, as stored in the receipts
// table (key receipt_id): what a shop would send as the confirmation email.
type Receipt struct {
	ReceiptID  string `json:"receipt_id" dynamodbav:"receipt_id"`
	OrderID    string `json:"order_id" dynamodbav:"order_id"`
	PaymentID  string `json:"payment_id" dynamodbav:"payment_id"`
	CustomerID string `json:"customer_id" dynamodbav:"customer_id"`
	// Amount is in minor units of Currency.
	Amount   int64  `json:"amount" dynamodbav:"amount"`
	Currency string `json:"currency" dynamodbav:"currency"`
	// PaidAt is the payment's time (RFC 3339, from the order), CreatedAt
	// the receipt's (RFC 3339 in UTC, to the millisecond).
	PaidAt    string `json:"paid_at" dynamodbav:"paid_at"`
	CreatedAt string `json:"created_at" dynamodbav:"created_at"`
}

// ReceiptID is the id of the receipt of the order paid by payment
// paymentID: "rcpt_" and the unpadded base64url SHA-256 of
// "receipt\n<order id>\n<payment id>". Whoever creates it, however often,
// creates the same one.
func ReceiptID(orderID, paymentID string) string {
	return ReceiptIDPrefix + digest("receipt\n"+orderID+"\n"+paymentID)
}

// ErrNotPaidOrder is returned for a stream record that claims to pay an
// order but whose new image lacks what a receipt needs (order id, payment
// id, customer, amount, currency, paid_at): the record is reported, so
// it is retried and then sent to the mapping's on-failure destination.
var ErrNotPaidOrder = errors.New("checkout: the record's new image is not a paid order")

// PaidTransition reports whether rec is the change of an order to PAID
// (from PENDING or PAYING), the one change the fulfilment acts on. The
// event source mapping's FilterCriteria in template.yaml selects the
// same records.
func PaidTransition(rec events.DynamoDBEventRecord) bool {
	old, ok := rec.Change.OldImage[attrStatus]
	if !ok || old.DataType() != events.DataTypeString || (OrderStatus(old.String()) != OrderPending && OrderStatus(old.String()) != OrderPaying) {
		return false
	}
	cur, ok := rec.Change.NewImage[attrStatus]
	return ok && cur.DataType() == events.DataTypeString && OrderStatus(cur.String()) == OrderPaid
}

// FulfilmentConfig configures Fulfilment.
type FulfilmentConfig struct {
	// Store is the idempotency store the records run under.
	Store *idemddb.Store
	// ReceiptsTable is the receipts table (key receipt_id).
	ReceiptsTable string
	// Now is the clock of the receipts' created_at (default time.Now).
	Now func() time.Time
	// Logger receives the batch adapter's lines (default slog.Default()).
	Logger *slog.Logger
}

// Fulfilment creates one receipt per paid order from the orders stream.
type Fulfilment struct {
	store  *idemddb.Store
	table  string
	now    func() time.Time
	logger *slog.Logger
}

// NewFulfilment returns the fulfilment.
func NewFulfilment(cfg FulfilmentConfig) (*Fulfilment, error) {
	if cfg.Store == nil || cfg.ReceiptsTable == "" {
		return nil, errors.New("checkout: FulfilmentConfig needs Store and ReceiptsTable")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Fulfilment{store: cfg.Store, table: cfg.ReceiptsTable, now: cfg.Now, logger: cfg.Logger}, nil
}

// Handler is the fulfil-order function's Lambda handler for a DynamoDB
// Streams event source mapping with ReportBatchItemFailures. Records that
// are not a PaidTransition are acknowledged without a request (a mapping
// without the template's filter, a sample event); each other one runs
// Fulfil under batch.WrapStream, keyed by the new image's order_id, at
// most FulfilmentConcurrency at once, waiting up to FulfilmentWait for an
// order another invocation holds. opts add to or override those
// options (tests set a logger and metrics).
func (f *Fulfilment) Handler(opts ...batch.Option) batch.StreamBatchHandler {
	h := batch.WrapStream(f.store, FulfilmentConsumer, f.Fulfil, append([]batch.Option{
		batch.WithKey(batch.NewImageField(attrOrderID)),
		batch.WithConcurrency(FulfilmentConcurrency),
		batch.WithWait(FulfilmentWait),
		batch.WithLogger(f.logger),
	}, opts...)...)
	return func(ctx context.Context, ev events.DynamoDBEvent) (events.DynamoDBEventResponse, error) {
		paid := make([]events.DynamoDBEventRecord, 0, len(ev.Records))
		for _, r := range ev.Records {
			if PaidTransition(r) {
				paid = append(paid, r)
			}
		}
		if skipped := len(ev.Records) - len(paid); skipped > 0 {
			f.logger.InfoContext(ctx, "fulfil-order: records that are not a payment skipped", "skipped", skipped, "records", len(ev.Records))
		}
		if len(paid) == 0 {
			return events.DynamoDBEventResponse{BatchItemFailures: []events.DynamoDBBatchItemFailure{}}, nil
		}
		return h(ctx, events.DynamoDBEvent{Records: paid})
	}
}

// Fulfil is the work of one stream record, run under its claim c: for a
// PaidTransition it adds the Put of the order's receipt to the claim,
// conditional on the receipt being new, so the receipt commits with the
// record's completion or not at all; any other record does nothing. A new
// image without what the receipt needs is ErrNotPaidOrder.
func (f *Fulfilment) Fulfil(ctx context.Context, c *idemddb.Claim, rec events.DynamoDBEventRecord) error {
	if !PaidTransition(rec) {
		return nil
	}
	img := rec.Change.NewImage
	var r Receipt
	var errs []error
	str := func(name string) string {
		v, ok := img[name]
		if !ok || v.DataType() != events.DataTypeString || v.String() == "" {
			errs = append(errs, fmt.Errorf("%w: no %s", ErrNotPaidOrder, name))
			return ""
		}
		return v.String()
	}
	r.OrderID, r.PaymentID, r.CustomerID = str(attrOrderID), str(attrPaymentID), str(attrCustomer)
	r.Currency, r.PaidAt = str(attrCurrency), str(attrPaidAt)
	if v, ok := img[attrAmount]; ok && v.DataType() == events.DataTypeNumber {
		n, err := strconv.ParseInt(v.Number(), 10, 64)
		if err != nil || n <= 0 {
			errs = append(errs, fmt.Errorf("%w: amount %q is not a positive integer", ErrNotPaidOrder, v.Number()))
		}
		r.Amount = n
	} else {
		errs = append(errs, fmt.Errorf("%w: no amount", ErrNotPaidOrder))
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	r.ReceiptID = ReceiptID(r.OrderID, r.PaymentID)
	r.CreatedAt = f.now().UTC().Format(receiptTimeLayout)
	put, err := newItemPut(f.table, attrReceiptID, r)
	if err != nil {
		return fmt.Errorf("checkout: encode the receipt: %w", err)
	}
	c.AddWrites(put)
	return nil
}

// receiptTimeLayout is RFC 3339 to the millisecond.
const receiptTimeLayout = "2006-01-02T15:04:05.000Z07:00"
