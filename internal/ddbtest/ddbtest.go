// Package ddbtest starts and talks to the local DynamoDB engines the tests
// run against: moto served single-threaded (local/motoserver.py) and
// dynalite (local/node_modules). Each test package starts its own engine in
// TestMain, because moto's memory grows with use; when
// AWS_ENDPOINT_URL_DYNAMODB is set that endpoint is used instead.
package ddbtest

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// Engine is a running local DynamoDB endpoint.
type Engine struct {
	// Name is "moto", "dynalite" or "external".
	Name string
	// Endpoint is the base URL, for example http://127.0.0.1:41234.
	Endpoint string
	cmd      *exec.Cmd
	done     chan struct{}
}

// ErrPrerequisite reports a missing tool; its message says how to get it.
var ErrPrerequisite = errors.New("missing prerequisite")

// RepoRoot returns the directory holding go.mod, searching upwards from the
// working directory (go test runs each package in its own directory).
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("ddbtest: go.mod not found above the working directory")
		}
		dir = parent
	}
}

// StartMoto starts the single-threaded moto server on a free loopback port,
// or returns the endpoint in AWS_ENDPOINT_URL_DYNAMODB when that is set.
func StartMoto() (*Engine, error) {
	if ep := os.Getenv("AWS_ENDPOINT_URL_DYNAMODB"); ep != "" {
		return &Engine{Name: "external", Endpoint: ep}, nil
	}
	root, err := RepoRoot()
	if err != nil {
		return nil, err
	}
	py, err := exec.LookPath("python3")
	if err != nil {
		return nil, fmt.Errorf("%w: python3 is not on PATH; install Python 3 and then: pip install 'moto[server]'", ErrPrerequisite)
	}
	return start("moto", py, filepath.Join(root, "local", "motoserver.py"), "--host", "127.0.0.1", "--port", "0")
}

// StartDynalite starts dynalite (npm dynalite@4.0.0, installed under
// local/node_modules by `npm ci --prefix local`) on a free loopback port.
func StartDynalite() (*Engine, error) {
	root, err := RepoRoot()
	if err != nil {
		return nil, err
	}
	bin := filepath.Join(root, "local", "node_modules", ".bin", "dynalite")
	if _, err := os.Stat(bin); err != nil {
		return nil, fmt.Errorf("%w: dynalite is not installed; run: npm ci --prefix local", ErrPrerequisite)
	}
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	return start("dynalite", bin, "--host", "127.0.0.1", "--port", fmt.Sprint(port))
}

// start runs the engine and waits for the line announcing its address.
// moto prints "listening on http://HOST:PORT", dynalite "Dynalite listening at: URL".
func start(name, bin string, args ...string) (*Engine, error) {
	cmd := exec.Command(bin, args...)
	dieWithParent(cmd)
	cmd.Env = append(os.Environ(), "AWS_ACCESS_KEY_ID=test", "AWS_SECRET_ACCESS_KEY=test", "AWS_DEFAULT_REGION=us-east-1")
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("ddbtest: start %s: %w", name, err)
	}
	e := &Engine{Name: name, cmd: cmd, done: make(chan struct{})}
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
	select {
	case ep := <-found:
		e.Endpoint = ep
		return e, nil
	case <-e.done:
		msg := strings.TrimSpace(stderr.String())
		if cmd.ProcessState != nil && cmd.ProcessState.ExitCode() == 3 {
			return nil, fmt.Errorf("%w: %s", ErrPrerequisite, msg)
		}
		return nil, fmt.Errorf("ddbtest: %s exited before listening: %s", name, msg)
	case <-time.After(60 * time.Second):
		e.Stop()
		return nil, fmt.Errorf("ddbtest: %s did not start within 60s: %s", name, stderr.String())
	}
}

// Stop ends the engine process (a no-op for an external endpoint).
func (e *Engine) Stop() {
	if e == nil || e.cmd == nil || e.cmd.Process == nil {
		return
	}
	_ = e.cmd.Process.Kill()
	<-e.done
}

// Client returns a DynamoDB client for the engine with static test
// credentials and no retries, so tests see every request's real outcome.
func (e *Engine) Client(optFns ...func(*dynamodb.Options)) *dynamodb.Client {
	return NewClient(e.Endpoint, optFns...)
}

// NewClient returns a DynamoDB client for a local endpoint.
func NewClient(endpoint string, optFns ...func(*dynamodb.Options)) *dynamodb.Client {
	cfg := aws.Config{
		Region:           "us-east-1",
		Credentials:      credentials.NewStaticCredentialsProvider("test", "test", ""),
		RetryMaxAttempts: 1,
	}
	opts := append([]func(*dynamodb.Options){func(o *dynamodb.Options) {
		o.BaseEndpoint = aws.String(endpoint)
	}}, optFns...)
	return dynamodb.NewFromConfig(cfg, opts...)
}

// Main is the body of a TestMain: it starts an engine, stores it in *engine,
// then runs inner (by default m.Run) and stops the engine. A missing
// prerequisite stops the run with the message that says how to install it.
func Main(m *testing.M, start func() (*Engine, error), engine **Engine, inner ...func() int) int {
	run := m.Run
	if len(inner) > 0 {
		run = inner[0]
	}
	return mainWith(start, engine, run)
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
func mainWith(start func() (*Engine, error), engine **Engine, inner func() int) int {
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
