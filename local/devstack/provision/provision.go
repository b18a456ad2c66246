// Package provision creates what the template declares on the local
// engine before the functions run: the DynamoDB tables (keys, indexes, TTL
// and streams) and the SQS queues (dead-letter queues first), reusing
// what exists; DeleteTables drops the tables again. Clients are the local
// stack's own SDK clients of the engine. It does not start the engine
// (ddblocal/localddb does) nor read the streams and queues
// (local/devstack/eventsource does).
package provision

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/acme/idemcheckout/internal/samtemplate"
	"github.com/acme/idemcheckout/local/devstack/template"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
)

// engineConfig is the SDK configuration of the stack's own clients of the
// engine: static local credentials, the region the functions see.
func engineConfig(region string) aws.Config {
	return aws.Config{
		Region:      region,
		Credentials: credentials.NewStaticCredentialsProvider("test", "test", ""),
	}
}

// Clients are the SDK clients of the engine: moto serves DynamoDB, its
// Streams and SQS on one endpoint.
type Clients struct {
	DynamoDB *dynamodb.Client
	Streams  *dynamodbstreams.Client
	SQS      *sqs.Client
}

// NewClients returns the clients of the engine at endpoint, with static
// local credentials and region ("": us-east-1).
func NewClients(endpoint, region string) Clients {
	if region == "" {
		region = "us-east-1"
	}
	cfg := engineConfig(region)
	ep := aws.String(endpoint)
	return Clients{
		DynamoDB: dynamodb.NewFromConfig(cfg, func(o *dynamodb.Options) { o.BaseEndpoint = ep }),
		Streams:  dynamodbstreams.NewFromConfig(cfg, func(o *dynamodbstreams.Options) { o.BaseEndpoint = ep }),
		SQS:      sqs.NewFromConfig(cfg, func(o *sqs.Options) { o.BaseEndpoint = ep }),
	}
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

// EnsureQueues creates t's SQS queues on the engine (an existing queue
// with the same attributes is reused), dead-letter queues first, and
// returns their URLs by logical id.
func EnsureQueues(ctx context.Context, c *sqs.Client, t *template.Template, logf func(string, ...any)) (map[string]string, error) {
	urls := map[string]string{}
	pending := slices.Clone(t.Model.Queues())
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

// EnsureTables creates t's tables on the engine (reusing existing ones),
// enables their TTL and their streams; logf (nil: none) gets one line per
// table.
func EnsureTables(ctx context.Context, c *dynamodb.Client, t *template.Template, logf func(string, ...any)) error {
	if logf == nil {
		logf = func(string, ...any) {}
	}
	for _, tb := range t.Tables() {
		name := t.TableName(tb.ID)
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

// DeleteTables deletes t's tables from the engine (missing ones are fine).
func DeleteTables(ctx context.Context, c *dynamodb.Client, t *template.Template) error {
	for _, tb := range t.Tables() {
		name := t.TableName(tb.ID)
		if _, err := c.DeleteTable(ctx, &dynamodb.DeleteTableInput{TableName: aws.String(name)}); err != nil {
			var nf *types.ResourceNotFoundException
			if !errors.As(err, &nf) {
				return fmt.Errorf("delete table %s: %w", name, err)
			}
		}
	}
	return nil
}
