// Package devstack runs a SAM template locally without Docker: a
// race-safe local DynamoDB engine (moto served single-threaded by
// local/motoserver.py) with the template's tables, every
// AWS::Serverless::Function built as a Linux bootstrap and run under pools of
// AWS Lambda Runtime Interface Emulator processes, and an API Gateway
// emulation (HttpApi payload 2.0, Api payload 1.0, JWT authorizers without
// signature verification) on a loopback port. `make dev` runs it through
// local/cmd/devstack; end-to-end tests call Start directly.
//
// Linux only: the functions are Linux binaries run directly on the host.
package devstack

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Config configures a local stack. Zero values pick the defaults noted.
type Config struct {
	// Root is the project root holding go.mod and the CodeUri directories
	// (default: the working directory).
	Root string
	// Template is the SAM template path (default Root/template.yaml).
	Template string
	// Host is the listen address (default 127.0.0.1).
	Host string
	// Port is the gateway port; 0 picks a free port (make dev passes 3000).
	Port int
	// EngineEndpoint is an existing DynamoDB endpoint to use instead of
	// starting moto (default: AWS_ENDPOINT_URL_DYNAMODB, else start moto).
	EngineEndpoint string
	// Instances is the number of emulator instances per function
	// (default 4). Each serves one invoke at a time.
	Instances int
	// ParameterOverrides override template parameter defaults.
	ParameterOverrides map[string]string
	// StateDir holds the lock file and built bootstraps (default Root/.dev).
	StateDir string
	// CacheDir holds the emulator binary (default os.UserCacheDir()/idemcheckout-devstack).
	CacheDir string
	// Region is the AWS region the functions see (default us-east-1).
	Region string
	// Logger receives start-up and one-line-per-request logs (default stderr).
	Logger *log.Logger
	// FunctionOutput receives the functions' stdout/stderr, one prefixed
	// line at a time (default: Logger's writer).
	FunctionOutput io.Writer
}

// Stack is a running local stack.
type Stack struct {
	cfg      Config
	tmpl     *Template
	router   *Router
	engine   *engine
	endpoint string
	pools    map[string]*pool
	ln       net.Listener
	srv      *http.Server
	lock     *os.File
	logf     func(string, ...any)
	served   chan struct{}

	closing   atomic.Bool
	closeOnce sync.Once
	closeErr  error
}

// ErrAlreadyRunning is returned when another stack holds the state dir.
var ErrAlreadyRunning = errors.New("another local stack is already running")

// Start brings the stack up: lock, engine, tables, functions, then the
// gateway port. On error everything started so far is stopped.
func Start(ctx context.Context, cfg Config) (_ *Stack, err error) {
	if cfg.Root == "" {
		cfg.Root = "."
	}
	root, err := filepath.Abs(cfg.Root)
	if err != nil {
		return nil, err
	}
	cfg.Root = root
	if cfg.Template == "" {
		cfg.Template = filepath.Join(root, "template.yaml")
	}
	if cfg.Host == "" {
		cfg.Host = "127.0.0.1"
	}
	if cfg.Instances <= 0 {
		cfg.Instances = 4
	}
	if cfg.StateDir == "" {
		cfg.StateDir = filepath.Join(root, ".dev")
	}
	if cfg.CacheDir == "" {
		if d, err := os.UserCacheDir(); err == nil {
			cfg.CacheDir = filepath.Join(d, "idemcheckout-devstack")
		} else {
			cfg.CacheDir = filepath.Join(cfg.StateDir, "cache")
		}
	}
	if cfg.Region == "" {
		cfg.Region = "us-east-1"
	}
	if cfg.EngineEndpoint == "" {
		cfg.EngineEndpoint = os.Getenv("AWS_ENDPOINT_URL_DYNAMODB")
	}
	if cfg.Logger == nil {
		cfg.Logger = log.New(os.Stderr, "devstack: ", log.LstdFlags|log.Lmicroseconds)
	}
	if cfg.FunctionOutput == nil {
		cfg.FunctionOutput = cfg.Logger.Writer()
	}
	s := &Stack{cfg: cfg, pools: map[string]*pool{}, logf: cfg.Logger.Printf, served: make(chan struct{})}
	defer func() {
		if err != nil {
			_ = s.shutdown()
		}
	}()

	if err := os.MkdirAll(cfg.StateDir, 0o755); err != nil {
		return nil, fmt.Errorf("state dir: %w", err)
	}
	if err := s.takeLock(); err != nil {
		return nil, err
	}
	// Fail fast on a busy port before the slow part; the real listener is
	// opened only once everything behind it is ready.
	addr := net.JoinHostPort(cfg.Host, strconv.Itoa(cfg.Port))
	if cfg.Port != 0 {
		l, err := net.Listen("tcp", addr)
		if err != nil {
			return nil, fmt.Errorf("port %d on %s is in use (is another `make dev` or `sam local start-api` running? set PORT to use another): %w", cfg.Port, cfg.Host, err)
		}
		l.Close()
	}

	tmpl, err := LoadTemplate(cfg.Template, cfg.ParameterOverrides, cfg.Region)
	if err != nil {
		return nil, err
	}
	s.tmpl = tmpl
	s.router = NewRouter(tmpl.Functions)
	if _, err := goTool(); err != nil {
		return nil, err
	}

	// Build the functions and the emulator while the engine starts.
	type built struct {
		bins map[string]string
		rie  string
		err  error
	}
	buildDone := make(chan built, 1)
	go func() {
		b := built{bins: map[string]string{}}
		b.rie, b.err = buildRIE(ctx, cfg.CacheDir)
		for _, f := range tmpl.Functions {
			if b.err != nil {
				break
			}
			b.bins[f.LogicalID], b.err = buildFunction(ctx, root, filepath.Join(cfg.StateDir, "build"), f)
		}
		buildDone <- b
	}()

	if cfg.EngineEndpoint != "" {
		s.endpoint = strings.TrimRight(cfg.EngineEndpoint, "/")
		s.logf("using DynamoDB endpoint %s (AWS_ENDPOINT_URL_DYNAMODB / -engine)", s.endpoint)
	} else {
		e, err := startEngine(ctx, root, s.logf)
		if err != nil {
			<-buildDone
			return nil, err
		}
		s.engine, s.endpoint = e, e.Endpoint
		go func() {
			<-e.Done()
			if !s.closing.Load() {
				s.logf("ERROR: the local DynamoDB engine exited unexpectedly (%v); restart make dev", e.ProcessState())
			}
		}()
		s.logf("local DynamoDB engine (moto, single-threaded) on %s", s.endpoint)
	}
	tctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	err = ensureTables(tctx, ddbClient(s.endpoint, cfg.Region), tmpl.Tables, s.logf)
	cancel()
	if err != nil {
		<-buildDone
		return nil, err
	}
	b := <-buildDone
	if b.err != nil {
		return nil, b.err
	}
	for _, f := range tmpl.Functions {
		p, err := newPool(ctx, f, b.rie, b.bins[f.LogicalID], functionEnv(f, cfg.Region, s.endpoint), cfg.Instances, cfg.FunctionOutput, s.logf)
		if err != nil {
			return nil, err
		}
		s.pools[f.LogicalID] = p
		s.logf("function %s: %d emulator instances, timeout %s, memory %d MB", f.LogicalID, cfg.Instances, f.Timeout, f.MemorySize)
	}

	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", addr, err)
	}
	s.ln = ln
	s.srv = &http.Server{Handler: s, ReadHeaderTimeout: 30 * time.Second}
	go func() {
		defer close(s.served)
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.logf("gateway stopped: %v", err)
		}
	}()
	s.printBanner()
	return s, nil
}

func (s *Stack) takeLock() error {
	path := filepath.Join(s.cfg.StateDir, "devstack.lock")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("lock file: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		b, _ := os.ReadFile(path)
		f.Close()
		holder := strings.TrimSpace(string(b))
		if holder == "" {
			holder = "unknown"
		}
		return fmt.Errorf("%w (pid %s holds %s); stop it first (Ctrl-C in its terminal), or give this one another state dir (DEV_STATE_DIR=... or -state-dir)", ErrAlreadyRunning, holder, path)
	}
	_ = f.Truncate(0)
	_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	s.lock = f
	return nil
}

func (s *Stack) printBanner() {
	s.logf("routes on %s:", s.URL())
	for _, r := range s.router.Routes() {
		auth := "no auth"
		if a := r.Event.Authorizer; a != nil {
			auth = "JWT " + a.Name
			if len(r.Event.Scopes) > 0 {
				auth += " scopes " + strings.Join(r.Event.Scopes, ",")
			}
		}
		kind := "HttpApi v2.0"
		if r.Event.Type == "Api" {
			kind = "Api v1.0"
		}
		s.logf("  %-7s %-30s -> %s (%s, %s)", r.Event.Method, r.Event.Path, r.Function.LogicalID, kind, auth)
	}
	for _, r := range s.router.Routes() {
		if r.Event.Authorizer != nil {
			s.logf("NOTE: JWT authorizers are emulated WITHOUT signature verification: any well-formed token with valid exp (and iss/aud when the template sets them) is accepted")
			break
		}
	}
	s.logf("DynamoDB engine: %s", s.endpoint)
	s.logf("ready: %s", s.URL())
}

// URL is the gateway's base URL, e.g. http://127.0.0.1:3000.
func (s *Stack) URL() string { return "http://" + s.ln.Addr().String() }

// EngineEndpoint is the DynamoDB endpoint the functions use.
func (s *Stack) EngineEndpoint() string { return s.endpoint }

// Template is the resolved template being served.
func (s *Stack) Template() *Template { return s.tmpl }

// TableName maps a table's logical id to its local physical name.
func (s *Stack) TableName(logicalID string) string {
	for _, t := range s.tmpl.Tables {
		if t.LogicalID == logicalID {
			return t.Name
		}
	}
	return ""
}

// Restarts reports how many emulator instances of a function were replaced
// (after a crash or timeout).
func (s *Stack) Restarts(function string) int {
	if p := s.pools[function]; p != nil {
		return p.restartCount()
	}
	return 0
}

// Close stops the gateway, every emulator and the engine it started, and
// releases the lock. It is safe to call more than once.
func (s *Stack) Close() error {
	s.closeOnce.Do(func() { s.closeErr = s.shutdown() })
	return s.closeErr
}

func (s *Stack) shutdown() error {
	s.closing.Store(true)
	var err error
	if s.srv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		if e := s.srv.Shutdown(ctx); e != nil {
			s.srv.Close()
		}
		cancel()
		<-s.served
	}
	var wg sync.WaitGroup
	for _, p := range s.pools {
		wg.Add(1)
		go func() { defer wg.Done(); p.close() }()
	}
	wg.Wait()
	s.engine.Stop()
	if s.lock != nil {
		_ = syscall.Flock(int(s.lock.Fd()), syscall.LOCK_UN)
		err = s.lock.Close()
		s.lock = nil
	}
	return err
}

// ServeHTTP is the API Gateway emulation.
func (s *Stack) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rec := &statusRecorder{ResponseWriter: w}
	s.serve(rec, r, start)
	if rec.status == 0 {
		rec.status = http.StatusOK
	}
	replayed := ""
	if strings.EqualFold(rec.Header().Get("Idempotent-Replayed"), "true") {
		replayed = " replayed=true"
	}
	fn := rec.function
	if fn == "" {
		fn = "-"
	}
	note := ""
	if rec.note != "" {
		note = " (" + rec.note + ")"
	}
	s.logf("%s %s %d %s %s%s%s", r.Method, r.URL.RequestURI(), rec.status, time.Since(start).Round(100*time.Microsecond), fn, replayed, note)
}

type statusRecorder struct {
	http.ResponseWriter
	status   int
	function string
	note     string // why the gateway answered an error itself
}

func (r *statusRecorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func writeMessage(w http.ResponseWriter, status int, msg string) {
	b, _ := json.Marshal(map[string]string{"message": msg})
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

const maxBody = 10 << 20 // API Gateway's payload limit

func (s *Stack) serve(w *statusRecorder, r *http.Request, now time.Time) {
	route, params, ok := s.router.Match(r.Method, r.URL.Path)
	if !ok {
		writeMessage(w, http.StatusNotFound, "Not Found")
		return
	}
	w.function = route.Function.LogicalID
	reqID := newRequestID()
	w.Header().Set("Apigw-Requestid", reqID)
	var jwt *JWTResult
	if a := route.Event.Authorizer; a != nil {
		res, err := a.Authorize(r.Header, route.Event.Scopes, now)
		if err != nil {
			w.note = "authorizer " + a.Name + ": " + err.Error()
			if errors.Is(err, errForbidden) {
				writeMessage(w, http.StatusForbidden, "Forbidden")
			} else {
				w.Header().Set("WWW-Authenticate", "Bearer")
				writeMessage(w, http.StatusUnauthorized, "Unauthorized")
			}
			return
		}
		jwt = res
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		writeMessage(w, http.StatusBadRequest, "Bad Request")
		return
	}
	if len(body) > maxBody {
		writeMessage(w, http.StatusRequestEntityTooLarge, "Request Entity Too Large")
		return
	}
	ri := &RequestInfo{Req: r, Body: body, Route: route, PathParams: params, JWT: jwt, Now: now, RequestID: reqID}
	var payload []byte
	if route.Event.Type == "Api" {
		payload, err = json.Marshal(BuildV1Event(ri))
	} else {
		payload, err = json.Marshal(BuildV2Event(ri))
	}
	if err != nil {
		writeMessage(w, http.StatusInternalServerError, "Internal server error")
		return
	}
	out, err := s.pools[route.Function.LogicalID].invoke(r.Context(), payload)
	if err != nil {
		w.note = err.Error()
		writeMessage(w, http.StatusBadGateway, "Internal server error")
		return
	}
	var resp *Response
	if route.Event.Type == "Api" {
		resp, err = ParseV1Response(out)
	} else {
		resp, err = ParseV2Response(out)
	}
	if err != nil {
		w.note = fmt.Sprintf("%v: %.200s", err, out)
		writeMessage(w, http.StatusBadGateway, "Internal server error")
		return
	}
	h := w.Header()
	for k, vs := range resp.Header {
		h[k] = vs
	}
	h.Set("Content-Length", strconv.Itoa(len(resp.Body)))
	w.WriteHeader(resp.Status)
	_, _ = w.Write(resp.Body)
}
