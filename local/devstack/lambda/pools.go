// Package lambda runs the template's functions locally, as Lambda would:
// each function built as a Linux bootstrap (build.go) and served by a pool
// of AWS Lambda Runtime Interface Emulator processes (lambda.go), each
// serving one invoke at a time, with the template's timeout and
// environment, replaced when it crashes or times out; hot reload rebuilds
// an edited function and swaps its pool (watch.go); the Lambda Invoke API
// serves the pools on a loopback port, like `sam local start-lambda`
// (lambdaapi.go). Invoker is the interface every other room of the local
// stack invokes through. It does not read template.yaml, map HTTP
// requests to events or poll event sources: the gateway and eventsource
// packages do, and local/devstack wires them together.
//
// Linux only: the functions are Linux binaries run directly on the host.
package lambda

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/acme/idemcheckout/internal/samtemplate"
)

// Config configures the functions' builds and emulator pools.
type Config struct {
	// Root is the module root, where the functions build.
	Root string
	// BuildDir holds the builds: BuildDir/<function>/<generation>/bootstrap.
	BuildDir string
	// CacheDir holds the emulator binary.
	CacheDir string
	// Instances is the number of emulator instances per function.
	Instances int
	// Region and Engine (the DynamoDB, Streams and SQS endpoint) are what
	// the functions' environment names.
	Region, Engine string
	// Output receives the functions' output, one prefixed line at a time.
	Output io.Writer
	// Logf receives the pools' log lines.
	Logf func(string, ...any)
}

// buildDir is where generation gen of a function's bootstrap is built: a
// new directory per rebuild, so a running bootstrap is never overwritten.
func (c Config) buildDir(id string, gen int) string {
	return filepath.Join(c.BuildDir, id, strconv.Itoa(gen))
}

// Pools are the emulator pools of the running functions; *Pools is an
// Invoker.
type Pools struct {
	cfg     Config
	builds  Builds
	fns     []samtemplate.Function
	pools   map[string]*atomic.Pointer[pool]
	watcher *watcher

	closing atomic.Bool
	bg      sync.WaitGroup // the watcher, retiring pools, async invokes
	bgctx   context.Context
	cancel  context.CancelFunc
}

// Start starts cfg.Instances emulators for each of fns with the bootstraps
// of b. On error the pools started so far are closed.
func Start(ctx context.Context, cfg Config, fns []samtemplate.Function, b Builds) (*Pools, error) {
	ps := &Pools{cfg: cfg, builds: b, fns: fns, pools: map[string]*atomic.Pointer[pool]{}}
	ps.bgctx, ps.cancel = context.WithCancel(context.Background())
	for _, f := range fns {
		p, err := ps.newPool(ctx, f, b.Bootstraps[f.ID], 0)
		if err != nil {
			ps.Close()
			return nil, err
		}
		ptr := &atomic.Pointer[pool]{}
		ptr.Store(p)
		ps.pools[f.ID] = ptr
		cfg.Logf("function %s: %d emulator instances, timeout %s, memory %d MB", f.ID, cfg.Instances, f.TimeoutOrDefault(), f.MemoryOrDefault())
	}
	return ps, nil
}

// newPool starts a function's emulators; their numbers (in the output's
// [Function#n] prefixes) continue after firstID.
func (ps *Pools) newPool(ctx context.Context, f samtemplate.Function, bootstrap string, firstID int) (*pool, error) {
	c := ps.cfg
	return newPool(ctx, &f, ps.builds.RIE, bootstrap, functionEnv(&f, c.Region, c.Engine), c.Instances, firstID, c.Output, c.Logf)
}

// Invoke runs payload through function id's current emulator pool. A pool
// retired by a rebuild while the call was on its way hands over to the new
// one.
func (ps *Pools) Invoke(ctx context.Context, id string, payload []byte) ([]byte, error) {
	return ps.invoke(ctx, id, payload, nil)
}

// InvokeWithTail is Invoke that also returns the invocation's log tail:
// its last 4 KB of output, START to REPORT, as Lambda returns it for
// X-Amz-Log-Type: Tail. It waits (bounded) for the REPORT line, which the
// emulator writes after its answer, so the invocation's output is
// complete when it returns.
func (ps *Pools) InvokeWithTail(ctx context.Context, id string, payload []byte) (out, tail []byte, err error) {
	out, err = ps.invoke(ctx, id, payload, &tail)
	return out, tail, err
}

// invoke is Invoke; with tail non-nil, *tail gets the invocation's log
// tail (X-Amz-Log-Type: Tail).
func (ps *Pools) invoke(ctx context.Context, id string, payload []byte, tail *[]byte) ([]byte, error) {
	ptr := ps.pools[id]
	if ptr == nil {
		return nil, fmt.Errorf("function %s is not running", id)
	}
	for {
		out, err := ptr.Load().invoke(ctx, payload, tail)
		if !errors.Is(err, errRetired) || ps.closing.Load() {
			return out, err
		}
	}
}

// names lists the functions the pools serve, by logical id.
func (ps *Pools) names() []string {
	out := make([]string, len(ps.fns))
	for i, f := range ps.fns {
		out[i] = f.ID
	}
	return out
}

// runs reports whether the pools serve function id.
func (ps *Pools) runs(id string) bool { return ps.pools[id] != nil }

// Restarts reports how many emulator instances of a function were replaced
// (after a crash or timeout) in its current pool.
func (ps *Pools) Restarts(function string) int {
	if p := ps.pools[function]; p != nil {
		return p.Load().restartCount()
	}
	return 0
}

// KillRunning kills the emulator instances of function that are serving
// an invocation right now, as the crash of their execution environment
// would (out of memory, a host failure): each of those invocations fails
// as a crash, and the pool starts a fresh instance in its place. It
// returns how many it killed. For fault-injection tests.
func (ps *Pools) KillRunning(function string) int {
	ptr := ps.pools[function]
	if ptr == nil {
		return 0
	}
	return ptr.Load().killBusy()
}

// Close stops the watcher and the background invokes, then every emulator
// and its runtime process tree. It is nil-safe and safe to call more
// than once.
func (ps *Pools) Close() {
	if ps == nil {
		return
	}
	ps.closing.Store(true)
	ps.cancel()
	ps.bg.Wait()
	var wg sync.WaitGroup
	for _, p := range ps.pools {
		wg.Add(1)
		go func() { defer wg.Done(); p.Load().close() }()
	}
	wg.Wait()
}

// functionError reports whether out is a Lambda error payload
// ({"errorType":..., "errorMessage":...}) rather than a result.
func functionError(out []byte) (string, bool) {
	var e struct {
		StatusCode   *int    `json:"statusCode"`
		ErrorType    *string `json:"errorType"`
		ErrorMessage *string `json:"errorMessage"`
	}
	if json.Unmarshal(out, &e) != nil || e.StatusCode != nil || e.ErrorMessage == nil {
		return "", false
	}
	t := ""
	if e.ErrorType != nil {
		t = *e.ErrorType
	}
	return t + ": " + *e.ErrorMessage, true
}
