// Package sim checks the idempotency store's guarantees on many seeded,
// simulated schedules: concurrent callers over a few keys, on the in-memory
// engine (pkg/idemddb/ddbmem), under a fake clock (testing/synctest), with
// faults injected between the callers and the engine. The schedules and
// properties live in its tests (go test ./internal/sim); this file holds
// what they share with the command line: the parsing of seeds and budgets
// and the tally of what a run did.
package sim

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// ParseCount parses a seed or a budget given on the command line: a
// non-negative decimal integer. Anything else is a usage error naming the
// flag.
func ParseCount(flag, s string) (uint64, error) {
	n, err := strconv.ParseUint(strings.TrimSpace(s), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("usage: -%s wants a non-negative integer, got %q", flag, s)
	}
	return n, nil
}

// Tally counts events by kind (faults injected, outcomes seen). It is safe
// for concurrent use.
type Tally struct {
	mu sync.Mutex
	n  map[string]int
}

// Add counts one event of kind.
func (t *Tally) Add(kind string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.n == nil {
		t.n = map[string]int{}
	}
	t.n[kind]++
}

// Merge adds every count of o.
func (t *Tally) Merge(o *Tally) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for k, v := range o.n {
		t.mu.Lock()
		if t.n == nil {
			t.n = map[string]int{}
		}
		t.n[k] += v
		t.mu.Unlock()
	}
}

// Get returns the count of kind.
func (t *Tally) Get(kind string) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.n[kind]
}

// String lists the counts, by kind in order.
func (t *Tally) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	keys := make([]string, 0, len(t.n))
	for k := range t.n {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s=%d", k, t.n[k])
	}
	return strings.Join(parts, " ")
}
