package idemhttp_test

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"os"

	"github.com/acme/idemcheckout/pkg/idemddb"
	"github.com/acme/idemcheckout/pkg/idemddb/idemhttp"
	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
)

// A net/http service whose POST /subscriptions runs once per key and
// caller. Nothing here is specific to this repository: copy it. On Lambda
// with aws-lambda-go-api-proxy, serve mux with
// lambda.Start(httpadapter.NewV2(mux).ProxyWithContext) and pass
// core.GetAPIGatewayV2ContextFromContext as the getter; in a container,
// http.ListenAndServe and a PrincipalFunc of your own authentication.
func ExampleMiddleware() {
	// In a Lambda: cfg, _ := config.LoadDefaultConfig(ctx), then
	// dynamodb.NewFromConfig(cfg).
	client := dynamodb.NewFromConfig(aws.Config{Region: "eu-west-1"})
	store, err := idemddb.New(client, idemddb.Config{Table: os.Getenv("IDEMPOTENCY_TABLE")})
	if err != nil {
		log.Fatal(err)
	}
	var getRequestContext func(context.Context) (events.APIGatewayV2HTTPRequestContext, bool) // core.GetAPIGatewayV2ContextFromContext
	mw := idemhttp.Middleware(store,
		idemhttp.WithPrincipal(idemhttp.APIGatewayV2Principal(getRequestContext)),
		idemhttp.WithPrincipalRequired())

	mux := http.NewServeMux()
	mux.Handle("POST /subscriptions", mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		claim, _ := idemddb.ClaimFromContext(r.Context())
		// claim.ResourceID is a stable id for the subscription (the same
		// after a crash and a retry); claim.AddWrites(...) commits the
		// subscription with the response.
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		fmt.Fprintf(w, `{"subscription_id":%q}`, claim.ResourceID)
	})))
	_ = mux
}
