package lambdaenv_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/acme/idemcheckout/internal/checkout"
	"github.com/acme/idemcheckout/internal/checkout/lambdaenv"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
)

// fakeSecrets answers GetSecretValue from a map and counts the reads.
type fakeSecrets struct {
	values map[string]string
	reads  int
}

func (f *fakeSecrets) GetSecretValue(_ context.Context, in *secretsmanager.GetSecretValueInput, _ ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error) {
	f.reads++
	v, ok := f.values[aws.ToString(in.SecretId)]
	if !ok {
		return nil, errors.New("ResourceNotFoundException")
	}
	return &secretsmanager.GetSecretValueOutput{SecretString: aws.String(v)}, nil
}

// TestPaymentProviderConfig: PAYMENT_PROVIDER defaults to the ledger;
// stripe needs STRIPE_SECRET_ID; anything else is refused.
func TestPaymentProviderConfig(t *testing.T) {
	env := func(kv ...string) func(string) string {
		m := map[string]string{lambdaenv.EnvIdempotencyTable: "idem"}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return func(k string) string { return m[k] }
	}
	if c, err := lambdaenv.Load(env()); err != nil || c.PaymentProvider != lambdaenv.ProviderLedger {
		t.Fatalf("default: %+v %v", c, err)
	}
	if c, err := lambdaenv.Load(env(lambdaenv.EnvPaymentProvider, "stripe", lambdaenv.EnvStripeSecret, "idemcheckout/stripe")); err != nil ||
		c.PaymentProvider != lambdaenv.ProviderStripe || c.StripeSecret != "idemcheckout/stripe" {
		t.Fatalf("stripe: %+v %v", c, err)
	}
	var ve *lambdaenv.VarError
	if _, err := lambdaenv.Load(env(lambdaenv.EnvPaymentProvider, "stripe")); !errors.As(err, &ve) || ve.Name != lambdaenv.EnvStripeSecret {
		t.Fatalf("stripe without a secret: %v", err)
	}
	if _, err := lambdaenv.Load(env(lambdaenv.EnvPaymentProvider, "paypal")); !errors.As(err, &ve) || ve.Name != lambdaenv.EnvPaymentProvider {
		t.Fatalf("unknown provider: %v", err)
	}
}

// TestReadStripeSecret: the secret is a bare key or JSON with secret_key;
// anything else, or a missing secret, is an error. NewProvider reads it
// once and builds a StripeProvider.
func TestReadStripeSecret(t *testing.T) {
	ctx := context.Background()
	sm := &fakeSecrets{values: map[string]string{
		"bare": "sk_test_bare\n", "json": `{"secret_key":"sk_test_json","webhook_secret":"whsec_1"}`,
		"empty": "", "badjson": `{"secret_key":`,
	}}
	if s, err := lambdaenv.ReadStripeSecret(ctx, sm, "bare"); err != nil || s.SecretKey != "sk_test_bare" {
		t.Fatalf("bare: %+v %v", s, err)
	}
	if s, err := lambdaenv.ReadStripeSecret(ctx, sm, "json"); err != nil || s.SecretKey != "sk_test_json" || s.WebhookSecret != "whsec_1" {
		t.Fatalf("json: %+v %v", s, err)
	}
	for _, id := range []string{"empty", "badjson", "missing"} {
		if _, err := lambdaenv.ReadStripeSecret(ctx, sm, id); err == nil {
			t.Fatalf("%s: no error", id)
		}
	}
	sm.reads = 0
	f := &lambdaenv.Function{Config: lambdaenv.Config{PaymentProvider: lambdaenv.ProviderStripe, StripeSecret: "json"}}
	p, r, err := lambdaenv.NewProvider(ctx, f, sm)
	if _, ok := p.(*checkout.StripeProvider); !ok || r == nil || err != nil || sm.reads != 1 {
		t.Fatalf("NewProvider: %T %T %v after %d reads", p, r, err, sm.reads)
	}
}

// TestReadStripeSecretEndpointFromEnv: with no client given, the secret is
// read through the endpoint in AWS_ENDPOINT_URL_SECRETS_MANAGER (the
// variable local/devstack sets to its engine), never from AWS.
func TestReadStripeSecretEndpointFromEnv(t *testing.T) {
	var target string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		target = r.Header.Get("X-Amz-Target")
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		_, _ = w.Write([]byte(`{"Name":"idemcheckout/stripe","SecretString":"{\"secret_key\":\"sk_test_local\"}"}`))
	}))
	defer srv.Close()
	t.Setenv("AWS_ENDPOINT_URL_SECRETS_MANAGER", srv.URL)
	t.Setenv("AWS_REGION", "us-east-1")
	t.Setenv("AWS_ACCESS_KEY_ID", "test")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "test")
	t.Setenv("AWS_CONFIG_FILE", "/dev/null")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
	s, err := lambdaenv.ReadStripeSecret(context.Background(), nil, "idemcheckout/stripe")
	if err != nil || s.SecretKey != "sk_test_local" || target != "secretsmanager.GetSecretValue" {
		t.Fatalf("%+v %v (target %q)", s, err, target)
	}
}
