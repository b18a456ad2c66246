// Command create-payment is the Lambda function behind POST /payments,
// which charges an order once whatever the keys, crashes and retries, and
// GET /payments/{id}. It only wires configuration; the handler is
// checkout.Payments.Handle with the provider PAYMENT_PROVIDER selects: the
// simulated checkout.Ledger, or checkout.StripeProvider with the secret key
// read from Secrets Manager once at init.
package main

import (
	"context"

	"github.com/acme/idemcheckout/internal/checkout"
	"github.com/acme/idemcheckout/internal/checkout/lambdaenv"
	"github.com/acme/idemcheckout/pkg/idemddb/apigw"
	"github.com/aws/aws-lambda-go/lambda"
)

func main() {
	fn := lambdaenv.Start("create-payment", lambdaenv.EnvOrdersTable, lambdaenv.EnvPaymentsTable)
	cfg := fn.Config
	provider, _, err := lambdaenv.NewProvider(context.Background(), fn, nil)
	fn.Check(err)
	payments, err := checkout.NewPayments(checkout.PaymentsConfig{
		DB: fn.DynamoDB, OrdersTable: cfg.OrdersTable, PaymentsTable: cfg.PaymentsTable, Provider: provider, Logger: fn.Logger,
	})
	fn.Check(err)
	lambda.Start(payments.WrapV2(fn.Store,
		apigw.WithMaxBodyBytes(checkout.MaxBodyBytes),
		apigw.WithLogger(fn.Logger)))
}
