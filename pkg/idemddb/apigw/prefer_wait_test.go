package apigw_test

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/acme/idemcheckout/pkg/idemddb"
	"github.com/acme/idemcheckout/pkg/idemddb/apigw"
	"github.com/aws/aws-lambda-go/events"
)

// slowFirst is a handler whose first call blocks until release is closed;
// started is closed when that call runs.
type slowFirst struct {
	runs    atomic.Int64
	started chan struct{}
	release chan struct{}
}

func newSlowFirst() *slowFirst {
	return &slowFirst{started: make(chan struct{}), release: make(chan struct{})}
}

func (h *slowFirst) serve(ctx context.Context, r events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	if h.runs.Add(1) == 1 {
		close(h.started)
		<-h.release
	}
	return events.APIGatewayV2HTTPResponse{StatusCode: 201, Body: `{"payment_id":"pay_1"}`,
		Headers: map[string]string{"Content-Type": "application/json"}}, nil
}

type v2result struct {
	resp events.APIGatewayV2HTTPResponse
	err  error
}

func goV2(ctx context.Context, h apigw.HandlerV2, req events.APIGatewayV2HTTPRequest) <-chan v2result {
	out := make(chan v2result, 1)
	go func() {
		r, err := h(ctx, req)
		out <- v2result{r, err}
	}()
	return out
}

// firstRead returns a channel that receives once when the fixture's
// client makes its next GetItem: a waiting duplicate polling the record.
func (f *fixture) firstRead() <-chan struct{} {
	ch := make(chan struct{}, 1)
	f.client.After(func(op string, _ any, err error) error {
		if op == "GetItem" {
			select {
			case ch <- struct{}{}:
			default:
			}
		}
		return err
	})
	return ch
}

// TestPreferWaitReplays: a duplicate with "Prefer: wait=5" that arrives
// while the first request runs waits for it and answers its response as a
// replay, saying the preference was applied.
func TestPreferWaitReplays(t *testing.T) {
	f := newFixture(t, idemddb.Config{})
	h := newSlowFirst()
	wrapped := apigw.WrapV2(f.store, h.serve, f.opts()...)
	req := v2req("POST", "/payments", "/payments", "u", "pay-now", `{"order_id":"o1"}`)
	first := goV2(bg, wrapped, req)
	<-h.started
	polled := f.firstRead()
	dup := req
	dup.Headers = map[string]string{"content-type": "application/json", "idempotency-key": "pay-now", "prefer": "wait=5"}
	second := goV2(bg, wrapped, dup)
	<-polled
	close(h.release)
	a, b := <-first, <-second
	if a.err != nil || b.err != nil || a.resp.StatusCode != 201 || b.resp.StatusCode != 201 || a.resp.Body != b.resp.Body {
		t.Fatalf("first %+v %v, duplicate %+v %v", a.resp, a.err, b.resp, b.err)
	}
	if b.resp.Headers[apigw.ReplayedHeader] != "true" || b.resp.Headers[apigw.PreferenceAppliedHeader] != "wait=5" || h.runs.Load() != 1 {
		t.Fatalf("duplicate headers %v, runs %d", b.resp.Headers, h.runs.Load())
	}
	if !strings.Contains(f.logs.String(), `"wait_reads":`) {
		t.Fatalf("the log does not say the request waited: %s", f.logs.String())
	}
}

// TestWithWaitOption: the wrapper's default wait applies without the
// header, and then no Preference-Applied is sent.
func TestWithWaitOption(t *testing.T) {
	f := newFixture(t, idemddb.Config{})
	h := newSlowFirst()
	wrapped := apigw.WrapV2(f.store, h.serve, f.opts(apigw.WithWait(5*time.Second))...)
	req := v2req("POST", "/payments", "/payments", "u", "k", `{}`)
	first := goV2(bg, wrapped, req)
	<-h.started
	polled := f.firstRead()
	second := goV2(bg, wrapped, req)
	<-polled
	close(h.release)
	<-first
	b := <-second
	if b.err != nil || b.resp.StatusCode != 201 || b.resp.Headers[apigw.ReplayedHeader] != "true" {
		t.Fatalf("duplicate %+v %v", b.resp, b.err)
	}
	if _, ok := b.resp.Headers[apigw.PreferenceAppliedHeader]; ok {
		t.Fatalf("Preference-Applied without a preference: %v", b.resp.Headers)
	}
}

// TestNoWaitByDefault: without the preference and without WithWait the
// duplicate gets 409 at once, as before, with no read.
func TestNoWaitByDefault(t *testing.T) {
	f := newFixture(t, idemddb.Config{})
	h := newSlowFirst()
	wrapped := apigw.WrapV2(f.store, h.serve, f.opts()...)
	req := v2req("POST", "/payments", "/payments", "u", "k", `{}`)
	first := goV2(bg, wrapped, req)
	<-h.started
	f.client.Reset()
	resp, err := wrapped(bg, req)
	if err != nil {
		t.Fatal(err)
	}
	wantProblem(t, resp.StatusCode, resp.Headers, resp.Body, 409, apigw.ProblemKeyInUse)
	if f.client.Count("GetItem") != 0 || resp.Headers[apigw.PreferenceAppliedHeader] != "" {
		t.Fatalf("reads %d, headers %v; want an immediate 409", f.client.Count("GetItem"), resp.Headers)
	}
	close(h.release)
	<-first
}

// TestWaitOutlastingTheInvocation: a preference longer than the
// invocation's remaining time ends before its deadline with 409.
func TestWaitOutlastingTheInvocation(t *testing.T) {
	f := newFixture(t, idemddb.Config{})
	h := newSlowFirst()
	defer close(h.release)
	wrapped := apigw.WrapV2(f.store, h.serve, f.opts()...)
	req := v2req("POST", "/payments", "/payments", "u", "k", `{}`)
	go func() { _, _ = wrapped(bg, req) }()
	<-h.started
	ctx, cancel := context.WithTimeout(bg, 1200*time.Millisecond)
	defer cancel()
	deadline, _ := ctx.Deadline()
	dup := req
	dup.Headers = map[string]string{"content-type": "application/json", "idempotency-key": "k", "prefer": "wait=10"}
	resp, err := wrapped(ctx, dup)
	if err != nil {
		t.Fatal(err)
	}
	wantProblem(t, resp.StatusCode, resp.Headers, resp.Body, 409, apigw.ProblemKeyInUse)
	if !time.Now().Before(deadline) || retryAfter(t, resp.Headers) < 1 || resp.Headers[apigw.PreferenceAppliedHeader] != "wait=10" {
		t.Fatalf("answered at %v (deadline %v), headers %v", time.Now(), deadline, resp.Headers)
	}
}

// TestMismatchIsNotWaitedFor: the same key with another body gets 422 at
// once, whatever the preference.
func TestMismatchIsNotWaitedFor(t *testing.T) {
	f := newFixture(t, idemddb.Config{})
	h := newSlowFirst()
	wrapped := apigw.WrapV2(f.store, h.serve, f.opts()...)
	first := goV2(bg, wrapped, v2req("POST", "/payments", "/payments", "u", "k", `{"a":1}`))
	<-h.started
	f.client.Reset()
	dup := v2req("POST", "/payments", "/payments", "u", "k", `{"a":2}`)
	dup.Headers["prefer"] = "wait=10"
	resp, err := wrapped(bg, dup)
	if err != nil {
		t.Fatal(err)
	}
	wantProblem(t, resp.StatusCode, resp.Headers, resp.Body, 422, apigw.ProblemKeyReused)
	if f.client.Count("GetItem") != 0 {
		t.Fatalf("%d reads for a mismatch", f.client.Count("GetItem"))
	}
	close(h.release)
	<-first
}
