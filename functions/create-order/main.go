// Command create-order is the Lambda function behind POST /orders: it
// creates an order, at most once per Idempotency-Key. It only wires
// configuration; the handler is checkout.Orders.CreateOrder.
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
	cfg, err := lambdaenv.Load(os.Getenv, lambdaenv.EnvOrdersTable)
	logger := lambdaenv.NewLogger(os.Stdout, cfg.LogLevel)
	if err != nil {
		logger.Error("create-order: invalid configuration, not starting", "error", err)
		os.Exit(1)
	}
	client, err := lambdaenv.NewDynamoDB(context.Background())
	if err != nil {
		logger.Error("create-order: not starting", "error", err)
		os.Exit(1)
	}
	store, err := lambdaenv.NewStore(client, cfg, logger)
	if err != nil {
		logger.Error("create-order: not starting", "error", err)
		os.Exit(1)
	}
	orders, err := checkout.NewOrders(checkout.OrdersConfig{Table: cfg.OrdersTable, Logger: logger})
	if err != nil {
		logger.Error("create-order: not starting", "error", err)
		os.Exit(1)
	}
	lambda.Start(apigw.WrapV2(store, orders.CreateOrder,
		apigw.WithMaxBodyBytes(checkout.MaxBodyBytes),
		apigw.WithLogger(logger)))
}
