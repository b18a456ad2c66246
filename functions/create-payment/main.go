// Command create-payment is the Lambda function behind POST /payments,
// which charges an order once whatever the keys, crashes and retries, and
// GET /payments/{id}. It only wires configuration; the handler is
// checkout.Payments.Handle with the simulated provider checkout.Ledger.
package main

import (
	"github.com/acme/idemcheckout/internal/checkout"
	"github.com/acme/idemcheckout/internal/checkout/lambdaenv"
	"github.com/acme/idemcheckout/pkg/idemddb/apigw"
	"github.com/aws/aws-lambda-go/lambda"
)

func main() {
	fn := lambdaenv.Start("create-payment", lambdaenv.EnvOrdersTable, lambdaenv.EnvPaymentsTable)
	cfg := fn.Config
	ledger, err := checkout.NewLedger(checkout.LedgerConfig{DB: fn.DynamoDB, Table: cfg.PaymentsTable, Latency: cfg.PSPLatency})
	fn.Check(err)
	payments, err := checkout.NewPayments(checkout.PaymentsConfig{
		DB: fn.DynamoDB, OrdersTable: cfg.OrdersTable, PaymentsTable: cfg.PaymentsTable, Provider: ledger, Logger: fn.Logger,
	})
	fn.Check(err)
	lambda.Start(payments.WrapV2(fn.Store,
		apigw.WithMaxBodyBytes(checkout.MaxBodyBytes),
		apigw.WithLogger(fn.Logger)))
}
