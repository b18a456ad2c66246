package idemddb_test

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/acme/idemcheckout/ddblocal/ddbtest"
	"github.com/acme/idemcheckout/ddblocal/localddb"
	"github.com/acme/idemcheckout/pkg/idemddb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
)

// moto is served single-threaded and supports everything; dynalite is a
// second, independent engine without transactions or ALL_OLD on failures.
var moto, dynalite *localddb.Engine

func TestMain(m *testing.M) {
	os.Exit(ddbtest.MainBoth(m, &moto, &dynalite))
}

// newClock is a test clock at the current millisecond.
func newClock() *ddbtest.Clock { return ddbtest.NewClock(time.Now().Truncate(time.Millisecond)) }

// env is one table on one engine with a counting client.
type env struct {
	engine *localddb.Engine
	raw    *dynamodb.Client
	client *ddbtest.Client
	table  string
}

func newEnv(t *testing.T, e *localddb.Engine) *env {
	t.Helper()
	raw := e.Client()
	return &env{engine: e, raw: raw, client: ddbtest.Wrap(raw), table: ddbtest.NewTable(t, raw, "id")}
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
func engines() []*localddb.Engine { return []*localddb.Engine{moto, dynalite} }

func ok(ctx context.Context, c *idemddb.Claim) ([]byte, error) { return []byte(`{"ok":true}`), nil }

var errWork = errors.New("work failed")
