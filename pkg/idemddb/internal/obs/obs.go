// Package obs is what the library's adapters (apigw and idemhttp through
// httpcontract, and batch) share for observability: one set of logging
// and metrics options with one set of defaults, and one writer of
// CloudWatch Embedded Metric Format (EMF) documents.
package obs

import (
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"sync"
	"time"
)

// DefaultNamespace is the CloudWatch metric namespace of every adapter.
const DefaultNamespace = "Idempotency"

// Options says where an adapter's log lines and metric documents go. The
// zero Options is not ready: start from NewOptions.
type Options struct {
	// Logger receives the adapter's log lines; nil until Finish, which
	// sets a JSON handler on os.Stdout.
	Logger *slog.Logger
	// Metrics receives the EMF documents; nil disables metrics.
	Metrics io.Writer
	// Namespace is the CloudWatch metric namespace.
	Namespace string
}

// NewOptions returns the defaults: metrics on os.Stdout in
// DefaultNamespace, and (after Finish) JSON logs on os.Stdout.
func NewOptions() Options {
	return Options{Metrics: os.Stdout, Namespace: DefaultNamespace}
}

// SetLogger sets the logger; nil keeps the default.
func (o *Options) SetLogger(l *slog.Logger) { o.Logger = l }

// SetMetrics sets the metrics writer; nil disables metrics.
func (o *Options) SetMetrics(w io.Writer) { o.Metrics = w }

// SetNamespace sets the metric namespace; "" keeps the current one.
func (o *Options) SetNamespace(ns string) {
	if ns != "" {
		o.Namespace = ns
	}
}

// Finish fills what the options left unset: a JSON logger on os.Stdout.
func (o *Options) Finish() {
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewJSONHandler(os.Stdout, nil))
	}
}

// Count is one metric of a document: a count named Name.
type Count struct {
	Name string
	N    int
}

// EMF writes EMF documents to one writer, one whole document at a time
// (the writer may be shared by concurrent requests or records).
type EMF struct {
	mu sync.Mutex
	o  *Options
}

// NewEMF returns a writer of documents to o.Metrics in o.Namespace. It
// reads o when writing, so options applied later take effect.
func NewEMF(o *Options) *EMF { return &EMF{o: o} }

// Write writes one document, a JSON line: the counts, with the dimension
// dim (its name and value) as the only dimension, and props as plain
// properties. It writes nothing when metrics are disabled.
func (e *EMF) Write(dim, value string, counts []Count, props map[string]any, now time.Time) {
	if e.o.Metrics == nil {
		return
	}
	b := Document(e.o.Namespace, dim, value, counts, props, now)
	e.mu.Lock()
	defer e.mu.Unlock()
	_, _ = e.o.Metrics.Write(b)
}

type emfMetric struct {
	Name string `json:"Name"`
	Unit string `json:"Unit"`
}

type emfDirective struct {
	Namespace  string      `json:"Namespace"`
	Dimensions [][]string  `json:"Dimensions"`
	Metrics    []emfMetric `json:"Metrics"`
}

type emfMeta struct {
	Timestamp         int64          `json:"Timestamp"`
	CloudWatchMetrics []emfDirective `json:"CloudWatchMetrics"`
}

// Document is one EMF document (see EMF.Write), ending in a newline.
func Document(namespace, dim, value string, counts []Count, props map[string]any, now time.Time) []byte {
	doc := make(map[string]any, len(props)+len(counts)+2)
	for k, v := range props {
		doc[k] = v
	}
	metrics := make([]emfMetric, len(counts))
	for i, c := range counts {
		metrics[i] = emfMetric{Name: c.Name, Unit: "Count"}
		doc[c.Name] = c.N
	}
	doc[dim] = value
	doc["_aws"] = emfMeta{
		Timestamp: now.UnixMilli(),
		CloudWatchMetrics: []emfDirective{{
			Namespace:  namespace,
			Dimensions: [][]string{{dim}},
			Metrics:    metrics,
		}},
	}
	b, err := json.Marshal(doc)
	if err != nil { // props of strings, numbers and bools always marshal
		return nil
	}
	return append(b, '\n')
}
