// Package ddbstream reads a DynamoDB stream through the DynamoDB Streams
// API (DescribeStream, GetShardIterator, GetRecords) and turns its records
// into the shape Lambda delivers them in (aws-lambda-go's
// events.DynamoDBEventRecord, with eventSourceARN set). It is the one
// reader of streams in this module: the local stack's event source
// mappings poll with it, and tests read the outbox of a table with it.
package ddbstream

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams/types"
)

// Client is the part of *dynamodbstreams.Client the package calls.
type Client interface {
	DescribeStream(ctx context.Context, in *dynamodbstreams.DescribeStreamInput, optFns ...func(*dynamodbstreams.Options)) (*dynamodbstreams.DescribeStreamOutput, error)
	GetShardIterator(ctx context.Context, in *dynamodbstreams.GetShardIteratorInput, optFns ...func(*dynamodbstreams.Options)) (*dynamodbstreams.GetShardIteratorOutput, error)
	GetRecords(ctx context.Context, in *dynamodbstreams.GetRecordsInput, optFns ...func(*dynamodbstreams.Options)) (*dynamodbstreams.GetRecordsOutput, error)
}

// Shards returns the ids of the stream's shards, in the order
// DescribeStream lists them (every page).
func Shards(ctx context.Context, c Client, streamARN string) ([]string, error) {
	var ids []string
	var start *string
	for {
		out, err := c.DescribeStream(ctx, &dynamodbstreams.DescribeStreamInput{StreamArn: aws.String(streamARN), ExclusiveStartShardId: start})
		if err != nil {
			return nil, fmt.Errorf("ddbstream: describe stream %s: %w", streamARN, err)
		}
		if out.StreamDescription == nil {
			return ids, nil
		}
		for _, sh := range out.StreamDescription.Shards {
			ids = append(ids, aws.ToString(sh.ShardId))
		}
		start = out.StreamDescription.LastEvaluatedShardId
		if start == nil {
			return ids, nil
		}
	}
}

// Reader reads one shard in sequence order, from TRIM_HORIZON (the oldest
// record) or LATEST (records written after the first Next). It follows
// GetRecords' NextShardIterator, and after an expired or lost iterator
// it starts again after the last record it returned. Not safe for
// concurrent use.
type Reader struct {
	c          Client
	arn, shard string
	start      types.ShardIteratorType
	iter       *string
	last       string // sequence number of the last record returned
	closed     bool
}

// NewReader returns a reader of shard of the stream streamARN from start
// (types.ShardIteratorTypeTrimHorizon or types.ShardIteratorTypeLatest).
func NewReader(c Client, streamARN, shard string, start types.ShardIteratorType) *Reader {
	return &Reader{c: c, arn: streamARN, shard: shard, start: start}
}

// Closed reports whether the shard has ended (it was split or the stream
// disabled) and every record was read.
func (r *Reader) Closed() bool { return r.closed }

// Next returns the next records of the shard, up to limit (1 to 1000),
// none when there are none yet.
func (r *Reader) Next(ctx context.Context, limit int32) ([]events.DynamoDBEventRecord, error) {
	if r.closed {
		return nil, nil
	}
	if r.iter == nil {
		in := &dynamodbstreams.GetShardIteratorInput{StreamArn: aws.String(r.arn), ShardId: aws.String(r.shard), ShardIteratorType: r.start}
		if r.last != "" {
			in.ShardIteratorType, in.SequenceNumber = types.ShardIteratorTypeAfterSequenceNumber, aws.String(r.last)
		}
		out, err := r.c.GetShardIterator(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("ddbstream: shard iterator of %s: %w", r.shard, err)
		}
		r.iter = out.ShardIterator
		if r.iter == nil {
			r.closed = true
			return nil, nil
		}
	}
	out, err := r.c.GetRecords(ctx, &dynamodbstreams.GetRecordsInput{ShardIterator: r.iter, Limit: aws.Int32(limit)})
	if err != nil {
		// The next call starts again after the last record returned:
		// an iterator expires after 15 minutes, and a failed request
		// may have used it up.
		r.iter = nil
		var expired *types.ExpiredIteratorException
		if errors.As(err, &expired) {
			return nil, nil
		}
		return nil, fmt.Errorf("ddbstream: get records of %s: %w", r.shard, err)
	}
	recs := make([]events.DynamoDBEventRecord, 0, len(out.Records))
	for _, rec := range out.Records {
		recs = append(recs, Record(rec, r.arn))
	}
	if n := len(recs); n > 0 {
		r.last = recs[n-1].Change.SequenceNumber
	}
	r.iter = out.NextShardIterator
	r.closed = r.iter == nil
	return recs, nil
}

// ReadAll returns every record of every shard of the stream, oldest
// first within each shard, reading until GetRecords has no more.
func ReadAll(ctx context.Context, c Client, streamARN string) ([]events.DynamoDBEventRecord, error) {
	shards, err := Shards(ctx, c, streamARN)
	if err != nil {
		return nil, err
	}
	var all []events.DynamoDBEventRecord
	for _, sh := range shards {
		r := NewReader(c, streamARN, sh, types.ShardIteratorTypeTrimHorizon)
		for !r.Closed() {
			recs, err := r.Next(ctx, 1000)
			if err != nil {
				return nil, err
			}
			if len(recs) == 0 {
				break
			}
			all = append(all, recs...)
		}
	}
	return all, nil
}

// Record is rec as Lambda delivers it from the stream streamARN.
func Record(rec types.Record, streamARN string) events.DynamoDBEventRecord {
	out := events.DynamoDBEventRecord{
		AWSRegion:      aws.ToString(rec.AwsRegion),
		EventID:        aws.ToString(rec.EventID),
		EventName:      string(rec.EventName),
		EventSource:    aws.ToString(rec.EventSource),
		EventVersion:   aws.ToString(rec.EventVersion),
		EventSourceArn: streamARN,
	}
	if rec.UserIdentity != nil {
		out.UserIdentity = &events.DynamoDBUserIdentity{PrincipalID: aws.ToString(rec.UserIdentity.PrincipalId), Type: aws.ToString(rec.UserIdentity.Type)}
	}
	if d := rec.Dynamodb; d != nil {
		out.Change = events.DynamoDBStreamRecord{
			Keys:           Image(d.Keys),
			NewImage:       Image(d.NewImage),
			OldImage:       Image(d.OldImage),
			SequenceNumber: aws.ToString(d.SequenceNumber),
			SizeBytes:      aws.ToInt64(d.SizeBytes),
			StreamViewType: string(d.StreamViewType),
		}
		if d.ApproximateCreationDateTime != nil {
			out.Change.ApproximateCreationDateTime = events.SecondsEpochTime{Time: *d.ApproximateCreationDateTime}
		}
	}
	return out
}

// Image converts an image (or the keys) of a stream record; nil stays
// nil, so an absent image stays absent in the event's JSON.
func Image(m map[string]types.AttributeValue) map[string]events.DynamoDBAttributeValue {
	if m == nil {
		return nil
	}
	out := make(map[string]events.DynamoDBAttributeValue, len(m))
	for k, v := range m {
		out[k] = Value(v)
	}
	return out
}

// Value converts one attribute value. An unknown member (a type added to
// the API after this SDK) converts to NULL.
func Value(v types.AttributeValue) events.DynamoDBAttributeValue {
	switch x := v.(type) {
	case *types.AttributeValueMemberS:
		return events.NewStringAttribute(x.Value)
	case *types.AttributeValueMemberN:
		return events.NewNumberAttribute(x.Value)
	case *types.AttributeValueMemberB:
		return events.NewBinaryAttribute(x.Value)
	case *types.AttributeValueMemberBOOL:
		return events.NewBooleanAttribute(x.Value)
	case *types.AttributeValueMemberSS:
		return events.NewStringSetAttribute(x.Value)
	case *types.AttributeValueMemberNS:
		return events.NewNumberSetAttribute(x.Value)
	case *types.AttributeValueMemberBS:
		return events.NewBinarySetAttribute(x.Value)
	case *types.AttributeValueMemberL:
		l := make([]events.DynamoDBAttributeValue, len(x.Value))
		for i, e := range x.Value {
			l[i] = Value(e)
		}
		return events.NewListAttribute(l)
	case *types.AttributeValueMemberM:
		return events.NewMapAttribute(Image(x.Value))
	}
	return events.NewNullAttribute()
}
