package idemddb_test

import (
	"context"
	"errors"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/acme/idemcheckout/internal/ddbtest"
	"github.com/acme/idemcheckout/pkg/idemddb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
)

// moto is served single-threaded and supports everything; dynalite is a
// second, independent engine without transactions or ALL_OLD on failures.
var moto, dynalite *ddbtest.Engine

func TestMain(m *testing.M) {
	os.Exit(ddbtest.Main(m, ddbtest.StartMoto, &moto, func() int {
		d, err := ddbtest.StartDynalite()
		if err != nil {
			return ddbtest.Fail(err)
		}
		dynalite = d
		defer d.Stop()
		return m.Run()
	}))
}

// counting wraps a Client, counts requests per operation and can inject a
// fault before or after a given operation reaches DynamoDB.
type counting struct {
	idemddb.Client
	mu     sync.Mutex
	counts map[string]int
	total  atomic.Int64
	// fail, when set, is called before each request; a non-nil error is
	// returned instead of sending it.
	fail func(op string) error
	// after, when set, is called after a successful request; a non-nil
	// error replaces the response (the write did happen).
	after func(op string) error
	// redeliver, when it returns true, sends the request twice and returns
	// the second answer, as an SDK retry after a lost response does.
	redeliver func(op string) bool
}

func (c *counting) again(op string) bool {
	c.mu.Lock()
	r := c.redeliver
	c.mu.Unlock()
	return r != nil && r(op)
}

func newCounting(c idemddb.Client) *counting {
	return &counting{Client: c, counts: map[string]int{}}
}

func (c *counting) note(op string) error {
	c.mu.Lock()
	c.counts[op]++
	f := c.fail
	c.mu.Unlock()
	c.total.Add(1)
	if f != nil {
		return f(op)
	}
	return nil
}

func (c *counting) afterHook(op string, err error) error {
	c.mu.Lock()
	a := c.after
	c.mu.Unlock()
	if err == nil && a != nil {
		return a(op)
	}
	return err
}

func (c *counting) reset() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	old := c.counts
	c.counts = map[string]int{}
	c.total.Store(0)
	return old
}

func (c *counting) PutItem(ctx context.Context, in *dynamodb.PutItemInput, o ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	if err := c.note("PutItem"); err != nil {
		return nil, err
	}
	if c.again("PutItem") {
		_, _ = c.Client.PutItem(ctx, in, o...)
	}
	out, err := c.Client.PutItem(ctx, in, o...)
	return out, c.afterHook("PutItem", err)
}

func (c *counting) GetItem(ctx context.Context, in *dynamodb.GetItemInput, o ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error) {
	if err := c.note("GetItem"); err != nil {
		return nil, err
	}
	out, err := c.Client.GetItem(ctx, in, o...)
	return out, c.afterHook("GetItem", err)
}

func (c *counting) UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, o ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error) {
	if err := c.note("UpdateItem"); err != nil {
		return nil, err
	}
	out, err := c.Client.UpdateItem(ctx, in, o...)
	return out, c.afterHook("UpdateItem", err)
}

func (c *counting) DeleteItem(ctx context.Context, in *dynamodb.DeleteItemInput, o ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error) {
	if err := c.note("DeleteItem"); err != nil {
		return nil, err
	}
	if c.again("DeleteItem") {
		_, _ = c.Client.DeleteItem(ctx, in, o...)
	}
	out, err := c.Client.DeleteItem(ctx, in, o...)
	return out, c.afterHook("DeleteItem", err)
}

func (c *counting) TransactWriteItems(ctx context.Context, in *dynamodb.TransactWriteItemsInput, o ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error) {
	if err := c.note("TransactWriteItems"); err != nil {
		return nil, err
	}
	out, err := c.Client.TransactWriteItems(ctx, in, o...)
	return out, c.afterHook("TransactWriteItems", err)
}

// newClock is a test clock at the current millisecond.
func newClock() *ddbtest.Clock { return ddbtest.NewClock(time.Now().Truncate(time.Millisecond)) }

// env is one table on one engine with a counting client.
type env struct {
	engine *ddbtest.Engine
	raw    *dynamodb.Client
	client *counting
	table  string
}

func newEnv(t *testing.T, e *ddbtest.Engine) *env {
	t.Helper()
	raw := e.Client()
	return &env{engine: e, raw: raw, client: newCounting(raw), table: ddbtest.NewTable(t, raw, "id")}
}

func (e *env) store(t *testing.T, cfg idemddb.Config) *idemddb.Store {
	t.Helper()
	cfg.Table = e.table
	s, err := idemddb.New(e.client, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// engines lists the engines a protocol test runs on.
func engines() []*ddbtest.Engine { return []*ddbtest.Engine{moto, dynalite} }

func ok(ctx context.Context, c *idemddb.Claim) ([]byte, error) { return []byte(`{"ok":true}`), nil }

var errWork = errors.New("work failed")
