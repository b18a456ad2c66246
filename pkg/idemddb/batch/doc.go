// Package batch makes an AWS Lambda consumer of Amazon SQS or Amazon
// DynamoDB Streams run each record's work at most once per key, on top of
// the idemddb store, with partial batch failures:
//
//	lambda.Start(batch.WrapSQS(store, "send-receipt", sendReceipt,
//		batch.WithKey(batch.BodyField("order_id"))))
//	lambda.Start(batch.WrapStream(store, "fulfil-order", fulfil,
//		batch.WithKey(batch.NewImageField("order_id"))))
//
// The event source mapping must list ReportBatchItemFailures in its
// FunctionResponseTypes: the handler answers with the records to retry
// (events.SQSEventResponse with message ids, events.DynamoDBEventResponse
// with sequence numbers), and every other record counts as done.
//
// # Each record
//
// The per-record handler gets the claim (and its context carries it, see
// idemddb.ClaimFromContext): writes it adds with Claim.AddWrites commit in
// the same transaction as the record, so the effect and "done" commit
// together or not at all. Claim.ResourceID is a stable id for what the
// record creates. The handler returns only an error: no result is stored
// (the record holds an empty result), because a batch response has no
// per-record payload and a replay only needs to know the work completed.
//
//	outcome      reported  what happened
//	processed    no        the handler ran; its record (and AddWrites) committed
//	replayed     no        the key completed before; the handler did not run
//	failed       yes       the handler returned an error; the key was released
//	panic        yes       the handler panicked; the key was released, the panic
//	                       recovered and logged with its stack; other records go on
//	in_progress  yes       another invocation holds the key (idemddb.ErrInProgress)
//	unavailable  yes       DynamoDB failed (idemddb.ErrUnavailable). Before the
//	                       handler ran, it did not run; after, the completion's
//	                       outcome is unknown and the key stays claimed until its
//	                       lease ends, so the retry replays or takes over
//	fenced       yes       another invocation took the key over; its outcome stands
//	canceled     yes       a Claim.AddWrites condition failed: nothing committed,
//	                       the key was released
//	invalid_key  yes       no usable key (a missing attribute or field, or an
//	                       empty one); never processed without idempotency
//	mismatch     yes       the key was used by a record with another fingerprint;
//	                       the handler did not run. WithDropMismatches acknowledges
//	                       it instead (logged at ERROR)
//	blocked      yes       an earlier record of its FIFO message group (or of its
//	                       stream item) failed in this batch; not run
//	deadline     yes       too little time was left to start it; not run
//	error        yes       any other error
//
// Reported records are returned in batch order. A record to report
// without an item identifier fails the whole batch with
// ErrNoItemIdentifier, as Lambda itself would. A handler wrapped without a
// store, handler or consumer name, or with a Key or option of the other
// source, fails every batch with ErrNotConfigured.
//
// # Keys and scope
//
// WithKey chooses the key: for SQS the message id (MessageID, the
// default), a message attribute (MessageAttribute) or a field of the JSON
// body (BodyField, a dotted path); for streams the event id (EventID, the
// default), or an attribute of the new image (NewImageField) or of the
// item's keys (KeysField), each together with the event name (INSERT,
// MODIFY, REMOVE). The record key is a SHA-256 (base64url, 50 bytes with
// its prefix "batch1:", computed like pkg/idemddb/apigw's) over the consumer
// name, the source, the event name and the key, so consumers with
// different names never share records, even on one queue, and no raw key
// (an order id, an email) is stored or logged.
//
// # Fingerprint
//
// The same key with another fingerprint is a mismatch. For SQS the
// fingerprint depends on where the key comes from, plus the message
// attributes named by WithFingerprintAttributes:
//
//   - keyed by MessageID (the default): the whole body (canonical JSON
//     when the body is valid JSON, so member order, whitespace and the
//     spelling of numbers do not matter; else its bytes). SQS redelivers a
//     message unchanged, so a mismatch means the body changed under one
//     message id.
//   - keyed by the message's content (BodyField, MessageAttribute): no
//     field of the body. Such a key is the producer's statement that two
//     sends are one event, and producers set fields per send (a timestamp,
//     a trace id): fingerprinting the whole body would make each resend a
//     mismatch, reported on every receive and moved to the dead-letter
//     queue. A resend under the key replays, whatever else its body holds.
//
// WithFingerprintFields("order_id", "amount") fingerprints the named
// fields of the body (dotted paths, as BodyField; values compared as
// canonical JSON) with either key: a resend whose chosen fields differ is
// a mismatch, one that differs elsewhere replays. WithFingerprintBody
// fingerprints the whole body with either key, as content-keyed consumers
// did before WithFingerprintFields (the same encoding: records stored then
// still match; without it, a redelivery of a message first handled before
// the upgrade is a mismatch until its record expires). For streams it is
// the event name, the item's keys and the new image, canonical: attributes
// in name order, set members sorted, numbers by exact value, so the same
// content delivered in another order fingerprints equal.
//
// # Order and concurrency
//
// Records run one at a time in batch order by default; WithConcurrency(n)
// runs up to n at once. Records that must stay ordered form a lane and
// run one after another, in batch order: a FIFO queue's message group
// (the MessageGroupId attribute), a stream item (its keys), or on a
// standard queue one key (so a duplicate in the same batch is replayed,
// not reported in progress). Different lanes run concurrently. After the
// first reported failure in a FIFO group or stream item, the lane's later
// records are reported without running (blocked), as Lambda requires to
// keep the group's order; a duplicate of a failed key on a standard queue
// is reported the same way.
//
// Lambda retries a stream from the lowest reported sequence number, so
// the records after it are delivered again: they replay, at one request
// each, and their work does not run twice.
//
// # Poison records
//
// A record that can never succeed (a mismatch, a missing key, a handler
// that always fails) is reported on every attempt, so it is retried until
// the event source gives up. Bound that: on SQS a redrive policy
// (maxReceiveCount) to a dead-letter queue; on streams
// MaximumRetryAttempts, BisectBatchOnFunctionError and an on-failure
// destination. Otherwise an SQS message loops until its retention period
// ends, and a stream shard is held up to the record's age limit (24 h by
// default). The record line logs SQS's ApproximateReceiveCount. In-progress
// answers count as receives too: keep the queue's visibility timeout
// above the function timeout (AWS advises six times). Where blocking is
// worse than losing a conflicting duplicate, WithDropMismatches
// acknowledges mismatches: the key's work has completed, for the first
// record that used it.
//
// # Deadline
//
// A record starts only while at least WithMinRemaining (default
// DefaultMinRemaining, 2 s) remains before the invocation deadline, and
// not after the context is cancelled; the records not started are
// reported (deadline). Records already running are waited for: if they
// overrun the deadline, Lambda fails the whole batch and the retry
// replays whatever completed. A key's lease outlives the invocation
// (idemddb: deadline plus margin), so a crashed record is taken over by
// the retry once its lease ends.
//
// # Observability
//
// One JSON slog line (WithLogger; default JSON on stdout) per record that
// was not simply processed (one processed after taking over a lapsed
// lease is logged too, at INFO, with taken_over): outcome, reported, item
// id, a hash prefix of the record key, reason, error, and for SQS the
// receive count; panics include the stack. One summary line per batch with the count of each
// outcome. One CloudWatch Embedded Metric Format document per batch
// (WithMetrics; default stdout; nil disables) with Records, Reported and
// a Count per outcome (Processed, Replayed, Failed, InProgress, ...) in
// namespace "Idempotency" (WithNamespace), dimension Consumer. Bodies,
// images and raw keys are never logged.
//
// # DynamoDB requests per record
//
// A first execution costs two requests: the claim PutItem and the
// completion (an UpdateItem, or one TransactWriteItems with the record's
// AddWrites). A replay, an in-progress or a mismatch costs one (zero with
// an idemddb.Cache hit; two on an engine that ignores
// ReturnValuesOnConditionCheckFailure, such as dynalite). A failure costs the claim and the release
// DeleteItem. Records not started cost none.
package batch
