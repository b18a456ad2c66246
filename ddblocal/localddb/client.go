package localddb

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
)

// External is an engine this process did not start, at endpoint (for
// example AWS_ENDPOINT_URL_DYNAMODB): Name "external", no process, and
// Stop does nothing.
func External(endpoint string) *Engine {
	return &Engine{Name: "external", Endpoint: endpoint}
}

// Client returns a DynamoDB client for the engine (NewClient).
func (e *Engine) Client(optFns ...func(*dynamodb.Options)) *dynamodb.Client {
	return NewClient(e.Endpoint, optFns...)
}

// Credentials returns the static credentials the local engines accept
// ("test"/"test"). It is written with the SDK core alone, so that a module
// testing with this package needs no credentials module.
func Credentials() aws.CredentialsProvider {
	return aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
		return aws.Credentials{AccessKeyID: "test", SecretAccessKey: "test", Source: "localddb"}, nil
	})
}

// NewClient returns a DynamoDB client for a local endpoint: static test
// credentials, one attempt per request (no SDK retries), and an HTTP
// transport that cannot report a request the engine applied as failed
// (OwnBodyTransport), so a test sees every request's real outcome.
func NewClient(endpoint string, optFns ...func(*dynamodb.Options)) *dynamodb.Client {
	cfg := aws.Config{
		Region:           "us-east-1",
		Credentials:      Credentials(),
		RetryMaxAttempts: 1,
		HTTPClient:       NewHTTPClient(),
	}
	opts := append([]func(*dynamodb.Options){func(o *dynamodb.Options) {
		o.BaseEndpoint = aws.String(endpoint)
	}}, optFns...)
	return dynamodb.NewFromConfig(cfg, opts...)
}
