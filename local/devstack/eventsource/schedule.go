package eventsource

import (
	"encoding/json"
	"strings"
	"time"

	"github.com/acme/idemcheckout/internal/samtemplate"
	"github.com/acme/idemcheckout/local/devstack/lambda"
	"github.com/acme/idemcheckout/local/devstack/template"
	"github.com/aws/aws-lambda-go/events"
)

// Schedule and ScheduleV2 events run locally at their rate(...): the
// function is invoked through its emulator pool with the event EventBridge
// sends, an "aws.events" "Scheduled Event" naming the rule (or the
// schedule, for ScheduleV2), or the event's Input when it sets one; one log
// line per invocation. Config.ScheduleEvery (DEV_SCHEDULE_EVERY) replaces
// every period, e.g. 5s to see a rate(5 minutes) reconcile run now. cron()
// and at() expressions are not run locally (only with ScheduleEvery); use
// `make invoke` with `make event TYPE=schedule`.

// scheduledEvent is the event EventBridge sends a rule's target.
func scheduledEvent(region, resourceARN string, now time.Time) []byte {
	b, _ := json.Marshal(events.EventBridgeEvent{
		Version:    "0",
		ID:         lambda.NewRequestID(),
		DetailType: "Scheduled Event",
		Source:     "aws.events",
		AccountID:  template.FakeAccount,
		Time:       now.UTC().Truncate(time.Second),
		Region:     region,
		Resources:  []string{resourceARN},
		Detail:     json.RawMessage("{}"),
	})
	return b
}

// scheduleARN is the ARN of the rule (Schedule) or schedule (ScheduleV2)
// behind an event.
func scheduleARN(region string, f *samtemplate.Function, ev *samtemplate.Event) string {
	name := ev.Schedule.Name
	if name == "" {
		name = template.StackName + "-" + f.ID + ev.Name
	}
	if ev.Type == samtemplate.EventScheduleV2 {
		return "arn:aws:scheduler:" + region + ":" + template.FakeAccount + ":schedule/default/" + name
	}
	return "arn:aws:events:" + region + ":" + template.FakeAccount + ":rule/" + name
}

// SchedulePayload is what one run of the schedule event ev of f sends:
// its Input, else EventBridge's Scheduled Event naming the rule (or the
// schedule, for ScheduleV2). With a nil ev it is the Scheduled Event of a
// rule named "sample".
func SchedulePayload(region string, f *samtemplate.Function, ev *samtemplate.Event, now time.Time) []byte {
	if ev == nil {
		return scheduledEvent(region, "arn:aws:events:"+region+":"+template.FakeAccount+":rule/sample", now)
	}
	if ev.Schedule.Input != "" {
		return []byte(ev.Schedule.Input)
	}
	return scheduledEvent(region, scheduleARN(region, f, ev), now)
}

// startSchedules starts one goroutine per enabled schedule of a running
// function.
func (s *Sources) startSchedules() {
	if s.cfg.ScheduleEvery < 0 {
		return
	}
	for _, f := range s.cfg.Functions {
		for _, ev := range f.Events {
			if ev.Schedule == nil {
				continue
			}
			where := "schedule " + f.ID + "." + ev.Name + " (" + ev.Schedule.Expression + ")"
			if !ev.Schedule.Enabled {
				s.cfg.Logf("%s: disabled in the template, not run", where)
				continue
			}
			period, isRate, _ := ev.Schedule.Rate() // a bad rate fails the template load
			if s.cfg.ScheduleEvery > 0 {
				period, isRate = s.cfg.ScheduleEvery, true
			}
			if !isRate {
				s.cfg.Logf("%s: only rate() schedules run locally (DEV_SCHEDULE_EVERY=30s runs it every 30 s); make invoke FN=%s runs it once", where, f.ID)
				continue
			}
			s.cfg.Logf("%s: runs every %s", where, period)
			s.every(period, func(now time.Time) { s.runSchedule(f, ev, now, where) })
		}
	}
}

// every calls f every period, in the background, until the stack stops.
func (s *Sources) every(period time.Duration, f func(now time.Time)) {
	s.bg.Add(1)
	go func() {
		defer s.bg.Done()
		t := time.NewTicker(period)
		defer t.Stop()
		for {
			select {
			case <-s.bgctx.Done():
				return
			case now := <-t.C:
				f(now)
			}
		}
	}()
}

// runSchedule invokes one scheduled event and logs one line.
func (s *Sources) runSchedule(f samtemplate.Function, ev samtemplate.Event, now time.Time, where string) {
	start := time.Now()
	out, err := s.cfg.Invoker.Invoke(s.bgctx, f.ID, SchedulePayload(s.cfg.Region, &f, &ev, now))
	if s.bgctx.Err() != nil {
		return
	}
	res := strings.TrimSpace(string(out))
	if len(res) > 120 {
		res = res[:120] + "..."
	}
	if err != nil {
		s.cfg.Logf("%s: invoked, failed in %s: %v", where, time.Since(start).Round(100*time.Microsecond), err)
	} else {
		s.cfg.Logf("%s: invoked in %s: %s", where, time.Since(start).Round(100*time.Microsecond), res)
	}
}
