// Package ddbstreamtest gives tests a DynamoDB Streams client for a local
// engine and turns a table's stream on. It is apart from ddbtest so that a
// module testing with ddbtest alone (the library, pkg/idemddb) does not
// require the Streams client module: a module's test dependencies are in
// its go.mod, and so in the module graph of everyone who uses it.
package ddbstreamtest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/acme/idemcheckout/ddblocal/localddb"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"
)

// NewClient returns a DynamoDB Streams client for a local endpoint (moto
// serves the Streams API on the engine's endpoint), configured like
// localddb.NewClient: static test credentials, one attempt per request.
func NewClient(endpoint string) *dynamodbstreams.Client {
	return dynamodbstreams.NewFromConfig(aws.Config{
		Region:           "us-east-1",
		Credentials:      localddb.Credentials(),
		RetryMaxAttempts: 1,
		HTTPClient:       localddb.NewHTTPClient(),
	}, func(o *dynamodbstreams.Options) { o.BaseEndpoint = aws.String(endpoint) })
}

// Enable turns on the table's stream with NEW_AND_OLD_IMAGES (as
// template.yaml's orders table has it) and returns the stream's ARN.
func Enable(t testing.TB, c *dynamodb.Client, table string) string {
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
