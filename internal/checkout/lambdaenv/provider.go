package lambdaenv

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/acme/idemcheckout/internal/checkout"
	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
)

// SecretReader reads a secret: *secretsmanager.Client's method.
type SecretReader interface {
	GetSecretValue(ctx context.Context, in *secretsmanager.GetSecretValueInput, opts ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error)
}

// StripeSecret is the Stripe secret as kept in Secrets Manager: either the
// bare secret key (sk_...) as the SecretString, or a JSON object with
// "secret_key" (and "webhook_secret", the webhooks' signing secret).
type StripeSecret struct {
	SecretKey     string `json:"secret_key"`
	WebhookSecret string `json:"webhook_secret"`
}

// ReadStripeSecret reads and decodes the secret id (name or ARN) with one
// GetSecretValue (sm, or a client from the default AWS configuration when
// nil): a function does it once, at init.
func ReadStripeSecret(ctx context.Context, sm SecretReader, id string) (StripeSecret, error) {
	if sm == nil {
		ac, err := awsconfig.LoadDefaultConfig(ctx)
		if err != nil {
			return StripeSecret{}, fmt.Errorf("lambdaenv: load AWS configuration: %w", err)
		}
		sm = secretsmanager.NewFromConfig(ac)
	}
	out, err := sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(id)})
	if err != nil {
		return StripeSecret{}, fmt.Errorf("lambdaenv: read secret %s: %w", id, err)
	}
	raw := strings.TrimSpace(aws.ToString(out.SecretString))
	var s StripeSecret
	if strings.HasPrefix(raw, "{") {
		if err := json.Unmarshal([]byte(raw), &s); err != nil {
			return StripeSecret{}, fmt.Errorf("lambdaenv: secret %s is not a JSON object with secret_key: %w", id, err)
		}
	} else {
		s.SecretKey = raw
	}
	if s.SecretKey == "" {
		return StripeSecret{}, errors.New("lambdaenv: secret " + id + " holds no Stripe secret key")
	}
	return s, nil
}

// NewProvider returns the payment provider the configuration selects, and
// the reconciler's capture report on it: the Ledger on the payments table,
// or a StripeProvider whose key it reads from Secrets Manager (sm, or a
// client from the default AWS configuration when nil).
func NewProvider(ctx context.Context, f *Function, sm SecretReader) (checkout.Provider, checkout.CaptureReport, error) {
	cfg := f.Config
	if cfg.PaymentProvider != ProviderStripe {
		l, err := checkout.NewLedger(checkout.LedgerConfig{DB: f.DynamoDB, Table: cfg.PaymentsTable, Latency: cfg.PSPLatency})
		return l, l, err
	}
	secret, err := ReadStripeSecret(ctx, sm, cfg.StripeSecret)
	if err != nil {
		return nil, nil, err
	}
	sp, err := checkout.NewStripeProvider(checkout.StripeConfig{SecretKey: secret.SecretKey})
	return sp, sp, err
}
