package devstack

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"time"
)

// Hot reload. The watcher polls the modification time and size of every
// Go file (and embed-able file) in each function's package and in the
// local packages it imports (go list -deps: the main module's and those of
// modules replaced by a local folder, such as the library). A change that
// is still the same at the next poll (the debounce: one poll interval)
// rebuilds that function into a new directory and swaps its emulator pool:
// requests already in flight finish on the old build, new requests go to
// the new one, and the engine and its data are untouched. A build that
// fails logs the compiler's output and leaves the old build serving.

// Reload is one rebuild the watcher made.
type Reload struct {
	Function string
	// Err is a *BuildError when the function did not compile (the previous
	// build keeps serving), or why the new emulators did not start.
	Err  error
	Took time.Duration
}

type watcher struct {
	s   *Stack
	mu  sync.Mutex // one poll at a time
	fns []*watched
}

type watched struct {
	fn        Function
	dirs      []string
	built     string // sources' fingerprint of the running build
	seen      string // fingerprint at the previous poll
	gen       int
	bootstrap string
}

// startWatcher records the sources of each running function's build and,
// with a positive WatchInterval, polls them in the background.
func (s *Stack) startWatcher(ctx context.Context, b builds) error {
	if !s.cfg.Watch {
		return nil
	}
	w := &watcher{s: s}
	for _, f := range s.tmpl.Functions() {
		if !s.runs(f.ID) {
			continue
		}
		dirs, err := s.packageDirs(ctx, &f)
		if err != nil {
			return err
		}
		fp := fingerprint(dirs)
		w.fns = append(w.fns, &watched{fn: f, dirs: dirs, built: fp, seen: fp, bootstrap: b.bins[f.ID]})
	}
	s.watcher = w
	s.logf("hot reload: watching the sources of %d functions (edits rebuild and swap the function; the engine's data stays)", len(w.fns))
	if s.cfg.WatchInterval > 0 {
		s.every(s.cfg.WatchInterval, func(time.Time) { w.poll(s.bgctx) })
	}
	return nil
}

// Poll checks the watched sources once and rebuilds what changed and has
// stayed unchanged since the previous poll (so an edit is picked up by the
// second Poll after it). The background watcher calls it every
// WatchInterval; with a negative interval, tests step it.
func (s *Stack) Poll(ctx context.Context) []Reload {
	if s.watcher == nil {
		return nil
	}
	return s.watcher.poll(ctx)
}

func (w *watcher) poll(ctx context.Context) []Reload {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []Reload
	for _, wf := range w.fns {
		cur := fingerprint(wf.dirs)
		if cur == wf.built || cur != wf.seen {
			wf.seen = cur
			continue
		}
		r := w.rebuild(ctx, wf)
		if ctx.Err() != nil {
			return out
		}
		out = append(out, r)
	}
	return out
}

func (w *watcher) rebuild(ctx context.Context, wf *watched) Reload {
	s := w.s
	start := time.Now()
	if dirs, err := s.packageDirs(ctx, &wf.fn); err == nil {
		wf.dirs = dirs // an edit may add an import
	}
	fp := fingerprint(wf.dirs)
	wf.built, wf.seen = fp, fp
	wf.gen++
	dir := s.buildDir(wf.fn.ID, wf.gen)
	bin, err := buildFunction(ctx, s.cfg.Root, dir, &wf.fn)
	var be *BuildError
	if errors.As(err, &be) {
		s.logf("reload: %s does not build; the previous build keeps serving:\n%s", wf.fn.ID, be.Output)
		_ = os.RemoveAll(dir)
		return Reload{Function: wf.fn.ID, Err: err, Took: time.Since(start)}
	}
	var p *pool
	if err == nil {
		p, err = s.newPool(ctx, wf.fn, bin, s.pools[wf.fn.ID].Load().lastID())
	}
	if err != nil {
		s.logf("reload: %s: %v; the previous build keeps serving", wf.fn.ID, err)
		_ = os.RemoveAll(dir)
		return Reload{Function: wf.fn.ID, Err: err, Took: time.Since(start)}
	}
	old := s.pools[wf.fn.ID].Swap(p)
	oldBin := wf.bootstrap
	wf.bootstrap = bin
	s.bg.Add(1)
	go func() {
		defer s.bg.Done()
		old.retire() // in-flight requests finish on the old build
		_ = os.RemoveAll(filepath.Dir(oldBin))
	}()
	took := time.Since(start)
	s.logf("reload: %s rebuilt and swapped in %s (new requests run the new build; requests in flight finish on the old one)", wf.fn.ID, took.Round(10*time.Millisecond))
	return Reload{Function: wf.fn.ID, Took: took}
}

// packageDirs lists the directories of a function's package and of every
// local package it imports, as built for Linux: the main module's and those
// of modules replaced by a folder (the library, pkg/idemddb, is a module of
// its own that the root go.mod replaces with its folder).
func (s *Stack) packageDirs(ctx context.Context, f *Function) ([]string, error) {
	g, err := goTool()
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, g, "list", "-e", "-deps", "-tags", "lambda.norpc",
		"-f", "{{with .Module}}{{if or .Main (and .Replace (not .Replace.Version))}}{{$.Dir}}{{end}}{{end}}", codePackage(f))
	cmd.Dir = s.cfg.Root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+runtime.GOARCH)
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("hot reload: go list the packages of %s: %w", f.ID, err)
	}
	var dirs []string
	for line := range strings.Lines(string(out)) {
		if d := strings.TrimSpace(line); d != "" {
			dirs = append(dirs, d)
		}
	}
	return dirs, nil
}

// fingerprint digests the name, size and modification time of every file
// in dirs (not their subdirectories: those are packages of their own).
func fingerprint(dirs []string) string {
	h := sha256.New()
	for _, d := range dirs {
		entries, err := os.ReadDir(d)
		if err != nil {
			fmt.Fprintf(h, "%s: %v\n", d, err)
			continue
		}
		names := make([]string, 0, len(entries))
		for _, e := range entries {
			if !e.IsDir() {
				names = append(names, e.Name())
			}
		}
		sort.Strings(names)
		for _, n := range names {
			fi, err := os.Stat(filepath.Join(d, n))
			if err != nil {
				continue
			}
			fmt.Fprintf(h, "%s/%s %d %d\n", d, n, fi.Size(), fi.ModTime().UnixNano())
		}
	}
	return hex.EncodeToString(h.Sum(nil))
}
