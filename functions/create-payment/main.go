// Command create-payment is the Lambda function behind POST /payments: it
// charges an order once, however often the client retries with the same
// Idempotency-Key. It only wires configuration; the handler is
// checkout.Payments.CreatePayment with the simulated provider
// checkout.Ledger.
package main

import (
	"context"
	"os"

	"github.com/acme/idemcheckout/internal/checkout"
	"github.com/acme/idemcheckout/internal/checkout/lambdaenv"
	"github.com/acme/idemcheckout/pkg/idemddb/apigw"
	"github.com/aws/aws-lambda-go/lambda"
)

func main() {
	cfg, err := lambdaenv.Load(os.Getenv, lambdaenv.EnvOrdersTable, lambdaenv.EnvPaymentsTable)
	logger := lambdaenv.NewLogger(os.Stdout, cfg.LogLevel)
	if err != nil {
		logger.Error("create-payment: invalid configuration, not starting", "error", err)
		os.Exit(1)
	}
	client, err := lambdaenv.NewDynamoDB(context.Background())
	if err != nil {
		logger.Error("create-payment: not starting", "error", err)
		os.Exit(1)
	}
	store, err := lambdaenv.NewStore(client, cfg, logger)
	if err != nil {
		logger.Error("create-payment: not starting", "error", err)
		os.Exit(1)
	}
	ledger, err := checkout.NewLedger(checkout.LedgerConfig{DB: client, Table: cfg.PaymentsTable, Latency: cfg.PSPLatency})
	if err != nil {
		logger.Error("create-payment: not starting", "error", err)
		os.Exit(1)
	}
	payments, err := checkout.NewPayments(checkout.PaymentsConfig{
		DB: client, OrdersTable: cfg.OrdersTable, PaymentsTable: cfg.PaymentsTable, Provider: ledger, Logger: logger,
	})
	if err != nil {
		logger.Error("create-payment: not starting", "error", err)
		os.Exit(1)
	}
	lambda.Start(apigw.WrapV2(store, payments.CreatePayment,
		apigw.WithTransactionCanceled(checkout.TransactionConflictProblem),
		apigw.WithMaxBodyBytes(checkout.MaxBodyBytes),
		apigw.WithLogger(logger)))
}
