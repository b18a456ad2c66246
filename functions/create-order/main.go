// Command create-order is the Lambda function behind POST /orders, which
// creates an order at most once per Idempotency-Key, and GET /orders/{id}
// (with the receipt id of a paid order once the fulfilment made it).
// It only wires configuration; the handler is checkout.Orders.Handle.
package main

import (
	"github.com/acme/idemcheckout/internal/checkout"
	"github.com/acme/idemcheckout/internal/checkout/lambdaenv"
	"github.com/acme/idemcheckout/pkg/idemddb/apigw"
	"github.com/aws/aws-lambda-go/lambda"
)

func main() {
	fn := lambdaenv.Start("create-order", lambdaenv.EnvOrdersTable, lambdaenv.EnvReceiptsTable)
	orders, err := checkout.NewOrders(checkout.OrdersConfig{
		DB: fn.DynamoDB, Table: fn.Config.OrdersTable, ReceiptsTable: fn.Config.ReceiptsTable, Logger: fn.Logger,
	})
	fn.Check(err)
	lambda.Start(apigw.WrapV2(fn.Store, orders.Handle,
		apigw.WithMaxBodyBytes(checkout.MaxBodyBytes),
		apigw.WithLogger(fn.Logger)))
}
