package devstack

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/acme/idemcheckout/internal/localddb"
)

// RIEModule is the pinned AWS Lambda Runtime Interface Emulator, built from
// the Go module proxy.
const RIEModule = "github.com/aws/aws-lambda-runtime-interface-emulator/cmd/aws-lambda-rie@v0.0.0-20261030222936-bef5c4ba774d"

func cleanEnv() []string { return os.Environ() }

func goTool() (string, error) {
	g, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("%w: the Go toolchain (go) is not on PATH. Install Go 1.26+ from https://go.dev/doc/install", ErrPrerequisite)
	}
	return g, nil
}

func hostArch() string { return runtime.GOARCH }

// buildRIE builds the emulator once into cacheDir and returns its path.
func buildRIE(ctx context.Context, cacheDir string) (string, error) {
	ver := RIEModule[strings.LastIndexByte(RIEModule, '@')+1:]
	dir := filepath.Join(cacheDir, "aws-lambda-rie-"+ver+"-"+runtime.GOOS+"-"+runtime.GOARCH)
	bin := filepath.Join(dir, "aws-lambda-rie")
	if fi, err := os.Stat(bin); err == nil && fi.Mode().IsRegular() {
		return bin, nil
	}
	g, err := goTool()
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	tmp, err := os.MkdirTemp(dir, "build-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	cmd := exec.CommandContext(ctx, g, "install", RIEModule)
	cmd.Dir = tmp
	cmd.Env = append(cleanEnv(), "GOBIN="+tmp, "CGO_ENABLED=0", "GOFLAGS=-buildvcs=false")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build the Lambda Runtime Interface Emulator (go install %s; it needs the Go module proxy once): %v\n%s", RIEModule, err, out)
	}
	if err := os.Rename(filepath.Join(tmp, "aws-lambda-rie"), bin); err != nil {
		return "", err
	}
	return bin, nil
}

// buildFunction builds one function's CodeUri as a Linux bootstrap for the
// host architecture (the template may say arm64; locally the host runs it).
func buildFunction(ctx context.Context, root, outDir string, f *Function) (string, error) {
	g, err := goTool()
	if err != nil {
		return "", err
	}
	dir := filepath.Join(outDir, f.LogicalID)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "bootstrap")
	pkg := "./" + strings.TrimPrefix(filepath.ToSlash(filepath.Clean(f.CodeURI)), "./")
	cmd := exec.CommandContext(ctx, g, "build", "-tags", "lambda.norpc", "-o", bin, pkg)
	cmd.Dir = root
	cmd.Env = append(cleanEnv(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+hostArch())
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build %s (CodeUri %s): %v\n%s", f.LogicalID, f.CodeURI, err, strings.TrimSpace(string(out)))
	}
	return bin, nil
}

// functionEnv is the environment one function instance runs with: the
// template's variables plus what Lambda itself sets, and nothing from the
// developer's shell (so AWS_PROFILE and friends cannot leak in).
func functionEnv(f *Function, region, engineEndpoint string) []string {
	env := map[string]string{
		"PATH": "/usr/local/bin:/usr/bin:/bin",
		"TZ":   "UTC",
		"LANG": "en_US.UTF-8",
	}
	for k, v := range f.Env {
		env[k] = v
	}
	// Set after the template's variables: Lambda reserves these names, and
	// locally the engine endpoint always wins (a template may declare
	// AWS_ENDPOINT_URL_DYNAMODB: "" so that `sam local --env-vars` can set it).
	for k, v := range map[string]string{
		"AWS_LAMBDA_FUNCTION_NAME":        f.LogicalID,
		"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": strconv.Itoa(f.MemorySize),
		"AWS_LAMBDA_FUNCTION_TIMEOUT":     strconv.Itoa(int(f.Timeout / time.Second)),
		"AWS_LAMBDA_FUNCTION_VERSION":     "$LATEST",
		"AWS_LAMBDA_LOG_GROUP_NAME":       "/aws/lambda/" + f.LogicalID,
		"AWS_LAMBDA_LOG_STREAM_NAME":      "local",
		"AWS_REGION":                      region,
		"AWS_DEFAULT_REGION":              region,
		"AWS_ACCESS_KEY_ID":               "test",
		"AWS_SECRET_ACCESS_KEY":           "test",
		"AWS_SESSION_TOKEN":               "test",
		"AWS_CONFIG_FILE":                 "/dev/null",
		"AWS_SHARED_CREDENTIALS_FILE":     "/dev/null",
		"AWS_EC2_METADATA_DISABLED":       "true",
		"AWS_ENDPOINT_URL_DYNAMODB":       engineEndpoint,
		"_HANDLER":                        f.Handler,
	} {
		env[k] = v
	}
	keys := make([]string, 0, len(env))
	for k := range env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]string, 0, len(env))
	for _, k := range keys {
		out = append(out, k+"="+env[k])
	}
	return out
}

// instance is one RIE process, serving one invoke at a time.
type instance struct {
	id   int
	cmd  *exec.Cmd
	url  string
	done chan struct{}
}

// pool runs n RIE instances for one function; each serves one invoke at a
// time, callers queue on free when all are busy, and an instance that dies
// or times out is replaced.
type pool struct {
	fn        *Function
	rie       string
	bootstrap string
	env       []string
	out       io.Writer
	logf      func(string, ...any)
	free      chan *instance
	client    *http.Client

	mu       sync.Mutex
	all      map[*instance]bool
	restarts int
	closed   bool
	nextID   int
}

func newPool(ctx context.Context, fn *Function, rie, bootstrap string, env []string, n int, out io.Writer, logf func(string, ...any)) (*pool, error) {
	p := &pool{
		fn: fn, rie: rie, bootstrap: bootstrap, env: env, out: out, logf: logf,
		free:   make(chan *instance, n),
		all:    map[*instance]bool{},
		client: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: n, IdleConnTimeout: time.Minute}},
	}
	type res struct {
		in  *instance
		err error
	}
	ch := make(chan res, n)
	for i := 0; i < n; i++ {
		go func() {
			in, err := p.spawn(ctx)
			ch <- res{in, err}
		}()
	}
	var firstErr error
	for i := 0; i < n; i++ {
		r := <-ch
		if r.err != nil {
			if firstErr == nil {
				firstErr = r.err
			}
			continue
		}
		p.free <- r.in
	}
	if firstErr != nil {
		p.close()
		return nil, firstErr
	}
	return p, nil
}

// spawn starts an RIE process and waits until it accepts connections.
func (p *pool) spawn(ctx context.Context) (*instance, error) {
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		in, err := p.spawnOnce(ctx)
		if err == nil {
			return in, nil
		}
		lastErr = err
		if ctx.Err() != nil {
			break
		}
	}
	return nil, fmt.Errorf("start Lambda emulator for %s: %w", p.fn.LogicalID, lastErr)
}

func (p *pool) spawnOnce(ctx context.Context) (*instance, error) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil, errors.New("pool closed")
	}
	p.nextID++
	id := p.nextID
	p.mu.Unlock()
	port, err := localddb.FreePort()
	if err != nil {
		return nil, err
	}
	apiPort, err := localddb.FreePort()
	if err != nil {
		return nil, err
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	cmd := exec.Command(p.rie,
		"--runtime-interface-emulator-address", addr,
		"--runtime-api-address", "127.0.0.1:"+strconv.Itoa(apiPort),
		"--log-level", "error",
		p.bootstrap)
	cmd.Dir = filepath.Dir(p.bootstrap)
	// GOMAXPROCS=1 (unless the template sets it; a later value wins): a
	// 256 MB Lambda gets a fraction of a vCPU, and a dozen emulator and
	// function processes each spinning two Ps on a laptop take the CPU the
	// single-threaded engine needs (devload: ~85% of the engine's throughput
	// without it, ~95% with it).
	cmd.Env = append(append([]string{"GOMAXPROCS=1"}, p.env...), "LAMBDA_TASK_ROOT="+cmd.Dir)
	setProcAttrs(cmd)
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	prefix := fmt.Sprintf("[%s#%d] ", p.fn.LogicalID, id)
	go func() {
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64*1024), 1024*1024)
		for sc.Scan() {
			fmt.Fprintln(p.out, prefix+sc.Text())
		}
		_, _ = io.Copy(io.Discard, pr)
	}()
	if err := cmd.Start(); err != nil {
		pw.Close()
		return nil, err
	}
	in := &instance{id: id, cmd: cmd, url: "http://" + addr + "/2015-03-31/functions/function/invocations", done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		pw.Close()
		close(in.done)
	}()
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		p.kill(in)
		return nil, errors.New("pool closed")
	}
	p.all[in] = true
	p.mu.Unlock()
	// Readiness: the emulator accepts TCP connections. Bounded: 400 polls.
	d := net.Dialer{Timeout: time.Second}
	for i := 0; i < 400; i++ {
		select {
		case <-in.done:
			p.forget(in)
			return nil, fmt.Errorf("emulator exited during start (%v)", cmd.ProcessState)
		case <-ctx.Done():
			p.kill(in)
			return nil, ctx.Err()
		default:
		}
		c, err := d.DialContext(ctx, "tcp", addr)
		if err == nil {
			c.Close()
			return in, nil
		}
		select {
		case <-in.done:
		case <-time.After(time.Duration(5+i) * time.Millisecond):
		}
	}
	p.kill(in)
	return nil, errors.New("emulator did not accept connections")
}

func (p *pool) forget(in *instance) {
	p.mu.Lock()
	delete(p.all, in)
	p.mu.Unlock()
}

// kill stops an instance and everything it started.
func (p *pool) kill(in *instance) {
	killTree(in.cmd.Process.Pid, syscall.SIGKILL)
	<-in.done
	p.forget(in)
}

// replace kills in and starts a fresh instance in its place, in the
// background; the slot returns to the pool when the new one is ready.
func (p *pool) replace(in *instance, why string) {
	p.kill(in)
	p.mu.Lock()
	p.restarts++
	closed := p.closed
	p.mu.Unlock()
	if closed {
		return
	}
	p.logf("%s: replacing emulator instance #%d (%s)", p.fn.LogicalID, in.id, why)
	go func() {
		for attempt := 0; ; attempt++ {
			n, err := p.spawn(context.Background())
			if err == nil {
				p.free <- n
				return
			}
			p.mu.Lock()
			closed := p.closed
			p.mu.Unlock()
			if closed || attempt >= 3 {
				p.logf("%s: could not restart an emulator instance: %v", p.fn.LogicalID, err)
				return
			}
		}
	}()
}

// Invocation errors.
var (
	errFunctionTimeout = errors.New("function timed out")
	errFunctionCrashed = errors.New("function failed")
)

// invoke runs one event through a free instance. The template timeout is
// enforced here as well as inside the emulator: past it, the instance is
// killed and replaced, and the caller gets errFunctionTimeout.
func (p *pool) invoke(ctx context.Context, payload []byte) ([]byte, error) {
	var in *instance
	select {
	case in = <-p.free:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	select {
	case <-in.done: // died while idle
		p.replace(in, "emulator exited while idle")
		return p.invoke(ctx, payload)
	default:
	}
	// The emulator reports its own timeout at fn.Timeout; allow it a moment
	// to do so before the gateway gives up on the instance.
	ictx, cancel := context.WithTimeout(ctx, p.fn.Timeout+750*time.Millisecond)
	defer cancel()
	req, err := http.NewRequestWithContext(ictx, http.MethodPost, in.url, bytes.NewReader(payload))
	if err != nil {
		p.free <- in
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := p.client.Do(req)
	var body []byte
	if err == nil {
		body, err = io.ReadAll(io.LimitReader(resp.Body, 16<<20))
		resp.Body.Close()
	}
	if err != nil {
		switch {
		case ictx.Err() == context.DeadlineExceeded && ctx.Err() == nil:
			p.replace(in, fmt.Sprintf("timed out after %s", p.fn.Timeout))
			return nil, errFunctionTimeout
		case ctx.Err() != nil:
			// The client went away mid-invoke; the instance may still be busy.
			p.replace(in, "client cancelled the request")
			return nil, ctx.Err()
		default:
			p.replace(in, "emulator failed: "+err.Error())
			return nil, fmt.Errorf("%w: %v", errFunctionCrashed, err)
		}
	}
	if bytes.Contains(body, []byte("Task timed out")) {
		// The emulator enforced AWS_LAMBDA_FUNCTION_TIMEOUT itself.
		p.replace(in, fmt.Sprintf("timed out after %s", p.fn.Timeout))
		return nil, fmt.Errorf("%w: %s", errFunctionTimeout, bytes.TrimSpace(body))
	}
	if msg, isErr := functionError(body); isErr {
		lower := strings.ToLower(msg)
		if strings.Contains(lower, "timed out") || strings.Contains(lower, "timeout") {
			p.replace(in, fmt.Sprintf("timed out after %s", p.fn.Timeout))
			return nil, fmt.Errorf("%w: %s", errFunctionTimeout, msg)
		}
		if resp.StatusCode >= 500 {
			// Crash or panic: the emulator restarts the runtime itself, but a
			// fresh instance is cheap and leaves no doubt about its state.
			p.replace(in, msg)
		} else {
			p.free <- in
		}
		return nil, fmt.Errorf("%w: %s", errFunctionCrashed, msg)
	}
	if resp.StatusCode != http.StatusOK {
		p.replace(in, "emulator answered "+resp.Status)
		return nil, fmt.Errorf("%w: emulator answered %s: %s", errFunctionCrashed, resp.Status, body)
	}
	p.free <- in
	return body, nil
}

func (p *pool) restartCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.restarts
}

// close stops every instance and its runtime process tree. SIGKILL at
// once: an emulator has nothing to flush, and a graceful RIE shutdown would
// reparent the bootstrap before we could find it.
func (p *pool) close() {
	p.mu.Lock()
	p.closed = true
	ins := make([]*instance, 0, len(p.all))
	for in := range p.all {
		ins = append(ins, in)
	}
	p.mu.Unlock()
	for _, in := range ins {
		p.kill(in)
	}
	p.client.CloseIdleConnections()
}
