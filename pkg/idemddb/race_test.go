package idemddb_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/acme/idemcheckout/pkg/idemddb"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
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
				fresh, bad := 0, false
				for _, o := range outcomes {
					switch {
					case o.err == nil && !o.res.Replayed && string(o.res.Data) == want:
						fresh++
					case o.err == nil && o.res.Replayed && string(o.res.Data) == want:
						replays++
					case errors.Is(o.err, idemddb.ErrInProgress):
						conflicts++
					default:
						bad = true
					}
				}
				if n := runs.Load(); n != 1 || fresh != 1 || bad {
					var b strings.Builder
					for g, o := range outcomes {
						fmt.Fprintf(&b, "\n  caller %2d: replayed=%v data=%q err=%v", g, o.res.Replayed, o.res.Data, o.err)
					}
					t.Fatalf("round %d: work ran %d times, %d callers saw a fresh result; every caller:%s", round, n, fresh, b.String())
				}
			}
			t.Logf("%s: %d rounds, %d replays, %d in-progress answers", engine.Name, rounds, replays, conflicts)
		})
	}
}

// TestCancelledTransactionsKeepOthersWrites: in parallel, half the callers'
// completions are cancelled by their own condition while the other half
// commit. Every committed record and business item must survive: moto
// rolls back a cancelled transaction, and a rollback that restored a
// whole-table copy taken before the others committed would lose them.
func TestCancelledTransactionsKeepOthersWrites(t *testing.T) {
	const callers, rounds = 20, 5
	ctx := context.Background()
	e := newEnv(t, moto)
	biz := newBizTable(t, e)
	s := e.store(t, idemddb.Config{})
	if _, err := e.raw.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(biz.name), Item: map[string]types.AttributeValue{
		"id": &types.AttributeValueMemberS{Value: "taken"},
	}}); err != nil {
		t.Fatal(err)
	}
	for round := range rounds {
		var wg sync.WaitGroup
		start := make(chan struct{})
		errs := make([]error, callers)
		for g := range callers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				_, errs[g] = s.Run(ctx, idemddb.Request{Key: fmt.Sprintf("r%d-g%d", round, g)}, func(_ context.Context, c *idemddb.Claim) ([]byte, error) {
					c.AddWrites(biz.put(fmt.Sprintf("item-r%d-g%d", round, g)))
					if g%2 == 1 {
						c.AddWrites(biz.put("taken")) // cancels this transaction
					}
					return []byte("ok"), nil
				})
			}()
		}
		close(start)
		wg.Wait()
		for g := range callers {
			key, item := fmt.Sprintf("r%d-g%d", round, g), fmt.Sprintf("item-r%d-g%d", round, g)
			if g%2 == 1 {
				if !errors.Is(errs[g], idemddb.ErrTransactionCanceled) || biz.get(t, item) != nil || e.getItem(t, key) != nil {
					t.Fatalf("%s: cancelled caller: err=%v", key, errs[g])
				}
				continue
			}
			if errs[g] != nil || biz.get(t, item) == nil || attrS(e.getItem(t, key), "status") != idemddb.StatusCompleted {
				t.Fatalf("%s: committed writes lost (err=%v)", key, errs[g])
			}
		}
	}
}
