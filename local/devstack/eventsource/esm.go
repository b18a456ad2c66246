package eventsource

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/acme/idemcheckout/ddblocal/ddbstream"
	"github.com/acme/idemcheckout/internal/samtemplate"
	"github.com/acme/idemcheckout/local/devstack/lambda"
	"github.com/acme/idemcheckout/local/devstack/template"
	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	streamtypes "github.com/aws/aws-sdk-go-v2/service/dynamodbstreams/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// Event source mappings run locally: the template's DynamoDB and SQS
// events (SAM events, and AWS::Lambda::EventSourceMapping resources) poll
// their stream or queue on the engine (moto serves DynamoDB Streams and
// SQS on its endpoint) every Config.EventPollInterval, and invoke the
// function through its emulator pool, like every other invocation, with
// the event Lambda sends (events.DynamoDBEvent, events.SQSEvent). One log
// line per batch.
//
// Emulated, for streams: StartingPosition (TRIM_HORIZON, LATEST), BatchSize
// (default 100), MaximumBatchingWindowInSeconds, FilterCriteria (see
// filter.go; records filtered out are skipped), ReportBatchItemFailures
// (the retry starts at the lowest reported sequence number and holds the
// rest of that batch; an identifier that is not in the batch fails the
// whole batch), BisectBatchOnFunctionError (a batch whose invocation fails
// is halved, down to one record, without counting a retry),
// MaximumRetryAttempts (default -1: until the record expires),
// MaximumRecordAgeInSeconds, and DestinationConfig.OnFailure to an SQS
// queue of the template (Lambda's failure record: the batch's shard,
// sequence numbers and condition, RetryAttemptsExhausted or
// RecordAgeExceeded). One batch at a time per shard, in order; retries wait
// the poll interval, doubling up to 5 s. Shards are those of the stream
// when the stack starts (moto has one per table and never splits it), so
// splits, parent-before-child order and ParallelizationFactor are not
// emulated; neither are TumblingWindowInSeconds or the 24-hour retention.
//
// For queues: BatchSize (default 10), MaximumBatchingWindowInSeconds,
// FilterCriteria (messages filtered out are deleted, as Lambda does),
// ReportBatchItemFailures (the reported messages stay and come back after
// the queue's visibility timeout, the others are deleted) and a function
// error (no message is deleted). The queue's RedrivePolicy moves a message
// received maxReceiveCount times to its dead-letter queue (moto does).
// One batch at a time per mapping: ScalingConfig.MaximumConcurrency and
// the scaling of pollers are not emulated; FIFO order is what moto's
// receive gives (a group's next message waits for the one in flight).

// DefaultPollInterval is how often an event source mapping polls its
// stream or queue locally.
const DefaultPollInterval = 250 * time.Millisecond

// maxRetryDelay caps the wait before a failed batch is retried.
const maxRetryDelay = 5 * time.Second

// The most the local stack reads at once: one GetRecords, one ReceiveMessage.
const (
	maxStreamRead   = 1000
	maxQueueReceive = 10
)

// eventSource is one event source mapping the stack runs.
type eventSource struct {
	s       *Sources
	fn      samtemplate.Function
	ev      samtemplate.Event
	name    string // Function.Event
	filters filters
	enabled atomic.Bool
	mu      sync.Mutex // held while a step (a poll and its batch) runs
}

func (src *eventSource) logf(format string, args ...any) {
	src.s.cfg.Logf("event source "+src.name+" "+format, args...)
}

// startMappings starts the stream and queue mappings of the running
// functions. A filter the local stack cannot apply fails the start, naming
// the mapping; a source it cannot find is logged and not run.
func (s *Sources) startMappings(ctx context.Context) error {
	if s.cfg.PollInterval < 0 {
		return nil
	}
	for _, f := range s.cfg.Functions {
		for _, ev := range f.Events {
			if ev.Stream == nil && ev.Queue == nil {
				continue
			}
			src := &eventSource{s: s, fn: f, ev: ev, name: f.ID + "." + ev.Name}
			var b samtemplate.Batching
			if ev.Stream != nil {
				b = ev.Stream.Batching
			} else {
				b = ev.Queue.Batching
			}
			fs, err := compileFilters(b.Filters)
			if err != nil {
				return fmt.Errorf("event source %s: %w", src.name, err)
			}
			src.filters = fs
			src.enabled.Store(b.Enabled)
			s.sources[src.name] = src
			if ev.Stream != nil {
				err = src.startStream(ctx)
			} else {
				err = src.startQueue()
			}
			if err != nil {
				return err
			}
			if !b.Enabled {
				src.logf("is disabled in the template (Enabled: false); not polled")
			}
		}
	}
	return nil
}

// SetEnabled turns an event source mapping's polling on or off,
// as `aws lambda update-event-source-mapping --[no-]enabled` does; name is
// "Function.Event" (the event's name, or the mapping resource's logical
// id). Records that arrive meanwhile wait in their stream or queue. It
// returns once no batch of the mapping is in flight.
func (s *Sources) SetEnabled(name string, enabled bool) error {
	src, ok := s.sources[name]
	if !ok {
		var names []string
		for n := range s.sources {
			names = append(names, n)
		}
		slices.Sort(names)
		return fmt.Errorf("no event source mapping %s runs (running: %s)", name, strings.Join(names, ", "))
	}
	src.mu.Lock() // waits for the step in flight
	src.enabled.Store(enabled)
	src.mu.Unlock()
	return nil
}

// batchResult is what one invocation of a batch answered.
type batchResult struct {
	failed []int // indexes of the records reported (ReportBatchItemFailures), ascending
	err    error // the invocation failed as a whole
	took   time.Duration
}

// invokeBatch invokes the function with payload and reads its partial
// batch response against the batch's item identifiers ids.
func (src *eventSource) invokeBatch(ctx context.Context, payload []byte, ids []string, reports bool) batchResult {
	start := time.Now()
	out, err := src.s.cfg.Invoker.Invoke(ctx, src.fn.ID, payload)
	res := batchResult{err: err, took: time.Since(start)}
	if err == nil && reports {
		res.failed, res.err = reportedFailures(out, ids)
	}
	return res
}

// errBadBatchResponse is a partial batch response Lambda treats as the
// failure of the whole batch.
var errBadBatchResponse = errors.New("invalid partial batch response")

// reportedFailures reads a partial batch response ({"batchItemFailures":
// [{"itemIdentifier": ...}]}) as Lambda does: null, {} or an empty list is
// a complete success; an answer that is not such an object, or an
// identifier that is empty, missing or not one of ids, fails the whole
// batch. It returns the indexes (into ids) of the reported records.
func reportedFailures(out []byte, ids []string) ([]int, error) {
	var resp *struct {
		Failures []*struct {
			ID *string `json:"itemIdentifier"`
		} `json:"batchItemFailures"`
	}
	if err := json.Unmarshal(out, &resp); err != nil {
		return nil, fmt.Errorf("%w: %v", errBadBatchResponse, err)
	}
	if resp == nil {
		return nil, nil
	}
	var idx []int
	for _, f := range resp.Failures {
		if f == nil || f.ID == nil || *f.ID == "" {
			return nil, fmt.Errorf("%w: an empty itemIdentifier", errBadBatchResponse)
		}
		i := slices.Index(ids, *f.ID)
		if i < 0 {
			return nil, fmt.Errorf("%w: itemIdentifier %q is not in the batch", errBadBatchResponse, *f.ID)
		}
		idx = append(idx, i)
	}
	slices.Sort(idx)
	return slices.Compact(idx), nil
}

// run calls step until the stack stops, waiting what step returns between
// calls.
func (src *eventSource) run(step func(ctx context.Context) time.Duration) {
	s := src.s
	s.bg.Add(1)
	go func() {
		defer s.bg.Done()
		t := time.NewTimer(0)
		defer t.Stop()
		for {
			select {
			case <-s.bgctx.Done():
				return
			case <-t.C:
			}
			d := s.cfg.PollInterval
			src.mu.Lock()
			if src.enabled.Load() {
				d = step(s.bgctx)
			}
			src.mu.Unlock()
			t.Reset(d)
		}
	}()
}

// retryDelay is the wait before retry n (1, 2, ...) of a failed batch.
func (src *eventSource) retryDelay(n int) time.Duration {
	d := src.s.cfg.PollInterval
	for i := 1; i < n && d < maxRetryDelay; i++ {
		d *= 2
	}
	return min(d, maxRetryDelay)
}

// --- DynamoDB streams ---

// streamShard is one shard of a stream mapping: the records read and not
// yet done, oldest first, and the state of the batch at their head.
type streamShard struct {
	src     *eventSource
	arn     string // the stream's real ARN
	shard   string
	reader  *ddbstream.Reader
	buf     []events.DynamoDBEventRecord
	since   time.Time // when the oldest buffered record was read
	size    int       // the next batch's size limit (smaller after a bisect or a partial failure)
	retries int       // failed invocations of the batch at the head
	invokes int       // invocations of it, for the failure record
	skipped int       // records filtered out since the last batch line
}

func (src *eventSource) startStream(ctx context.Context) error {
	s, st := src.s, src.ev.Stream
	name := s.cfg.Template.TableName(st.Stream.Resource)
	if name == "" {
		src.logf("not run: its stream %v is not a table of this template", st.Stream)
		return nil
	}
	d, err := s.cfg.DynamoDB.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(name)})
	if err != nil {
		return fmt.Errorf("event source %s: describe table %s: %w", src.name, name, err)
	}
	arn := aws.ToString(d.Table.LatestStreamArn)
	if arn == "" {
		src.logf("not run: table %s has no stream (StreamSpecification)", name)
		return nil
	}
	c := s.cfg.Streams
	shards, err := ddbstream.Shards(ctx, c, arn)
	if err != nil {
		return fmt.Errorf("event source %s: %w", src.name, err)
	}
	start := streamtypes.ShardIteratorTypeLatest
	if st.StartingPosition == string(streamtypes.ShardIteratorTypeTrimHorizon) {
		start = streamtypes.ShardIteratorTypeTrimHorizon
	}
	for _, id := range shards {
		sh := &streamShard{src: src, arn: arn, shard: id, reader: ddbstream.NewReader(c, arn, id, start), size: src.streamBatchSize()}
		src.run(sh.step)
	}
	retries := "retries until the record expires"
	if st.MaximumRetryAttempts != nil && *st.MaximumRetryAttempts >= 0 {
		retries = strconv.Itoa(*st.MaximumRetryAttempts) + " retries"
	}
	src.logf("polls the stream of %s every %s (%d shard(s), from %s, batch %d, %d filter(s)%s%s, %s, on failure %s)",
		name, s.cfg.PollInterval, len(shards), start, src.streamBatchSize(), len(src.filters),
		when(st.ReportsBatchItemFailures(), ", partial failures"), when(st.BisectBatchOnFunctionError, ", bisect"),
		retries, orNone(st.OnFailure.Resource))
	return nil
}

func when(on bool, s string) string {
	if on {
		return s
	}
	return ""
}

func orNone(s string) string {
	if s == "" {
		return "dropped"
	}
	return "to " + s
}

func (src *eventSource) streamBatchSize() int {
	return src.ev.Stream.BatchSizeOrDefault(samtemplate.DefaultStreamBatchSize)
}

// step reads new records, applies the filters and the record age, and
// invokes the function with the next batch; it returns the wait before
// the next step.
func (sh *streamShard) step(ctx context.Context) time.Duration {
	src, st := sh.src, sh.src.ev.Stream
	poll := src.s.cfg.PollInterval
	full := src.streamBatchSize()
	// One GetRecords per step, as Lambda polls a shard: the batch is what
	// has arrived, not what arrives while it waits.
	if len(sh.buf) < full && !sh.reader.Closed() && !sh.read(ctx) {
		return poll
	}
	sh.dropExpired(ctx)
	if len(sh.buf) == 0 {
		return poll
	}
	if w := st.MaximumBatchingWindow; len(sh.buf) < full && sh.retries == 0 && time.Since(sh.since) < w {
		return min(poll, w-time.Since(sh.since))
	}
	n := min(len(sh.buf), sh.size)
	batch := sh.buf[:n]
	ids := make([]string, n)
	for i, r := range batch {
		ids[i] = r.Change.SequenceNumber
	}
	sh.invokes++
	res := src.invokeBatch(ctx, mustJSON(events.DynamoDBEvent{Records: batch}), ids, st.ReportsBatchItemFailures())
	if ctx.Err() != nil {
		return 0
	}
	line := fmt.Sprintf("(stream %s): %d record(s) %s%s, age %s, invoked in %s", sh.shard, n, seqRange(batch), sh.skippedNote(),
		recordAge(batch[0]).Round(time.Millisecond), res.took.Round(100*time.Microsecond))
	switch {
	case res.err == nil && len(res.failed) == 0:
		src.logf("%s: ok", line)
		sh.done(n)
		return 0
	case res.err == nil:
		return sh.partialFailure(ctx, line, ids, res.failed)
	case st.BisectBatchOnFunctionError && n > 1:
		sh.size = (n + 1) / 2
		src.logf("%s: function error (%v); bisect: retrying the first %d", line, res.err, sh.size)
		return poll
	default:
		return sh.functionError(ctx, line, n, res.err)
	}
}

// read reads the shard's new records once into the buffer, skipping those
// the filters drop; false when the read failed.
func (sh *streamShard) read(ctx context.Context) bool {
	src := sh.src
	recs, err := sh.reader.Next(ctx, maxStreamRead)
	if err != nil {
		if ctx.Err() == nil {
			src.logf("shard %s: %v", sh.shard, err)
		}
		return false
	}
	for _, r := range recs {
		if !src.filters.pass(mustJSON(r)) {
			sh.skipped++
			continue
		}
		if len(sh.buf) == 0 {
			sh.since = time.Now()
		}
		sh.buf = append(sh.buf, r)
	}
	return true
}

// dropExpired gives up on the buffered records older than
// MaximumRecordAge (RecordAgeExceeded).
func (sh *streamShard) dropExpired(ctx context.Context) {
	maxAge := sh.src.ev.Stream.MaximumRecordAge
	if maxAge <= 0 {
		return
	}
	n := 0
	for n < len(sh.buf) && recordAge(sh.buf[n]) > maxAge {
		n++
	}
	if n > 0 {
		sh.fail(ctx, sh.buf[:n], "RecordAgeExceeded", nil)
		sh.done(n)
	}
}

// done drops the first n buffered records and starts the next batch.
func (sh *streamShard) done(n int) {
	sh.buf = sh.buf[n:]
	sh.reset()
}

// exhausted reports whether the batch at the head has used up
// MaximumRetryAttempts.
func (sh *streamShard) exhausted() bool {
	m := sh.src.ev.Stream.MaximumRetryAttempts
	return m != nil && *m >= 0 && sh.retries > *m
}

// partialFailure retries the batch from the lowest reported record
// (ReportBatchItemFailures), or gives up on it once retries are exhausted.
func (sh *streamShard) partialFailure(ctx context.Context, line string, ids []string, failed []int) time.Duration {
	src, n := sh.src, len(ids)
	first := failed[0]
	sh.buf, sh.size = sh.buf[first:], n-first
	sh.retries++
	if sh.exhausted() {
		src.logf("%s: %d reported from %s; retries exhausted", line, len(failed), ids[first])
		sh.fail(ctx, sh.buf[:sh.size], "RetryAttemptsExhausted", nil)
		sh.done(sh.size)
		return 0
	}
	d := src.retryDelay(sh.retries)
	src.logf("%s: %d reported; retry %d of the %d record(s) from %s in %s", line, len(failed), sh.retries, sh.size, ids[first], d)
	return d
}

// functionError retries the batch of n records the function failed, or
// gives up on it once retries are exhausted.
func (sh *streamShard) functionError(ctx context.Context, line string, n int, err error) time.Duration {
	src := sh.src
	sh.retries++
	if sh.exhausted() {
		src.logf("%s: function error (%v); retries exhausted", line, err)
		sh.fail(ctx, sh.buf[:n], "RetryAttemptsExhausted", err)
		sh.done(n)
		return 0
	}
	d := src.retryDelay(sh.retries)
	src.logf("%s: function error (%v); retry %d in %s", line, err, sh.retries, d)
	return d
}

// recordAge is how long ago the record's change was made (0 when the
// record does not say), as Lambda's IteratorAge measures it.
func recordAge(r events.DynamoDBEventRecord) time.Duration {
	if t := r.Change.ApproximateCreationDateTime.Time; !t.IsZero() {
		return time.Since(t)
	}
	return 0
}

// reset starts the next batch afresh: full size, no retries.
func (sh *streamShard) reset() {
	sh.size, sh.retries, sh.invokes = sh.src.streamBatchSize(), 0, 0
}

func (sh *streamShard) skippedNote() string {
	if sh.skipped == 0 {
		return ""
	}
	n := sh.skipped
	sh.skipped = 0
	return fmt.Sprintf(" (%d filtered out before it)", n)
}

func seqRange(recs []events.DynamoDBEventRecord) string {
	first, last := recs[0].Change.SequenceNumber, recs[len(recs)-1].Change.SequenceNumber
	if first == last {
		return "seq " + first
	}
	return "seq " + first + ".." + last
}

// StreamFailureRecord is what Lambda sends a stream mapping's on-failure
// destination for a batch it gave up on: a description of the batch (the
// records stay in the stream until they expire).
type StreamFailureRecord struct {
	RequestContext struct {
		RequestID              string `json:"requestId"`
		FunctionArn            string `json:"functionArn"`
		Condition              string `json:"condition"` // RetryAttemptsExhausted or RecordAgeExceeded
		ApproximateInvokeCount int    `json:"approximateInvokeCount"`
	} `json:"requestContext"`
	ResponseContext struct {
		StatusCode      int    `json:"statusCode"`
		ExecutedVersion string `json:"executedVersion"`
		FunctionError   string `json:"functionError,omitempty"`
	} `json:"responseContext"`
	Version            string `json:"version"`
	Timestamp          string `json:"timestamp"`
	DDBStreamBatchInfo struct {
		ShardID                         string `json:"shardId"`
		StartSequenceNumber             string `json:"startSequenceNumber"`
		EndSequenceNumber               string `json:"endSequenceNumber"`
		ApproximateArrivalOfFirstRecord string `json:"approximateArrivalOfFirstRecord"`
		ApproximateArrivalOfLastRecord  string `json:"approximateArrivalOfLastRecord"`
		BatchSize                       int    `json:"batchSize"`
		StreamArn                       string `json:"streamArn"`
	} `json:"DDBStreamBatchInfo"`
}

// fail sends the failure record of recs to the mapping's on-failure
// destination (a queue of the template), or logs that they are dropped.
func (sh *streamShard) fail(ctx context.Context, recs []events.DynamoDBEventRecord, condition string, fnErr error) {
	src, s := sh.src, sh.src.s
	var r StreamFailureRecord
	r.RequestContext.RequestID = lambda.NewRequestID()
	r.RequestContext.FunctionArn = "arn:aws:lambda:" + s.cfg.Region + ":" + template.FakeAccount + ":function:" + src.fn.ID
	r.RequestContext.Condition = condition
	r.RequestContext.ApproximateInvokeCount = sh.invokes
	r.ResponseContext.StatusCode, r.ResponseContext.ExecutedVersion = 200, "$LATEST"
	if fnErr != nil {
		r.ResponseContext.FunctionError = "Unhandled"
	}
	r.Version, r.Timestamp = "1.0", time.Now().UTC().Format("2006-01-02T15:04:05.000Z")
	bi := &r.DDBStreamBatchInfo
	bi.ShardID, bi.StreamArn, bi.BatchSize = sh.shard, sh.arn, len(recs)
	bi.StartSequenceNumber, bi.EndSequenceNumber = recs[0].Change.SequenceNumber, recs[len(recs)-1].Change.SequenceNumber
	bi.ApproximateArrivalOfFirstRecord = recs[0].Change.ApproximateCreationDateTime.UTC().Format(time.RFC3339)
	bi.ApproximateArrivalOfLastRecord = recs[len(recs)-1].Change.ApproximateCreationDateTime.UTC().Format(time.RFC3339)
	dest := src.ev.Stream.OnFailure
	url, ok := s.cfg.QueueURLs[dest.Resource]
	if !ok {
		src.logf("(stream %s): %s: %d record(s) %s dropped (no on-failure destination the local stack emulates: %v)", sh.shard, condition, len(recs), seqRange(recs), dest)
		return
	}
	if _, err := s.cfg.SQS.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(url), MessageBody: aws.String(string(mustJSON(r)))}); err != nil {
		src.logf("(stream %s): %s: could not send the failure record of %s to %s: %v", sh.shard, condition, seqRange(recs), dest.Resource, err)
		return
	}
	src.logf("(stream %s): %s: failure record of %d record(s) %s sent to %s", sh.shard, condition, len(recs), seqRange(recs), dest.Resource)
}

// --- SQS ---

// queueSource is an SQS mapping's state.
type queueSource struct {
	src *eventSource
	url string
	arn string
}

func (src *eventSource) startQueue() error {
	s, q := src.s, src.ev.Queue
	url, ok := s.cfg.QueueURLs[q.Queue.Resource]
	if !ok {
		src.logf("not run: its queue %v is not a queue of this template", q.Queue)
		return nil
	}
	qs := &queueSource{src: src, url: url, arn: q.Queue.Value}
	src.run(qs.step)
	src.logf("polls queue %s every %s (batch %d, %d filter(s)%s)", q.Queue.Resource, s.cfg.PollInterval, src.queueBatchSize(),
		len(src.filters), when(q.ReportsBatchItemFailures(), ", partial failures"))
	return nil
}

func (src *eventSource) queueBatchSize() int {
	return src.ev.Queue.BatchSizeOrDefault(samtemplate.DefaultQueueBatchSize)
}

// step receives a batch (up to the batch size, within the batching
// window), deletes the messages filtered out, invokes the function and
// deletes what it processed.
func (qs *queueSource) step(ctx context.Context) time.Duration {
	src, q := qs.src, qs.src.ev.Queue
	poll, full := src.s.cfg.PollInterval, src.queueBatchSize()
	msgs, filtered := qs.receive(ctx, full)
	if ctx.Err() != nil {
		return 0
	}
	qs.delete(ctx, filtered)
	if len(msgs) == 0 {
		if len(filtered) > 0 {
			src.logf("(queue %s): %d message(s) filtered out and deleted", q.Queue.Resource, len(filtered))
		}
		return poll
	}
	ids := make([]string, len(msgs))
	for i, m := range msgs {
		ids[i] = m.MessageId
	}
	res := src.invokeBatch(ctx, mustJSON(events.SQSEvent{Records: msgs}), ids, q.ReportsBatchItemFailures())
	if ctx.Err() != nil {
		return 0
	}
	line := fmt.Sprintf("(queue %s): %d message(s)%s, invoked in %s", q.Queue.Resource, len(msgs), filteredNote(len(filtered)), res.took.Round(100*time.Microsecond))
	if res.err != nil {
		src.logf("%s: function error (%v); every message comes back after %s", line, res.err, qs.visibility())
		return poll
	}
	var done []events.SQSMessage
	for i, m := range msgs {
		if !slices.Contains(res.failed, i) {
			done = append(done, m)
		}
	}
	qs.delete(ctx, done)
	if len(res.failed) > 0 {
		src.logf("%s: %d reported, left to come back after %s; %d deleted", line, len(res.failed), qs.visibility(), len(done))
	} else {
		src.logf("%s: ok, %d deleted", line, len(done))
	}
	if len(msgs) == full {
		return 0 // there may be more
	}
	return poll
}

// receive receives up to full messages within the batching window: those
// the filters pass, and those they drop.
func (qs *queueSource) receive(ctx context.Context, full int) (msgs, filtered []events.SQSMessage) {
	src, q := qs.src, qs.src.ev.Queue
	s, poll := src.s, src.s.cfg.PollInterval
	deadline := time.Now().Add(q.MaximumBatchingWindow)
	for len(msgs) < full {
		out, err := s.cfg.SQS.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
			QueueUrl: aws.String(qs.url), MaxNumberOfMessages: int32(min(full-len(msgs), maxQueueReceive)),
			MessageSystemAttributeNames: []sqstypes.MessageSystemAttributeName{sqstypes.MessageSystemAttributeNameAll},
			MessageAttributeNames:       []string{"All"},
		})
		if err != nil {
			if ctx.Err() == nil {
				src.logf("(queue %s): receive: %v", q.Queue.Resource, err)
			}
			return msgs, filtered
		}
		for _, m := range out.Messages {
			rec := sqsRecord(m, qs.arn, s.cfg.Region)
			if src.filters.passDecoded(sqsFilterView(rec)) {
				msgs = append(msgs, rec)
			} else {
				filtered = append(filtered, rec)
			}
		}
		if len(out.Messages) == 0 {
			if len(msgs) == 0 || time.Now().After(deadline) {
				return msgs, filtered
			}
			select {
			case <-ctx.Done():
				return msgs, filtered
			case <-time.After(min(poll, time.Until(deadline))):
			}
		}
	}
	return msgs, filtered
}

// visibility names the queue's visibility timeout, after which a message
// not deleted comes back.
func (qs *queueSource) visibility() string {
	vt := "the visibility timeout"
	for _, x := range qs.src.s.cfg.Template.Model.Queues() {
		if x.ID == qs.src.ev.Queue.Queue.Resource && x.VisibilityTimeout > 0 {
			vt += " (" + x.VisibilityTimeout.String() + ")"
		}
	}
	return vt
}

func filteredNote(n int) string {
	if n == 0 {
		return ""
	}
	return fmt.Sprintf(" (%d filtered out and deleted)", n)
}

// delete deletes messages by receipt handle, ten at a time.
func (qs *queueSource) delete(ctx context.Context, msgs []events.SQSMessage) {
	for chunk := range slices.Chunk(msgs, 10) {
		in := &sqs.DeleteMessageBatchInput{QueueUrl: aws.String(qs.url)}
		for i, m := range chunk {
			in.Entries = append(in.Entries, sqstypes.DeleteMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(i)), ReceiptHandle: aws.String(m.ReceiptHandle)})
		}
		out, err := qs.src.s.cfg.SQS.DeleteMessageBatch(ctx, in)
		switch {
		case err != nil && ctx.Err() == nil:
			qs.src.logf("(queue %s): delete: %v", qs.src.ev.Queue.Queue.Resource, err)
		case err == nil && len(out.Failed) > 0:
			qs.src.logf("(queue %s): delete: %d failed (%s)", qs.src.ev.Queue.Queue.Resource, len(out.Failed), aws.ToString(out.Failed[0].Message))
		}
	}
}

// sqsRecord is message m of the queue queueARN as Lambda delivers it.
func sqsRecord(m sqstypes.Message, queueARN, region string) events.SQSMessage {
	rec := events.SQSMessage{
		MessageId:              aws.ToString(m.MessageId),
		ReceiptHandle:          aws.ToString(m.ReceiptHandle),
		Body:                   aws.ToString(m.Body),
		Md5OfBody:              aws.ToString(m.MD5OfBody),
		Md5OfMessageAttributes: aws.ToString(m.MD5OfMessageAttributes),
		Attributes:             m.Attributes,
		MessageAttributes:      map[string]events.SQSMessageAttribute{},
		EventSource:            "aws:sqs",
		EventSourceARN:         queueARN,
		AWSRegion:              region,
	}
	if rec.Attributes == nil {
		rec.Attributes = map[string]string{}
	}
	for k, v := range m.MessageAttributes {
		rec.MessageAttributes[k] = events.SQSMessageAttribute{
			StringValue: v.StringValue, BinaryValue: v.BinaryValue, DataType: aws.ToString(v.DataType),
			StringListValues: v.StringListValues, BinaryListValues: v.BinaryListValues,
		}
	}
	return rec
}

// sqsFilterView is a message as Lambda's filters see it: its JSON, with
// the body decoded when it is a JSON object.
func sqsFilterView(m events.SQSMessage) map[string]any {
	view, _ := decodeObject(mustJSON(m))
	if body, ok := decodeObject([]byte(m.Body)); ok {
		view["body"] = body
	}
	return view
}

// mustJSON marshals an event or record: the events' types have no value
// that does not marshal.
func mustJSON(v any) []byte {
	b, _ := json.Marshal(v)
	return b
}
