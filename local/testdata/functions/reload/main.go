// Command reload is the hot-reload test fixture: it answers version.Version
// (an in-module package the test edits in a temporary copy). With
// ?hold=URL it first GETs URL/started, then URL/release, which the test
// answers when it wants the request to finish: a request held in flight
// across a rebuild, without sleeps.
package main

import (
	"context"
	"net/http"

	"github.com/acme/idemcheckout/local/testdata/functions/reload/version"
	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
)

func handle(ctx context.Context, ev events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	if hold := ev.QueryStringParameters["hold"]; hold != "" {
		for _, step := range []string{"/started", "/release"} {
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, hold+step, nil)
			if err != nil {
				return events.APIGatewayV2HTTPResponse{}, err
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return events.APIGatewayV2HTTPResponse{}, err
			}
			resp.Body.Close()
		}
	}
	return events.APIGatewayV2HTTPResponse{StatusCode: 200, Body: version.Version}, nil
}

func main() { lambda.Start(handle) }
