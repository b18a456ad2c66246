package idemddb_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/acme/idemcheckout/ddblocal/ddbtest"
	"github.com/acme/idemcheckout/pkg/idemddb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

func TestOversizeResultIsNotRetained(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, moto)
	s := e.store(t, idemddb.Config{MaxResultBytes: 2048})
	big := make([]byte, 8192)
	_, _ = rand.Read(big) // incompressible
	runs := 0
	work := func(context.Context, *idemddb.Claim) ([]byte, error) { runs++; return big, nil }
	req := idemddb.Request{Key: "big", Fingerprint: []byte("p")}
	res, err := s.Run(ctx, req, work)
	if err != nil || res.Retained || !bytes.Equal(res.Data, big) {
		t.Fatalf("first call: retained=%v err=%v", res.Retained, err)
	}
	item := e.getItem(t, "big")
	if attrS(item, "status") != idemddb.StatusCompleted || item["result"] != nil || attrN(item, "size") != 8192 {
		t.Fatalf("record: status %q, result present %v, size %d", attrS(item, "status"), item["result"] != nil, attrN(item, "size"))
	}
	_, err = s.Run(ctx, req, work)
	var tl *idemddb.ResultTooLargeError
	if !errors.As(err, &tl) || !errors.Is(err, idemddb.ErrResultTooLarge) || tl.Size != 8192 || tl.Limit != 2048 {
		t.Fatalf("replay err = %v", err)
	}
	if runs != 1 {
		t.Fatalf("work ran %d times; an oversize result must not make it run again", runs)
	}
}

func TestLargeResultIsCompressed(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, moto)
	s := e.store(t, idemddb.Config{})
	data := []byte(strings.Repeat(`{"sku":"SKU-1","quantity":2,"unit_price":250000},`, 2000)) // ~100 KB
	req := idemddb.Request{Key: "zip", Fingerprint: []byte("p")}
	if _, err := s.Run(ctx, req, func(context.Context, *idemddb.Claim) ([]byte, error) { return data, nil }); err != nil {
		t.Fatal(err)
	}
	stored := e.getItem(t, "zip")["result"].(*types.AttributeValueMemberB).Value
	if len(stored) >= len(data)/10 {
		t.Fatalf("stored %d bytes for %d: not compressed", len(stored), len(data))
	}
	res, err := s.Run(ctx, req, func(context.Context, *idemddb.Claim) ([]byte, error) { return nil, errors.New("ran again") })
	if err != nil || !bytes.Equal(res.Data, data) {
		t.Fatalf("replay differs: %d bytes, err %v", len(res.Data), err)
	}
	// A small result is stored as is.
	if _, err := s.Run(ctx, idemddb.Request{Key: "small"}, ok); err != nil {
		t.Fatal(err)
	}
	if got := e.getItem(t, "small")["result"].(*types.AttributeValueMemberB).Value; string(got) != `{"ok":true}` {
		t.Fatalf("small result stored as %q", got)
	}
}

// pastDeadline is a context whose deadline has passed but which is not done,
// as a Lambda context can be when the function is already over time.
type pastDeadline struct {
	context.Context
	dl time.Time
}

func (p pastDeadline) Deadline() (time.Time, bool) { return p.dl, true }

func TestLeaseFromDeadline(t *testing.T) {
	e := newEnv(t, moto)
	clk := newClock()
	s := e.store(t, idemddb.Config{Now: clk.Now, LeaseMargin: 2 * time.Second, DefaultLease: 30 * time.Second, MaxLease: time.Minute})
	deadlineCtx, cancel := context.WithDeadline(context.Background(), clk.Now().Add(10*time.Second))
	defer cancel()
	longCtx, cancel2 := context.WithDeadline(context.Background(), clk.Now().Add(time.Hour))
	defer cancel2()
	cases := []struct {
		name string
		ctx  context.Context
		want time.Duration
	}{
		{"deadline plus margin", deadlineCtx, 12 * time.Second},
		{"no deadline", context.Background(), 30 * time.Second},
		{"zero deadline", pastDeadline{context.Background(), time.Time{}}, 30 * time.Second},
		{"passed deadline", pastDeadline{context.Background(), clk.Now().Add(-time.Minute)}, 2 * time.Second},
		{"capped", longCtx, time.Minute},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, _, err := s.Begin(tc.ctx, idemddb.Request{Key: tc.name})
			if err != nil {
				t.Fatal(err)
			}
			if got := c.LeaseUntil.Sub(clk.Now()); got != tc.want {
				t.Fatalf("lease = %v, want %v", got, tc.want)
			}
			if stored := attrN(e.getItem(t, tc.name), "lease_until"); stored != c.LeaseUntil.UnixMilli() {
				t.Fatalf("stored lease %d, claim says %d", stored, c.LeaseUntil.UnixMilli())
			}
		})
	}
	// A claim made with a passed deadline is not stuck: once its short
	// lease passes, the same request takes over.
	clk.Advance(3 * time.Second)
	c, _, err := s.Begin(context.Background(), idemddb.Request{Key: "passed deadline"})
	if err != nil || c == nil || !c.TakenOver {
		t.Fatalf("takeover after a passed-deadline claim: %+v %v", c, err)
	}
}

// TestWorkContextBoundedByLease: without an invocation deadline the work
// still gets one, a margin before its lease ends.
func TestWorkContextBoundedByLease(t *testing.T) {
	e := newEnv(t, moto)
	s := e.store(t, idemddb.Config{DefaultLease: 20 * time.Second, LeaseMargin: 2 * time.Second})
	_, err := s.Run(context.Background(), idemddb.Request{Key: "wctx"}, func(ctx context.Context, c *idemddb.Claim) ([]byte, error) {
		dl, ok := ctx.Deadline()
		if !ok || !dl.Equal(c.LeaseUntil.Add(-2*time.Second)) {
			return nil, errors.New("work context deadline is not lease minus margin")
		}
		return nil, nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestWorkErrorReleasesAndRetryRuns(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, moto)
	s := e.store(t, idemddb.Config{})
	req := idemddb.Request{Key: "err", Fingerprint: []byte("p")}
	runs := 0
	_, err := s.Run(ctx, req, func(context.Context, *idemddb.Claim) ([]byte, error) { runs++; return nil, errWork })
	if err != errWork { //nolint:errorlint // the contract is "unchanged"
		t.Fatalf("err = %v, want the work's error unchanged", err)
	}
	if e.getItem(t, "err") != nil {
		t.Fatal("record not released after the work's error")
	}
	res, err := s.Run(ctx, req, func(context.Context, *idemddb.Claim) ([]byte, error) { runs++; return []byte("2nd"), nil })
	if err != nil || res.Replayed || runs != 2 {
		t.Fatalf("retry: %+v %v runs=%d", res, err, runs)
	}
}

func TestPanicReleasesAndPropagates(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, moto)
	s := e.store(t, idemddb.Config{})
	req := idemddb.Request{Key: "panic"}
	func() {
		defer func() {
			if r := recover(); r != "boom" {
				t.Fatalf("recovered %v, want the work's panic", r)
			}
		}()
		_, _ = s.Run(ctx, req, func(context.Context, *idemddb.Claim) ([]byte, error) { panic("boom") })
	}()
	if e.getItem(t, "panic") != nil {
		t.Fatal("record not released after a panic")
	}
}

func TestCacheHitMakesZeroRequests(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, moto)
	clk := newClock()
	cache := idemddb.NewCache(2, 0)
	s := e.store(t, idemddb.Config{Now: clk.Now, Cache: cache})
	req := idemddb.Request{Key: "hot", Fingerprint: []byte("p")}
	if _, err := s.Run(ctx, req, ok); err != nil {
		t.Fatal(err)
	}
	e.client.Reset()
	for range 3 {
		res, err := s.Run(ctx, req, func(context.Context, *idemddb.Claim) ([]byte, error) { return nil, errors.New("ran") })
		if err != nil || !res.Replayed || string(res.Data) != `{"ok":true}` {
			t.Fatalf("cached replay: %+v %v", res, err)
		}
	}
	if _, err := s.Run(ctx, idemddb.Request{Key: "hot", Fingerprint: []byte("other")}, ok); !errors.Is(err, idemddb.ErrMismatch) {
		t.Fatalf("cached mismatch: %v", err)
	}
	if n := e.client.Total(); n != 0 {
		t.Fatalf("cache hits made %d requests", n)
	}
	// A second store (another instance) fills its cache from the replay.
	cache2 := idemddb.NewCache(2, 0)
	s2 := e.store(t, idemddb.Config{Now: clk.Now, Cache: cache2})
	if res, err := s2.Run(ctx, req, ok); err != nil || !res.Replayed || cache2.Len() != 1 {
		t.Fatalf("replay into cache: %+v %v len=%d", res, err, cache2.Len())
	}
	// Bounded: the least recently used entry goes.
	for _, k := range []string{"a", "b", "c"} {
		if _, err := s.Run(ctx, idemddb.Request{Key: k}, ok); err != nil {
			t.Fatal(err)
		}
	}
	if cache.Len() != 2 {
		t.Fatalf("cache holds %d entries, bound is 2", cache.Len())
	}
	// Expiry-aware: past retention the entry is not served.
	e.client.Reset()
	clk.Advance(idemddb.DefaultRetention)
	res, err := s.Run(ctx, idemddb.Request{Key: "c"}, func(context.Context, *idemddb.Claim) ([]byte, error) { return []byte("again"), nil })
	if err != nil || res.Replayed || e.client.Total() == 0 {
		t.Fatalf("expired cache entry served: %+v %v", res, err)
	}
}

func TestStoreUnavailable(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, moto)
	s := e.store(t, idemddb.Config{})
	e.client.Before(func(string, any) error { return errors.New("throttled") })
	_, err := s.Run(ctx, idemddb.Request{Key: "down"}, func(context.Context, *idemddb.Claim) ([]byte, error) {
		t.Error("work ran without a claim")
		return nil, nil
	})
	var se *idemddb.StoreError
	if !errors.As(err, &se) || se.Op != "PutItem" || !errors.Is(err, idemddb.ErrUnavailable) {
		t.Fatalf("err = %v", err)
	}

	// A real engine that has stopped.
	if e.engine.Name == "external" {
		t.Skip("AWS_ENDPOINT_URL_DYNAMODB is set; cannot stop that engine")
	}
	gone, err := ddbtest.StartMoto()
	if err != nil {
		t.Fatal(err)
	}
	c := gone.Client()
	table := ddbtest.NewTable(t, c, "id")
	gone.Stop()
	s2, err := idemddb.New(c, idemddb.Config{Table: table})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s2.Run(ctx, idemddb.Request{Key: "k"}, ok); !errors.Is(err, idemddb.ErrUnavailable) {
		t.Fatalf("stopped engine: %v", err)
	}
}

func TestDoTyped(t *testing.T) {
	type order struct {
		ID     string `json:"id"`
		Amount int64  `json:"amount"`
	}
	ctx := context.Background()
	e := newEnv(t, moto)
	s := e.store(t, idemddb.Config{})
	work := func(ctx context.Context, c *idemddb.Claim) (order, error) {
		return order{ID: "ord_" + c.ResourceID, Amount: 500000}, nil
	}
	first, replayed, err := idemddb.Do(ctx, s, "typed", []byte("p"), work)
	if err != nil || replayed || first.Amount != 500000 {
		t.Fatalf("first: %+v %v %v", first, replayed, err)
	}
	again, replayed, err := idemddb.Do(ctx, s, "typed", []byte("p"), work)
	if err != nil || !replayed || again != first {
		t.Fatalf("replay: %+v %v %v, want %+v", again, replayed, err, first)
	}
	_, _, err = idemddb.Do(ctx, s, "typed-bad", nil, func(context.Context, *idemddb.Claim) (chan int, error) { return make(chan int), nil })
	if err == nil || e.getItem(t, "typed-bad") != nil {
		t.Fatalf("unencodable result: err=%v (must error and release)", err)
	}
}

// TestShortRetention: a retention shorter than the default lease cap still
// works; leases are capped at half of it, so a record cannot expire while
// its lease is live.
func TestShortRetention(t *testing.T) {
	e := newEnv(t, moto)
	clk := newClock()
	s := e.store(t, idemddb.Config{Now: clk.Now, Retention: 2 * time.Minute})
	long, cancel := context.WithDeadline(context.Background(), clk.Now().Add(10*time.Minute))
	defer cancel()
	c, _, err := s.Begin(long, idemddb.Request{Key: "short"})
	if err != nil {
		t.Fatal(err)
	}
	if got := c.LeaseUntil.Sub(clk.Now()); got != time.Minute {
		t.Fatalf("lease = %v, want half the retention", got)
	}
	if _, err := idemddb.New(e.client, idemddb.Config{Table: e.table, Retention: 59 * time.Second}); err == nil {
		t.Fatal("New accepted a retention under MinRetention")
	}
}
