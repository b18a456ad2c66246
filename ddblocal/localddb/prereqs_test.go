package localddb

import (
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// fakePython is a python3 stand-in: it logs every call, has moto when a
// moto-installed file sits next to its bin directory, makes a venv by
// copying itself, "installs" with pip by creating that file, and runs any
// other -c program (the index probe) with the real Python, so the probe
// really talks to the test's loopback index.
const fakePython = `#!/usr/bin/env bash
echo "$0 $*" >> "$FAKE_LOG"
here=$(cd "$(dirname "$0")" && pwd)
case "$1" in
-c)
  case "$2" in
  *"import moto"*) [ -e "$here/../moto-installed" ]; exit ;;
  *) exec "$REAL_PYTHON" "$@" ;;
  esac ;;
-m)
  case "$2" in
  venv) mkdir -p "$3/bin" && cp "$0" "$3/bin/python"; exit ;;
  pip) [ "$3" = install ] && touch "$here/../moto-installed"; exit ;;
  esac ;;
esac
exit 1
`

type prereqRun struct {
	root, log string
	out       string
	err       error
}

// runPrereqs runs local/check-prereqs.sh in a scratch project whose python3
// is fakePython, with PIP_INDEX_URL set to index. systemMoto gives the
// fake system Python moto.
func runPrereqs(t *testing.T, index string, systemMoto bool, env ...string) prereqRun {
	t.Helper()
	repo, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	real, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 is needed to run the index probe")
	}
	root := t.TempDir()
	script, err := os.ReadFile(filepath.Join(repo, "local", "check-prereqs.sh"))
	if err != nil {
		t.Fatal(err)
	}
	for path, body := range map[string]string{"local/check-prereqs.sh": string(script), "fakebin/python3": fakePython} {
		p := filepath.Join(root, path)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if systemMoto {
		if err := os.WriteFile(filepath.Join(root, "moto-installed"), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	r := prereqRun{root: root, log: filepath.Join(root, "calls.log")}
	cmd := exec.Command("bash", "local/check-prereqs.sh")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "PATH="+filepath.Join(root, "fakebin")+string(os.PathListSeparator)+os.Getenv("PATH"),
		"NEED_NODE=0", "PYTHON=", "FAKE_LOG="+r.log, "REAL_PYTHON="+real, "PIP_INDEX_URL="+index)
	cmd.Env = append(cmd.Env, env...)
	out, err := cmd.CombinedOutput()
	r.out, r.err = string(out), err
	return r
}

func (r prereqRun) calls(t *testing.T) string {
	b, err := os.ReadFile(r.log)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return string(b)
}

// A loopback package index that has moto.
func fakeIndex(t *testing.T) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/simple/moto/" {
			http.NotFound(w, r)
			return
		}
		_, _ = w.Write([]byte(`<a href="moto-5.2.1-py3-none-any.whl">moto-5.2.1-py3-none-any.whl</a>`))
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/simple"
}

// closedIndex is an index URL on a loopback port nothing listens on.
func closedIndex(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return "http://" + addr + "/simple"
}

// moto present: one import check, nothing installed, no index asked.
func TestPrereqsMotoPresent(t *testing.T) {
	r := runPrereqs(t, closedIndex(t), true)
	if r.err != nil {
		t.Fatalf("%v: %s", r.err, r.out)
	}
	calls := r.calls(t)
	if n := strings.Count(calls, "\n"); n != 1 || !strings.Contains(calls, "import moto") {
		t.Errorf("want exactly one python call, the import check; got:\n%s", calls)
	}
	if _, err := os.Stat(filepath.Join(r.root, ".dev", "venv")); err == nil {
		t.Error("a venv was created although moto is installed")
	}
}

// moto missing, index reachable: the pinned moto goes into .dev/venv, and
// the engine launcher then picks that interpreter.
func TestPrereqsMotoMissingIndexReachable(t *testing.T) {
	index := fakeIndex(t)
	r := runPrereqs(t, index, false)
	if r.err != nil {
		t.Fatalf("%v: %s", r.err, r.out)
	}
	calls := r.calls(t)
	for _, want := range []string{"-m venv .dev/venv", "install --quiet --disable-pip-version-check --index-url " + index + " moto[server]==5.2.1"} {
		if !strings.Contains(calls, want) {
			t.Errorf("no %q in the calls:\n%s", want, calls)
		}
	}
	if !strings.Contains(r.out, "setting up moto[server]==5.2.1 in .dev/venv") || !strings.Contains(r.out, "is set up in .dev/venv") {
		t.Errorf("output:\n%s", r.out)
	}
	t.Setenv("PYTHON", "")
	if py, err := Python(r.root); err != nil || py != filepath.Join(r.root, ".dev", "venv", "bin", "python") {
		t.Errorf("Python() = %s, %v; want the new venv's", py, err)
	}
}

// moto missing, index unreachable: exit 1 with the exact commands, and
// nothing half set up.
func TestPrereqsMotoMissingIndexUnreachable(t *testing.T) {
	index := closedIndex(t)
	r := runPrereqs(t, index, false)
	if r.err == nil {
		t.Fatalf("succeeded without moto:\n%s", r.out)
	}
	for _, want := range []string{"not reachable", "python3 -m venv .dev/venv && .dev/venv/bin/pip install 'moto[server]==5.2.1'", "PYTHON=/path/to/python make dev"} {
		if !strings.Contains(r.out, want) {
			t.Errorf("no %q in:\n%s", want, r.out)
		}
	}
	if strings.Contains(r.out, "Traceback") {
		t.Errorf("a stack trace:\n%s", r.out)
	}
	if _, err := os.Stat(filepath.Join(r.root, ".dev", "venv")); err == nil {
		t.Error("a venv was created without an index")
	}
}

// PYTHON= names the interpreter; it is used as it is, never replaced by a venv.
func TestPrereqsPythonOverride(t *testing.T) {
	dir := t.TempDir()
	py := filepath.Join(dir, "bin", "mypython")
	if err := os.MkdirAll(filepath.Dir(py), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(py, []byte(fakePython), 0o755); err != nil {
		t.Fatal(err)
	}
	r := runPrereqs(t, fakeIndex(t), false, "PYTHON="+py)
	if r.err == nil || !strings.Contains(r.out, "missing: moto in PYTHON="+py) || strings.Contains(r.calls(t), "venv") {
		t.Errorf("PYTHON without moto: %v\n%s\n%s", r.err, r.out, r.calls(t))
	}
	if err := os.WriteFile(filepath.Join(dir, "moto-installed"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	r = runPrereqs(t, closedIndex(t), false, "PYTHON="+py)
	if r.err != nil || !strings.Contains(r.calls(t), py+" -c") {
		t.Errorf("PYTHON with moto: %v\n%s\n%s", r.err, r.out, r.calls(t))
	}
	t.Setenv("PYTHON", py)
	if got, err := Python(t.TempDir()); err != nil || got != py {
		t.Errorf("Python() = %s, %v", got, err)
	}
}
