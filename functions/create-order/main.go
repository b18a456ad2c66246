// Command create-order is the Lambda function behind POST /orders, which
// creates an order at most once per Idempotency-Key, and GET /orders/{id}.
// It only wires configuration; the handler is checkout.Orders.Handle.
package main

import (
	"github.com/acme/idemcheckout/internal/checkout"
	"github.com/acme/idemcheckout/internal/checkout/lambdaenv"
	"github.com/acme/idemcheckout/pkg/idemddb/apigw"
	"github.com/aws/aws-lambda-go/lambda"
)

func main() {
	fn := lambdaenv.Start("create-order", lambdaenv.EnvOrdersTable)
	orders, err := checkout.NewOrders(checkout.OrdersConfig{DB: fn.DynamoDB, Table: fn.Config.OrdersTable, Logger: fn.Logger})
	fn.Check(err)
	lambda.Start(apigw.WrapV2(fn.Store, orders.Handle,
		apigw.WithMaxBodyBytes(checkout.MaxBodyBytes),
		apigw.WithLogger(fn.Logger)))
}
