package lambda

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

	"github.com/acme/idemcheckout/internal/samtemplate"
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
	ps  *Pools
	mu  sync.Mutex // one poll at a time
	fns []*watched
}

type watched struct {
	fn        samtemplate.Function
	dirs      []string
	built     string // sources' fingerprint of the running build
	seen      string // fingerprint at the previous poll
	gen       int
	bootstrap string
}

// Watch records the sources of each function's build and, with a
// positive interval, polls them in the background until Close (hot
// reload); with a negative one only Poll polls them.
func (ps *Pools) Watch(ctx context.Context, interval time.Duration) error {
	w := &watcher{ps: ps}
	for _, f := range ps.fns {
		dirs, err := packageDirs(ctx, ps.cfg.Root, &f)
		if err != nil {
			return err
		}
		fp := fingerprint(dirs)
		w.fns = append(w.fns, &watched{fn: f, dirs: dirs, built: fp, seen: fp, bootstrap: ps.builds.Bootstraps[f.ID]})
	}
	ps.watcher = w
	ps.cfg.Logf("hot reload: watching the sources of %d functions (edits rebuild and swap the function; the engine's data stays)", len(w.fns))
	if interval > 0 {
		ps.bg.Add(1)
		go func() {
			defer ps.bg.Done()
			t := time.NewTicker(interval)
			defer t.Stop()
			for {
				select {
				case <-ps.bgctx.Done():
					return
				case <-t.C:
					w.poll(ps.bgctx)
				}
			}
		}()
	}
	return nil
}

// Poll checks the watched sources once and rebuilds what changed and has
// stayed unchanged since the previous poll (so an edit is picked up by the
// second Poll after it). The background watcher calls it every
// WatchInterval; with a negative interval, tests step it.
func (ps *Pools) Poll(ctx context.Context) []Reload {
	if ps.watcher == nil {
		return nil
	}
	return ps.watcher.poll(ctx)
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
	ps := w.ps
	start := time.Now()
	if dirs, err := packageDirs(ctx, ps.cfg.Root, &wf.fn); err == nil {
		wf.dirs = dirs // an edit may add an import
	}
	fp := fingerprint(wf.dirs)
	wf.built, wf.seen = fp, fp
	wf.gen++
	dir := ps.cfg.buildDir(wf.fn.ID, wf.gen)
	bin, err := buildFunction(ctx, ps.cfg.Root, dir, &wf.fn)
	var be *BuildError
	if errors.As(err, &be) {
		ps.cfg.Logf("reload: %s does not build; the previous build keeps serving:\n%s", wf.fn.ID, be.Output)
		_ = os.RemoveAll(dir)
		return Reload{Function: wf.fn.ID, Err: err, Took: time.Since(start)}
	}
	var p *pool
	if err == nil {
		p, err = ps.newPool(ctx, wf.fn, bin, ps.pools[wf.fn.ID].Load().lastID())
	}
	if err != nil {
		ps.cfg.Logf("reload: %s: %v; the previous build keeps serving", wf.fn.ID, err)
		_ = os.RemoveAll(dir)
		return Reload{Function: wf.fn.ID, Err: err, Took: time.Since(start)}
	}
	old := ps.pools[wf.fn.ID].Swap(p)
	oldBin := wf.bootstrap
	wf.bootstrap = bin
	ps.bg.Add(1)
	go func() {
		defer ps.bg.Done()
		old.retire() // in-flight requests finish on the old build
		_ = os.RemoveAll(filepath.Dir(oldBin))
	}()
	took := time.Since(start)
	ps.cfg.Logf("reload: %s rebuilt and swapped in %s (new requests run the new build; requests in flight finish on the old one)", wf.fn.ID, took.Round(10*time.Millisecond))
	return Reload{Function: wf.fn.ID, Took: took}
}

// packageDirs lists the directories of a function's package and of every
// local package it imports, as built for Linux: the main module's and those
// of modules replaced by a folder (the library, pkg/idemddb, is a module of
// its own that the root go.mod replaces with its folder).
func packageDirs(ctx context.Context, root string, f *samtemplate.Function) ([]string, error) {
	g, err := GoTool()
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, g, "list", "-e", "-deps", "-tags", "lambda.norpc",
		"-f", "{{with .Module}}{{if or .Main (and .Replace (not .Replace.Version))}}{{$.Dir}}{{end}}{{end}}", codePackage(f))
	cmd.Dir = root
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
