// Package eventsource runs the template's non-HTTP event sources locally:
// the DynamoDB stream and SQS event source mappings, which poll the engine
// and invoke the function with Lambda's batches (esm.go), with Lambda's
// filter patterns (filter.go), and the Schedule and ScheduleV2 events,
// invoked at their rate (schedule.go). Every invocation goes through a
// lambda.Invoker. It does not create the tables and queues it reads
// (local/devstack/provision does) nor run functions (local/devstack/lambda
// does).
package eventsource

import (
	"context"
	"sync"
	"time"

	"github.com/acme/idemcheckout/internal/samtemplate"
	"github.com/acme/idemcheckout/local/devstack/lambda"
	"github.com/acme/idemcheckout/local/devstack/template"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
)

// Config configures the event sources of the running functions.
type Config struct {
	// Template is the resolved template; Functions are the running
	// functions of it, whose events run.
	Template  *template.Template
	Functions []samtemplate.Function
	// Invoker invokes the functions.
	Invoker lambda.Invoker
	// Region is the region in the events and ARNs.
	Region string
	// PollInterval is how often a mapping polls its stream or queue
	// (DefaultPollInterval if 0); negative runs no mapping.
	PollInterval time.Duration
	// ScheduleEvery, when positive, runs every schedule at this period
	// instead of its rate; negative runs none.
	ScheduleEvery time.Duration
	// The engine's clients: tables, their streams, and the queues, whose
	// URLs by logical id are QueueURLs.
	DynamoDB  *dynamodb.Client
	Streams   *dynamodbstreams.Client
	SQS       *sqs.Client
	QueueURLs map[string]string
	// Logf receives one line per batch or scheduled run.
	Logf func(string, ...any)
}

// Sources are the running event sources.
type Sources struct {
	cfg     Config
	sources map[string]*eventSource // mappings by Function.Event
	bg      sync.WaitGroup
	bgctx   context.Context
	cancel  context.CancelFunc
}

// Start starts the schedules and the mappings of cfg.Functions. A filter
// the local stack cannot apply fails the start, naming the mapping (what
// started is stopped); a source it cannot find is logged and not run.
func Start(ctx context.Context, cfg Config) (*Sources, error) {
	if cfg.PollInterval == 0 {
		cfg.PollInterval = DefaultPollInterval
	}
	s := &Sources{cfg: cfg, sources: map[string]*eventSource{}}
	s.bgctx, s.cancel = context.WithCancel(context.Background())
	s.startSchedules()
	if err := s.startMappings(ctx); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// Close stops every source and waits for the batches and scheduled runs
// in flight. It is nil-safe and safe to call more than once.
func (s *Sources) Close() {
	if s == nil {
		return
	}
	s.cancel()
	s.bg.Wait()
}
