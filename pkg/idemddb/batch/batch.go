package batch

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"strconv"
	"sync"
	"time"

	"github.com/acme/idemcheckout/pkg/idemddb"
	"github.com/acme/idemcheckout/pkg/idemddb/internal/httpcontract"
	"github.com/acme/idemcheckout/pkg/idemddb/internal/obs"
	"github.com/aws/aws-lambda-go/events"
)

// SQSRecordHandler processes one SQS message. It runs at most once per key
// (until the record expires); c is the claim (also in ctx, see
// idemddb.ClaimFromContext), whose AddWrites commit with the record. An
// error fails the message and releases the key, so a retry runs it again.
type SQSRecordHandler = func(ctx context.Context, c *idemddb.Claim, msg events.SQSMessage) error

// SQSBatchHandler is a Lambda handler for an SQS event source mapping with
// ReportBatchItemFailures.
type SQSBatchHandler = func(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error)

// StreamRecordHandler processes one DynamoDB stream record, like
// SQSRecordHandler.
type StreamRecordHandler = func(ctx context.Context, c *idemddb.Claim, rec events.DynamoDBEventRecord) error

// StreamBatchHandler is a Lambda handler for a DynamoDB Streams event
// source mapping with ReportBatchItemFailures.
type StreamBatchHandler = func(ctx context.Context, ev events.DynamoDBEvent) (events.DynamoDBEventResponse, error)

// ErrNotConfigured is returned, for the whole batch, by a handler wrapped
// without a store, a handler or a consumer name, or with options that do
// not apply to its source.
var ErrNotConfigured = errors.New("batch: handler wrapped without a store, a handler or a consumer name, or with options of another source")

// ErrNoItemIdentifier is returned, for the whole batch, when a record that
// must be retried has no message id (SQS) or sequence number (streams):
// Lambda could not retry it alone, so the whole batch fails, as Lambda
// itself treats an empty item identifier.
var ErrNoItemIdentifier = errors.New("batch: a record to be retried has no message id or sequence number; the whole batch fails")

// WrapSQS returns a Lambda handler that runs h once per key for each
// message of an SQS batch and reports the messages to retry (see the
// package documentation). consumer names this use of the store: two
// consumers with different names never share records, even for one queue.
func WrapSQS(s *idemddb.Store, consumer string, h SQSRecordHandler, opts ...Option) SQSBatchHandler {
	w, err := newWrapper(s, consumer, "sqs", h == nil, MessageID(), opts)
	if err == nil && w.c.key.sqs == nil {
		err = fmt.Errorf("%w: %s is not a key of SQS messages", ErrNotConfigured, w.c.key)
	}
	if err != nil {
		return func(context.Context, events.SQSEvent) (events.SQSEventResponse, error) {
			return events.SQSEventResponse{}, err
		}
	}
	return func(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
		ids, err := w.serve(ctx, len(ev.Records), func(i int, r *rec) {
			m := &ev.Records[i]
			r.id, r.receiveCount = m.MessageId, m.Attributes["ApproximateReceiveCount"]
			value, err := w.c.key.sqs(m)
			r.setKey(w, "", value, err, func() []byte { return sqsFingerprint(m, w.c) })
			r.setLane("group\x00", m.Attributes["MessageGroupId"]) // FIFO
			r.work = func(ctx context.Context, c *idemddb.Claim) error { return h(ctx, c, *m) }
		})
		return events.SQSEventResponse{BatchItemFailures: failures(ids, func(id string) events.SQSBatchItemFailure {
			return events.SQSBatchItemFailure{ItemIdentifier: id}
		})}, err
	}
}

// WrapStream returns a Lambda handler that runs h once per key for each
// record of a DynamoDB stream batch and reports the records to retry by
// sequence number (see the package documentation).
func WrapStream(s *idemddb.Store, consumer string, h StreamRecordHandler, opts ...Option) StreamBatchHandler {
	w, err := newWrapper(s, consumer, "dynamodb", h == nil, EventID(), opts)
	if err == nil && w.c.key.stream == nil {
		err = fmt.Errorf("%w: %s is not a key of stream records", ErrNotConfigured, w.c.key)
	}
	if err == nil && (w.c.fpAttrs != nil || w.c.fpMode != fpDefault) {
		err = fmt.Errorf("%w: WithFingerprintAttributes, WithFingerprintFields and WithFingerprintBody apply to SQS messages only", ErrNotConfigured)
	}
	if err != nil {
		return func(context.Context, events.DynamoDBEvent) (events.DynamoDBEventResponse, error) {
			return events.DynamoDBEventResponse{}, err
		}
	}
	return func(ctx context.Context, ev events.DynamoDBEvent) (events.DynamoDBEventResponse, error) {
		ids, err := w.serve(ctx, len(ev.Records), func(i int, r *rec) {
			sr := &ev.Records[i]
			r.id = sr.Change.SequenceNumber
			value, err := w.c.key.stream(sr)
			r.setKey(w, sr.EventName, value, err, func() []byte { return streamFingerprint(sr) })
			r.setLane("item\x00", itemIdentity(sr)) // one item's changes stay in stream order
			r.work = func(ctx context.Context, c *idemddb.Claim) error { return h(ctx, c, *sr) }
		})
		return events.DynamoDBEventResponse{BatchItemFailures: failures(ids, func(id string) events.DynamoDBBatchItemFailure {
			return events.DynamoDBBatchItemFailure{ItemIdentifier: id}
		})}, err
	}
}

// failures turns the identifiers to report into a response's entries
// (an empty list, never null, when there are none).
func failures[T any](ids []string, entry func(id string) T) []T {
	out := make([]T, 0, len(ids))
	for _, id := range ids {
		out = append(out, entry(id))
	}
	return out
}

type wrapper struct {
	s        *idemddb.Store
	c        *config
	consumer string
	source   string // "sqs" or "dynamodb"
	emf      *obs.EMF
}

func newWrapper(s *idemddb.Store, consumer, source string, noHandler bool, def Key, opts []Option) (*wrapper, error) {
	if s == nil || noHandler || consumer == "" {
		return nil, ErrNotConfigured
	}
	w := &wrapper{s: s, c: newConfig(def, opts), consumer: consumer, source: source}
	w.emf = obs.NewEMF(&w.c.Options)
	if w.c.key.sqs == nil && w.c.key.stream == nil {
		return nil, fmt.Errorf("%w: the zero Key", ErrNotConfigured)
	}
	return w, nil
}

// keyPrefix starts every record key the adapter writes.
const keyPrefix = "batch1:"

// scopedKey is the record key: SHA-256 over consumer, source, event name
// and the record's key, so no raw key is stored and consumers never share
// records; 50 bytes in all.
func (w *wrapper) scopedKey(eventName, value string) string {
	return httpcontract.HashedKey(keyPrefix, "idemddb/batch scope v1", w.consumer, w.source, eventName, value)
}

// rec is one record of a batch, ready to run.
type rec struct {
	id           string // item identifier: message id or sequence number
	key          string // scoped key; "" when keyErr is set
	keyErr       error
	fp           []byte
	lane         string // records of one lane run in order; "" for none
	receiveCount string // SQS ApproximateReceiveCount, for logs
	work         func(context.Context, *idemddb.Claim) error
}

// setKey scopes the record's key value, or keeps why it has none; the
// fingerprint is computed only for a record with a key.
func (r *rec) setKey(w *wrapper, eventName, value string, err error, fp func() []byte) {
	if r.keyErr = err; err == nil {
		r.key = w.scopedKey(eventName, value)
		r.fp = fp()
	}
}

// setLane puts the record in the ordered lane named group (a FIFO message
// group, a stream item) or, without one, in its key's lane.
func (r *rec) setLane(kind, group string) {
	switch {
	case group != "":
		r.lane = kind + group
	case r.keyErr == nil:
		r.lane = "key\x00" + r.key
	}
}

// serve prepares n records with prep, runs them and returns the
// identifiers to report.
func (w *wrapper) serve(ctx context.Context, n int, prep func(i int, r *rec)) ([]string, error) {
	recs := make([]rec, n)
	for i := range recs {
		prep(i, &recs[i])
	}
	return w.run(ctx, recs)
}

// run processes the batch and returns the identifiers to report, in batch
// order.
func (w *wrapper) run(ctx context.Context, recs []rec) ([]string, error) {
	sum := &summary{records: len(recs), counts: map[string]int{}, start: time.Now()}
	outs := make([]outcome, len(recs))
	if w.c.concurrency == 1 || len(recs) < 2 {
		idx := make([]int, len(recs))
		for i := range idx {
			idx[i] = i
		}
		w.runLane(ctx, recs, idx, outs)
	} else {
		w.runLanes(ctx, recs, outs)
	}
	var ids []string
	var err error
	for i := range recs {
		r, o := &recs[i], &outs[i]
		report := w.reported(o)
		sum.counts[o.kind]++
		w.logRecord(ctx, r, o, report)
		if !report {
			continue
		}
		sum.reported++
		if r.id == "" {
			err = ErrNoItemIdentifier
		}
		ids = append(ids, r.id)
	}
	w.logBatch(ctx, sum)
	return ids, err
}

// runLanes runs the batch's lanes on at most concurrency workers, each
// lane's records in batch order.
func (w *wrapper) runLanes(ctx context.Context, recs []rec, outs []outcome) {
	var order []string
	lanes := map[string][]int{}
	for i := range recs {
		l := recs[i].lane
		if l == "" {
			l = "record\x00" + strconv.Itoa(i) // a lane of its own
		}
		if _, ok := lanes[l]; !ok {
			order = append(order, l)
		}
		lanes[l] = append(lanes[l], i)
	}
	todo := make(chan []int)
	var wg sync.WaitGroup
	for range min(w.c.concurrency, len(order)) {
		wg.Go(func() {
			for idx := range todo {
				w.runLane(ctx, recs, idx, outs)
			}
		})
	}
	for _, l := range order {
		todo <- lanes[l]
	}
	close(todo)
	wg.Wait()
}

// runLane runs the records idx in order. After a failure in a lane, the
// lane's later records are reported without running.
func (w *wrapper) runLane(ctx context.Context, recs []rec, idx []int, outs []outcome) {
	failed := map[string]string{} // lane → item id of its first failure
	for _, i := range idx {
		r := &recs[i]
		if by, ok := failed[r.lane]; ok && r.lane != "" {
			outs[i] = outcome{kind: outBlocked, blockedBy: by, reason: "an earlier record of its group failed"}
			continue
		}
		if why := w.noTime(ctx); why != "" {
			outs[i] = outcome{kind: outDeadline, reason: why}
		} else {
			outs[i] = w.runOne(ctx, r)
		}
		if w.reported(&outs[i]) && r.lane != "" {
			failed[r.lane] = r.id
		}
	}
}

// reported reports whether the record is to be retried: every failure but
// a mismatch under WithDropMismatches.
func (w *wrapper) reported(o *outcome) bool {
	return o.failed() && !(o.kind == outMismatch && w.c.dropMismatch)
}

// noTime says why no record may start now, or "".
func (w *wrapper) noTime(ctx context.Context) string {
	if ctx.Err() != nil {
		return "invocation cancelled"
	}
	if dl, ok := ctx.Deadline(); ok && dl.Sub(w.c.now()) < w.c.minRemaining {
		return fmt.Sprintf("less than %v before the invocation deadline", w.c.minRemaining)
	}
	return ""
}

// handlerError carries the handler's own error through Store.Run.
type handlerError struct{ err error }

func (e *handlerError) Error() string { return e.err.Error() }

// runOne runs one record under the store and classifies the outcome. A
// panic in the handler fails this record only: the store releases the key
// on the way up and the panic is recovered here.
func (w *wrapper) runOne(ctx context.Context, r *rec) (out outcome) {
	if r.keyErr != nil {
		return outcome{kind: outInvalidKey, err: r.keyErr, reason: "no usable idempotency key; the record was not processed"}
	}
	var claim *idemddb.Claim
	defer func() {
		if p := recover(); p != nil {
			out = outcome{kind: outPanic, err: fmt.Errorf("panic: %v", p), stack: string(debug.Stack()),
				reason: "the handler panicked; the key was released"}
		}
	}()
	res, err := w.s.Run(ctx, idemddb.Request{Key: r.key, Fingerprint: r.fp, Wait: w.c.wait}, func(ctx context.Context, c *idemddb.Claim) ([]byte, error) {
		claim = c
		if err := r.work(ctx, c); err != nil {
			return nil, &handlerError{err}
		}
		return nil, nil // nothing reads a stored result: records stay small
	})
	var (
		herr  *handlerError
		inpr  *idemddb.InProgressError
		fence *idemddb.FencedError
		tce   *idemddb.TransactionCanceledError
	)
	switch {
	case err == nil && res.Replayed:
		return outcome{kind: outReplayed, reason: "completed before; the handler did not run"}
	case err == nil:
		return outcome{kind: outProcessed, takenOver: claim.TakenOver}
	case errors.As(err, &herr):
		return outcome{kind: outFailed, err: herr.err, reason: "the handler failed; the key was released"}
	case errors.As(err, &inpr):
		return outcome{kind: outInProgress, retryAfter: inpr.RetryAfter, reason: "another invocation is processing this key"}
	case errors.Is(err, idemddb.ErrMismatch):
		return outcome{kind: outMismatch, reason: "the key was already used by a record with different content; the handler did not run"}
	case errors.Is(err, idemddb.ErrResultTooLarge):
		return outcome{kind: outReplayed, reason: "completed before (result not retained); the handler did not run"}
	case errors.As(err, &fence):
		return outcome{kind: outFenced, err: err, reason: "another invocation took the key over; its outcome stands"}
	case errors.As(err, &tce):
		return outcome{kind: outCanceled, err: err, reason: fmt.Sprintf("write %d of Claim.AddWrites failed its condition; nothing committed, key released", tce.Index)}
	case errors.Is(err, idemddb.ErrUnavailable) && claim != nil:
		return outcome{kind: outUnavail, err: err, reason: "the handler ran but its completion has an unknown outcome; the key stays claimed until its lease ends"}
	case errors.Is(err, idemddb.ErrUnavailable):
		return outcome{kind: outUnavail, err: err, reason: "the idempotency store failed; the handler did not run"}
	default:
		return outcome{kind: outError, err: err}
	}
}
