package idemddb

// The reads: the strongly consistent read of a record, and how a write's
// failure is read (refused, or an outcome that one read settles). The
// wait's polls (wait.go) and inspection (inspect.go) use the same read.

import (
	"context"
	"errors"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// readRecord reads key's record, strongly consistent.
func (s *Store) readRecord(ctx context.Context, key string) (map[string]types.AttributeValue, error) {
	got, err := s.client.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      s.shapes.table,
		Key:            map[string]types.AttributeValue{s.cfg.KeyAttribute: str(key)},
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return nil, &StoreError{Op: "GetItem", Err: err}
	}
	return got.Item, nil
}

// detachedTimeout bounds the requests that run even when the caller's
// context has ended: the one strongly consistent read that settles an
// ambiguous write, and the release of a claim whose work failed.
const detachedTimeout = 5 * time.Second

// refused reports whether err proves that DynamoDB did not apply the
// request: an answer the service attributes to the caller (a 4xx:
// validation, throttling, a missing table, ...), given before anything is
// applied. A transport error, a 5xx, a cancelled context or an answer that
// could not be read may hide an applied request.
func refused(err error) bool {
	var ae smithy.APIError
	if errors.As(err, &ae) && ae.ErrorFault() == smithy.FaultClient {
		return true
	}
	var re *smithyhttp.ResponseError
	if errors.As(err, &re) {
		st := re.HTTPStatusCode()
		return st >= 400 && st < 500
	}
	return false
}

// readBack makes the one strongly consistent read that settles an ambiguous
// write, detached from ctx's cancellation and bounded by detachedTimeout.
// ok is false when the read failed too.
func (s *Store) readBack(ctx context.Context, key string) (map[string]types.AttributeValue, bool) {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), detachedTimeout)
	defer cancel()
	item, err := s.readRecord(rctx, key)
	return item, err == nil
}

// current returns the item that failed a condition: the one the engine
// sent back (ALL_OLD), or else one strongly consistent read of it; nil when
// there is none.
func (s *Store) current(ctx context.Context, key string, ccf *types.ConditionalCheckFailedException) (map[string]types.AttributeValue, error) {
	if ccf.Item != nil {
		return ccf.Item, nil
	}
	return s.readRecord(ctx, key)
}
