package httpcontract

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"log/slog"
	"strings"
	"time"

	"github.com/acme/idemcheckout/pkg/idemddb/internal/obs"
)

// Outcomes, as logged ("outcome") and counted (metric name in parentheses).
const (
	outClaimed        = "claimed"         // Claimed: the handler ran; its response was stored
	outReplayed       = "replayed"        // Replayed
	outConflict       = "conflict"        // Conflict: 409 in progress
	outMismatch       = "mismatch"        // Mismatch: 422
	outReleased       = "released"        // Released: handler error or status not stored
	outFenced         = "fenced"          // Fenced: 409 lease lost
	outCanceled       = "canceled"        // Canceled: AddWrites condition failed
	outNotRetained    = "not_retained"    // NotRetained: replay of a too-large response
	outInvalidKey     = "invalid_key"     // InvalidKey: 400 missing or malformed key
	outInvalidRequest = "invalid_request" // InvalidRequest: bad base64, principal required
	outUnavailable    = "unavailable"     // Unavailable: 503
	outTooLarge       = "too_large"       // TooLarge: 413
	outError          = "error"           // Error: 500
)

// event is what one request reports.
type event struct {
	start       time.Time
	outcome     string
	reason      string
	route       string
	status      int
	principal   string
	key         string // scoped record key (a hash), "" before it is known
	requestID   string
	notRetained bool
	waited      time.Duration // how long the request waited for a duplicate in progress
	waitReads   int
	applied     string // Preference-Applied value, "" when none
	err         error
}

// metricName turns an outcome into its metric name: "invalid_key" → "InvalidKey".
func metricName(outcome string) string {
	var b strings.Builder
	for _, part := range strings.Split(outcome, "_") {
		if part != "" {
			b.WriteString(strings.ToUpper(part[:1]) + part[1:])
		}
	}
	return b.String()
}

// principalTag is a short hash of the principal, or "anonymous".
func principalTag(p string) string {
	if p == "" {
		return "anonymous"
	}
	sum := sha256.Sum256([]byte(p))
	return hex.EncodeToString(sum[:6])
}

// keyTag is a prefix of the scoped key's hash.
func keyTag(k string) string {
	k = strings.TrimPrefix(k, KeyPrefix)
	if len(k) > 16 {
		k = k[:16]
	}
	return k
}

// record writes the log line and the metric document.
func (w *Engine) record(ctx context.Context, ev *event) {
	latency := time.Since(ev.start)
	if l := w.c.Logger; l != nil {
		level := slog.LevelInfo
		switch ev.outcome {
		case outFenced, outUnavailable, outError, outNotRetained:
			level = slog.LevelWarn
		}
		attrs := []slog.Attr{
			slog.String("outcome", ev.outcome),
			slog.String("route", ev.route),
			slog.Int("status", ev.status),
			slog.String("principal", principalTag(ev.principal)),
			slog.Float64("latency_ms", float64(latency.Microseconds())/1000),
		}
		if ev.key != "" {
			attrs = append(attrs, slog.String("key", keyTag(ev.key)))
		}
		if ev.reason != "" {
			attrs = append(attrs, slog.String("reason", ev.reason))
		}
		if ev.requestID != "" {
			attrs = append(attrs, slog.String("request_id", ev.requestID))
		}
		if ev.waitReads > 0 {
			attrs = append(attrs, slog.Float64("waited_ms", float64(ev.waited.Microseconds())/1000), slog.Int("wait_reads", ev.waitReads))
		}
		if ev.notRetained {
			attrs = append(attrs, slog.Bool("response_retained", false))
		}
		if ev.err != nil {
			attrs = append(attrs, slog.String("error", ev.err.Error()))
		}
		l.LogAttrs(ctx, level, "idempotency", attrs...)
	}
	w.emf.Write("Route", ev.route, []obs.Count{{Name: metricName(ev.outcome), N: 1}},
		map[string]any{"Outcome": ev.outcome, "Status": ev.status}, time.Now())
}
