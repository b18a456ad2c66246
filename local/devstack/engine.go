package devstack

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/acme/idemcheckout/ddblocal/localddb"
	"github.com/acme/idemcheckout/internal/samtemplate"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
)

// ErrPrerequisite reports a missing tool; the message says how to get it.
// It matches the engine launcher's *localddb.PrerequisiteError too.
var ErrPrerequisite = localddb.ErrPrerequisite

// engine is the local DynamoDB engine: moto served single-threaded by
// local/motoserver.py (stock moto_server is not safe under concurrency),
// in its own process group, dying with us (Pdeathsig).
type engine = localddb.Engine

// startEngine starts moto on port (0: a free one); with a journal path
// the engine replays it and journals every write (persistent mode).
func startEngine(ctx context.Context, root string, port int, journal string) (*engine, error) {
	return localddb.StartMoto(ctx, root, localddb.Options{
		Timeout:      90 * time.Second,
		ProcessGroup: true,
		StopGrace:    3 * time.Second,
		Port:         port,
		Journal:      journal,
	})
}

// engineConfig is the SDK configuration of the stack's own clients of the
// engine: static local credentials, the region the functions see.
func engineConfig(region string) aws.Config {
	return aws.Config{
		Region:      region,
		Credentials: credentials.NewStaticCredentialsProvider("test", "test", ""),
	}
}

func ddbClient(endpoint, region string) *dynamodb.Client {
	return dynamodb.NewFromConfig(engineConfig(region), func(o *dynamodb.Options) { o.BaseEndpoint = aws.String(endpoint) })
}

// streamsClient reads the tables' streams: moto serves the DynamoDB
// Streams API on the engine's endpoint.
func streamsClient(endpoint, region string) *dynamodbstreams.Client {
	return dynamodbstreams.NewFromConfig(engineConfig(region), func(o *dynamodbstreams.Options) { o.BaseEndpoint = aws.String(endpoint) })
}

// sqsClient talks to the template's queues: moto serves SQS on the
// engine's endpoint too.
func sqsClient(endpoint, region string) *sqs.Client {
	return sqs.NewFromConfig(engineConfig(region), func(o *sqs.Options) { o.BaseEndpoint = aws.String(endpoint) })
}

// queueName is the local name of a queue: its QueueName, else its
// logical id (with ".fifo" for a FIFO queue, as SQS requires).
func queueName(q samtemplate.Queue) string {
	switch {
	case q.Name != "":
		return q.Name
	case q.Fifo:
		return q.ID + ".fifo"
	}
	return q.ID
}

// ensureQueues creates the template's SQS queues on the engine (an
// existing queue with the same attributes is reused), dead-letter queues
// first, and returns their URLs by logical id.
func ensureQueues(ctx context.Context, c *sqs.Client, region string, queues []samtemplate.Queue, logf func(string, ...any)) (map[string]string, error) {
	urls := map[string]string{}
	pending := slices.Clone(queues)
	for len(pending) > 0 {
		var later []samtemplate.Queue
		for _, q := range pending {
			dl := q.DeadLetter.Resource
			if _, ready := urls[dl]; dl != "" && !ready && slices.ContainsFunc(pending, func(p samtemplate.Queue) bool { return p.ID == dl }) {
				later = append(later, q)
				continue
			}
			attrs := map[string]string{}
			if q.Fifo {
				attrs["FifoQueue"] = "true"
			}
			if q.VisibilityTimeout > 0 {
				attrs["VisibilityTimeout"] = strconv.Itoa(int(q.VisibilityTimeout / time.Second))
			}
			for _, k := range []string{"MessageRetentionPeriod", "DelaySeconds", "ReceiveMessageWaitTimeSeconds", "MaximumMessageSize", "ContentBasedDeduplication"} {
				if v := samtemplate.String(q.Props[k]); v != "" {
					attrs[k] = v
				}
			}
			redrive := ""
			if !q.DeadLetter.IsZero() && q.MaxReceiveCount > 0 {
				b, _ := json.Marshal(map[string]any{"deadLetterTargetArn": q.DeadLetter.Value, "maxReceiveCount": q.MaxReceiveCount})
				attrs["RedrivePolicy"] = string(b)
				redrive = fmt.Sprintf(", to %s after %d receives", q.DeadLetter.Resource, q.MaxReceiveCount)
			}
			out, err := c.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(queueName(q)), Attributes: attrs})
			if err != nil {
				return nil, fmt.Errorf("create queue %s (%s): %w", queueName(q), q.ID, err)
			}
			urls[q.ID] = aws.ToString(out.QueueUrl)
			vt := q.VisibilityTimeout
			if vt == 0 {
				vt = 30 * time.Second
			}
			logf("queue %s ready (visibility timeout %s%s)", queueName(q), vt, redrive)
		}
		if len(later) == len(pending) {
			return nil, fmt.Errorf("queues %v name each other as dead-letter queues", later)
		}
		pending = later
	}
	return urls, nil
}

// ensureTables creates the template's tables (reusing existing ones) and
// enables their TTL.
func ensureTables(ctx context.Context, c *dynamodb.Client, tables []Table, logf func(string, ...any)) error {
	for _, tb := range tables {
		name := physical(tb)
		in := &dynamodb.CreateTableInput{
			TableName:   aws.String(name),
			BillingMode: types.BillingModePayPerRequest,
		}
		if tb.StreamViewType != "" {
			in.StreamSpecification = &types.StreamSpecification{StreamEnabled: aws.Bool(true), StreamViewType: types.StreamViewType(tb.StreamViewType)}
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
				return fmt.Errorf("create table %s (%s): %w", name, tb.ID, err)
			}
			state = "reused"
		}
		w := dynamodb.NewTableExistsWaiter(c, func(o *dynamodb.TableExistsWaiterOptions) {
			o.MinDelay = 20 * time.Millisecond
			o.MaxDelay = 500 * time.Millisecond
		})
		if err := w.Wait(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(name)}, 60*time.Second); err != nil {
			return fmt.Errorf("table %s did not become active: %w", name, err)
		}
		ttl := ""
		if tb.TTLAttribute() != "" {
			d, err := c.DescribeTimeToLive(ctx, &dynamodb.DescribeTimeToLiveInput{TableName: aws.String(name)})
			if err != nil {
				return fmt.Errorf("describe TTL of %s: %w", name, err)
			}
			td := d.TimeToLiveDescription
			if td == nil || td.TimeToLiveStatus != types.TimeToLiveStatusEnabled || aws.ToString(td.AttributeName) != tb.TTLAttribute() {
				if _, err := c.UpdateTimeToLive(ctx, &dynamodb.UpdateTimeToLiveInput{
					TableName:               aws.String(name),
					TimeToLiveSpecification: &types.TimeToLiveSpecification{AttributeName: aws.String(tb.TTLAttribute()), Enabled: aws.Bool(true)},
				}); err != nil {
					return fmt.Errorf("enable TTL on %s: %w", name, err)
				}
			}
			ttl = ", TTL " + tb.TTLAttribute()
		}
		if tb.StreamViewType != "" {
			if err := ensureStream(ctx, c, name, tb.StreamViewType, logf); err != nil {
				return err
			}
			ttl += ", stream " + tb.StreamViewType
		}
		logf("table %s %s (key %s%s)", name, state, keyString(tb.KeySchema), ttl)
	}
	return nil
}

// ensureStream enables the stream of a table that was reused without one
// (created before the template had it, in an engine kept with DEV_PERSIST
// or AWS_ENDPOINT_URL_DYNAMODB), so its mappings have a stream to read.
func ensureStream(ctx context.Context, c *dynamodb.Client, name, view string, logf func(string, ...any)) error {
	d, err := c.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(name)})
	if err != nil {
		return fmt.Errorf("describe table %s: %w", name, err)
	}
	switch ss := d.Table.StreamSpecification; {
	case ss != nil && aws.ToBool(ss.StreamEnabled) && string(ss.StreamViewType) == view:
		return nil
	case ss != nil && aws.ToBool(ss.StreamEnabled):
		logf("WARNING: table %s has a %s stream, the template asks for %s; delete the table (make dev-reset) to recreate it", name, ss.StreamViewType, view)
		return nil
	}
	if _, err := c.UpdateTable(ctx, &dynamodb.UpdateTableInput{
		TableName:           aws.String(name),
		StreamSpecification: &types.StreamSpecification{StreamEnabled: aws.Bool(true), StreamViewType: types.StreamViewType(view)},
	}); err != nil {
		return fmt.Errorf("enable the stream of %s: %w", name, err)
	}
	logf("table %s: stream %s enabled (the table had none)", name, view)
	return nil
}

func keyString(ks []samtemplate.KeySchemaElement) string {
	parts := make([]string, len(ks))
	for i, k := range ks {
		parts[i] = k.AttributeName + " " + k.KeyType
	}
	return strings.Join(parts, ", ")
}

func sdkKeySchema(ks []samtemplate.KeySchemaElement) []types.KeySchemaElement {
	out := make([]types.KeySchemaElement, len(ks))
	for i, k := range ks {
		out[i] = types.KeySchemaElement{AttributeName: aws.String(k.AttributeName), KeyType: types.KeyType(k.KeyType)}
	}
	return out
}

func sdkProjection(ix samtemplate.SecondaryIndex) *types.Projection {
	p := &types.Projection{ProjectionType: types.ProjectionType(ix.ProjectionType)}
	if len(ix.NonKeyAttributes) > 0 {
		p.NonKeyAttributes = ix.NonKeyAttributes
	}
	return p
}

// Engine is a local DynamoDB engine started on its own (StartEngine), for
// tools and tests that want to put something between the stack and the
// engine, or share one engine between stacks (Config.EngineEndpoint).
type Engine struct{ e *engine }

// StartEngine starts local/motoserver.py under root on a free loopback port.
func StartEngine(ctx context.Context, root string) (*Engine, error) {
	e, err := startEngine(ctx, root, 0, "")
	if err != nil {
		return nil, err
	}
	return &Engine{e: e}, nil
}

// Endpoint is the engine's base URL.
func (e *Engine) Endpoint() string { return e.e.Endpoint }

// Stop ends the engine process.
func (e *Engine) Stop() { e.e.Stop() }

// EnsureTables creates t's tables on the DynamoDB endpoint (reusing
// existing ones) and enables their TTL, as Start does.
func EnsureTables(ctx context.Context, endpoint, region string, t *Template, logf func(string, ...any)) error {
	if region == "" {
		region = "us-east-1"
	}
	if logf == nil {
		logf = func(string, ...any) {}
	}
	return ensureTables(ctx, ddbClient(endpoint, region), t.Tables(), logf)
}

// DeleteTables deletes t's tables from the endpoint (missing ones are fine).
func DeleteTables(ctx context.Context, endpoint, region string, t *Template) error {
	if region == "" {
		region = "us-east-1"
	}
	c := ddbClient(endpoint, region)
	for _, tb := range t.Tables() {
		name := physical(tb)
		if _, err := c.DeleteTable(ctx, &dynamodb.DeleteTableInput{TableName: aws.String(name)}); err != nil {
			var nf *types.ResourceNotFoundException
			if !errors.As(err, &nf) {
				return fmt.Errorf("delete table %s: %w", name, err)
			}
		}
	}
	return nil
}
