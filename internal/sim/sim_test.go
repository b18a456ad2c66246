package sim_test

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/acme/idemcheckout/internal/sim"
	"github.com/acme/idemcheckout/pkg/idemddb"
	"github.com/acme/idemcheckout/pkg/idemddb/ddbmem"
	"github.com/anishathalye/porcupine"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"
)

var (
	seedFlag      = flag.String("seed", "", "replay this one schedule")
	schedulesFlag = flag.String("schedules", "10000", "how many schedules to run (seeds start..start+n-1)")
	startFlag     = flag.String("start", "1", "the first seed")
	traceFlag     = flag.Bool("trace", false, "log every request of the schedule (with -seed)")
	keepGoingFlag = flag.Bool("keep-going", false, "run the whole budget and count the schedules with violations instead of stopping at the first")
)

// The simulated deployment.
const (
	table       = "idempotency"
	nCallers    = 5
	nKeys       = 3
	runsPerCall = 2
	lease       = 2 * time.Second // Config.DefaultLease: callers have no deadline
	leaseMargin = 500 * time.Millisecond
	stuckMargin = time.Second // a dead owner's key must be free lease+this later
)

// Fault kinds injected between a caller and the engine.
const (
	fNone      = "none"
	fDelay     = "delay"
	fJump      = "clock-jump-past-lease"
	fRefuse4xx = "refused-throttle"
	fRefuse5xx = "refused-5xx"
	fLost      = "applied-reply-lost"
	fConflict  = "transaction-conflict"
	fDieBefore = "caller-died-before-send"
	fDieAfter  = "caller-died-after-apply"
)

// died is the panic that ends a caller's goroutine at an await point.
type died struct{}

// caller is one simulated client; its own PRNG decides its faults, so a
// schedule does not depend on how goroutines happen to interleave.
type caller struct {
	id   int
	rng  *rand.Rand
	dead bool
	// unsettled is the key of a write whose answer was ambiguous (lost, or
	// a 5xx): the store's next request must read that record back.
	unsettled string
	// last is when the caller last did something of its own (a request
	// answered, work, a sleep of the schedule's); time that passed since
	// then was a sleep inside the store.
	last time.Time
}

// storeSleepGrid quantizes the store's own sleeps: its conflict backoff
// draws jitter from math/rand/v2's global source (at most 160 ms), which no
// seed controls. A request made after such a sleep waits until the next
// multiple of the grid since the caller's last own step, so a replay
// makes the same requests at the same fake times.
const storeSleepGrid = 200 * time.Millisecond

// align moves c to the grid after a sleep inside the store.
func (c *caller) align() {
	if c.last.IsZero() {
		return
	}
	if el := time.Since(c.last); el > 0 {
		time.Sleep((el/storeSleepGrid+1)*storeSleepGrid - el)
	}
}

func (c *caller) mark() { c.last = time.Now() }

type callerKey struct{}

// gate serializes engine requests: every request waits at the gate, and the
// scheduler, once every goroutine of the bubble is blocked, lets one of the
// waiting requests through, chosen by the schedule's PRNG.
type gate struct {
	mu      sync.Mutex
	waiting []*waiter
	arrived chan struct{}
}

type waiter struct {
	id  int
	go_ chan struct{}
}

func (g *gate) pass(id int) {
	w := &waiter{id: id, go_: make(chan struct{})}
	g.mu.Lock()
	g.waiting = append(g.waiting, w)
	g.mu.Unlock()
	select {
	case g.arrived <- struct{}{}:
	default:
	}
	<-w.go_
}

// schedule drives the gate until done is closed.
func (g *gate) schedule(rng *rand.Rand, done <-chan struct{}) {
	for {
		synctest.Wait()
		g.mu.Lock()
		if len(g.waiting) == 0 {
			g.mu.Unlock()
			select {
			case <-g.arrived:
				continue
			case <-done:
				return
			}
		}
		sort.Slice(g.waiting, func(i, j int) bool { return g.waiting[i].id < g.waiting[j].id })
		i := rng.IntN(len(g.waiting))
		w := g.waiting[i]
		g.waiting = slices.Delete(g.waiting, i, i+1)
		g.mu.Unlock()
		close(w.go_)
	}
}

// faulty is the Client between the callers and the engine.
type faulty struct {
	violate func(format string, args ...any)
	// after, when set, runs after every request the engine applied, while
	// no other request can run (the payments schedule watches the orders).
	after  func()
	trace  func(format string, args ...any) // nil: no trace
	db     *ddbmem.Engine
	gate   *gate
	faults *sim.Tally
}

func (f *faulty) decide(c *caller, op string) string {
	r := c.rng.Float64()
	write := op != "GetItem" && op != "Scan"
	switch {
	case r < 0.70:
		return fNone
	case r < 0.78:
		return fDelay
	case r < 0.80:
		return fJump
	case r < 0.84:
		return fRefuse4xx
	case r < 0.87:
		return fRefuse5xx
	case r < 0.92:
		return fLost
	case r < 0.97:
		if write {
			return fConflict
		}
		return fNone
	case r < 0.985:
		return fDieBefore
	default:
		return fDieAfter
	}
}

// do runs one request through the faults.
func do[I, O any](ctx context.Context, f *faulty, op string, in I, send func(context.Context, I, ...func(*dynamodb.Options)) (O, error)) (O, error) {
	var zero O
	c, _ := ctx.Value(callerKey{}).(*caller)
	if c == nil { // the final probes: no faults
		out, err := send(ctx, in)
		if f.after != nil && err == nil && op != "GetItem" && op != "Scan" {
			f.after()
		}
		return out, err
	}
	if c.dead {
		panic(died{})
	}
	if k := c.unsettled; k != "" {
		c.unsettled = ""
		if g, ok := any(in).(*dynamodb.GetItemInput); !ok || recordKey(g.Key) != k || !aws.ToBool(g.ConsistentRead) {
			f.violate("caller %d: a write on %s had an ambiguous answer, but the store's next request was %s, not a strongly consistent read of it", c.id, k, op)
		}
	}
	c.align()
	defer c.mark()
	kind := f.decide(c, op)
	if p, ok := any(in).(*dynamodb.PutItemInput); ok && aws.ToString(p.TableName) == paymentsTable && c.rng.IntN(8) == 0 {
		kind = fJump // a slow provider: the authorization lands after the attempt's lease
	}
	f.faults.Add(kind)
	switch kind {
	case fDelay:
		time.Sleep(time.Duration(c.rng.IntN(300)) * time.Millisecond)
	case fJump:
		// The request is on the wire: it was sent while ctx was live and
		// lands after the jump, even if ctx ended meanwhile.
		time.Sleep(lease + time.Duration(c.rng.IntN(2000))*time.Millisecond)
		ctx = context.WithoutCancel(ctx)
	}
	f.gate.pass(c.id)
	if f.trace != nil && kind != fNone && kind != fDelay && kind != fJump && kind != fLost && kind != fDieAfter {
		f.trace("caller %d %s %s %s (not applied)", c.id, op, describe(in), kind)
	}
	switch kind {
	case fDieBefore:
		c.dead = true
		panic(died{})
	case fRefuse4xx:
		return zero, &smithy.GenericAPIError{Code: "ThrottlingException", Message: "simulated throttle", Fault: smithy.FaultClient}
	case fRefuse5xx:
		return zero, &smithy.GenericAPIError{Code: "InternalServerError", Message: "simulated 5xx before applying", Fault: smithy.FaultServer}
	case fConflict:
		if tx, ok := any(in).(*dynamodb.TransactWriteItemsInput); ok {
			reasons := make([]types.CancellationReason, len(tx.TransactItems))
			for i := range reasons {
				reasons[i].Code = aws.String("None")
			}
			// The record's entry (the last) met another request.
			reasons[len(reasons)-1] = types.CancellationReason{Code: aws.String("TransactionConflict"), Message: aws.String("Transaction is ongoing for the item")}
			return zero, &types.TransactionCanceledException{Message: aws.String("Transaction cancelled [TransactionConflict]"), CancellationReasons: reasons}
		}
		return zero, &types.TransactionConflictException{Message: aws.String("Transaction is ongoing for the item")}
	}
	if kind == fRefuse5xx && op != "GetItem" && op != "Scan" {
		c.unsettled = writeKey(in)
	}
	out, err := send(ctx, in)
	if f.after != nil && err == nil && op != "GetItem" && op != "Scan" {
		f.after()
	}
	if kind == fLost && op != "GetItem" && op != "Scan" {
		c.unsettled = writeKey(in)
	}
	if f.trace != nil {
		f.trace("caller %d %s %s %s: %v", c.id, op, describe(in), kind, err)
	}
	switch kind {
	case fLost:
		return zero, errors.New("simulated transport error: reply lost")
	case fDieAfter:
		c.dead = true
		panic(died{})
	}
	return out, err
}

func (f *faulty) PutItem(ctx context.Context, in *dynamodb.PutItemInput, _ ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	return do(ctx, f, "PutItem", in, f.db.PutItem)
}
func (f *faulty) GetItem(ctx context.Context, in *dynamodb.GetItemInput, _ ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error) {
	return do(ctx, f, "GetItem", in, f.db.GetItem)
}
func (f *faulty) UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, _ ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error) {
	return do(ctx, f, "UpdateItem", in, f.db.UpdateItem)
}
func (f *faulty) DeleteItem(ctx context.Context, in *dynamodb.DeleteItemInput, _ ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error) {
	return do(ctx, f, "DeleteItem", in, f.db.DeleteItem)
}
func (f *faulty) Scan(ctx context.Context, in *dynamodb.ScanInput, _ ...func(*dynamodb.Options)) (*dynamodb.ScanOutput, error) {
	return do(ctx, f, "Scan", in, f.db.Scan)
}
func (f *faulty) TransactWriteItems(ctx context.Context, in *dynamodb.TransactWriteItemsInput, _ ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error) {
	return do(ctx, f, "TransactWriteItems", in, f.db.TransactWriteItems)
}

// discard drops the store's warnings (releases that failed under faults).
var discard = slog.New(slog.DiscardHandler)

func recordKey(key map[string]types.AttributeValue) string {
	if v, ok := key["id"].(*types.AttributeValueMemberS); ok {
		return v.Value
	}
	return ""
}

// writeKey is the key of the idempotency record a write of the store
// touches (a transaction's record entry is its last).
func writeKey(in any) string {
	switch x := in.(type) {
	case *dynamodb.PutItemInput:
		return recordKey(x.Item)
	case *dynamodb.UpdateItemInput:
		return recordKey(x.Key)
	case *dynamodb.DeleteItemInput:
		return recordKey(x.Key)
	case *dynamodb.TransactWriteItemsInput:
		if n := len(x.TransactItems); n > 0 && x.TransactItems[n-1].Update != nil {
			return recordKey(x.TransactItems[n-1].Update.Key)
		}
	}
	return ""
}

// describe names the table and key (or first attribute values) of a
// request, for traces.
func describe(in any) string {
	key := func(t *string, m map[string]types.AttributeValue) string {
		var parts []string
		for _, k := range []string{"id", "order_id", "pk", "receipt_id"} {
			if v, ok := m[k].(*types.AttributeValueMemberS); ok {
				parts = append(parts, strings.ReplaceAll(v.Value, "\n", "|"))
			}
		}
		return aws.ToString(t) + "[" + strings.Join(parts, ",") + "]"
	}
	switch x := in.(type) {
	case *dynamodb.PutItemInput:
		return key(x.TableName, x.Item)
	case *dynamodb.GetItemInput:
		return key(x.TableName, x.Key)
	case *dynamodb.UpdateItemInput:
		return key(x.TableName, x.Key) + " " + aws.ToString(x.UpdateExpression)
	case *dynamodb.DeleteItemInput:
		return key(x.TableName, x.Key)
	case *dynamodb.ScanInput:
		return aws.ToString(x.TableName)
	case *dynamodb.TransactWriteItemsInput:
		var parts []string
		for _, it := range x.TransactItems {
			switch {
			case it.Put != nil:
				parts = append(parts, "Put "+key(it.Put.TableName, it.Put.Item))
			case it.Update != nil:
				parts = append(parts, "Update "+key(it.Update.TableName, it.Update.Key))
			case it.Delete != nil:
				parts = append(parts, "Delete "+key(it.Delete.TableName, it.Delete.Key))
			case it.ConditionCheck != nil:
				parts = append(parts, "Check "+key(it.ConditionCheck.TableName, it.ConditionCheck.Key))
			}
		}
		return "{" + strings.Join(parts, "; ") + "}"
	}
	return ""
}

// execution is one run of the work.
type execution struct {
	key, data  string
	caller     int
	start      time.Time
	leaseUntil time.Time
	failed     bool // the work returned an error, so the store released the key
}

// Outcome kinds of one Run, for the history.
const (
	oFresh   = "fresh"
	oReplay  = "replay"
	oBusy    = "in-progress"
	oUnknown = "unknown" // an error after which the work's result may have committed
	oDied    = "died"
)

type runOutput struct {
	kind, data string
	cand       string // the data this call's work would commit
}

// world is one schedule's state.
type world struct {
	start      time.Time
	mu         sync.Mutex
	execs      []*execution
	history    []porcupine.Operation
	successes  map[string][]string // key -> data of every successful Run
	violations []string
	outcomes   sim.Tally
}

func (w *world) violate(format string, args ...any) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.violations = append(w.violations, fmt.Sprintf(format, args...))
}

func (w *world) ts(t time.Time) int64 { return int64(t.Sub(w.start)) * 2 }

func keyName(i int) string { return fmt.Sprintf("key-%d", i) }

// usesWrites: even keys complete with a write added by the work (a
// TransactWriteItems), odd ones with the single UpdateItem.
func usesWrites(key string) bool { return strings.HasSuffix(key, "0") || strings.HasSuffix(key, "2") }

func effectID(key, data string) string { return "fx#" + key + "#" + data }

// work is the caller's work: it records the execution, checks that no live
// lease of another execution holds the key, takes some fake time, and adds
// its effect.
func (w *world) work(c *caller, key, data string) func(ctx context.Context, cl *idemddb.Claim) ([]byte, error) {
	return func(ctx context.Context, cl *idemddb.Claim) ([]byte, error) {
		now := time.Now()
		c.mark()
		e := &execution{key: key, data: data, caller: c.id, start: now, leaseUntil: cl.LeaseUntil}
		w.mu.Lock()
		for _, o := range w.execs {
			if o.key == key && !o.failed && now.Before(o.leaseUntil) {
				w.violations = append(w.violations, fmt.Sprintf(
					"work ran twice while a lease held: %s by caller %d at %v (lease until %v), again by caller %d at %v",
					key, o.caller, o.start.Sub(w.start), o.leaseUntil.Sub(w.start), c.id, now.Sub(w.start)))
			}
		}
		w.execs = append(w.execs, e)
		w.mu.Unlock()
		fail := c.id < nCallers && c.rng.Float64() < 0.05 // the final probe does not fail
		d := time.Duration(c.rng.IntN(400)) * time.Millisecond
		timer := time.NewTimer(d)
		defer timer.Stop()
		select {
		case <-ctx.Done():
			fail = true
		case <-timer.C:
		}
		c.mark()
		if fail {
			w.mu.Lock()
			e.failed = true
			w.mu.Unlock()
			return nil, errors.New("work failed")
		}
		if usesWrites(key) {
			cl.AddWrites(types.TransactWriteItem{Put: &types.Put{TableName: aws.String(table), Item: map[string]types.AttributeValue{
				"id": &types.AttributeValueMemberS{Value: effectID(key, data)}, "data": &types.AttributeValueMemberS{Value: data},
			}}})
		}
		return []byte(data), nil
	}
}

// call makes one Run and records it in the history.
func (w *world) call(ctx context.Context, s *idemddb.Store, c *caller, clientID int, key, data string, wait time.Duration) (out runOutput, err error) {
	call := time.Now()
	c.mark()
	out.cand = data
	defer func() {
		ret := w.ts(time.Now()) + 1
		if r := recover(); r != nil {
			if _, ok := r.(died); !ok {
				panic(r)
			}
			out.kind = oDied
			ret = math.MaxInt64 // unknown return time (etcd's robustness tests)
			err = errors.New("caller died")
		}
		w.mu.Lock()
		w.history = append(w.history, porcupine.Operation{ClientId: clientID, Input: key, Call: w.ts(call), Output: out, Return: ret})
		if out.kind == oFresh || out.kind == oReplay {
			w.successes[key] = append(w.successes[key], out.data)
		}
		w.mu.Unlock()
		w.outcomes.Add(out.kind)
	}()
	res, err := s.Run(ctx, idemddb.Request{Key: key, Fingerprint: []byte("fp-" + key), Wait: wait}, w.work(c, key, data))
	switch {
	case err == nil && res.Replayed:
		out.kind, out.data = oReplay, string(res.Data)
	case err == nil:
		out.kind, out.data = oFresh, string(res.Data)
	case errors.Is(err, idemddb.ErrInProgress):
		out.kind = oBusy
	default:
		out.kind = oUnknown
	}
	return out, err
}

// model: a key is absent or done(result); a call with an unknown outcome
// may or may not have committed its own result.
var model = porcupine.NondeterministicModel{
	Partition: func(h []porcupine.Operation) [][]porcupine.Operation {
		by := map[string][]porcupine.Operation{}
		var keys []string
		for _, op := range h {
			k := op.Input.(string)
			if _, ok := by[k]; !ok {
				keys = append(keys, k)
			}
			by[k] = append(by[k], op)
		}
		sort.Strings(keys)
		out := make([][]porcupine.Operation, len(keys))
		for i, k := range keys {
			out[i] = by[k]
		}
		return out
	},
	Init: func() []any { return []any{""} },
	Step: func(state, _, output any) []any {
		s, o := state.(string), output.(runOutput)
		switch o.kind {
		case oFresh:
			if s == "" {
				return []any{o.data}
			}
		case oReplay:
			if s != "" && s == o.data {
				return []any{s}
			}
		case oBusy:
			if s == "" {
				return []any{s}
			}
		default: // unknown, died
			if s == "" {
				return []any{s, o.cand}
			}
			return []any{s}
		}
		return nil
	},
	DescribeOperation: func(in, out any) string {
		o := out.(runOutput)
		return fmt.Sprintf("%s -> %s %s (own %s)", in, o.kind, o.data, o.cand)
	},
}

// runSchedule runs one seeded schedule in a synctest bubble and returns
// its violations.
func runSchedule(t *testing.T, seed uint64, faults *sim.Tally, outcomes *sim.Tally) []string {
	var violations []string
	synctest.Test(t, func(t *testing.T) {
		w := &world{start: time.Now(), successes: map[string][]string{}}
		db := ddbmem.New()
		if err := db.CreateIdempotencyTable(table); err != nil {
			t.Fatal(err)
		}
		g := &gate{arrived: make(chan struct{}, 1)}
		ft := &faulty{db: db, gate: g, faults: faults, violate: w.violate}
		if *traceFlag {
			ft.trace = func(format string, args ...any) {
				t.Logf("%8v "+format, append([]any{time.Since(w.start)}, args...)...)
			}
		}
		cfg := idemddb.Config{Table: table, Retention: time.Hour, DefaultLease: lease, LeaseMargin: leaseMargin,
			Logger: discard}
		store, err := idemddb.New(ft, cfg)
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		done := make(chan struct{})
		for id := range nCallers {
			c := &caller{id: id, rng: rand.New(rand.NewPCG(seed, uint64(id)))}
			wg.Add(1)
			go func() {
				defer wg.Done()
				ctx := context.WithValue(context.Background(), callerKey{}, c)
				for r := range runsPerCall {
					key := keyName(c.rng.IntN(nKeys))
					var wait time.Duration
					if c.rng.IntN(3) == 0 {
						wait = time.Second
					}
					for attempt := range 4 {
						data := fmt.Sprintf("r%d.%d.%d", c.id, r, attempt)
						out, err := w.call(ctx, store, c, c.id, key, data, wait)
						if out.kind == oDied {
							return
						}
						if err == nil {
							break
						}
						var busy *idemddb.InProgressError
						if errors.As(err, &busy) {
							time.Sleep(min(busy.RetryAfter, 3*time.Second) + 10*time.Millisecond)
						} else {
							time.Sleep(200 * time.Millisecond)
						}
					}
				}
			}()
		}
		go func() { wg.Wait(); close(done) }()
		g.schedule(rand.New(rand.NewPCG(seed, math.MaxUint64)), done)

		// Every owner is gone: after a lease and a margin no key may be
		// stuck. A probe without faults must get a result or run the work.
		time.Sleep(lease + stuckMargin)
		probe := &caller{id: nCallers, rng: rand.New(rand.NewPCG(seed, nCallers))}
		for k := range nKeys {
			key := keyName(k)
			out, err := w.call(context.Background(), store, probe, nCallers, key, "probe."+key, 0)
			if err != nil {
				w.violate("%s stuck %v after every owner ended: %v (%s)", key, lease+stuckMargin, err, out.kind)
			}
		}
		w.check(db, store)
		outcomes.Merge(&w.outcomes)
		violations = w.violations
	})
	return violations
}

// check verifies the end state and the history.
func (w *world) check(db *ddbmem.Engine, store *idemddb.Store) {
	items, err := db.Items(table)
	if err != nil {
		w.violate("scan: %v", err)
		return
	}
	records := map[string]map[string]types.AttributeValue{}
	effects := map[string][]string{}
	for _, it := range items {
		id := it["id"].(*types.AttributeValueMemberS).Value
		if rest, ok := strings.CutPrefix(id, "fx#"); ok {
			key, data, _ := strings.Cut(rest, "#")
			effects[key] = append(effects[key], data)
			continue
		}
		records[id] = it
	}
	for k := range nKeys {
		key := keyName(k)
		rec := records[key]
		var committed []byte
		completed := false
		if rec != nil {
			rd, err := store.DecodeRecord(rec)
			if err != nil {
				w.violate("%s: record does not decode: %v", key, err)
				continue
			}
			completed = rd.Status == idemddb.StatusCompleted
			committed = rd.Result
		}
		for _, s := range w.successes[key] {
			if !completed || !bytes.Equal([]byte(s), committed) {
				w.violate("%s: a Run returned %q but the record holds %q (completed %v)", key, s, committed, completed)
			}
		}
		if usesWrites(key) {
			switch {
			case len(effects[key]) > 1:
				w.violate("%s: the work's write committed %d times: %v", key, len(effects[key]), effects[key])
			case completed && (len(effects[key]) != 1 || effects[key][0] != string(committed)):
				w.violate("%s: record completed with %q but the writes are %v", key, committed, effects[key])
			case !completed && len(effects[key]) > 0:
				w.violate("%s: writes %v committed without the record", key, effects[key])
			}
		}
	}
	res, info := porcupine.CheckOperationsVerbose(model.ToModel(), w.history, 5*time.Second)
	switch res {
	case porcupine.Illegal:
		_ = info
		var lines []string
		for _, op := range w.history {
			lines = append(lines, model.DescribeOperation(op.Input, op.Output))
		}
		w.violate("history not linearizable: %s", strings.Join(lines, "; "))
	case porcupine.Unknown:
		w.outcomes.Add("linearizability-check-timeout")
	}
}

// TestSim runs the budget of schedules (-schedules, from -start), or one
// (-seed), and fails on the first schedule with a violation, printing the
// seed that replays it.
func TestSim(t *testing.T) {
	start, n := uint64(0), uint64(0)
	if *seedFlag != "" {
		s, err := sim.ParseCount("seed", *seedFlag)
		if err != nil {
			t.Fatal(err)
		}
		start, n = s, 1
	} else {
		var err error
		if start, err = sim.ParseCount("start", *startFlag); err != nil {
			t.Fatal(err)
		}
		if n, err = sim.ParseCount("schedules", *schedulesFlag); err != nil {
			t.Fatal(err)
		}
	}
	var faults, outcomes sim.Tally
	began := time.Now()
	ran := uint64(0)
	failed := 0
	for seed := start; seed < start+n; seed++ {
		v := runSchedule(t, seed, &faults, &outcomes)
		ran++
		if len(v) > 0 {
			failed++
			if failed <= 5 {
				t.Errorf("seed %d: %d violation(s) after %d schedules in %v:\n  %s\nreplay: go test ./internal/sim -run 'TestSim$' -count=1 -v -args -seed=%d",
					seed, len(v), ran, time.Since(began).Round(time.Millisecond), strings.Join(v, "\n  "), seed)
			}
			if !*keepGoingFlag {
				break
			}
		}
	}
	el := time.Since(began)
	t.Logf("schedules: %d in %v (%.0f/s), %d with violations", ran, el.Round(time.Millisecond), float64(ran)/el.Seconds(), failed)
	t.Logf("faults injected: %s", faults.String())
	t.Logf("outcomes: %s", outcomes.String())
	if faults.Get(fConflict) == 0 && ran >= 100 {
		t.Errorf("no TransactionConflict injected in %d schedules: the fault mix is broken", ran)
	}
}
