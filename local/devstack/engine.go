package devstack

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// ErrPrerequisite reports a missing tool; the message says how to get it.
var ErrPrerequisite = errors.New("missing prerequisite")

// engine is the local DynamoDB engine: moto served single-threaded by
// local/motoserver.py (stock moto_server is not safe under concurrency).
type engine struct {
	endpoint string
	cmd      *exec.Cmd
	done     chan struct{}
	stopOnce sync.Once
}

func startEngine(ctx context.Context, root string, logf func(string, ...any)) (*engine, error) {
	py, err := exec.LookPath("python3")
	if err != nil {
		return nil, fmt.Errorf("%w: python3 is not on PATH. Install Python 3, then: pip install 'moto[server]'", ErrPrerequisite)
	}
	script := filepath.Join(root, "local", "motoserver.py")
	cmd := exec.Command(py, script, "--host", "127.0.0.1", "--port", "0")
	cmd.Env = append(cleanEnv(), "AWS_ACCESS_KEY_ID=test", "AWS_SECRET_ACCESS_KEY=test", "AWS_DEFAULT_REGION=us-east-1")
	setProcAttrs(cmd)
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	stderr := &tailBuffer{max: 8192}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", script, err)
	}
	e := &engine{cmd: cmd, done: make(chan struct{})}
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			line := sc.Text()
			if i := strings.Index(line, "http://"); i >= 0 && strings.HasPrefix(line, "listening on") {
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
		e.endpoint = ep
		return e, nil
	case <-e.done:
		msg := strings.TrimSpace(stderr.String())
		if cmd.ProcessState != nil && cmd.ProcessState.ExitCode() == 3 {
			return nil, fmt.Errorf("%w: %s", ErrPrerequisite, msg)
		}
		return nil, fmt.Errorf("local DynamoDB engine (%s) exited before listening: %s", script, lastLine(msg))
	case <-ctx.Done():
		e.stop()
		return nil, ctx.Err()
	case <-time.After(90 * time.Second):
		e.stop()
		return nil, fmt.Errorf("local DynamoDB engine did not start within 90s: %s", lastLine(stderr.String()))
	}
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}

func (e *engine) stop() {
	if e == nil || e.cmd == nil || e.cmd.Process == nil {
		return
	}
	e.stopOnce.Do(func() {
		killTree(e.cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-e.done:
		case <-time.After(3 * time.Second):
			killTree(e.cmd.Process.Pid, syscall.SIGKILL)
			<-e.done
		}
	})
}

func ddbClient(endpoint, region string) *dynamodb.Client {
	cfg := aws.Config{
		Region:      region,
		Credentials: credentials.NewStaticCredentialsProvider("test", "test", ""),
	}
	return dynamodb.NewFromConfig(cfg, func(o *dynamodb.Options) { o.BaseEndpoint = aws.String(endpoint) })
}

// ensureTables creates the template's tables (reusing existing ones) and
// enables their TTL.
func ensureTables(ctx context.Context, c *dynamodb.Client, tables []*Table, logf func(string, ...any)) error {
	for _, tb := range tables {
		in := &dynamodb.CreateTableInput{
			TableName:   aws.String(tb.Name),
			BillingMode: types.BillingModePayPerRequest,
		}
		for _, a := range tb.AttributeDefinitions {
			in.AttributeDefinitions = append(in.AttributeDefinitions, types.AttributeDefinition{AttributeName: aws.String(a.AttributeName), AttributeType: types.ScalarAttributeType(a.AttributeType)})
		}
		in.KeySchema = sdkKeySchema(tb.KeySchema)
		for _, ix := range tb.GlobalSecondaryIndexes {
			in.GlobalSecondaryIndexes = append(in.GlobalSecondaryIndexes, types.GlobalSecondaryIndex{IndexName: aws.String(ix.IndexName), KeySchema: sdkKeySchema(ix.KeySchema), Projection: sdkProjection(ix)})
		}
		for _, ix := range tb.LocalSecondaryIndexes {
			in.LocalSecondaryIndexes = append(in.LocalSecondaryIndexes, types.LocalSecondaryIndex{IndexName: aws.String(ix.IndexName), KeySchema: sdkKeySchema(ix.KeySchema), Projection: sdkProjection(ix)})
		}
		state := "created"
		if _, err := c.CreateTable(ctx, in); err != nil {
			var inUse *types.ResourceInUseException
			if !errors.As(err, &inUse) {
				return fmt.Errorf("create table %s (%s): %w", tb.Name, tb.LogicalID, err)
			}
			state = "reused"
		}
		w := dynamodb.NewTableExistsWaiter(c, func(o *dynamodb.TableExistsWaiterOptions) {
			o.MinDelay = 20 * time.Millisecond
			o.MaxDelay = 500 * time.Millisecond
		})
		if err := w.Wait(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(tb.Name)}, 60*time.Second); err != nil {
			return fmt.Errorf("table %s did not become active: %w", tb.Name, err)
		}
		ttl := ""
		if tb.TTLAttribute != "" {
			d, err := c.DescribeTimeToLive(ctx, &dynamodb.DescribeTimeToLiveInput{TableName: aws.String(tb.Name)})
			if err != nil {
				return fmt.Errorf("describe TTL of %s: %w", tb.Name, err)
			}
			td := d.TimeToLiveDescription
			if td == nil || td.TimeToLiveStatus != types.TimeToLiveStatusEnabled || aws.ToString(td.AttributeName) != tb.TTLAttribute {
				if _, err := c.UpdateTimeToLive(ctx, &dynamodb.UpdateTimeToLiveInput{
					TableName:               aws.String(tb.Name),
					TimeToLiveSpecification: &types.TimeToLiveSpecification{AttributeName: aws.String(tb.TTLAttribute), Enabled: aws.Bool(true)},
				}); err != nil {
					return fmt.Errorf("enable TTL on %s: %w", tb.Name, err)
				}
			}
			ttl = ", TTL " + tb.TTLAttribute
		}
		logf("table %s %s (key %s%s)", tb.Name, state, keyString(tb.KeySchema), ttl)
	}
	return nil
}

func keyString(ks []KeySchemaElement) string {
	parts := make([]string, len(ks))
	for i, k := range ks {
		parts[i] = k.AttributeName + " " + k.KeyType
	}
	return strings.Join(parts, ", ")
}

func sdkKeySchema(ks []KeySchemaElement) []types.KeySchemaElement {
	out := make([]types.KeySchemaElement, len(ks))
	for i, k := range ks {
		out[i] = types.KeySchemaElement{AttributeName: aws.String(k.AttributeName), KeyType: types.KeyType(k.KeyType)}
	}
	return out
}

func sdkProjection(ix SecondaryIndex) *types.Projection {
	p := &types.Projection{ProjectionType: types.ProjectionType(ix.ProjectionType)}
	if len(ix.NonKeyAttributes) > 0 {
		p.NonKeyAttributes = ix.NonKeyAttributes
	}
	return p
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > t.max {
		t.b = append([]byte(nil), t.b[len(t.b)-t.max:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.b)
}

// Engine is a local DynamoDB engine started on its own (StartEngine), for
// tools and tests that want to put something between the stack and the
// engine, or share one engine between stacks (Config.EngineEndpoint).
type Engine struct{ e *engine }

// StartEngine starts local/motoserver.py under root on a free loopback port.
func StartEngine(ctx context.Context, root string) (*Engine, error) {
	e, err := startEngine(ctx, root, func(string, ...any) {})
	if err != nil {
		return nil, err
	}
	return &Engine{e: e}, nil
}

// Endpoint is the engine's base URL.
func (e *Engine) Endpoint() string { return e.e.endpoint }

// Stop ends the engine process.
func (e *Engine) Stop() { e.e.stop() }

// EnsureTables creates t's tables on the DynamoDB endpoint (reusing
// existing ones) and enables their TTL, as Start does.
func EnsureTables(ctx context.Context, endpoint, region string, t *Template, logf func(string, ...any)) error {
	if region == "" {
		region = "us-east-1"
	}
	if logf == nil {
		logf = func(string, ...any) {}
	}
	return ensureTables(ctx, ddbClient(endpoint, region), t.Tables, logf)
}

// DeleteTables deletes t's tables from the endpoint (missing ones are fine).
func DeleteTables(ctx context.Context, endpoint, region string, t *Template) error {
	if region == "" {
		region = "us-east-1"
	}
	c := ddbClient(endpoint, region)
	for _, tb := range t.Tables {
		if _, err := c.DeleteTable(ctx, &dynamodb.DeleteTableInput{TableName: aws.String(tb.Name)}); err != nil {
			var nf *types.ResourceNotFoundException
			if !errors.As(err, &nf) {
				return fmt.Errorf("delete table %s: %w", tb.Name, err)
			}
		}
	}
	return nil
}
