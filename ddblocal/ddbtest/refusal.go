package ddbtest

import (
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// Cancellation returns DynamoDB's answer to a TransactWriteItems that it
// cancelled without applying anything: a *types.TransactionCanceledException
// with one reason per item of in (a *dynamodb.TransactWriteItemsInput), in
// order: codes[i] for the items codes names ("TransactionConflict",
// "ConditionalCheckFailed", ...), "None" for the others. Use it with
// Client.Refuse.
func Cancellation(in any, codes map[int]string) error {
	tx, _ := in.(*dynamodb.TransactWriteItemsInput)
	n := 0
	if tx != nil {
		n = len(tx.TransactItems)
	}
	reasons := make([]types.CancellationReason, n)
	for i := range reasons {
		code, ok := codes[i]
		if !ok {
			code = "None"
		}
		reasons[i] = types.CancellationReason{Code: aws.String(code)}
		if code != "None" {
			reasons[i].Message = aws.String("injected: " + code)
		}
	}
	return &types.TransactionCanceledException{
		Message:             aws.String("Transaction cancelled, please refer cancellation reasons for specific reasons"),
		CancellationReasons: reasons,
	}
}

// Conflict returns DynamoDB's answer to a single write that met a
// transaction in flight on its item: a *types.TransactionConflictException
// (nothing was applied). Use it with Client.Refuse.
func Conflict(any) error {
	return &types.TransactionConflictException{Message: aws.String("injected: Transaction is ongoing for the item")}
}
