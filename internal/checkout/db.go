package checkout

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
)

// DB is the part of *dynamodb.Client the checkout code calls directly (its
// other writes go through the idempotency claim). Tests wrap it to inject
// faults.
type DB interface {
	GetItem(ctx context.Context, in *dynamodb.GetItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	PutItem(ctx context.Context, in *dynamodb.PutItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
}
