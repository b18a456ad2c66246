// Command slow is a test fixture Lambda that sleeps longer than its
// template timeout when asked (?sleep=1), and answers quickly otherwise.
package main

import (
	"context"
	"os"
	"strconv"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
)

func handle(ctx context.Context, ev events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	if ev.QueryStringParameters["sleep"] != "" {
		select {
		case <-time.After(30 * time.Second):
		case <-ctx.Done():
			// Keep sleeping past the deadline, like a stuck handler.
			time.Sleep(30 * time.Second)
		}
	}
	return events.APIGatewayV2HTTPResponse{StatusCode: 200, Body: "pid=" + strconv.Itoa(os.Getpid())}, nil
}

func main() { lambda.Start(handle) }
