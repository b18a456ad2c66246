package lambdaenv_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/acme/idemcheckout/ddblocal/localddb"
	"github.com/acme/idemcheckout/internal/checkout/lambdaenv"
)

func getenv(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestLoadDefaults(t *testing.T) {
	c, err := lambdaenv.Load(getenv(map[string]string{
		"IDEMPOTENCY_TABLE": "idem", "ORDERS_TABLE": "orders", "PAYMENTS_TABLE": "payments",
	}), lambdaenv.EnvOrdersTable, lambdaenv.EnvPaymentsTable)
	if err != nil {
		t.Fatal(err)
	}
	want := lambdaenv.Config{IdempotencyTable: "idem", OrdersTable: "orders", PaymentsTable: "payments",
		Retention: 24 * time.Hour, LogLevel: slog.LevelInfo, PaymentProvider: lambdaenv.ProviderLedger}
	if c != want {
		t.Fatalf("%+v, want %+v", c, want)
	}
}

func TestLoadValues(t *testing.T) {
	c, err := lambdaenv.Load(getenv(map[string]string{
		"IDEMPOTENCY_TABLE": "idem", "ORDERS_TABLE": "orders",
		"IDEMPOTENCY_RETENTION_SECONDS": "259200", "PSP_LATENCY_MS": "250", "LOG_LEVEL": "debug",
		"RECONCILE_VOID_AFTER_MINUTES": "15",
	}), lambdaenv.EnvOrdersTable)
	if err != nil {
		t.Fatal(err)
	}
	if c.Retention != 72*time.Hour || c.PSPLatency != 250*time.Millisecond || c.LogLevel != slog.LevelDebug || c.VoidAfter != 15*time.Minute {
		t.Fatalf("%+v", c)
	}
}

func TestLoadInvalid(t *testing.T) {
	base := func(kv ...string) map[string]string {
		m := map[string]string{"IDEMPOTENCY_TABLE": "idem", "ORDERS_TABLE": "orders", "PAYMENTS_TABLE": "payments"}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	cases := []struct {
		name string
		env  map[string]string
		bad  []string
	}{
		{"no idempotency table", base("IDEMPOTENCY_TABLE", ""), []string{"IDEMPOTENCY_TABLE"}},
		{"no payments table", base("PAYMENTS_TABLE", " "), []string{"PAYMENTS_TABLE"}},
		{"retention not a number", base("IDEMPOTENCY_RETENTION_SECONDS", "1d"), []string{"IDEMPOTENCY_RETENTION_SECONDS"}},
		{"retention with unit", base("IDEMPOTENCY_RETENTION_SECONDS", "86400s"), []string{"IDEMPOTENCY_RETENTION_SECONDS"}},
		{"retention zero", base("IDEMPOTENCY_RETENTION_SECONDS", "0"), []string{"IDEMPOTENCY_RETENTION_SECONDS"}},
		{"retention negative", base("IDEMPOTENCY_RETENTION_SECONDS", "-5"), []string{"IDEMPOTENCY_RETENTION_SECONDS"}},
		{"retention under a minute", base("IDEMPOTENCY_RETENTION_SECONDS", "59"), []string{"IDEMPOTENCY_RETENTION_SECONDS"}},
		{"retention overflows", base("IDEMPOTENCY_RETENTION_SECONDS", "99999999999999999"), []string{"IDEMPOTENCY_RETENTION_SECONDS"}},
		{"latency not a number", base("PSP_LATENCY_MS", "fast"), []string{"PSP_LATENCY_MS"}},
		{"latency negative", base("PSP_LATENCY_MS", "-1"), []string{"PSP_LATENCY_MS"}},
		{"latency absurd", base("PSP_LATENCY_MS", "3600000"), []string{"PSP_LATENCY_MS"}},
		{"log level", base("LOG_LEVEL", "LOUD"), []string{"LOG_LEVEL"}},
		{"void delay not a number", base("RECONCILE_VOID_AFTER_MINUTES", "10m"), []string{"RECONCILE_VOID_AFTER_MINUTES"}},
		{"void delay zero", base("RECONCILE_VOID_AFTER_MINUTES", "0"), []string{"RECONCILE_VOID_AFTER_MINUTES"}},
		{"void delay over a day", base("RECONCILE_VOID_AFTER_MINUTES", "1441"), []string{"RECONCILE_VOID_AFTER_MINUTES"}},
		{"several at once", base("IDEMPOTENCY_TABLE", "", "PSP_LATENCY_MS", "x"), []string{"IDEMPOTENCY_TABLE", "PSP_LATENCY_MS"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := lambdaenv.Load(getenv(tc.env), lambdaenv.EnvOrdersTable, lambdaenv.EnvPaymentsTable)
			if !errors.Is(err, lambdaenv.ErrInvalid) {
				t.Fatalf("err = %v, want ErrInvalid", err)
			}
			var ve *lambdaenv.VarError
			if !errors.As(err, &ve) {
				t.Fatalf("err = %v, want a *VarError", err)
			}
			for _, name := range tc.bad {
				if !strings.Contains(err.Error(), name) {
					t.Errorf("error %q does not name %s", err, name)
				}
			}
			if c.LogLevel != slog.LevelInfo {
				t.Errorf("LogLevel %v: a usable level is returned even on error", c.LogLevel)
			}
		})
	}
}

func TestNewStore(t *testing.T) {
	c := lambdaenv.Config{IdempotencyTable: "idem", Retention: 48 * time.Hour}
	s, err := lambdaenv.NewStore(localddb.NewClient("http://127.0.0.1:1"), c, slog.Default())
	if err != nil || s.Table() != "idem" || s.Retention() != 48*time.Hour {
		t.Fatalf("%v %v", s, err)
	}
	if _, err := lambdaenv.NewStore(localddb.NewClient("http://127.0.0.1:1"), lambdaenv.Config{}, slog.Default()); err == nil {
		t.Fatal("NewStore accepted an empty table name")
	}
}

// TestEmptyEndpointIsIgnored: template.yaml declares
// AWS_ENDPOINT_URL_DYNAMODB empty (so sam local can override it); in AWS the
// client must then use DynamoDB's own endpoint.
func TestEmptyEndpointIsIgnored(t *testing.T) {
	t.Setenv("AWS_REGION", "eu-west-1")
	t.Setenv("AWS_ENDPOINT_URL_DYNAMODB", "")
	c, err := lambdaenv.NewDynamoDB(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if ep := c.Options().BaseEndpoint; ep != nil {
		t.Fatalf("empty variable gave endpoint %q", *ep)
	}
	t.Setenv("AWS_ENDPOINT_URL_DYNAMODB", "http://127.0.0.1:8000")
	if c, err = lambdaenv.NewDynamoDB(context.Background()); err != nil || c.Options().BaseEndpoint == nil || *c.Options().BaseEndpoint != "http://127.0.0.1:8000" {
		t.Fatalf("local endpoint not used: %v", err)
	}
}
