// Package devstack runs a SAM template locally without Docker: a
// race-safe local DynamoDB engine (moto served single-threaded by
// local/motoserver.py) with the template's tables, every
// AWS::Serverless::Function built as a Linux bootstrap and run under pools of
// AWS Lambda Runtime Interface Emulator processes, an API Gateway emulation
// (HttpApi payload 2.0, Api payload 1.0, JWT authorizers without signature
// verification) on a loopback port, a Lambda Invoke API endpoint (like `sam
// local start-lambda`), the functions' Schedule and ScheduleV2 events, and
// hot reload of edited functions. `make dev` runs it through
// local/cmd/devstack; end-to-end tests call Start directly. The
// functions' DynamoDB and SQS event source mappings poll the engine (see
// esm.go).
//
// Linux only: the functions are Linux binaries run directly on the host.
package devstack

import (
	"context"
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

	"github.com/acme/idemcheckout/internal/samtemplate"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
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
	// -1 serves no gateway (make invoke).
	Port int
	// LambdaPort is the Lambda Invoke API endpoint's port (like `sam local
	// start-lambda`); 0 picks a free port (make dev passes 3001), -1 serves
	// none.
	LambdaPort int
	// StorefrontPort is the storefront's port (web/: the page that calls
	// the gateway cross-origin); 0 picks a free port (make dev passes
	// 4000), -1 serves none.
	StorefrontPort int
	// StorefrontDir holds the storefront's files (default Root/web).
	StorefrontDir string
	// EngineEndpoint is an existing DynamoDB endpoint to use instead of
	// starting moto (default: AWS_ENDPOINT_URL_DYNAMODB, else start moto).
	EngineEndpoint string
	// EnginePort is the port of the moto engine the stack starts; 0 picks a
	// free port (make dev passes 8000).
	EnginePort int
	// Persist keeps the engine's data across restarts: moto journals every
	// write it applies to JournalPath and replays the journal when it
	// starts (see local/motoserver.py).
	Persist bool
	// JournalPath is the persistent engine's journal (default
	// StateDir/engine/journal.jsonl).
	JournalPath string
	// Instances is the number of emulator instances per function
	// (default 4). Each serves one invoke at a time.
	Instances int
	// Functions, when set, limits the stack to these functions (make invoke).
	Functions []string
	// ParameterOverrides override template parameter defaults.
	ParameterOverrides map[string]string
	// StateDir holds the lock file, the built bootstraps and the journal
	// (default Root/.dev).
	StateDir string
	// CacheDir holds the emulator binary (default os.UserCacheDir()/idemcheckout-devstack).
	CacheDir string
	// Region is the AWS region the functions see (default us-east-1).
	Region string
	// Watch rebuilds a function when a Go file of its package or of an
	// in-module package it imports changes, and swaps its emulators
	// (hot reload). The sources are polled every WatchInterval (default
	// 500 ms); a negative WatchInterval polls only when Poll is called.
	Watch         bool
	WatchInterval time.Duration
	// ScheduleEvery, when positive, runs every Schedule/ScheduleV2 event at
	// this period instead of its rate (DEV_SCHEDULE_EVERY); negative runs
	// none.
	ScheduleEvery time.Duration
	// EventPollInterval is how often the DynamoDB and SQS event source
	// mappings poll their stream or queue (default
	// DefaultEventPollInterval, 250 ms; DEV_EVENT_POLL); negative runs
	// none.
	EventPollInterval time.Duration
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
	pools    map[string]*atomic.Pointer[pool]
	ln       net.Listener
	srv      *http.Server
	lambda   *lambdaAPI
	// storefront serves web/ on its own origin (nil: none).
	storefront *storefront
	lock       *os.File
	logf       func(string, ...any)
	served     chan struct{}
	watcher    *watcher
	rie        string
	sqs        *sqs.Client
	// queueURLs are the template's queues on the engine, by logical id.
	queueURLs map[string]string
	sources   map[string]*eventSource // by Function.Event
	bg        sync.WaitGroup          // schedules, event sources, watcher, async invokes
	bgctx     context.Context
	bgcancel  context.CancelFunc // called by shutdown

	closing   atomic.Bool
	closeOnce sync.Once
	closeErr  error
}

// ErrAlreadyRunning is returned when another stack holds the state dir.
var ErrAlreadyRunning = errors.New("another local stack is already running")

// Start brings the stack up: lock, template, engine and tables (while the
// functions build), emulator pools, then the gateway and Lambda ports, the
// schedules and the watcher. On error everything started so far is
// stopped.
func Start(ctx context.Context, cfg Config) (_ *Stack, err error) {
	cfg, err = withDefaults(cfg)
	if err != nil {
		return nil, err
	}
	s := &Stack{cfg: cfg, pools: map[string]*atomic.Pointer[pool]{}, logf: cfg.Logger.Printf, served: make(chan struct{})}
	s.bgctx, s.bgcancel = context.WithCancel(context.Background())
	defer func() {
		if err != nil {
			_ = s.shutdown()
		}
	}()
	if err := s.takeLock(); err != nil {
		return nil, err
	}
	if err := s.checkPorts(); err != nil {
		return nil, err
	}
	if err := s.loadTemplate(); err != nil {
		return nil, err
	}
	builds := s.startBuilds(ctx)
	if err := s.startEngine(ctx); err != nil {
		<-builds
		return nil, err
	}
	if err := s.createTables(ctx); err != nil {
		<-builds
		return nil, err
	}
	b := <-builds
	if b.err != nil {
		return nil, b.err
	}
	if err := s.startPools(ctx, b); err != nil {
		return nil, err
	}
	if err := s.listen(); err != nil {
		return nil, err
	}
	s.startSchedules()
	if err := s.startEventSources(ctx); err != nil {
		return nil, err
	}
	if err := s.startWatcher(ctx, b); err != nil {
		return nil, err
	}
	s.printBanner()
	return s, nil
}

// withDefaults fills in the zero fields of cfg.
func withDefaults(cfg Config) (Config, error) {
	if cfg.Root == "" {
		cfg.Root = "."
	}
	root, err := filepath.Abs(cfg.Root)
	if err != nil {
		return cfg, err
	}
	cfg.Root = root
	if cfg.Template == "" {
		cfg.Template = filepath.Join(root, "template.yaml")
	}
	if cfg.StorefrontDir == "" {
		cfg.StorefrontDir = filepath.Join(root, "web")
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
	if cfg.JournalPath == "" {
		cfg.JournalPath = filepath.Join(cfg.StateDir, "engine", "journal.jsonl")
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
	if cfg.WatchInterval == 0 {
		cfg.WatchInterval = 500 * time.Millisecond
	}
	if cfg.EventPollInterval == 0 {
		cfg.EventPollInterval = DefaultEventPollInterval
	}
	if cfg.Logger == nil {
		cfg.Logger = log.New(os.Stderr, "devstack: ", log.LstdFlags|log.Lmicroseconds)
	}
	if cfg.FunctionOutput == nil {
		cfg.FunctionOutput = cfg.Logger.Writer()
	}
	if err := os.MkdirAll(cfg.StateDir, 0o755); err != nil {
		return cfg, fmt.Errorf("state dir: %w", err)
	}
	return cfg, nil
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
		holder, _, _ := strings.Cut(strings.TrimSpace(string(b)), "\n")
		if holder == "" {
			holder = "unknown"
		}
		return fmt.Errorf("%w (pid %s holds %s); stop it first (Ctrl-C in its terminal), or give this one another state dir (DEV_STATE_DIR=... or -state-dir)", ErrAlreadyRunning, holder, path)
	}
	s.lock = f
	s.writeLock("")
	return nil
}

// writeLock records our pid and, once it listens, the Lambda endpoint in
// the lock file, where `make invoke` finds a running stack.
func (s *Stack) writeLock(lambdaURL string) {
	text := strconv.Itoa(os.Getpid()) + "\n"
	if lambdaURL != "" {
		text += "lambda " + lambdaURL + "\n"
	}
	_ = s.lock.Truncate(0)
	_, _ = s.lock.WriteAt([]byte(text), 0)
}

// RunningLambdaEndpoint returns the Lambda endpoint of the stack running
// with stateDir, "" when none runs.
func RunningLambdaEndpoint(stateDir string) string {
	path := filepath.Join(stateDir, "devstack.lock")
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err == nil {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		return "" // nobody holds it
	}
	b, _ := os.ReadFile(path)
	for line := range strings.Lines(string(b)) {
		if u, ok := strings.CutPrefix(strings.TrimSpace(line), "lambda "); ok {
			return u
		}
	}
	return ""
}

// checkPorts fails fast on a busy fixed port before the slow part; the
// real listeners are opened once everything behind them is ready.
func (s *Stack) checkPorts() error {
	for _, p := range []struct {
		port       int
		what, hint string
	}{
		{s.cfg.Port, "gateway", "is another `make dev` or `sam local start-api` running? set PORT to use another"},
		{s.cfg.LambdaPort, "Lambda endpoint", "set DEV_LAMBDA_PORT to use another"},
		{s.cfg.StorefrontPort, "storefront", "set DEV_STOREFRONT_PORT to use another (and add its origin to AllowedOrigins)"},
		{s.engineListenPort(), "engine", "is another engine running there? set DEV_ENGINE_PORT to use another"},
	} {
		if p.port <= 0 {
			continue
		}
		l, err := net.Listen("tcp", net.JoinHostPort(s.cfg.Host, strconv.Itoa(p.port)))
		if err != nil {
			return fmt.Errorf("%s port %d on %s is in use (%s): %w", p.what, p.port, s.cfg.Host, p.hint, err)
		}
		l.Close()
	}
	return nil
}

func (s *Stack) engineListenPort() int {
	if s.cfg.EngineEndpoint != "" {
		return 0
	}
	return s.cfg.EnginePort
}

func (s *Stack) loadTemplate() error {
	tmpl, err := LoadTemplate(s.cfg.Template, s.cfg.ParameterOverrides, s.cfg.Region)
	if err != nil {
		return err
	}
	if len(s.cfg.Functions) > 0 {
		for _, id := range s.cfg.Functions {
			if _, ok := tmpl.Model.Function(id); !ok {
				return fmt.Errorf("function %s is not in %s (it has %s)", id, s.cfg.Template, strings.Join(functionIDs(tmpl), ", "))
			}
		}
	}
	s.tmpl = tmpl
	routes, err := templateRoutes(tmpl)
	if err != nil {
		return err
	}
	s.router = NewRouter(routes)
	_, err = goTool()
	return err
}

func functionIDs(tm *Template) []string {
	var ids []string
	for _, f := range tm.Functions() {
		ids = append(ids, f.ID)
	}
	return ids
}

// served reports whether the stack runs function id.
func (s *Stack) runs(id string) bool {
	if len(s.cfg.Functions) == 0 {
		return true
	}
	for _, f := range s.cfg.Functions {
		if f == id {
			return true
		}
	}
	return false
}

// builds is what startBuilds produces: the emulator and one bootstrap per
// function.
type builds struct {
	bins map[string]string
	rie  string
	err  error
}

// startBuilds builds the emulator and the functions in the background,
// saying what it fetches and builds (the first run downloads modules).
func (s *Stack) startBuilds(ctx context.Context) <-chan builds {
	done := make(chan builds, 1)
	go func() {
		b := builds{bins: map[string]string{}}
		b.rie, b.err = buildRIE(ctx, s.cfg.CacheDir, s.logf)
		for _, f := range s.tmpl.Functions() {
			if b.err != nil || !s.runs(f.ID) {
				continue
			}
			start := time.Now()
			s.logf("building %s (%s) ...", f.ID, codePackage(&f))
			b.bins[f.ID], b.err = buildFunction(ctx, s.cfg.Root, s.buildDir(f.ID, 0), &f)
			if b.err == nil {
				s.logf("built %s in %s", f.ID, time.Since(start).Round(10*time.Millisecond))
			}
		}
		done <- b
	}()
	return done
}

// buildDir is where generation gen of a function's bootstrap is built: a
// new directory per rebuild, so a running bootstrap is never overwritten.
func (s *Stack) buildDir(id string, gen int) string {
	return filepath.Join(s.cfg.StateDir, "build", id, strconv.Itoa(gen))
}

func (s *Stack) startEngine(ctx context.Context) error {
	if s.cfg.EngineEndpoint != "" {
		s.endpoint = strings.TrimRight(s.cfg.EngineEndpoint, "/")
		s.logf("using DynamoDB endpoint %s (AWS_ENDPOINT_URL_DYNAMODB / -engine)", s.endpoint)
		return nil
	}
	journal := ""
	if s.cfg.Persist {
		journal = s.cfg.JournalPath
		if err := os.MkdirAll(filepath.Dir(journal), 0o755); err != nil {
			return err
		}
	}
	e, err := startEngine(ctx, s.cfg.Root, s.cfg.EnginePort, journal)
	if err != nil {
		return err
	}
	s.engine, s.endpoint = e, e.Endpoint
	go func() {
		<-e.Done()
		if !s.closing.Load() {
			s.logf("ERROR: the local DynamoDB engine exited unexpectedly (%v); restart make dev", e.ProcessState())
		}
	}()
	mode := "in memory: the data goes when the stack stops (DEV_PERSIST=1 keeps it)"
	if journal != "" {
		mode = "persistent: journal " + journal
	}
	s.logf("local DynamoDB engine (moto, single-threaded) on %s, %s", s.endpoint, mode)
	return nil
}

// createTables creates the template's tables (with their streams) and
// its queues on the engine.
func (s *Stack) createTables(ctx context.Context) error {
	tctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	if err := ensureTables(tctx, ddbClient(s.endpoint, s.cfg.Region), s.tmpl.Tables(), s.logf); err != nil {
		return err
	}
	s.sqs = sqsClient(s.endpoint, s.cfg.Region)
	urls, err := ensureQueues(tctx, s.sqs, s.cfg.Region, s.tmpl.Model.Queues(), s.logf)
	s.queueURLs = urls
	return err
}

func (s *Stack) startPools(ctx context.Context, b builds) error {
	s.rie = b.rie
	for _, f := range s.tmpl.Functions() {
		if !s.runs(f.ID) {
			continue
		}
		p, err := s.newPool(ctx, f, b.bins[f.ID], 0)
		if err != nil {
			return err
		}
		ptr := &atomic.Pointer[pool]{}
		ptr.Store(p)
		s.pools[f.ID] = ptr
		s.logf("function %s: %d emulator instances, timeout %s, memory %d MB", f.ID, s.cfg.Instances, f.TimeoutOrDefault(), f.MemoryOrDefault())
	}
	return nil
}

// newPool starts a function's emulators; their numbers (in the output's
// [Function#n] prefixes) continue after firstID.
func (s *Stack) newPool(ctx context.Context, f Function, bootstrap string, firstID int) (*pool, error) {
	return newPool(ctx, &f, s.rie, bootstrap, functionEnv(&f, s.cfg.Region, s.endpoint), s.cfg.Instances, firstID, s.cfg.FunctionOutput, s.logf)
}

// invoke runs payload through function id's current emulator pool. A pool
// retired by a rebuild while the call was on its way hands over to the new
// one.
func (s *Stack) invoke(ctx context.Context, id string, payload []byte) ([]byte, error) {
	ptr := s.pools[id]
	if ptr == nil {
		return nil, fmt.Errorf("function %s is not running", id)
	}
	for {
		out, err := ptr.Load().invoke(ctx, payload)
		if !errors.Is(err, errRetired) || s.closing.Load() {
			return out, err
		}
	}
}

func (s *Stack) listen() error {
	if s.cfg.Port >= 0 {
		addr := net.JoinHostPort(s.cfg.Host, strconv.Itoa(s.cfg.Port))
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return fmt.Errorf("listen on %s: %w", addr, err)
		}
		s.ln = ln
		s.srv = &http.Server{Handler: s, ReadHeaderTimeout: 30 * time.Second}
		go func() {
			defer close(s.served)
			if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				s.logf("gateway stopped: %v", err)
			}
		}()
	} else {
		close(s.served)
	}
	if s.cfg.LambdaPort >= 0 {
		l, err := startLambdaAPI(s, net.JoinHostPort(s.cfg.Host, strconv.Itoa(s.cfg.LambdaPort)))
		if err != nil {
			return err
		}
		s.lambda = l
		s.writeLock(l.URL())
	}
	if s.cfg.StorefrontPort >= 0 && s.ln != nil {
		if err := s.startStorefront(net.JoinHostPort(s.cfg.Host, strconv.Itoa(s.cfg.StorefrontPort))); err != nil {
			return fmt.Errorf("storefront: %w", err)
		}
	}
	return nil
}

func (s *Stack) printBanner() {
	if s.ln != nil {
		s.logf("routes on %s:", s.URL())
		for _, r := range s.router.Routes() {
			auth := "no auth"
			if a := r.Authorizer; a != nil {
				auth = "JWT " + a.Name
				if len(r.Event.HTTP.Scopes) > 0 {
					auth += " scopes " + strings.Join(r.Event.HTTP.Scopes, ",")
				}
			}
			kind := "HttpApi v" + r.Event.HTTP.PayloadFormatVersion
			if r.Event.Type == samtemplate.EventAPI {
				kind = "Api v1.0"
			}
			s.logf("  %-7s %-30s -> %s (%s, %s)", r.Event.HTTP.Method, r.Event.HTTP.Path, r.Function.ID, kind, auth)
		}
		if c := s.router.cors; c != nil {
			s.logf("CORS: allowed origins %s (preflights are answered by the gateway)", strings.Join(c.AllowOrigins, ", "))
		}
		for _, r := range s.router.Routes() {
			if r.Authorizer != nil {
				s.logf("NOTE: JWT authorizers are emulated WITHOUT signature verification: any well-formed token with valid exp (and iss/aud when the template sets them) is accepted")
				break
			}
		}
	}
	if s.lambda != nil {
		fn := firstOr(functionIDs(s.tmpl), "Fn")
		s.logf("Lambda endpoint (like sam local start-lambda): %s  e.g. make event FN=%s > ev.json && AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_DEFAULT_REGION=%s aws lambda invoke --endpoint-url %s --function-name %s --payload fileb://ev.json out.json",
			s.lambda.URL(), fn, s.cfg.Region, s.lambda.URL(), fn)
	}
	if u := s.StorefrontURL(); u != "" {
		s.logf("storefront (a cart and Pay Now in your browser, calling %s cross-origin): %s", s.URL(), u)
		if !s.allowsOrigin(u) {
			s.logf("WARNING: the API's CorsConfiguration does not allow the storefront's origin %s: the browser will refuse its calls; make dev PARAMS=\"AllowedOrigins=%s\" allows it", u, u)
		}
	}
	s.logf("DynamoDB engine: %s", s.endpoint)
	for _, line := range inspectHints(s.endpoint, s.cfg.Region, s.tmpl) {
		s.logf("%s", line)
	}
	if s.ln != nil {
		s.logf("ready: %s", s.URL())
	} else {
		s.logf("ready")
	}
}

func firstOr(l []string, def string) string {
	if len(l) > 0 {
		return l[0]
	}
	return def
}

// URL is the gateway's base URL, e.g. http://127.0.0.1:3000 ("" without a
// gateway).
func (s *Stack) URL() string {
	if s.ln == nil {
		return ""
	}
	return "http://" + s.ln.Addr().String()
}

// LambdaURL is the Lambda Invoke API endpoint's base URL ("" without one).
func (s *Stack) LambdaURL() string {
	if s.lambda == nil {
		return ""
	}
	return s.lambda.URL()
}

// EngineEndpoint is the DynamoDB endpoint the functions use.
func (s *Stack) EngineEndpoint() string { return s.endpoint }

// Template is the resolved template being served.
func (s *Stack) Template() *Template { return s.tmpl }

// TableName maps a table's logical id to its local physical name.
func (s *Stack) TableName(logicalID string) string { return s.tmpl.TableName(logicalID) }

// Restarts reports how many emulator instances of a function were replaced
// (after a crash or timeout) in its current pool.
func (s *Stack) Restarts(function string) int {
	if p := s.pools[function]; p != nil {
		return p.Load().restartCount()
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
	s.bgcancel()
	var err error
	if s.srv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		if e := s.srv.Shutdown(ctx); e != nil {
			s.srv.Close()
		}
		cancel()
		<-s.served
	}
	s.lambda.close()
	s.storefront.close()
	s.bg.Wait()
	var wg sync.WaitGroup
	for _, p := range s.pools {
		wg.Add(1)
		go func() { defer wg.Done(); p.Load().close() }()
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

// Routes lists the gateway's routes.
func (s *Stack) Routes() []*Route { return s.router.Routes() }
