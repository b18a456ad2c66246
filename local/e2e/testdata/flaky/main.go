// Command flaky is a test fixture for local/e2e. Under the real idempotency
// wrapper it counts attempts per claim (keyed by the claim's ResourceID,
// which survives a takeover) and, on the first attempt, dies the way a
// Lambda invocation can: POST /flaky/crash exits the process, POST
// /flaky/timeout runs past the function's timeout. Later attempts answer 201.
package main

import (
	"context"
	"encoding/json"
	"os"
	"strconv"
	"time"

	"github.com/acme/idemcheckout/internal/checkout/lambdaenv"
	"github.com/acme/idemcheckout/pkg/idemddb"
	"github.com/acme/idemcheckout/pkg/idemddb/apigw"
	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

func main() {
	cfg, err := lambdaenv.Load(os.Getenv)
	if err != nil {
		panic(err)
	}
	client, err := lambdaenv.NewDynamoDB(context.Background())
	if err != nil {
		panic(err)
	}
	store, err := lambdaenv.NewStore(client, cfg, lambdaenv.NewLogger(os.Stdout, cfg.LogLevel))
	if err != nil {
		panic(err)
	}
	attempts := os.Getenv("ATTEMPTS_TABLE")
	lambda.Start(apigw.WrapV2(store, func(ctx context.Context, req events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
		claim, _ := idemddb.ClaimFromContext(ctx)
		out, err := client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
			TableName:                 aws.String(attempts),
			Key:                       map[string]types.AttributeValue{"id": &types.AttributeValueMemberS{Value: claim.ResourceID}},
			UpdateExpression:          aws.String("ADD n :one"),
			ExpressionAttributeValues: map[string]types.AttributeValue{":one": &types.AttributeValueMemberN{Value: "1"}},
			ReturnValues:              types.ReturnValueUpdatedNew,
		})
		if err != nil {
			return events.APIGatewayV2HTTPResponse{}, err
		}
		n, _ := strconv.Atoi(out.Attributes["n"].(*types.AttributeValueMemberN).Value)
		if n == 1 {
			switch req.PathParameters["mode"] {
			case "crash":
				os.Exit(2)
			case "timeout":
				dl, _ := ctx.Deadline()
				<-time.After(time.Until(dl) + 5*time.Second) // the emulator kills us first
			}
		}
		body, _ := json.Marshal(map[string]any{"attempt": n, "resource_id": claim.ResourceID, "taken_over": claim.TakenOver})
		return events.APIGatewayV2HTTPResponse{StatusCode: 201, Headers: map[string]string{"Content-Type": "application/json"}, Body: string(body)}, nil
	}))
}
