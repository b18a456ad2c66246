package devstack

import (
	"fmt"
	"time"

	"github.com/acme/idemcheckout/internal/samtemplate"
	"github.com/acme/idemcheckout/local/devstack/eventsource"
	"github.com/acme/idemcheckout/local/devstack/gateway"
	"github.com/acme/idemcheckout/local/devstack/template"
)

// Sample event kinds for SampleEvent (make event TYPE=...).
const (
	SampleHTTP     = "http"
	SampleSchedule = "schedule"
	SampleSQS      = "sqs"
	SampleDynamoDB = "dynamodb"
)

// SampleEvent returns an event of kind for function fn of tm (fn "" picks
// the first function that has such an event), to save and pass to `make
// invoke`, like `sam local generate-event`:
//   - http: API Gateway's event for the function's first route (a POST if
//     it has one), payload 2.0 (1.0 for Api routes), with an unsigned local
//     JWT for subject dev-user when the route has a JWT authorizer, an
//     Idempotency-Key and body as the JSON body;
//   - schedule: the Scheduled Event of the function's schedule;
//   - sqs: an SQS event with one message whose body is body;
//   - dynamodb: a stream event with one INSERT of an item with the
//     table's key attributes.
func SampleEvent(tm *template.Template, kind, fn, body string, now time.Time) ([]byte, error) {
	if body == "" {
		body = "{}"
	}
	for _, f := range tm.Functions() {
		if fn != "" && f.ID != fn {
			continue
		}
		for _, ev := range f.Events {
			switch {
			case kind == SampleHTTP && ev.HTTP != nil:
				return gateway.SampleEvent(tm, f.ID, body, now)
			case kind == SampleSchedule && ev.Schedule != nil:
				return eventsource.SchedulePayload(tm.Region, &f, &ev, now), nil
			case kind == SampleSQS && ev.Queue != nil:
				return eventsource.SampleSQS(tm, ev.Queue.Queue.Value, body, now)
			case kind == SampleDynamoDB && ev.Stream != nil:
				tb, _ := tm.Model.Table(ev.Stream.Stream.Resource)
				return eventsource.SampleStream(tm, tb, ev.Stream.Stream.Value, now)
			}
		}
	}
	switch kind {
	case SampleSchedule:
		return eventsource.SchedulePayload(tm.Region, nil, nil, now), nil
	case SampleSQS:
		return eventsource.SampleSQS(tm, "", body, now)
	case SampleDynamoDB:
		return eventsource.SampleStream(tm, samtemplate.Table{ID: "SampleTable"}, "", now)
	case SampleHTTP:
		return nil, fmt.Errorf("no function %s has an HttpApi or Api event", orAny(fn))
	}
	return nil, fmt.Errorf("unknown event type %q (want %s, %s, %s or %s)", kind, SampleHTTP, SampleSchedule, SampleSQS, SampleDynamoDB)
}

func orAny(fn string) string {
	if fn == "" {
		return "of the template"
	}
	return fn
}
