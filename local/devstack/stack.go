// Package devstack runs a SAM template locally without Docker: a
// race-safe local DynamoDB engine (moto served single-threaded by
// local/motoserver.py) with the template's tables and queues, every
// AWS::Serverless::Function built as a Linux bootstrap and run under pools of
// AWS Lambda Runtime Interface Emulator processes, an API Gateway emulation
// on a loopback port, a Lambda Invoke API endpoint (like `sam local
// start-lambda`), the functions' event sources, hot reload of edited
// functions and the storefront. `make dev` runs it through
// local/cmd/devstack; end-to-end tests call Start directly.
//
// This package holds only the wiring (Config, Start, Stack) and the
// user-facing tools (InvokeOnce, SampleEvent, the storefront, the banner's
// inspect hints). Each concern is a package of its own:
//   - template: template.yaml resolved for local serving;
//   - gateway: routes, CORS, JWT authorizers, request -> Lambda event;
//   - lambda: builds, the emulator pools, hot reload, the Invoke API;
//   - eventsource: stream and queue mappings, filters, schedules;
//   - provision: the tables and queues on the engine.
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
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/acme/idemcheckout/ddblocal/localddb"
	"github.com/acme/idemcheckout/internal/samtemplate"
	"github.com/acme/idemcheckout/local/devstack/eventsource"
	"github.com/acme/idemcheckout/local/devstack/gateway"
	"github.com/acme/idemcheckout/local/devstack/lambda"
	"github.com/acme/idemcheckout/local/devstack/provision"
	"github.com/acme/idemcheckout/local/devstack/template"
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
	// eventsource.DefaultPollInterval, 250 ms; DEV_EVENT_POLL); negative runs
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
	tmpl     *template.Template
	router   *gateway.Router
	gateway  *gateway.Gateway
	engine   *localddb.Engine // nil for an external engine
	endpoint string
	clients  provision.Clients
	// queueURLs are the template's queues on the engine, by logical id.
	queueURLs map[string]string
	pools     *lambda.Pools
	sources   *eventsource.Sources
	ln        net.Listener
	srv       *http.Server
	lambda    *lambda.API
	// storefront serves web/ on its own origin (nil: none).
	storefront *storefront
	lock       *os.File
	logf       func(string, ...any)
	served     chan struct{}

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
	s := &Stack{cfg: cfg, logf: cfg.Logger.Printf, served: make(chan struct{})}
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
	if err := s.startPools(ctx, b.Builds); err != nil {
		return nil, err
	}
	if err := s.listen(); err != nil {
		return nil, err
	}
	if err := s.startEventSources(ctx); err != nil {
		return nil, err
	}
	if s.cfg.Watch {
		if err := s.pools.Watch(ctx, s.cfg.WatchInterval); err != nil {
			return nil, err
		}
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
		cfg.EventPollInterval = eventsource.DefaultPollInterval
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
	tmpl, err := template.Load(s.cfg.Template, s.cfg.ParameterOverrides, s.cfg.Region)
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
	routes, err := gateway.Routes(tmpl)
	if err != nil {
		return err
	}
	s.router = gateway.NewRouter(routes)
	_, err = lambda.GoTool()
	return err
}

func functionIDs(tm *template.Template) []string {
	var ids []string
	for _, f := range tm.Functions() {
		ids = append(ids, f.ID)
	}
	return ids
}

// functions are the functions the stack runs: Config.Functions, else all.
func (s *Stack) functions() []samtemplate.Function {
	var out []samtemplate.Function
	for _, f := range s.tmpl.Functions() {
		if len(s.cfg.Functions) == 0 || slices.Contains(s.cfg.Functions, f.ID) {
			out = append(out, f)
		}
	}
	return out
}

// lambdaConfig configures the functions' builds and emulators.
func (s *Stack) lambdaConfig() lambda.Config {
	return lambda.Config{
		Root: s.cfg.Root, BuildDir: filepath.Join(s.cfg.StateDir, "build"), CacheDir: s.cfg.CacheDir,
		Instances: s.cfg.Instances, Region: s.cfg.Region, Engine: s.endpoint,
		Output: s.cfg.FunctionOutput, Logf: s.logf,
	}
}

// built is what startBuilds produces.
type built struct {
	lambda.Builds
	err error
}

// startBuilds builds the emulator and the functions in the background,
// saying what it fetches and builds (the first run downloads modules).
func (s *Stack) startBuilds(ctx context.Context) <-chan built {
	done := make(chan built, 1)
	cfg, fns := s.lambdaConfig(), s.functions() // before the engine sets s.endpoint
	go func() {
		b, err := lambda.Build(ctx, cfg, fns)
		done <- built{b, err}
	}()
	return done
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
	e, err := localddb.StartMoto(ctx, s.cfg.Root, engineOptions(s.cfg.EnginePort, journal))
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
	s.clients = provision.NewClients(s.endpoint, s.cfg.Region)
	if err := provision.EnsureTables(tctx, s.clients.DynamoDB, s.tmpl, s.logf); err != nil {
		return err
	}
	urls, err := provision.EnsureQueues(tctx, s.clients.SQS, s.tmpl, s.logf)
	s.queueURLs = urls
	return err
}

// startPools starts the functions' emulators, and the gateway in front
// of them.
func (s *Stack) startPools(ctx context.Context, b lambda.Builds) error {
	p, err := lambda.Start(ctx, s.lambdaConfig(), s.functions(), b)
	if err != nil {
		return err
	}
	s.pools = p
	s.gateway = gateway.New(s.router, p, s.logf)
	return nil
}

// startEventSources starts the functions' schedules and event source
// mappings.
func (s *Stack) startEventSources(ctx context.Context) error {
	src, err := eventsource.Start(ctx, eventsource.Config{
		Template: s.tmpl, Functions: s.functions(), Invoker: s.pools, Region: s.cfg.Region,
		PollInterval: s.cfg.EventPollInterval, ScheduleEvery: s.cfg.ScheduleEvery,
		DynamoDB: s.clients.DynamoDB, Streams: s.clients.Streams, SQS: s.clients.SQS, QueueURLs: s.queueURLs,
		Logf: s.logf,
	})
	s.sources = src
	return err
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
		l, err := s.pools.ServeAPI(net.JoinHostPort(s.cfg.Host, strconv.Itoa(s.cfg.LambdaPort)))
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
		for _, line := range s.router.Describe() {
			s.logf("%s", line)
		}
	}
	if s.lambda != nil {
		fn := firstOr(functionIDs(s.tmpl), "Fn")
		s.logf("Lambda endpoint (like sam local start-lambda): %s  e.g. make event FN=%s > ev.json && AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_DEFAULT_REGION=%s aws lambda invoke --endpoint-url %s --function-name %s --payload fileb://ev.json out.json",
			s.lambda.URL(), fn, s.cfg.Region, s.lambda.URL(), fn)
	}
	if u := s.StorefrontURL(); u != "" {
		s.logf("storefront (a cart and Pay Now in your browser, calling %s cross-origin): %s", s.URL(), u)
		if !s.router.AllowsOrigin(u) {
			s.logf("WARNING: the API's CorsConfiguration does not allow the storefront's origin %s: the browser will refuse its calls; make dev PARAMS=\"AllowedOrigins=%s\" allows it", u, u)
		}
	}
	// A stack that serves nothing (make invoke's, run alone) stops its own
	// engine as soon as the call returns: no commands to look inside it.
	if s.ln != nil || s.lambda != nil || s.engine == nil {
		s.logf("DynamoDB engine: %s", s.endpoint)
		for _, line := range inspectHints(s.endpoint, s.cfg.Region, s.tmpl) {
			s.logf("%s", line)
		}
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
func (s *Stack) Template() *template.Template { return s.tmpl }

// TableName maps a table's logical id to its local physical name.
func (s *Stack) TableName(logicalID string) string { return s.tmpl.TableName(logicalID) }

// Restarts reports how many emulator instances of a function were replaced
// (after a crash or timeout) in its current pool.
func (s *Stack) Restarts(function string) int { return s.pools.Restarts(function) }

// KillRunning kills the emulator instances of function that are serving
// an invocation right now, as the crash of their execution environment
// would (out of memory, a host failure): each of those invocations fails
// as a crash, and the pool starts a fresh instance in its place. It
// returns how many it killed. For fault-injection tests.
func (s *Stack) KillRunning(function string) int { return s.pools.KillRunning(function) }

// SetEventSourceEnabled turns an event source mapping's polling on or off,
// as `aws lambda update-event-source-mapping --[no-]enabled` does; name is
// "Function.Event" (the event's name, or the mapping resource's logical
// id). Records that arrive meanwhile wait in their stream or queue. It
// returns once no batch of the mapping is in flight.
func (s *Stack) SetEventSourceEnabled(name string, enabled bool) error {
	return s.sources.SetEnabled(name, enabled)
}

// Poll checks the watched sources once and rebuilds what changed and has
// stayed unchanged since the previous poll (so an edit is picked up by the
// second Poll after it). The background watcher calls it every
// WatchInterval; with a negative interval, tests step it. Without Watch it
// does nothing.
func (s *Stack) Poll(ctx context.Context) []lambda.Reload { return s.pools.Poll(ctx) }

// ServeHTTP is the API Gateway emulation (package gateway).
func (s *Stack) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.gateway.ServeHTTP(w, r) }

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
	s.lambda.Close()
	s.storefront.close()
	s.sources.Close()
	s.pools.Close()
	s.engine.Stop()
	if s.lock != nil {
		_ = syscall.Flock(int(s.lock.Fd()), syscall.LOCK_UN)
		err = s.lock.Close()
		s.lock = nil
	}
	return err
}

// Routes lists the gateway's routes.
func (s *Stack) Routes() []*gateway.Route { return s.router.Routes() }

// engineOptions are the options of the moto engine the stack starts on
// port (0: a free one); with a journal path the engine replays it and
// journals every write (persistent mode). The engine runs in its own
// process group and dies with us (Pdeathsig).
func engineOptions(port int, journal string) localddb.Options {
	return localddb.Options{
		Timeout:      90 * time.Second,
		ProcessGroup: true,
		StopGrace:    3 * time.Second,
		Port:         port,
		Journal:      journal,
	}
}

// ErrPrerequisite reports a missing tool; the message says how to get it.
// It matches the engine launcher's *localddb.PrerequisiteError too.
var ErrPrerequisite = localddb.ErrPrerequisite

// StartEngine starts local/motoserver.py under root on a free loopback
// port, for tools and tests that want to put something between the stack
// and the engine, or share one engine between stacks
// (Config.EngineEndpoint).
func StartEngine(ctx context.Context, root string) (*localddb.Engine, error) {
	return localddb.StartMoto(ctx, root, engineOptions(0, ""))
}
