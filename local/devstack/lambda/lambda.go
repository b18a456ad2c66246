package lambda

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/acme/idemcheckout/ddblocal/localddb"
	"github.com/acme/idemcheckout/internal/samtemplate"
)

// reportMemory replaces "Max Memory Used: N MB" in the emulator's REPORT
// line, which always repeats the memory size, with the peak resident set
// (VmHWM) of the function's runtime process, the closest local measure of
// what Lambda reports: the execution environment's peak memory so far.
func reportMemory(line string, riePid int) string {
	const field = "Max Memory Used: "
	i := strings.Index(line, field)
	if i < 0 {
		return line
	}
	end := strings.Index(line[i+len(field):], " MB")
	if end < 0 {
		return line
	}
	peak := 0
	for _, pid := range Descendants(riePid) {
		if kb := vmHWM(pid); kb > peak {
			peak = kb
		}
	}
	if peak == 0 {
		return line
	}
	mb := (peak + 1023) / 1024
	return line[:i+len(field)] + strconv.Itoa(mb) + line[i+len(field)+end:]
}

// vmHWM is a process's peak resident set size in kB (0 when unknown).
func vmHWM(pid int) int {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			n, _ := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
			return n
		}
	}
	return 0
}

// instance is one RIE process, serving one invoke at a time.
type instance struct {
	id   int
	cmd  *exec.Cmd
	addr string // the emulator's host:port
	url  string
	done chan struct{}
	log  instanceLog
}

// pool runs n RIE instances for one function; each serves one invoke at a
// time, callers queue on free when all are busy, and an instance that dies
// or times out is replaced.
type pool struct {
	fn        *samtemplate.Function
	rie       string
	bootstrap string
	env       []string
	out       io.Writer
	logf      func(string, ...any)
	free      chan *instance
	client    *http.Client

	mu       sync.Mutex
	idle     *sync.Cond // signalled when inflight drops
	all      map[*instance]bool
	busy     map[*instance]bool // serving an invoke
	restarts int
	closed   bool
	retired  bool // no new invokes: a newer build serves the function
	inflight int
	nextID   int
}

func newPool(ctx context.Context, fn *samtemplate.Function, rie, bootstrap string, env []string, n, firstID int, out io.Writer, logf func(string, ...any)) (*pool, error) {
	p := &pool{
		fn: fn, rie: rie, bootstrap: bootstrap, env: env, out: out, logf: logf, nextID: firstID,
		free:   make(chan *instance, n),
		all:    map[*instance]bool{},
		busy:   map[*instance]bool{},
		client: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: n, IdleConnTimeout: time.Minute}},
	}
	p.idle = sync.NewCond(&p.mu)
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
	return nil, fmt.Errorf("start Lambda emulator for %s: %w", p.fn.ID, lastErr)
}

// spawnOnce makes one attempt at starting an emulator instance.
func (p *pool) spawnOnce(ctx context.Context) (*instance, error) {
	id, ok := p.reserveID()
	if !ok {
		return nil, errPoolClosed
	}
	in, err := p.startProcess(id)
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		p.kill(in)
		return nil, errPoolClosed
	}
	p.all[in] = true
	p.mu.Unlock()
	if err := p.waitReady(ctx, in); err != nil {
		return nil, err
	}
	return in, nil
}

// errPoolClosed: the pool closed while an instance was starting.
var errPoolClosed = errors.New("pool closed")

// reserveID numbers the next instance; false once the pool is closed.
func (p *pool) reserveID() (int, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return 0, false
	}
	p.nextID++
	return p.nextID, true
}

// startProcess starts emulator instance id on two free loopback ports,
// its output copied line by line to the pool's output with the
// [Function#id] prefix.
func (p *pool) startProcess(id int) (*instance, error) {
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
	in := &instance{id: id, cmd: cmd, addr: addr, url: "http://" + addr + "/2015-03-31/functions/function/invocations", done: make(chan struct{})}
	go p.copyOutput(pr, in, fmt.Sprintf("[%s#%d] ", p.fn.ID, id))
	if err := cmd.Start(); err != nil {
		pw.Close()
		return nil, err
	}
	go func() {
		_ = cmd.Wait()
		pw.Close()
		close(in.done)
	}()
	return in, nil
}

// copyOutput copies an instance's output to the pool's, each line
// prefixed, with the peak memory in its REPORT lines (reportMemory), and
// to the log tail of the invocation that asked for one; once the instance
// is being stopped, its lines are dropped.
func (p *pool) copyOutput(pr *io.PipeReader, in *instance, prefix string) {
	sc := bufio.NewScanner(pr)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "REPORT RequestId:") && in.cmd.Process != nil {
			line = reportMemory(line, in.cmd.Process.Pid)
		}
		if in.log.line(line) {
			fmt.Fprintln(p.out, prefix+line)
		}
	}
	_, _ = io.Copy(io.Discard, pr)
}

// waitReady waits until the instance accepts TCP connections. Bounded:
// 400 polls.
func (p *pool) waitReady(ctx context.Context, in *instance) error {
	d := net.Dialer{Timeout: time.Second}
	for i := 0; i < 400; i++ {
		select {
		case <-in.done:
			p.forget(in)
			return fmt.Errorf("emulator exited during start (%v)", in.cmd.ProcessState)
		case <-ctx.Done():
			p.kill(in)
			return ctx.Err()
		default:
		}
		c, err := d.DialContext(ctx, "tcp", in.addr)
		if err == nil {
			c.Close()
			return nil
		}
		select {
		case <-in.done:
		case <-time.After(time.Duration(5+i) * time.Millisecond):
		}
	}
	p.kill(in)
	return errors.New("emulator did not accept connections")
}

func (p *pool) forget(in *instance) {
	p.mu.Lock()
	delete(p.all, in)
	p.mu.Unlock()
}

// kill stops an instance and everything it started.
func (p *pool) kill(in *instance) {
	desc := killTree(in.cmd.Process.Pid, syscall.SIGKILL)
	<-in.done
	waitGone(desc)
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
	p.logf("%s: replacing emulator instance #%d (%s)", p.fn.ID, in.id, why)
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
				p.logf("%s: could not restart an emulator instance: %v", p.fn.ID, err)
				return
			}
		}
	}()
}

// Invocation failures a FunctionError wraps.
var (
	errFunctionTimeout = errors.New("function timed out")
	errFunctionCrashed = errors.New("function failed")
	// errRetired: the pool was replaced by a newer build; invoke the
	// function's current pool instead.
	errRetired = errors.New("emulator pool retired")
)

// FunctionError is an invocation the function itself failed (an error it
// returned, a panic, a crash or a timeout). Payload is the error document
// Lambda returns for it ({"errorMessage", "errorType"}), which the Lambda
// endpoint sends with X-Amz-Function-Error: Unhandled and the gateway turns
// into a 502.
type FunctionError struct {
	Payload []byte
	Msg     string
	kind    error // errFunctionTimeout or errFunctionCrashed
}

// Error returns the kind and the message.
func (e *FunctionError) Error() string { return e.kind.Error() + ": " + e.Msg }

// Unwrap returns errFunctionTimeout or errFunctionCrashed.
func (e *FunctionError) Unwrap() error { return e.kind }

func newFunctionError(kind error, errorType, msg string) *FunctionError {
	b, _ := json.Marshal(map[string]string{"errorType": errorType, "errorMessage": msg})
	return &FunctionError{Payload: b, Msg: msg, kind: kind}
}

// enter counts an invoke in; false once the pool is retired or closed.
func (p *pool) enter() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.retired || p.closed {
		return false
	}
	p.inflight++
	return true
}

func (p *pool) leave() {
	p.mu.Lock()
	p.inflight--
	p.mu.Unlock()
	p.idle.Broadcast()
}

// retire stops new invokes, waits for the in-flight ones to finish on this
// pool's build, then closes it.
func (p *pool) retire() {
	p.mu.Lock()
	p.retired = true
	for p.inflight > 0 {
		p.idle.Wait()
	}
	p.mu.Unlock()
	p.close()
}

// invoke runs one event through a free instance. The template timeout is
// enforced here as well as inside the emulator: past it, the instance is
// killed and replaced, and the caller gets a *FunctionError. A retired pool
// answers errRetired.
// With tail non-nil, *tail gets the invocation's log tail.
func (p *pool) invoke(ctx context.Context, payload []byte, tail *[]byte) ([]byte, error) {
	if !p.enter() {
		return nil, errRetired
	}
	defer p.leave()
	return p.invokeOnce(ctx, payload, tail)
}

// acquire takes a free instance (waiting for one), replacing those that
// died while idle.
func (p *pool) acquire(ctx context.Context) (*instance, error) {
	for {
		var in *instance
		select {
		case in = <-p.free:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		select {
		case <-in.done: // died while idle
			p.replace(in, "emulator exited while idle")
		default:
			return in, nil
		}
	}
}

// setBusy marks in as serving an invoke (killBusy's targets), or not.
func (p *pool) setBusy(in *instance, busy bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if busy {
		p.busy[in] = true
	} else {
		delete(p.busy, in)
	}
}

func (p *pool) invokeOnce(ctx context.Context, payload []byte, tail *[]byte) ([]byte, error) {
	in, err := p.acquire(ctx)
	if err != nil {
		return nil, err
	}
	if tail != nil {
		c := in.log.begin()
		defer func() { *tail = c.tail() }()
	}
	p.setBusy(in, true)
	defer p.setBusy(in, false)
	timeout := p.fn.TimeoutOrDefault()
	timedOut := func() *FunctionError {
		p.replace(in, fmt.Sprintf("timed out after %s", timeout))
		return newFunctionError(errFunctionTimeout, "Sandbox.Timedout", fmt.Sprintf("Task timed out after %.2f seconds", timeout.Seconds()))
	}
	// The emulator reports its own timeout at fn.Timeout; allow it a moment
	// to do so before the gateway gives up on the instance.
	ictx, cancel := context.WithTimeout(ctx, timeout+750*time.Millisecond)
	defer cancel()
	req, err := http.NewRequestWithContext(ictx, http.MethodPost, in.url, bytes.NewReader(payload))
	if err != nil {
		p.release(in)
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
			return nil, timedOut()
		case ctx.Err() != nil:
			// The client went away mid-invoke; the instance may still be busy.
			p.replace(in, "client cancelled the request")
			return nil, ctx.Err()
		default:
			p.replace(in, "emulator failed: "+err.Error())
			return nil, newFunctionError(errFunctionCrashed, "Runtime.ExitError", "the runtime exited: "+err.Error())
		}
	}
	if bytes.Contains(body, []byte("Task timed out")) {
		// The emulator enforced AWS_LAMBDA_FUNCTION_TIMEOUT itself.
		return nil, timedOut()
	}
	if msg, isErr := functionError(body); isErr {
		lower := strings.ToLower(msg)
		if strings.Contains(lower, "timed out") || strings.Contains(lower, "timeout") {
			return nil, timedOut()
		}
		if resp.StatusCode >= 500 {
			// Crash or panic: the emulator restarts the runtime itself, but a
			// fresh instance is cheap and leaves no doubt about its state.
			p.replace(in, msg)
		} else {
			p.release(in)
		}
		return nil, &FunctionError{Payload: body, Msg: msg, kind: errFunctionCrashed}
	}
	if resp.StatusCode != http.StatusOK {
		p.replace(in, "emulator answered "+resp.Status)
		return nil, newFunctionError(errFunctionCrashed, "Runtime.ExitError", fmt.Sprintf("emulator answered %s: %s", resp.Status, body))
	}
	p.release(in)
	return body, nil
}

// release returns a healthy instance to the pool once the log tail of its
// invocation, if one was asked for, has its REPORT line.
func (p *pool) release(in *instance) {
	in.log.finish(in.done)
	p.free <- in
}

// killBusy kills the instances serving an invoke now, as a crash of
// their execution environment would: each invoke fails as a crash and the
// instance is replaced. It returns how many it killed.
func (p *pool) killBusy() int {
	p.mu.Lock()
	var pids []int
	for in := range p.busy {
		pids = append(pids, in.cmd.Process.Pid)
	}
	p.mu.Unlock()
	for _, pid := range pids {
		killTree(pid, syscall.SIGKILL)
	}
	return len(pids)
}

// lastID is the number of the pool's newest emulator instance.
func (p *pool) lastID() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.nextID
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
		in.log.stop()
		p.kill(in)
	}
	p.client.CloseIdleConnections()
}
