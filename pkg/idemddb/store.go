package idemddb

import (
	"compress/flate"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
)

// Client is the part of *dynamodb.Client the store uses. Tests wrap it to
// count requests or inject faults.
type Client interface {
	PutItem(ctx context.Context, in *dynamodb.PutItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
	GetItem(ctx context.Context, in *dynamodb.GetItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
	DeleteItem(ctx context.Context, in *dynamodb.DeleteItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error)
	TransactWriteItems(ctx context.Context, in *dynamodb.TransactWriteItemsInput, optFns ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error)
}

// Defaults used where Config leaves a field zero.
const (
	DefaultRetention        = 24 * time.Hour
	DefaultLeaseMargin      = 2 * time.Second
	DefaultLease            = 30 * time.Second
	DefaultMaxLease         = 15*time.Minute + DefaultLeaseMargin
	DefaultMaxResultBytes   = 350 << 10
	DefaultCompressMinBytes = 1 << 10
	// MinRetention is the shortest Retention New accepts.
	MinRetention = time.Minute
	// MaxKeyBytes bounds the key so a claim item stays under 1 KB.
	MaxKeyBytes = 512
)

// Config configures a Store. Only Table is required.
type Config struct {
	// Table is the DynamoDB table name. Its partition key is a string
	// attribute named KeyAttribute; TTL should be enabled on TTLAttribute.
	Table string
	// KeyAttribute is the partition key's name (default "id").
	KeyAttribute string
	// Retention is how long a record is kept (default 24h; 24–72h is the
	// usual choice for payments; at least MinRetention). It sets the TTL
	// attribute.
	Retention time.Duration
	// LeaseMargin is added to the invocation deadline to form the lease,
	// so the lease outlives the invocation that holds it (default 2s).
	LeaseMargin time.Duration
	// DefaultLease is the lease when the context has no deadline (default
	// 30s). The work's context then gets a deadline LeaseMargin before it.
	DefaultLease time.Duration
	// MaxLease caps every lease (default 15m2s, Lambda's limit plus margin,
	// or half the Retention when that is shorter, so a short retention for
	// tests or demos still works). It must be shorter than Retention.
	MaxLease time.Duration
	// MaxResultBytes is the largest encoded result stored (default 350 KiB,
	// under DynamoDB's 400 KB item limit). Larger results are not retained.
	MaxResultBytes int
	// CompressMinBytes: results at least this long are deflated when that
	// makes them smaller (default 1 KiB; negative disables compression).
	CompressMinBytes int
	// Cache, when set, holds COMPLETED records in process so a hot replay
	// costs no DynamoDB request.
	Cache *Cache
	// Logger receives warnings the caller cannot otherwise see (a release
	// that failed after the work's error). Default: slog.Default().
	Logger *slog.Logger
	// Now is the clock (default time.Now). Tests move it.
	Now func() time.Time
}

// Store runs work at most once per key. It is safe for concurrent use.
type Store struct {
	client Client
	cfg    Config
	shapes shapes
	// flate writers are expensive to build; reuse them.
	writers sync.Pool
}

// New returns a Store that keeps its records in cfg.Table through client.
func New(client Client, cfg Config) (*Store, error) {
	if client == nil {
		return nil, errors.New("idemddb: nil client")
	}
	if cfg.Table == "" {
		return nil, errors.New("idemddb: Config.Table is required")
	}
	if cfg.KeyAttribute == "" {
		cfg.KeyAttribute = "id"
	}
	if cfg.Retention < 0 || cfg.LeaseMargin < 0 || cfg.DefaultLease < 0 || cfg.MaxLease < 0 || cfg.MaxResultBytes < 0 {
		return nil, errors.New("idemddb: negative durations or sizes in Config")
	}
	if cfg.Retention == 0 {
		cfg.Retention = DefaultRetention
	}
	if cfg.LeaseMargin == 0 {
		cfg.LeaseMargin = DefaultLeaseMargin
	}
	if cfg.DefaultLease == 0 {
		cfg.DefaultLease = DefaultLease
	}
	if cfg.MaxLease == 0 {
		cfg.MaxLease = min(DefaultMaxLease, cfg.Retention/2)
	}
	if cfg.MaxResultBytes == 0 {
		cfg.MaxResultBytes = DefaultMaxResultBytes
	}
	if cfg.CompressMinBytes == 0 {
		cfg.CompressMinBytes = DefaultCompressMinBytes
	}
	if cfg.Retention < MinRetention {
		return nil, fmt.Errorf("idemddb: Retention %v is shorter than %v", cfg.Retention, MinRetention)
	}
	if cfg.Retention <= cfg.MaxLease {
		return nil, errors.New("idemddb: Retention must be longer than MaxLease")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	s := &Store{client: client, cfg: cfg, shapes: newShapes(cfg.Table, cfg.KeyAttribute)}
	s.writers.New = func() any {
		w, _ := flate.NewWriter(nil, flate.BestSpeed)
		return w
	}
	return s, nil
}

// Table returns the table name.
func (s *Store) Table() string { return s.cfg.Table }

// Retention returns how long records are kept.
func (s *Store) Retention() time.Duration { return s.cfg.Retention }

// leaseUntil derives the lease end from the invocation deadline: the
// deadline plus LeaseMargin, so a lease never ends while the invocation that
// holds it can still run. Without a deadline the lease is DefaultLease; with
// a deadline already passed it is LeaseMargin. Every lease is capped at
// MaxLease, so no record stays IN_PROGRESS until its TTL.
func (s *Store) leaseUntil(ctx context.Context, now time.Time) time.Time {
	var end time.Time
	dl, ok := ctx.Deadline()
	switch {
	case !ok || dl.IsZero():
		end = now.Add(s.cfg.DefaultLease)
	case !dl.After(now):
		end = now.Add(s.cfg.LeaseMargin)
	default:
		end = dl.Add(s.cfg.LeaseMargin)
	}
	if end.Sub(now) > s.cfg.MaxLease {
		end = now.Add(s.cfg.MaxLease)
	}
	return end
}
