package checkout

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// DB is the part of *dynamodb.Client the checkout code calls directly (the
// business writes that commit with an idempotency record go through the
// claim instead). Tests wrap it to count requests and inject faults.
type DB interface {
	GetItem(ctx context.Context, in *dynamodb.GetItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	PutItem(ctx context.Context, in *dynamodb.PutItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
	UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
	TransactWriteItems(ctx context.Context, in *dynamodb.TransactWriteItemsInput, optFns ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error)
	Scan(ctx context.Context, in *dynamodb.ScanInput, optFns ...func(*dynamodb.Options)) (*dynamodb.ScanOutput, error)
}

// getItem reads one item by its string hash key with a strongly consistent
// GetItem; found is false when there is none.
func getItem(ctx context.Context, db DB, table, keyName, key string) (item map[string]types.AttributeValue, found bool, err error) {
	out, err := db.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      aws.String(table),
		Key:            map[string]types.AttributeValue{keyName: &types.AttributeValueMemberS{Value: key}},
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return nil, false, err
	}
	return out.Item, out.Item != nil, nil
}

// scanPageSize is how many items one Scan page reads (before the filter).
const scanPageSize = 500

// scanFiltered returns up to limit items of table matching filter, reading
// page after page until it has them or the table ends. It reads every item
// of the table in the worst case: fine for this project's sizes, where a
// production deployment would query a sparse index instead.
func scanFiltered(ctx context.Context, db DB, table string, filter expression.ConditionBuilder, limit int) ([]map[string]types.AttributeValue, error) {
	expr, err := expression.NewBuilder().WithFilter(filter).Build()
	if err != nil {
		return nil, err
	}
	var out []map[string]types.AttributeValue
	var start map[string]types.AttributeValue
	for limit > 0 {
		page, err := db.Scan(ctx, &dynamodb.ScanInput{
			TableName:                 aws.String(table),
			FilterExpression:          expr.Filter(),
			ExpressionAttributeNames:  expr.Names(),
			ExpressionAttributeValues: expr.Values(),
			ExclusiveStartKey:         start,
			Limit:                     aws.Int32(scanPageSize),
		})
		if err != nil {
			return nil, err
		}
		for _, it := range page.Items {
			if len(out) == limit {
				return out, nil
			}
			out = append(out, it)
		}
		if len(page.LastEvaluatedKey) == 0 {
			break
		}
		start = page.LastEvaluatedKey
	}
	return out, nil
}
