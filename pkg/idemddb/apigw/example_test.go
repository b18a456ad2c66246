package apigw_test

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/acme/idemcheckout/pkg/idemddb"
	"github.com/acme/idemcheckout/pkg/idemddb/apigw"
	"github.com/acme/idemcheckout/pkg/idemddb/ddbmem"
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
	// The in-memory engine (for tests) with the store's table: partition
	// key "id" (S), TTL on "expires_at". In a Lambda, the client is
	// dynamodb.NewFromConfig(cfg) and the table comes from the template.
	client := ddbmem.New()
	const table = "orders-idempotency"
	if err := client.CreateIdempotencyTable(table); err != nil {
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

// A REST API (payload 1.0) handler with the options a payments endpoint
// usually sets: a smaller body limit, callers must be authenticated, and
// duplicates that arrive while the first request runs wait up to 5 s for
// its response instead of getting 409.
func ExampleWrapV1() {
	ctx := context.Background()
	client := ddbmem.New() // in a Lambda: dynamodb.NewFromConfig(cfg)
	const table = "payments-idempotency"
	if err := client.CreateIdempotencyTable(table); err != nil {
		fmt.Println(err)
		return
	}
	store, err := idemddb.New(client, idemddb.Config{Table: table, Retention: 48 * time.Hour})
	if err != nil {
		fmt.Println(err)
		return
	}
	pay := func(ctx context.Context, req events.APIGatewayProxyRequest) (events.APIGatewayProxyResponse, error) {
		return events.APIGatewayProxyResponse{StatusCode: 201, Body: `{"payment_id":"pay_1"}`,
			Headers: map[string]string{"Content-Type": "application/json"}}, nil
	}
	handler := apigw.WrapV1(store, pay,
		apigw.WithMaxBodyBytes(64<<10),
		apigw.WithPrincipalRequired(),
		apigw.WithWait(5*time.Second),
		apigw.WithLogger(slog.New(slog.DiscardHandler)), apigw.WithMetrics(nil))

	req := events.APIGatewayProxyRequest{
		HTTPMethod: "POST", Resource: "/payments", Path: "/payments",
		Headers: map[string]string{"Content-Type": "application/json", "Idempotency-Key": "pay-9f1c"},
		Body:    `{"order_id":"ord_1","amount":500000}`,
		RequestContext: events.APIGatewayProxyRequestContext{
			HTTPMethod: "POST",
			Authorizer: map[string]any{"claims": map[string]any{"sub": "user-1", "iss": "https://cognito-idp.example"}},
		},
	}
	for range 2 {
		resp, _ := handler(ctx, req)
		fmt.Printf("%d %s replayed=%q\n", resp.StatusCode, resp.Body, resp.Headers[apigw.ReplayedHeader])
	}
	req.RequestContext.Authorizer = nil // no caller
	anon, _ := handler(ctx, req)
	fmt.Println(anon.StatusCode)
	// Output:
	// 201 {"payment_id":"pay_1"} replayed=""
	// 201 {"payment_id":"pay_1"} replayed="true"
	// 403
}

// WithTransactionCanceled turns a write of the handler's that failed its
// condition (nothing was committed, the key was released) into the
// function's own problem, here "order already paid".
func ExampleWithTransactionCanceled() {
	alreadyPaid := func(_ context.Context, err *idemddb.TransactionCanceledError) apigw.Problem {
		if err.Index == 0 && err.Reasons[0].Code == "ConditionalCheckFailed" { // write 0: the order's PENDING -> PAID
			return apigw.Problem{Type: "order-already-paid", Title: "Order already paid", Status: 409}
		}
		return apigw.Problem{} // the default 409 transaction-conflict
	}
	p := alreadyPaid(context.Background(), &idemddb.TransactionCanceledError{
		Index: 0, Reasons: []idemddb.CancellationReason{{Code: "ConditionalCheckFailed"}},
	})
	fmt.Println(p.Status, p.Type)
	// In main: lambda.Start(apigw.WrapV2(store, handler, apigw.WithTransactionCanceled(alreadyPaid)))

	// Output:
	// 409 order-already-paid
}
