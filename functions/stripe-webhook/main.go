// Command stripe-webhook is the Lambda function behind POST /webhooks/stripe
// (no JWT: Stripe signs each request). It only wires configuration; the
// handler is checkout.StripeWebhook.Handle, with the signing secret read
// once at init from the Secrets Manager secret STRIPE_SECRET_ID names
// (its webhook_secret). If the secret cannot be read, the function still
// starts and answers every request 503 (Stripe retries), logging why, so a
// missing secret never takes the stack down.
package main

import (
	"context"
	"errors"

	"github.com/acme/idemcheckout/internal/checkout"
	"github.com/acme/idemcheckout/internal/checkout/lambdaenv"
	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
)

func main() {
	fn := lambdaenv.Start("stripe-webhook", lambdaenv.EnvOrdersTable, lambdaenv.EnvStripeSecret)
	cfg := fn.Config
	ctx := context.Background()
	secret, err := lambdaenv.ReadStripeSecret(ctx, nil, cfg.StripeSecret)
	if err == nil && secret.WebhookSecret == "" {
		err = errors.New("the secret has no webhook_secret")
	}
	if err != nil {
		fn.Logger.Error("stripe-webhook: no signing secret; answering 503 until a cold start reads one", "secret", cfg.StripeSecret, "error", err)
		lambda.Start(func(context.Context, events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
			return checkout.ProblemServiceUnavailable.Problem("the webhook's signing secret is unavailable; retry later").ResponseV2(), nil
		})
		return
	}
	wh, err := checkout.NewStripeWebhook(checkout.StripeWebhookConfig{
		DB: fn.DynamoDB, OrdersTable: cfg.OrdersTable, Store: fn.Store, Secret: secret.WebhookSecret, Logger: fn.Logger,
	})
	fn.Check(err)
	lambda.Start(wh.Handle)
}
