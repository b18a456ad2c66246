// Package lambdaenv reads the checkout functions' configuration from the
// environment and builds what both functions share: the logger, the
// DynamoDB client and the idempotency store. A function's main only picks
// what it needs from here and starts its handler.
package lambdaenv

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/acme/idemcheckout/pkg/idemddb"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
)

// Environment variable names (template.yaml sets them).
const (
	EnvIdempotencyTable = "IDEMPOTENCY_TABLE"
	EnvRetention        = "IDEMPOTENCY_RETENTION_SECONDS"
	EnvOrdersTable      = "ORDERS_TABLE"
	EnvPaymentsTable    = "PAYMENTS_TABLE"
	EnvReceiptsTable    = "RECEIPTS_TABLE"
	EnvPSPLatency       = "PSP_LATENCY_MS"
	EnvLogLevel         = "LOG_LEVEL"
	// EnvVoidAfter is the reconciler's RECONCILE_VOID_AFTER_MINUTES: how
	// old a capture that is no order's payment must be before it is voided.
	EnvVoidAfter = "RECONCILE_VOID_AFTER_MINUTES"
	// EnvPaymentProvider selects the payment provider: ProviderLedger (the
	// default) or ProviderStripe.
	EnvPaymentProvider = "PAYMENT_PROVIDER"
	// EnvStripeSecret names the AWS Secrets Manager secret (name or ARN)
	// holding the Stripe secret key; required with ProviderStripe.
	EnvStripeSecret = "STRIPE_SECRET_ID"
)

// Payment providers (PAYMENT_PROVIDER).
const (
	// ProviderLedger is checkout.Ledger, the simulated provider in the
	// payments table.
	ProviderLedger = "ledger"
	// ProviderStripe is checkout.StripeProvider.
	ProviderStripe = "stripe"
)

// Defaults for unset variables.
const (
	DefaultRetention = 24 * time.Hour
	// MaxPSPLatency bounds PSP_LATENCY_MS: a simulated round trip longer
	// than a Lambda invocation makes no sense.
	MaxPSPLatency = 15 * time.Minute
	// MaxVoidAfter bounds RECONCILE_VOID_AFTER_MINUTES: a stray capture is
	// voided within a day at the latest.
	MaxVoidAfter = 24 * time.Hour
	// CacheEntries is the size of the in-process replay cache.
	CacheEntries = 1024
)

// ErrInvalid matches every *VarError.
var ErrInvalid = errors.New("lambdaenv: invalid configuration")

// VarError reports a missing or malformed environment variable.
type VarError struct {
	Name, Value, Reason string
}

// Error describes the failure.
func (e *VarError) Error() string {
	if e.Value == "" {
		return fmt.Sprintf("%s %s", e.Name, e.Reason)
	}
	return fmt.Sprintf("%s=%q %s", e.Name, e.Value, e.Reason)
}

// Is reports whether target is ErrInvalid.
func (e *VarError) Is(target error) bool { return target == ErrInvalid }

// Config is the functions' configuration.
type Config struct {
	IdempotencyTable string
	// Retention is how long idempotency records are kept.
	Retention     time.Duration
	OrdersTable   string
	PaymentsTable string
	ReceiptsTable string
	// PSPLatency is the simulated payment provider round trip.
	PSPLatency time.Duration
	// VoidAfter is the reconciler's void delay (0: unset, the reconciler's
	// default).
	VoidAfter time.Duration
	LogLevel  slog.Level
	// PaymentProvider is ProviderLedger or ProviderStripe; StripeSecret
	// the secret holding the Stripe key (set with ProviderStripe).
	PaymentProvider string
	StripeSecret    string
}

// Load reads the configuration through getenv (os.Getenv in a function).
// IDEMPOTENCY_TABLE is always required; required names further variables
// that must be set (EnvOrdersTable, EnvPaymentsTable, EnvReceiptsTable). The error joins a
// *VarError per bad variable, so one log line lists them all; LogLevel is
// usable even then.
func Load(getenv func(string) string, required ...string) (Config, error) {
	var errs []error
	bad := func(name, value, reason string) {
		errs = append(errs, &VarError{Name: name, Value: value, Reason: reason})
	}
	c := Config{
		IdempotencyTable: strings.TrimSpace(getenv(EnvIdempotencyTable)),
		OrdersTable:      strings.TrimSpace(getenv(EnvOrdersTable)),
		PaymentsTable:    strings.TrimSpace(getenv(EnvPaymentsTable)),
		ReceiptsTable:    strings.TrimSpace(getenv(EnvReceiptsTable)),
		Retention:        DefaultRetention,
		LogLevel:         slog.LevelInfo,
	}
	if v := strings.TrimSpace(getenv(EnvLogLevel)); v != "" {
		if err := c.LogLevel.UnmarshalText([]byte(v)); err != nil {
			c.LogLevel = slog.LevelInfo
			bad(EnvLogLevel, v, "is not a log level (DEBUG, INFO, WARN or ERROR)")
		}
	}
	for _, name := range append([]string{EnvIdempotencyTable}, required...) {
		if strings.TrimSpace(getenv(name)) == "" {
			bad(name, "", "must be set")
		}
	}
	if v := strings.TrimSpace(getenv(EnvRetention)); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		minimum := int64(idemddb.MinRetention / time.Second)
		switch {
		case err != nil:
			bad(EnvRetention, v, "is not a whole number of seconds")
		case n < minimum:
			bad(EnvRetention, v, fmt.Sprintf("must be at least %d seconds; 86400-259200 is usual for payments", minimum))
		case n > math.MaxInt64/int64(time.Second):
			bad(EnvRetention, v, "is too large")
		default:
			c.Retention = time.Duration(n) * time.Second
		}
	}
	// between reads variable name as a whole number of unit (units is its
	// name), lo to hi of them, into *d.
	between := func(name string, d *time.Duration, unit time.Duration, units string, lo, hi int64) {
		v := strings.TrimSpace(getenv(name))
		if v == "" {
			return
		}
		n, err := strconv.ParseInt(v, 10, 64)
		switch {
		case err != nil:
			bad(name, v, "is not a whole number of "+units)
		case n < lo || n > hi:
			bad(name, v, fmt.Sprintf("must be between %d and %d %s", lo, hi, units))
		default:
			*d = time.Duration(n) * unit
		}
	}
	c.PaymentProvider = strings.TrimSpace(getenv(EnvPaymentProvider))
	c.StripeSecret = strings.TrimSpace(getenv(EnvStripeSecret))
	switch c.PaymentProvider {
	case "":
		c.PaymentProvider = ProviderLedger
	case ProviderLedger:
	case ProviderStripe:
		if c.StripeSecret == "" {
			bad(EnvStripeSecret, "", "must be set when "+EnvPaymentProvider+" is "+ProviderStripe)
		}
	default:
		bad(EnvPaymentProvider, c.PaymentProvider, "is not "+ProviderLedger+" or "+ProviderStripe)
	}
	between(EnvPSPLatency, &c.PSPLatency, time.Millisecond, "milliseconds", 0, MaxPSPLatency.Milliseconds())
	between(EnvVoidAfter, &c.VoidAfter, time.Minute, "minutes", 1, int64(MaxVoidAfter/time.Minute))
	return c, errors.Join(errs...)
}

// NewLogger returns a JSON logger on w at level.
func NewLogger(w io.Writer, level slog.Level) *slog.Logger {
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level}))
}

// NewDynamoDB returns a DynamoDB client from the default AWS configuration
// (environment, shared files, the Lambda role; AWS_ENDPOINT_URL_DYNAMODB
// points it at a local engine).
func NewDynamoDB(ctx context.Context) (*dynamodb.Client, error) {
	cfg, err := awsconfig.LoadDefaultConfig(ctx)
	if err != nil {
		return nil, fmt.Errorf("lambdaenv: load AWS configuration: %w", err)
	}
	return dynamodb.NewFromConfig(cfg), nil
}

// NewStore returns the idempotency store on c.IdempotencyTable with an
// in-process replay cache.
func NewStore(client idemddb.Client, c Config, logger *slog.Logger) (*idemddb.Store, error) {
	s, err := idemddb.New(client, idemddb.Config{
		Table:     c.IdempotencyTable,
		Retention: c.Retention,
		Cache:     idemddb.NewCache(CacheEntries, 0),
		Logger:    logger,
	})
	if err != nil {
		return nil, fmt.Errorf("lambdaenv: idempotency store: %w", err)
	}
	return s, nil
}

// Function is what a function's main builds from its environment before its
// own handler: configuration, logger, DynamoDB client and idempotency store.
type Function struct {
	Config   Config
	Logger   *slog.Logger
	DynamoDB *dynamodb.Client
	Store    *idemddb.Store

	name string
	exit func(int)
}

// Start begins a function's main: it loads the configuration (IDEMPOTENCY_TABLE
// and required) from the process environment, logs JSON to stdout, and
// builds the DynamoDB client and the idempotency store. If any of it fails it
// logs why ("NAME: invalid configuration, not starting" or "NAME: not
// starting") and exits with status 1.
func Start(name string, required ...string) *Function {
	return start(os.Getenv, os.Stdout, os.Exit, name, required...)
}

func start(getenv func(string) string, w io.Writer, exit func(int), name string, required ...string) *Function {
	cfg, err := Load(getenv, required...)
	f := &Function{Config: cfg, Logger: NewLogger(w, cfg.LogLevel), name: name, exit: exit}
	if err != nil {
		f.Logger.Error(name+": invalid configuration, not starting", "error", err)
		exit(1)
		return f
	}
	f.DynamoDB, err = NewDynamoDB(context.Background())
	f.Check(err)
	if err == nil {
		f.Store, err = NewStore(f.DynamoDB, cfg, f.Logger)
		f.Check(err)
	}
	return f
}

// Check logs err ("NAME: not starting") and exits with status 1 when err is
// not nil: for the errors of the function's own constructors.
func (f *Function) Check(err error) {
	if err != nil {
		f.Logger.Error(f.name+": not starting", "error", err)
		f.exit(1)
	}
}
