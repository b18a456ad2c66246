// Command reconcile-payments is the Lambda function the EventBridge
// schedule in template.yaml runs every 5 minutes: it settles orders
// stranded in PAYING and voids captures that are no order's payment (see
// checkout.Reconciler). It only wires configuration; the handler is
// checkout.Reconciler.HandleSchedule.
//
// Run with -once outside Lambda, it makes one pass, prints the summary as
// JSON and exits (non-zero when a step failed): see the README for running
// it against `make dev`.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"os"

	"github.com/acme/idemcheckout/internal/checkout"
	"github.com/acme/idemcheckout/internal/checkout/lambdaenv"
	"github.com/aws/aws-lambda-go/lambda"
)

func main() {
	once := flag.Bool("once", false, "run one reconciliation pass, print its summary and exit")
	flag.Parse()
	fn := lambdaenv.Start("reconcile-payments", lambdaenv.EnvOrdersTable, lambdaenv.EnvPaymentsTable)
	cfg := fn.Config
	provider, report, err := lambdaenv.NewProvider(context.Background(), fn, nil)
	fn.Check(err)
	rec, err := checkout.NewReconciler(checkout.ReconcilerConfig{
		DB: fn.DynamoDB, Store: fn.Store, OrdersTable: cfg.OrdersTable, PaymentsTable: cfg.PaymentsTable,
		Provider: provider, Report: report, VoidAfter: cfg.VoidAfter, Logger: fn.Logger,
	})
	fn.Check(err)
	if !*once {
		lambda.Start(rec.HandleSchedule)
		return
	}
	summary, err := rec.Run(context.Background())
	_ = json.NewEncoder(os.Stdout).Encode(summary)
	if err != nil {
		fn.Logger.Error("reconcile-payments: some steps failed; the next run retries them", "error", err)
		os.Exit(1)
	}
}
