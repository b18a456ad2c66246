package devstack

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/acme/idemcheckout/internal/localddb"
	"github.com/acme/idemcheckout/internal/samtemplate"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// ErrPrerequisite reports a missing tool; the message says how to get it.
// It matches the engine launcher's *localddb.PrerequisiteError too.
const ErrPrerequisite = localddb.ErrPrerequisite

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

func ddbClient(endpoint, region string) *dynamodb.Client {
	cfg := aws.Config{
		Region:      region,
		Credentials: credentials.NewStaticCredentialsProvider("test", "test", ""),
	}
	return dynamodb.NewFromConfig(cfg, func(o *dynamodb.Options) { o.BaseEndpoint = aws.String(endpoint) })
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
		logf("table %s %s (key %s%s)", name, state, keyString(tb.KeySchema), ttl)
	}
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
