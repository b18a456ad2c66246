package batch

import (
	"context"
	"log/slog"
	"strings"
	"time"

	"github.com/acme/idemcheckout/pkg/idemddb/internal/obs"
)

// Outcomes of one record, as logged ("outcome") and counted (metric name
// in parentheses).
const (
	outProcessed  = "processed"   // Processed: the handler ran and its record committed
	outReplayed   = "replayed"    // Replayed: completed before; skipped
	outFailed     = "failed"      // Failed: the handler returned an error; key released
	outPanic      = "panic"       // Panic: the handler panicked; key released
	outInProgress = "in_progress" // InProgress: another invocation holds the key
	outMismatch   = "mismatch"    // Mismatch: the key was used with another fingerprint
	outInvalidKey = "invalid_key" // InvalidKey: no usable key in the record
	outBlocked    = "blocked"     // Blocked: an earlier record of its group failed
	outDeadline   = "deadline"    // Deadline: too little time left to start it
	outFenced     = "fenced"      // Fenced: the lease was taken over before completion
	outCanceled   = "canceled"    // Canceled: a Claim.AddWrites condition failed; key released
	outUnavail    = "unavailable" // Unavailable: DynamoDB failed; outcome may be unknown
	outError      = "error"       // Error: anything else
)

// outcome is what happened to one record.
type outcome struct {
	kind       string
	reason     string
	err        error
	blockedBy  string        // item id of the failure that blocked this record
	retryAfter time.Duration // in progress: until the other lease ends
	stack      string        // panic
	takenOver  bool          // processed after taking over a lapsed lease
}

// failed reports whether the record did not complete (it may still be
// acknowledged: see reported).
func (o *outcome) failed() bool { return o.kind != outProcessed && o.kind != outReplayed }

// keyTag is a prefix of the scoped key's hash: enough to correlate lines,
// never the key.
func keyTag(k string) string { return strings.TrimPrefix(k, keyPrefix)[:16] }

// logRecord writes the line of one failed or skipped record.
func (w *wrapper) logRecord(ctx context.Context, r *rec, o *outcome, reported bool) {
	level := slog.LevelWarn
	switch o.kind {
	case outProcessed:
		if !o.takenOver {
			return
		}
		level = slog.LevelInfo
	case outReplayed:
		level = slog.LevelInfo
	case outPanic, outMismatch, outInvalidKey, outError:
		level = slog.LevelError
	}
	attrs := []slog.Attr{
		slog.String("consumer", w.consumer),
		slog.String("source", w.source),
		slog.String("outcome", o.kind),
		slog.String("item", r.id),
		slog.Bool("reported", reported),
	}
	if r.key != "" {
		attrs = append(attrs, slog.String("key", keyTag(r.key)))
	}
	if r.receiveCount != "" {
		attrs = append(attrs, slog.String("receive_count", r.receiveCount))
	}
	if o.reason != "" {
		attrs = append(attrs, slog.String("reason", o.reason))
	}
	if o.blockedBy != "" {
		attrs = append(attrs, slog.String("blocked_by", o.blockedBy))
	}
	if o.retryAfter > 0 {
		attrs = append(attrs, slog.Int64("retry_after_ms", o.retryAfter.Milliseconds()))
	}
	if o.takenOver {
		attrs = append(attrs, slog.Bool("taken_over", true))
	}
	if o.err != nil {
		attrs = append(attrs, slog.String("error", o.err.Error()))
	}
	if o.stack != "" {
		attrs = append(attrs, slog.String("stack", o.stack))
	}
	w.c.Logger.LogAttrs(ctx, level, "idempotency record", attrs...)
}

// summary counts one batch's outcomes.
type summary struct {
	records, reported int
	counts            map[string]int
	start             time.Time
}

// logBatch writes the batch's summary line and its metric document.
func (w *wrapper) logBatch(ctx context.Context, s *summary) {
	latency := time.Since(s.start)
	level := slog.LevelInfo
	if s.reported > 0 {
		level = slog.LevelWarn
	}
	attrs := []slog.Attr{
		slog.String("consumer", w.consumer),
		slog.String("source", w.source),
		slog.Int("records", s.records),
		slog.Int("reported", s.reported),
		slog.Float64("latency_ms", float64(latency.Microseconds())/1000),
	}
	for _, m := range outcomeMetrics {
		if n := s.counts[m.outcome]; n > 0 {
			attrs = append(attrs, slog.Int(m.outcome, n))
		}
	}
	w.c.Logger.LogAttrs(ctx, level, "idempotency batch", attrs...)
	w.emf.Write("Consumer", w.consumer, emfCounts(s), map[string]any{"Source": w.source}, time.Now())
}

// outcomeMetrics fixes the order of outcomes in summaries and names their
// metrics.
var outcomeMetrics = [...]struct{ outcome, metric string }{
	{outProcessed, "Processed"}, {outReplayed, "Replayed"}, {outFailed, "Failed"}, {outPanic, "Panic"},
	{outInProgress, "InProgress"}, {outMismatch, "Mismatch"}, {outInvalidKey, "InvalidKey"},
	{outBlocked, "Blocked"}, {outDeadline, "Deadline"}, {outFenced, "Fenced"}, {outCanceled, "Canceled"},
	{outUnavail, "Unavailable"}, {outError, "Error"},
}

// emfCounts are the counts of the per-batch metric document: Records,
// Reported and a Count for every outcome that occurred (written with the
// consumer as the only dimension and the source as a plain property).
func emfCounts(s *summary) []obs.Count {
	counts := []obs.Count{{Name: "Records", N: s.records}, {Name: "Reported", N: s.reported}}
	for _, m := range outcomeMetrics {
		if n := s.counts[m.outcome]; n > 0 {
			counts = append(counts, obs.Count{Name: m.metric, N: n})
		}
	}
	return counts
}
