// Command devload measures how much of the local engine's throughput the
// local stack delivers. It drives a bounded number of requests through the
// stack (gateway + Lambda emulators + functions) while a recording proxy
// captures every DynamoDB call the functions make (untimed); then times the
// same number of requests through a stack wired straight to the engine, as
// `make dev` runs; then replays the recorded calls straight at the engine
// with the same concurrency, and compares DynamoDB operations per second.
// Loopback only.
//
//	go run ./local/cmd/devload [-n 1000] [-c 8] [-path /orders] [-body '{...}']
//	go run ./local/cmd/devload -contend http://127.0.0.1:3000 [-orders 20] [-payers 8]   (contend.go)
//
// make devload runs it with the defaults: 1000 requests, 8 clients.
//
// Before the timed runs the template's tables are recreated empty, so both
// meet the same state.
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/acme/idemcheckout/local/devstack"
	"github.com/acme/idemcheckout/local/devstack/gateway"
	"github.com/acme/idemcheckout/local/devstack/provision"
	"github.com/acme/idemcheckout/local/devstack/template"
)

type op struct {
	header http.Header
	body   []byte
}

// recorder forwards DynamoDB calls to the engine and, while on, records them.
type recorder struct {
	target string
	client *http.Client
	on     atomic.Bool
	mu     sync.Mutex
	ops    []op
}

func (rc *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	h := r.Header.Clone()
	if rc.on.Load() {
		rc.mu.Lock()
		rc.ops = append(rc.ops, op{header: h, body: body})
		rc.mu.Unlock()
	}
	resp, err := send(rc.client, rc.target, h, body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	for k, vs := range resp.Header {
		w.Header()[k] = vs
	}
	w.WriteHeader(resp.StatusCode)
	_, _ = io.Copy(w, resp.Body)
}

func send(c *http.Client, target string, h http.Header, body []byte) (*http.Response, error) {
	req, err := http.NewRequest(http.MethodPost, target+"/", bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	for k, vs := range h {
		if k == "Content-Length" || k == "Host" {
			continue
		}
		req.Header[k] = vs
	}
	return c.Do(req)
}

func mintJWT(iss string, aud []string) string {
	claims := map[string]any{"sub": "devload", "exp": time.Now().Add(time.Hour).Unix(), "scope": "orders:write payments:write"}
	if iss != "" {
		claims["iss"] = iss
	}
	if len(aud) > 0 {
		claims["aud"] = aud[0]
	}
	return gateway.UnsignedJWT(claims)
}

// run executes n jobs with c workers and returns the wall time.
func run(n, c int, job func(i int)) time.Duration {
	var next atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for w := 0; w < c; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				job(i)
			}
		}()
	}
	wg.Wait()
	return time.Since(start)
}

// options are devload's flags.
type options struct {
	root, tmpl, method, path, body, headers string
	n, c, instances                         int
	overrides                               map[string]string
	contend                                 *contendFlags
}

func parseFlags(logger *log.Logger) options {
	var o options
	flag.StringVar(&o.root, "root", ".", "project root")
	flag.StringVar(&o.tmpl, "template", "", "SAM template (default ROOT/template.yaml)")
	flag.IntVar(&o.n, "n", 1000, "requests through the stack (bounded)")
	flag.IntVar(&o.c, "c", 8, "concurrent clients")
	flag.IntVar(&o.instances, "instances", 4, "emulator instances per function")
	flag.StringVar(&o.method, "method", "POST", "request method")
	flag.StringVar(&o.path, "path", "/orders", "request path")
	flag.StringVar(&o.body, "body", `{"currency":"EUR","items":[{"sku":"SKU-1","quantity":2,"unit_price":1250}]}`, "request body; {{n}} is replaced by the request number")
	flag.StringVar(&o.headers, "headers", "Content-Type: application/json|Idempotency-Key: devload-{{run}}-{{n}}", "request headers separated by |; {{n}} is the request number")
	params := flag.String("parameter-overrides", os.Getenv("DEV_PARAMETER_OVERRIDES"), "template parameter overrides")
	o.contend = registerContend(flag.CommandLine)
	flag.Parse()
	if o.n <= 0 || o.n > 100000 || o.c <= 0 || o.c > 256 {
		logger.Fatal("-n must be 1..100000 and -c 1..256")
	}
	ov, err := template.ParseOverrides(*params)
	if err != nil {
		logger.Fatal(err)
	}
	o.overrides = ov
	abs, err := filepath.Abs(o.root)
	if err != nil {
		logger.Fatal(err)
	}
	o.root = abs
	return o
}

// load is one devload run: the engine, the recording proxy in front of it,
// and the counters of the timed pass.
type load struct {
	o        options
	ctx      context.Context
	logger   *log.Logger
	endpoint string
	rec      *recorder
	proxyURL string
	runID    string
	client   *http.Client

	statusMu sync.Mutex
	statuses map[int]int
	failures atomic.Int64
}

func main() {
	logger := log.New(os.Stderr, "devload: ", log.Ltime)
	o := parseFlags(logger)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if o.contend.enabled() {
		code := runContend(ctx, o.contend, logger.Printf)
		stop()
		os.Exit(code)
	}
	l := &load{o: o, ctx: ctx, logger: logger, runID: strconv.FormatInt(time.Now().UnixNano(), 36),
		client: &http.Client{Timeout: time.Minute, Transport: &http.Transport{MaxIdleConnsPerHost: o.c}}, statuses: map[int]int{}}
	stopEngine := l.startEngine()
	defer stopEngine()
	l.startRecorder()

	ops, tm := l.recordPass()
	stackTime := l.timedPass(tm)
	engTime, replayNon2xx, replayErr := l.replayPass(tm, ops)
	l.report(len(ops), stackTime, engTime, replayNon2xx, replayErr)
}

// startEngine starts moto unless AWS_ENDPOINT_URL_DYNAMODB names an engine.
func (l *load) startEngine() (stop func()) {
	l.endpoint = os.Getenv("AWS_ENDPOINT_URL_DYNAMODB")
	if l.endpoint != "" {
		return func() {}
	}
	eng, err := devstack.StartEngine(l.ctx, l.o.root)
	if err != nil {
		l.logger.Fatal(err)
	}
	l.endpoint = eng.Endpoint
	return eng.Stop
}

// startRecorder serves the recording proxy in front of the engine.
func (l *load) startRecorder() {
	l.rec = &recorder{target: strings.TrimRight(l.endpoint, "/"), client: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		l.logger.Fatal(err)
	}
	go func() { _ = http.Serve(ln, l.rec) }()
	l.proxyURL = "http://" + ln.Addr().String()
}

// startStack starts the stack devload times: the request path only, so
// no Lambda endpoint, no schedules and no event source pollers (a stream
// poller polling tables the passes delete and recreate would load the
// single-threaded engine and skew both passes).
func (l *load) startStack(engineURL string) *devstack.Stack {
	s, err := devstack.Start(l.ctx, devstack.Config{
		Root: l.o.root, Template: l.o.tmpl, EngineEndpoint: engineURL, Instances: l.o.instances,
		ParameterOverrides: l.o.overrides, StateDir: filepath.Join(l.o.root, ".dev", "devload"),
		LambdaPort: -1, ScheduleEvery: -1, EventPollInterval: -1, Logger: log.New(io.Discard, "", 0),
	})
	if err != nil {
		l.logger.Fatal(err)
	}
	return s
}

func (l *load) resetTables(tm *template.Template) {
	db := provision.NewClients(l.endpoint, "").DynamoDB
	if err := provision.DeleteTables(l.ctx, db, tm); err != nil {
		l.logger.Fatal(err)
	}
	if err := provision.EnsureTables(l.ctx, db, tm, nil); err != nil {
		l.logger.Fatal(err)
	}
}

// token is a local JWT for the route of -path, "" when it has no JWT
// authorizer.
func (l *load) token(s *devstack.Stack) string {
	for _, r := range s.Routes() {
		if r.Event.HTTP.Path == l.o.path && r.Authorizer != nil && r.Authorizer.JWT != nil {
			return "Bearer " + mintJWT(r.Authorizer.JWT.Issuer, r.Authorizer.JWT.Audience)
		}
	}
	return ""
}

// drive sends count requests (numbered from first) through s.
func (l *load) drive(s *devstack.Stack, first, count int) time.Duration {
	auth := l.token(s)
	return run(count, l.o.c, func(i int) {
		i += first
		sub := func(s string) string {
			return strings.NewReplacer("{{n}}", strconv.Itoa(i), "{{run}}", l.runID).Replace(s)
		}
		req, _ := http.NewRequestWithContext(l.ctx, l.o.method, s.URL()+l.o.path, strings.NewReader(sub(l.o.body)))
		for _, h := range strings.Split(l.o.headers, "|") {
			if k, v, ok := strings.Cut(h, ":"); ok {
				req.Header.Set(strings.TrimSpace(k), sub(strings.TrimSpace(v)))
			}
		}
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := l.client.Do(req)
		if err != nil {
			l.failures.Add(1)
			return
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		l.statusMu.Lock()
		l.statuses[resp.StatusCode]++
		l.statusMu.Unlock()
	})
}

// warm is the warm-up: every emulator instance initialises its runtime once.
func (l *load) warm() int { return l.o.instances * 2 }

// recordPass records the DynamoDB calls n requests make, through the
// proxy (untimed).
func (l *load) recordPass() ([]op, *template.Template) {
	s := l.startStack(l.proxyURL)
	tm := s.Template()
	l.drive(s, -l.warm(), l.warm())
	l.rec.on.Store(true)
	l.drive(s, 0, l.o.n)
	l.rec.on.Store(false)
	s.Close()
	if l.ctx.Err() != nil {
		l.logger.Fatal("interrupted")
	}
	if len(l.rec.ops) == 0 {
		l.logger.Fatalf("the requests made no DynamoDB calls (statuses %v); check -path/-body", l.statuses)
	}
	return l.rec.ops, tm
}

// timedPass times n requests through a stack wired straight to the engine,
// as `make dev` runs, from empty tables.
func (l *load) timedPass(tm *template.Template) time.Duration {
	s := l.startStack(l.endpoint)
	l.drive(s, l.o.n, l.warm())
	l.resetTables(tm)
	l.statuses = map[int]int{}
	took := l.drive(s, 2*l.o.n, l.o.n)
	s.Close()
	if l.ctx.Err() != nil {
		l.logger.Fatal("interrupted")
	}
	return took
}

// replayPass replays the recorded calls straight at the engine, from empty
// tables as well, so conditional writes succeed as they did through the
// stack.
func (l *load) replayPass(tm *template.Template, ops []op) (took time.Duration, non2xx, errs int64) {
	l.resetTables(tm)
	var replayErr, replayNon2xx atomic.Int64
	took = run(len(ops), l.o.c, func(i int) {
		resp, err := send(l.rec.client, l.rec.target, ops[i].header, ops[i].body)
		if err != nil {
			replayErr.Add(1)
			return
		}
		if resp.StatusCode != http.StatusOK {
			replayNon2xx.Add(1)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	})
	return took, replayNon2xx.Load(), replayErr.Load()
}

func (l *load) report(nops int, stackTime, engTime time.Duration, replayNon2xx, replayErr int64) {
	codes := make([]string, 0, len(l.statuses))
	for code, k := range l.statuses {
		codes = append(codes, fmt.Sprintf("%d×%d", k, code))
	}
	sort.Strings(codes)
	n := l.o.n
	perReq := float64(nops) / float64(n)
	stackOps := float64(nops) / stackTime.Seconds()
	engOps := float64(nops) / engTime.Seconds()
	fmt.Printf("stack:  %d requests %s %s in %s = %.1f req/s (%s, %d transport errors)\n", n, l.o.method, l.o.path, stackTime.Round(time.Millisecond), float64(n)/stackTime.Seconds(), strings.Join(codes, " "), l.failures.Load())
	fmt.Printf("        %d DynamoDB calls (%.2f per request) = %.1f ops/s through the stack\n", nops, perReq, stackOps)
	fmt.Printf("engine: same %d calls replayed directly, %d clients, in %s = %.1f ops/s (%d non-200, %d transport errors)\n", nops, l.o.c, engTime.Round(time.Millisecond), engOps, replayNon2xx, replayErr)
	fmt.Printf("ratio:  stack delivers %.1f%% of the engine's throughput (engine-bound equivalent %.1f req/s)\n", 100*stackOps/engOps, engOps/perReq)
}
