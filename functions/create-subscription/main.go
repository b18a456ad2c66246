// Command create-subscription is the Lambda function behind POST
// /subscriptions, which creates one subscription per Idempotency-Key and
// one per email address. The service is a plain net/http handler
// (subscriptions.NewHandler, behind idemhttp.Middleware), run on Lambda by
// aws-lambda-go-api-proxy; this only wires configuration.
package main

import (
	"os"

	"github.com/acme/idemcheckout/internal/checkout/lambdaenv"
	"github.com/acme/idemcheckout/internal/subscriptions"
	"github.com/acme/idemcheckout/pkg/idemddb/apigw"
	"github.com/acme/idemcheckout/pkg/idemddb/idemhttp"
	"github.com/aws/aws-lambda-go/lambda"
	"github.com/awslabs/aws-lambda-go-api-proxy/core"
	"github.com/awslabs/aws-lambda-go-api-proxy/httpadapter"
)

func main() {
	fn := lambdaenv.Start("create-subscription", subscriptions.EnvTable)
	h, err := subscriptions.NewHandler(fn.Store, os.Getenv(subscriptions.EnvTable),
		// The proxy puts the API Gateway request context (with the JWT
		// authorizer's claims) in the request's context.
		idemhttp.WithPrincipal(idemhttp.APIGatewayV2Principal(core.GetAPIGatewayV2ContextFromContext)),
		apigw.WithPrincipalRequired(),
		apigw.WithLogger(fn.Logger))
	fn.Check(err)
	lambda.Start(httpadapter.NewV2(h).ProxyWithContext)
}
