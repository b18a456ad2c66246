package idemddb_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/acme/idemcheckout/pkg/idemddb"
)

// TestConcurrentClaimsRunOnce: 50 goroutines × 20 rounds, one key per round,
// all released at once. Exactly one runs the work each round (the work's own
// counter proves it); every other caller gets the stored result or "in
// progress". Runs on both engines, over real parallel HTTP requests.
func TestConcurrentClaimsRunOnce(t *testing.T) {
	const goroutines, rounds = 50, 20
	for _, engine := range engines() {
		t.Run(engine.Name, func(t *testing.T) {
			e := newEnv(t, engine)
			s := e.store(t, idemddb.Config{})
			ctx := context.Background()
			var replays, conflicts int
			for round := range rounds {
				key := fmt.Sprintf("race-%d", round)
				want := fmt.Sprintf(`{"round":%d}`, round)
				var runs atomic.Int32
				var wg sync.WaitGroup
				start := make(chan struct{})
				type outcome struct {
					res idemddb.Result
					err error
				}
				outcomes := make([]outcome, goroutines)
				for g := range goroutines {
					wg.Add(1)
					go func() {
						defer wg.Done()
						<-start
						res, err := s.Run(ctx, idemddb.Request{Key: key, Fingerprint: []byte("same")}, func(ctx context.Context, c *idemddb.Claim) ([]byte, error) {
							runs.Add(1)
							return []byte(want), nil
						})
						outcomes[g] = outcome{res, err}
					}()
				}
				close(start)
				wg.Wait()
				if n := runs.Load(); n != 1 {
					t.Fatalf("round %d: work ran %d times", round, n)
				}
				fresh := 0
				for g, o := range outcomes {
					switch {
					case o.err == nil && !o.res.Replayed && string(o.res.Data) == want:
						fresh++
					case o.err == nil && o.res.Replayed && string(o.res.Data) == want:
						replays++
					case errors.Is(o.err, idemddb.ErrInProgress):
						conflicts++
					default:
						t.Fatalf("round %d goroutine %d: unexpected outcome %+v %v", round, g, o.res, o.err)
					}
				}
				if fresh != 1 {
					t.Fatalf("round %d: %d callers saw a fresh result", round, fresh)
				}
			}
			t.Logf("%s: %d rounds, %d replays, %d in-progress answers", engine.Name, rounds, replays, conflicts)
		})
	}
}
