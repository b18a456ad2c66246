package apigw_test

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/acme/idemcheckout/internal/ddbtest"
	"github.com/acme/idemcheckout/pkg/idemddb"
	"github.com/acme/idemcheckout/pkg/idemddb/apigw"
	"github.com/aws/aws-lambda-go/events"
)

// createOrder is an ordinary HTTP API handler. Under the wrapper its
// context carries the idempotency claim, whose ResourceID is a stable id for
// the order (the same after a crash and retry).
func createOrder(ctx context.Context, req events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	claim, _ := idemddb.ClaimFromContext(ctx)
	_ = claim.ResourceID // e.g. the order id; claim.AddWrites(...) commits with the response
	return events.APIGatewayV2HTTPResponse{
		StatusCode: 201,
		Headers:    map[string]string{"Content-Type": "application/json", "Location": "/orders/42"},
		Body:       `{"orderId":"42"}`,
	}, nil
}

func ExampleWrapV2() {
	ctx := context.Background()
	client := engine.Client() // a *dynamodb.Client; in Lambda: dynamodb.NewFromConfig(cfg)
	table := ddbtest.UniqueName("orders-idempotency")
	if err := ddbtest.CreateTable(ctx, client, table, "id", ""); err != nil {
		fmt.Println(err)
		return
	}
	store, err := idemddb.New(client, idemddb.Config{Table: table})
	if err != nil {
		fmt.Println(err)
		return
	}

	// In a Lambda function: lambda.Start(apigw.WrapV2(store, createOrder)).
	// Logs and metrics go to stdout by default; this example discards them.
	handler := apigw.WrapV2(store, createOrder,
		apigw.WithLogger(slog.New(slog.DiscardHandler)), apigw.WithMetrics(nil))

	req := events.APIGatewayV2HTTPRequest{
		RouteKey: "POST /orders",
		RawPath:  "/orders",
		Headers: map[string]string{
			"content-type":    "application/json",
			"idempotency-key": "8e03978e-40d5-43e8-bc93-6894a57f9324",
		},
		Body: `{"cartId":"c-1001","total":5000}`,
		RequestContext: events.APIGatewayV2HTTPRequestContext{
			HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{Method: "POST"},
			Authorizer: &events.APIGatewayV2HTTPRequestContextAuthorizerDescription{
				JWT: &events.APIGatewayV2HTTPRequestContextAuthorizerJWTDescription{Claims: map[string]string{"sub": "user-1"}},
			},
		},
	}
	first, _ := handler(ctx, req)
	fmt.Printf("%d %s %s replayed=%q\n", first.StatusCode, first.Headers["Location"], first.Body, first.Headers["Idempotent-Replayed"])

	// The client retries (same key, same request): the stored response.
	again, _ := handler(ctx, req)
	fmt.Printf("%d %s %s replayed=%q\n", again.StatusCode, again.Headers["Location"], again.Body, again.Headers["Idempotent-Replayed"])

	// Same key, different body: 422 problem, the handler does not run.
	req.Body = `{"cartId":"c-1001","total":9999}`
	other, _ := handler(ctx, req)
	fmt.Println(other.StatusCode, other.Headers["Content-Type"])

	// No key on a POST: 400 problem.
	delete(req.Headers, "idempotency-key")
	missing, _ := handler(ctx, req)
	fmt.Println(missing.StatusCode, missing.Body)

	// Output:
	// 201 /orders/42 {"orderId":"42"} replayed=""
	// 201 /orders/42 {"orderId":"42"} replayed="true"
	// 422 application/problem+json
	// 400 {"type":"https://docs.acme.dev/problems/idempotency-key-missing","title":"Idempotency-Key required","status":400,"detail":"POST requests to this endpoint require an Idempotency-Key header."}
}
