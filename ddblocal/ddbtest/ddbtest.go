// Package ddbtest starts and talks to the local DynamoDB engines the tests
// run against: moto served single-threaded (local/motoserver.py) and
// dynalite (local/node_modules). Each test package starts its own engine in
// TestMain, because moto's memory grows with use; when
// AWS_ENDPOINT_URL_DYNAMODB is set that endpoint is used instead.
package ddbtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/acme/idemcheckout/ddblocal/localddb"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// startTimeout bounds the wait for an engine to listen.
const startTimeout = 60 * time.Second

// RepoRoot returns the repository root (the directory holding
// localddb.RootMarker), searching upwards from the working directory.
func RepoRoot() (string, error) { return localddb.RepoRoot() }

// FreePort asks the kernel for a free TCP port on 127.0.0.1.
func FreePort() (int, error) { return localddb.FreePort() }

// StartMoto starts the single-threaded moto server on a free loopback port,
// or returns the endpoint in AWS_ENDPOINT_URL_DYNAMODB when that is set
// (localddb.External).
func StartMoto() (*localddb.Engine, error) {
	if ep := os.Getenv("AWS_ENDPOINT_URL_DYNAMODB"); ep != "" {
		return localddb.External(ep), nil
	}
	return start(localddb.StartMoto)
}

// StartDynalite starts dynalite (npm dynalite@4.0.0, installed under
// local/node_modules by `npm ci --prefix local`) on a free loopback port.
func StartDynalite() (*localddb.Engine, error) {
	return start(localddb.StartDynalite)
}

// start finds the repository root and starts an engine there; the engine
// dies with the test binary (Pdeathsig on Linux).
func start(launch func(context.Context, string, localddb.Options) (*localddb.Engine, error)) (*localddb.Engine, error) {
	root, err := RepoRoot()
	if err != nil {
		return nil, fmt.Errorf("ddbtest: %w", err)
	}
	return launch(context.Background(), root, localddb.Options{Timeout: startTimeout})
}

// Main is the body of a TestMain: it starts an engine, stores it in *engine,
// then runs inner (by default m.Run) and stops the engine. A missing
// prerequisite stops the run with the message that says how to install it.
func Main(m *testing.M, start func() (*localddb.Engine, error), engine **localddb.Engine, inner ...func() int) int {
	run := m.Run
	if len(inner) > 0 {
		run = inner[0]
	}
	return mainWith(start, engine, run)
}

// MainBoth is the body of a TestMain for a package that runs on both
// engines: moto (or AWS_ENDPOINT_URL_DYNAMODB) in *moto and dynalite in
// *dynalite, both stopped after the tests.
func MainBoth(m *testing.M, moto, dynalite **localddb.Engine) int {
	return Main(m, StartMoto, moto, func() int {
		d, err := StartDynalite()
		if err != nil {
			return Fail(err)
		}
		*dynalite = d
		defer d.Stop()
		return m.Run()
	})
}

// UniqueName returns prefix plus a random suffix, for per-test table names.
func UniqueName(prefix string) string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return prefix + "-" + hex.EncodeToString(b[:])
}

// CreateTable creates an on-demand table with a string hash key (and an
// optional string range key) and waits until it is ACTIVE.
func CreateTable(ctx context.Context, c *dynamodb.Client, name, hashKey, rangeKey string) error {
	in := &dynamodb.CreateTableInput{
		TableName:   aws.String(name),
		BillingMode: types.BillingModePayPerRequest,
		AttributeDefinitions: []types.AttributeDefinition{
			{AttributeName: aws.String(hashKey), AttributeType: types.ScalarAttributeTypeS},
		},
		KeySchema: []types.KeySchemaElement{
			{AttributeName: aws.String(hashKey), KeyType: types.KeyTypeHash},
		},
	}
	if rangeKey != "" {
		in.AttributeDefinitions = append(in.AttributeDefinitions, types.AttributeDefinition{AttributeName: aws.String(rangeKey), AttributeType: types.ScalarAttributeTypeS})
		in.KeySchema = append(in.KeySchema, types.KeySchemaElement{AttributeName: aws.String(rangeKey), KeyType: types.KeyTypeRange})
	}
	if _, err := c.CreateTable(ctx, in); err != nil {
		return fmt.Errorf("create table %s: %w", name, err)
	}
	w := dynamodb.NewTableExistsWaiter(c, func(o *dynamodb.TableExistsWaiterOptions) {
		o.MinDelay = 50 * time.Millisecond
		o.MaxDelay = 500 * time.Millisecond
	})
	return w.Wait(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(name)}, 30*time.Second)
}

// NewTable creates a uniquely named table for one test and returns its name.
func NewTable(t testing.TB, c *dynamodb.Client, hashKey string) string {
	t.Helper()
	name := UniqueName(strings.ReplaceAll(strings.ToLower(t.Name()), "/", "-"))
	if len(name) > 200 {
		name = name[len(name)-200:]
	}
	name = strings.Map(func(r rune) rune {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') || r == '-' || r == '_' || r == '.' {
			return r
		}
		return '-'
	}, name)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := CreateTable(ctx, c, name, hashKey, ""); err != nil {
		t.Fatal(err)
	}
	return name
}

// mainWith starts the engine, runs inner, then stops the engine.
func mainWith(start func() (*localddb.Engine, error), engine **localddb.Engine, inner func() int) int {
	e, err := start()
	if err != nil {
		return Fail(err)
	}
	*engine = e
	defer e.Stop()
	return inner()
}

// Fail prints why an engine could not start and returns the exit code.
func Fail(err error) int {
	fmt.Fprintln(os.Stderr, "ddbtest:", err)
	return 2
}
