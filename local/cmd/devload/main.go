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
	return devstack.UnsignedJWT(claims)
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

func main() {
	root := flag.String("root", ".", "project root")
	tmpl := flag.String("template", "", "SAM template (default ROOT/template.yaml)")
	n := flag.Int("n", 1000, "requests through the stack (bounded)")
	c := flag.Int("c", 8, "concurrent clients")
	instances := flag.Int("instances", 4, "emulator instances per function")
	method := flag.String("method", "POST", "request method")
	path := flag.String("path", "/orders", "request path")
	body := flag.String("body", `{"currency":"EUR","items":[{"sku":"SKU-1","quantity":2,"unit_price":1250}]}`, "request body; {{n}} is replaced by the request number")
	headers := flag.String("headers", "Content-Type: application/json|Idempotency-Key: devload-{{run}}-{{n}}", "request headers separated by |; {{n}} is the request number")
	params := flag.String("parameter-overrides", os.Getenv("DEV_PARAMETER_OVERRIDES"), "template parameter overrides")
	contend := registerContend(flag.CommandLine)
	flag.Parse()
	logger := log.New(os.Stderr, "devload: ", log.Ltime)
	if contend.enabled() {
		os.Exit(runContend(context.Background(), contend, logger.Printf))
	}
	if *n <= 0 || *n > 100000 || *c <= 0 || *c > 256 {
		logger.Fatal("-n must be 1..100000 and -c 1..256")
	}
	ov, err := devstack.ParseParameterOverrides(*params)
	if err != nil {
		logger.Fatal(err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	absRoot, _ := filepath.Abs(*root)
	endpoint := os.Getenv("AWS_ENDPOINT_URL_DYNAMODB")
	if endpoint == "" {
		eng, err := devstack.StartEngine(ctx, absRoot)
		if err != nil {
			logger.Fatal(err)
		}
		defer eng.Stop()
		endpoint = eng.Endpoint()
	}
	rec := &recorder{target: strings.TrimRight(endpoint, "/"), client: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		logger.Fatal(err)
	}
	go func() { _ = http.Serve(ln, rec) }()
	proxyURL := "http://" + ln.Addr().String()

	startStack := func(engineURL string) *devstack.Stack {
		s, err := devstack.Start(ctx, devstack.Config{
			Root: absRoot, Template: *tmpl, EngineEndpoint: engineURL, Instances: *instances,
			ParameterOverrides: ov, StateDir: filepath.Join(absRoot, ".dev", "devload"),
			Logger: log.New(io.Discard, "", 0),
		})
		if err != nil {
			logger.Fatal(err)
		}
		return s
	}
	resetTables := func(tm *devstack.Template) {
		if err := devstack.DeleteTables(ctx, endpoint, "", tm); err != nil {
			logger.Fatal(err)
		}
		if err := devstack.EnsureTables(ctx, endpoint, "", tm, nil); err != nil {
			logger.Fatal(err)
		}
	}

	runID := strconv.FormatInt(time.Now().UnixNano(), 36)
	client := &http.Client{Timeout: time.Minute, Transport: &http.Transport{MaxIdleConnsPerHost: *c}}
	var statusMu sync.Mutex
	statuses := map[int]int{}
	var failures atomic.Int64
	// drive sends count requests (numbered from first) through s.
	drive := func(s *devstack.Stack, first, count int) time.Duration {
		var auth string
		for _, f := range s.Template().Functions {
			for _, ev := range f.Events {
				if ev.Path == *path && ev.Authorizer != nil {
					auth = "Bearer " + mintJWT(ev.Authorizer.Issuer, ev.Authorizer.Audience)
				}
			}
		}
		return run(count, *c, func(i int) {
			i += first
			sub := func(s string) string {
				return strings.NewReplacer("{{n}}", strconv.Itoa(i), "{{run}}", runID).Replace(s)
			}
			req, _ := http.NewRequestWithContext(ctx, *method, s.URL()+*path, strings.NewReader(sub(*body)))
			for _, h := range strings.Split(*headers, "|") {
				if k, v, ok := strings.Cut(h, ":"); ok {
					req.Header.Set(strings.TrimSpace(k), sub(strings.TrimSpace(v)))
				}
			}
			if auth != "" {
				req.Header.Set("Authorization", auth)
			}
			resp, err := client.Do(req)
			if err != nil {
				failures.Add(1)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			statusMu.Lock()
			statuses[resp.StatusCode]++
			statusMu.Unlock()
		})
	}
	// Warm-up: every emulator instance initialises its runtime once.
	warm := *instances * 2

	// 1. Record the DynamoDB calls n requests make, through a proxy (untimed).
	s := startStack(proxyURL)
	tm := s.Template()
	drive(s, -warm, warm)
	rec.on.Store(true)
	drive(s, 0, *n)
	rec.on.Store(false)
	s.Close()
	ops := rec.ops
	if ctx.Err() != nil {
		logger.Fatal("interrupted")
	}
	if len(ops) == 0 {
		logger.Fatalf("the requests made no DynamoDB calls (statuses %v); check -path/-body", statuses)
	}

	// 2. Time n requests through a stack wired straight to the engine, as
	// `make dev` runs, from empty tables.
	s = startStack(endpoint)
	drive(s, *n, warm)
	resetTables(tm)
	statuses = map[int]int{}
	stackTime := drive(s, 2**n, *n)
	s.Close()
	if ctx.Err() != nil {
		logger.Fatal("interrupted")
	}

	// 3. Replay the recorded calls straight at the engine, from empty tables
	// as well, so conditional writes succeed as they did through the stack.
	resetTables(tm)
	var replayErr, replayNon2xx atomic.Int64
	engTime := run(len(ops), *c, func(i int) {
		resp, err := send(rec.client, rec.target, ops[i].header, ops[i].body)
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

	codes := make([]string, 0, len(statuses))
	for code, k := range statuses {
		codes = append(codes, fmt.Sprintf("%d×%d", k, code))
	}
	sort.Strings(codes)
	perReq := float64(len(ops)) / float64(*n)
	stackOps := float64(len(ops)) / stackTime.Seconds()
	engOps := float64(len(ops)) / engTime.Seconds()
	fmt.Printf("stack:  %d requests %s %s in %s = %.1f req/s (%s, %d transport errors)\n", *n, *method, *path, stackTime.Round(time.Millisecond), float64(*n)/stackTime.Seconds(), strings.Join(codes, " "), failures.Load())
	fmt.Printf("        %d DynamoDB calls (%.2f per request) = %.1f ops/s through the stack\n", len(ops), perReq, stackOps)
	fmt.Printf("engine: same %d calls replayed directly, %d clients, in %s = %.1f ops/s (%d non-200, %d transport errors)\n", len(ops), *c, engTime.Round(time.Millisecond), engOps, replayNon2xx.Load(), replayErr.Load())
	fmt.Printf("ratio:  stack delivers %.1f%% of the engine's throughput (engine-bound equivalent %.1f req/s)\n", 100*stackOps/engOps, engOps/perReq)
}
