// Command fulfil-order is the Lambda function the orders table's stream
// invokes (the FulfilOrderOnPayment event source mapping in template.yaml,
// filtered to the transition to PAID): it creates one receipt per paid
// order, however often a record is delivered. It only wires configuration;
// the handler is checkout.Fulfilment.Handler.
package main

import (
	"github.com/acme/idemcheckout/internal/checkout"
	"github.com/acme/idemcheckout/internal/checkout/lambdaenv"
	"github.com/aws/aws-lambda-go/lambda"
)

func main() {
	fn := lambdaenv.Start("fulfil-order", lambdaenv.EnvReceiptsTable)
	f, err := checkout.NewFulfilment(checkout.FulfilmentConfig{Store: fn.Store, ReceiptsTable: fn.Config.ReceiptsTable, Logger: fn.Logger})
	fn.Check(err)
	lambda.Start(f.Handler())
}
