// Command ddbwrite is a test fixture Lambda that writes the request body to
// the DynamoDB table named by ITEMS_TABLE (an !Ref in the fixture template),
// proving the engine endpoint, credentials and table wiring.
package main

import (
	"context"
	"os"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

var client *dynamodb.Client

func handle(ctx context.Context, ev events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	id := ev.PathParameters["id"]
	_, err := client.PutItem(ctx, &dynamodb.PutItemInput{
		TableName: aws.String(os.Getenv("ITEMS_TABLE")),
		Item: map[string]types.AttributeValue{
			"id":         &types.AttributeValueMemberS{Value: id},
			"body":       &types.AttributeValueMemberS{Value: ev.Body},
			"expires_at": &types.AttributeValueMemberN{Value: "4102444800"},
		},
	})
	if err != nil {
		return events.APIGatewayV2HTTPResponse{StatusCode: 500, Body: err.Error()}, nil
	}
	return events.APIGatewayV2HTTPResponse{StatusCode: 201, Body: os.Getenv("ITEMS_TABLE") + "/" + id}, nil
}

func main() {
	cfg, err := config.LoadDefaultConfig(context.Background())
	if err != nil {
		panic(err)
	}
	client = dynamodb.NewFromConfig(cfg)
	lambda.Start(handle)
}
