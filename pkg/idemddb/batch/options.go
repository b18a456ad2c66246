package batch

import (
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/acme/idemcheckout/pkg/idemddb/internal/obs"
)

// Defaults used where no Option says otherwise.
const (
	// DefaultConcurrency is how many records run at once: one, in batch
	// order.
	DefaultConcurrency = 1
	// DefaultMinRemaining is the least time that must remain before the
	// invocation deadline for a record to be started.
	DefaultMinRemaining = 2 * time.Second
	// DefaultNamespace is the CloudWatch metric namespace.
	DefaultNamespace = obs.DefaultNamespace
)

// Option configures WrapSQS and WrapStream.
type Option func(*config)

type config struct {
	key          Key
	fpAttrs      []string
	fpMode       fpMode
	fpFields     [][]string // WithFingerprintFields' paths, split at their dots
	concurrency  int
	minRemaining time.Duration
	dropMismatch bool
	wait         time.Duration
	obs.Options  // logger, metrics and namespace, as every adapter's
	now          func() time.Time
}

func newConfig(def Key, opts []Option) *config {
	c := &config{
		key:          def,
		concurrency:  DefaultConcurrency,
		minRemaining: DefaultMinRemaining,
		Options:      obs.NewOptions(),
		now:          time.Now,
	}
	for _, o := range opts {
		o(c)
	}
	c.Finish()
	return c
}

// WithKey chooses where each record's idempotency key comes from (default
// MessageID for SQS, EventID for streams). A Key made for the other source
// makes every call fail with ErrNotConfigured.
func WithKey(k Key) Option {
	return func(c *config) { c.key = k }
}

// WithFingerprintAttributes adds the named SQS message attributes to the
// fingerprint, next to the body (default: the body only). An absent
// attribute is fingerprinted as absent. SQS only: WrapStream fails every
// call with ErrNotConfigured when it is set.
func WithFingerprintAttributes(names ...string) Option {
	return func(c *config) { c.fpAttrs = append([]string(nil), names...) }
}

// fpMode is what of an SQS body the fingerprint covers.
type fpMode int

const (
	fpDefault fpMode = iota // fpBody for MessageID, fpFields (none) for a content key
	fpBody                  // the whole body
	fpFields                // the fields in fpFields only
)

// WithFingerprintFields makes the fingerprint of an SQS message cover only
// the named fields of its JSON body (dotted paths through objects, as
// BodyField takes: "order_id", "detail.amount"), next to the attributes of
// WithFingerprintAttributes. A duplicate whose chosen fields differ is a
// mismatch (reported, see WithDropMismatches); other fields, such as a
// timestamp or trace id the producer sets per send, are ignored. A field
// may hold any JSON value, compared canonically; an absent field is
// fingerprinted as absent, and a body that is not JSON by its bytes. With
// no names, no field of the body is fingerprinted (the default for keys
// taken from the message's content). SQS only: WrapStream fails every call
// with ErrNotConfigured when it is set.
func WithFingerprintFields(paths ...string) Option {
	return func(c *config) {
		c.fpMode, c.fpFields = fpFields, make([][]string, len(paths))
		for i, p := range paths {
			c.fpFields[i] = strings.Split(p, ".")
		}
	}
}

// WithFingerprintBody makes the fingerprint of an SQS message cover its
// whole body (canonical JSON when it is JSON, else its bytes), the default
// for MessageID keys. With a key taken from the message's content
// (BodyField, MessageAttribute), a duplicate that differs in any field,
// even a timestamp the producer sets per send, is then a mismatch; this is
// also how such consumers fingerprinted before WithFingerprintFields
// existed, so records stored then still match. SQS only: WrapStream fails
// every call with ErrNotConfigured when it is set.
func WithFingerprintBody() Option {
	return func(c *config) { c.fpMode, c.fpFields = fpBody, nil }
}

// sqsFingerprintMode resolves the default: a content key fingerprints no
// body field, a delivery key (MessageID) the whole body.
func (c *config) sqsFingerprintMode() fpMode {
	switch {
	case c.fpMode != fpDefault:
		return c.fpMode
	case c.key.content:
		return fpFields
	}
	return fpBody
}

// WithConcurrency sets how many records of a batch run at once (default
// DefaultConcurrency, one at a time in batch order). Records that must
// stay ordered (one FIFO message group, one stream item, one key) still
// run one after another. n < 1 keeps the default.
func WithConcurrency(n int) Option {
	return func(c *config) {
		if n >= 1 {
			c.concurrency = n
		}
	}
}

// WithMinRemaining sets the least time that must remain before the
// invocation deadline for a record to be started (default
// DefaultMinRemaining); later records are reported as failures without
// running. d < 0 keeps the default; 0 starts records until the deadline.
func WithMinRemaining(d time.Duration) Option {
	return func(c *config) {
		if d >= 0 {
			c.minRemaining = d
		}
	}
}

// WithWait makes a record whose key is in progress in another invocation
// wait up to d (never past the invocation's deadline minus
// idemddb.WaitMargin) for that invocation to finish, instead of being
// reported at once (default 0). It then replays the other's outcome, or, if
// the other invocation failed and released the key or died and its lease
// lapsed, claims the key and runs the handler itself. Use it where a
// redelivery can come before the lease of a crashed invocation ends (a
// stream retries a batch at once; an SQS visibility timeout shorter than
// the function's timeout): without it such a record is reported on every
// retry until the lease ends and can exhaust the retries. See
// idemddb.Request.Wait for the cost (at most idemddb.MaxWaitReads(d) reads).
func WithWait(d time.Duration) Option {
	return func(c *config) { c.wait = max(d, 0) }
}

// WithDropMismatches acknowledges, instead of reporting, a record whose
// key was already used by a record with a different fingerprint: it is
// logged at level ERROR and counted, and the event source deletes it (SQS)
// or moves past it (streams). By default such a record is reported, so the
// source's retry limit moves it to its dead-letter destination.
func WithDropMismatches() Option {
	return func(c *config) { c.dropMismatch = true }
}

// WithLogger sets the logger receiving one line per failed or skipped
// record and one summary line per batch (default: a JSON handler on
// os.Stdout).
func WithLogger(l *slog.Logger) Option {
	return func(c *config) { c.SetLogger(l) }
}

// WithMetrics sets where the per-batch CloudWatch Embedded Metric Format
// document is written (default os.Stdout); nil disables metrics.
func WithMetrics(w io.Writer) Option {
	return func(c *config) { c.SetMetrics(w) }
}

// WithNamespace sets the CloudWatch metric namespace (default
// DefaultNamespace).
func WithNamespace(ns string) Option {
	return func(c *config) { c.SetNamespace(ns) }
}

// WithClock sets the clock the deadline check reads (default time.Now).
// Tests move it.
func WithClock(now func() time.Time) Option {
	return func(c *config) {
		if now != nil {
			c.now = now
		}
	}
}
