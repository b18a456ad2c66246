// Package localddb starts the local DynamoDB engines on a loopback port:
// moto served single-threaded by local/motoserver.py (stock moto_server is
// not safe under concurrency) and dynalite from local/node_modules. It is
// the one launcher behind ddblocal/ddbtest (tests) and local/devstack (the
// local stack): it waits for the line the engine prints once it accepts
// connections, reports a missing tool as a *PrerequisiteError that says
// how to install it, makes the engine die with its parent on Linux and
// stops it. Engine is the repository's one engine type: a started engine,
// or an External one (an endpoint this process did not start), with the
// clients the tests use (Client, NewClient: one attempt per request over
// OwnBodyTransport).
package localddb

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// ErrPrerequisite matches every *PrerequisiteError.
var ErrPrerequisite = errors.New("missing prerequisite")

// Install hints for the engines' prerequisites.
const (
	InstallMoto     = "./local/check-prereqs.sh (it sets up moto in .dev/venv)"
	InstallDynalite = "npm ci --prefix local"
)

// PrerequisiteError reports a missing tool; Detail says how to get it.
type PrerequisiteError struct{ Detail string }

// Error returns "missing prerequisite: " and the detail.
func (e *PrerequisiteError) Error() string { return ErrPrerequisite.Error() + ": " + e.Detail }

// Is reports whether target is ErrPrerequisite.
func (e *PrerequisiteError) Is(target error) bool { return target == ErrPrerequisite }

// DefaultTimeout bounds how long Start waits for the engine to listen.
const DefaultTimeout = 90 * time.Second

// Options tune how an engine is started and stopped.
type Options struct {
	// Timeout bounds the wait for the engine to listen (DefaultTimeout if 0).
	Timeout time.Duration
	// ProcessGroup runs the engine in its own process group (on Linux),
	// which Stop then signals as a whole.
	ProcessGroup bool
	// StopGrace is how long Stop waits after SIGTERM before it kills the
	// engine; 0 kills it at once.
	StopGrace time.Duration
	// Port is moto's port (0: a free one).
	Port int
	// Journal, when set, makes moto persistent: it replays this file at
	// start and appends every write it applies (local/motoserver.py).
	Journal string
}

// Engine is a running local DynamoDB engine.
type Engine struct {
	// Name is "moto", "dynalite" or "external".
	Name string
	// Endpoint is the base URL, for example http://127.0.0.1:41234.
	Endpoint string

	cmd      *exec.Cmd
	opts     Options
	stderr   *tailBuffer
	done     chan struct{}
	stopOnce sync.Once
}

// RootMarker is a file only the repository root has, relative to it: the
// engine script StartMoto runs. RepoRoot looks for it rather than for
// go.mod, which the nested modules (pkg/idemddb, ddblocal) have too.
const RootMarker = "local/motoserver.py"

// RepoRoot returns the repository root, the nearest directory holding
// RootMarker, searching upwards from the working directory (go test runs
// each package in its own directory, in whichever module it belongs to).
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, filepath.FromSlash(RootMarker))); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New(RootMarker + " not found above the working directory")
		}
		dir = parent
	}
}

// FreePort asks the kernel for a free TCP port on 127.0.0.1.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// StartMoto starts root/local/motoserver.py on a loopback port (a free one
// unless opts.Port is set) with the Python of Python(root). A missing
// python, or the script's exit code 3 (moto not installed), is a
// *PrerequisiteError.
func StartMoto(ctx context.Context, root string, opts Options) (*Engine, error) {
	py, err := Python(root)
	if err != nil {
		return nil, err
	}
	args := []string{filepath.Join(root, "local", "motoserver.py"), "--host", "127.0.0.1", "--port", fmt.Sprint(opts.Port)}
	if opts.Journal != "" {
		args = append(args, "--journal", opts.Journal)
	}
	return start(ctx, "moto", opts, py, args...)
}

// VenvDir is the project-local virtual environment local/check-prereqs.sh
// creates when moto is missing, relative to the repository root.
const VenvDir = ".dev/venv"

// Python returns the interpreter that runs moto: $PYTHON when set, else
// root/.dev/venv/bin/python when that venv exists, else python3 on PATH.
func Python(root string) (string, error) {
	if p := os.Getenv("PYTHON"); p != "" {
		if lp, err := exec.LookPath(p); err == nil {
			return lp, nil
		}
		return "", &PrerequisiteError{Detail: "PYTHON=" + p + " is not an executable"}
	}
	venv := filepath.Join(root, filepath.FromSlash(VenvDir), "bin", "python")
	if fi, err := os.Stat(venv); err == nil && !fi.IsDir() {
		return venv, nil
	}
	py, err := exec.LookPath("python3")
	if err != nil {
		return "", &PrerequisiteError{Detail: "python3 is not on PATH. Install Python 3, then run ./local/check-prereqs.sh, which sets up moto"}
	}
	return py, nil
}

// StartDynalite starts dynalite (npm dynalite@4.0.0, installed under
// root/local/node_modules by `npm ci --prefix local`) on a free loopback port.
func StartDynalite(ctx context.Context, root string, opts Options) (*Engine, error) {
	bin := filepath.Join(root, "local", "node_modules", ".bin", "dynalite")
	if _, err := os.Stat(bin); err != nil {
		return nil, &PrerequisiteError{Detail: "dynalite is not installed; run: " + InstallDynalite}
	}
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	return start(ctx, "dynalite", opts, bin, "--host", "127.0.0.1", "--port", fmt.Sprint(port))
}

// start runs the engine and waits for the line announcing its address:
// moto prints "listening on http://HOST:PORT", dynalite
// "Dynalite listening at: URL".
func start(ctx context.Context, name string, opts Options, bin string, args ...string) (*Engine, error) {
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "AWS_ACCESS_KEY_ID=test", "AWS_SECRET_ACCESS_KEY=test", "AWS_DEFAULT_REGION=us-east-1")
	setProcAttrs(cmd, opts.ProcessGroup)
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	e := &Engine{Name: name, cmd: cmd, opts: opts, stderr: &tailBuffer{max: 8192}, done: make(chan struct{})}
	cmd.Stderr = e.stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s (%s): %w", name, bin, err)
	}
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			line := sc.Text()
			if i := strings.Index(line, "http://"); i >= 0 && strings.Contains(line, "listening") {
				select {
				case found <- strings.TrimSpace(line[i:]):
				default:
				}
			}
		}
		_, _ = io.Copy(io.Discard, out)
	}()
	go func() { _ = cmd.Wait(); close(e.done) }()
	timer := time.NewTimer(opts.Timeout)
	defer timer.Stop()
	select {
	case ep := <-found:
		e.Endpoint = ep
		return e, nil
	case <-e.done:
		msg := e.Stderr()
		if cmd.ProcessState != nil && cmd.ProcessState.ExitCode() == 3 {
			return nil, &PrerequisiteError{Detail: msg}
		}
		return nil, fmt.Errorf("local DynamoDB engine %s exited before listening: %s", name, msg)
	case <-ctx.Done():
		e.Stop()
		return nil, ctx.Err()
	case <-timer.C:
		e.Stop()
		return nil, fmt.Errorf("local DynamoDB engine %s did not start within %s: %s", name, opts.Timeout, e.Stderr())
	}
}

// Done is closed once the engine process has exited.
func (e *Engine) Done() <-chan struct{} { return e.done }

// ProcessState describes the exited process; it is nil before Done is closed.
func (e *Engine) ProcessState() *os.ProcessState {
	select {
	case <-e.done:
		return e.cmd.ProcessState
	default:
		return nil
	}
}

// Stderr returns the last 8 KiB the engine wrote to stderr, trimmed.
func (e *Engine) Stderr() string { return strings.TrimSpace(e.stderr.String()) }

// Stop ends the engine process and waits for it to exit. It is safe to
// call more than once, and on a nil Engine.
func (e *Engine) Stop() {
	if e == nil || e.cmd == nil || e.cmd.Process == nil {
		return
	}
	e.stopOnce.Do(func() {
		if e.opts.StopGrace > 0 {
			terminate(e.cmd, e.opts.ProcessGroup)
			select {
			case <-e.done:
				return
			case <-time.After(e.opts.StopGrace):
			}
		}
		kill(e.cmd, e.opts.ProcessGroup)
		<-e.done
	})
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > t.max {
		t.b = append([]byte(nil), t.b[len(t.b)-t.max:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.b)
}
