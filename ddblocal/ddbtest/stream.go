package ddbtest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"
)

// Streams returns a DynamoDB Streams client for the engine (moto serves
// the Streams API on the same endpoint), configured like Client.
func (e *Engine) Streams() *dynamodbstreams.Client { return NewStreamsClient(e.Endpoint) }

// NewStreamsClient returns a DynamoDB Streams client for a local endpoint,
// configured like NewClient: static test credentials, one attempt per
// request.
func NewStreamsClient(endpoint string) *dynamodbstreams.Client {
	return dynamodbstreams.NewFromConfig(aws.Config{
		Region:           "us-east-1",
		Credentials:      credentials.NewStaticCredentialsProvider("test", "test", ""),
		RetryMaxAttempts: 1,
		HTTPClient:       newHTTPClient(),
	}, func(o *dynamodbstreams.Options) { o.BaseEndpoint = aws.String(endpoint) })
}

// EnableStream turns on the table's stream with NEW_AND_OLD_IMAGES (as
// template.yaml's orders table has it) and returns the stream's ARN.
func EnableStream(t testing.TB, c *dynamodb.Client, table string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := c.UpdateTable(ctx, &dynamodb.UpdateTableInput{
		TableName:           aws.String(table),
		StreamSpecification: &types.StreamSpecification{StreamEnabled: aws.Bool(true), StreamViewType: types.StreamViewTypeNewAndOldImages},
	})
	if err != nil {
		t.Fatal(fmt.Errorf("enable the stream of %s: %w", table, err))
	}
	arn := aws.ToString(out.TableDescription.LatestStreamArn)
	if arn == "" {
		d, err := c.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(table)})
		if err != nil {
			t.Fatal(err)
		}
		arn = aws.ToString(d.Table.LatestStreamArn)
	}
	if arn == "" {
		t.Fatalf("table %s has no stream after enabling it", table)
	}
	return arn
}
