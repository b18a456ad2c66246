package provision

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/acme/idemcheckout/ddblocal/ddbtest"
	"github.com/acme/idemcheckout/ddblocal/localddb"
	"github.com/acme/idemcheckout/local/devstack/template"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

var engine *localddb.Engine

func TestMain(m *testing.M) { os.Exit(ddbtest.Main(m, ddbtest.StartMoto, &engine)) }

// A table the template streams but the engine has without a stream (an
// engine kept from before the template had it) gets its stream.
func TestEnsureTablesEnablesAMissingStream(t *testing.T) {
	ctx := context.Background()
	name := ddbtest.UniqueName("streamless")
	db := NewClients(engine.Endpoint, "").DynamoDB
	if _, err := db.CreateTable(ctx, &dynamodb.CreateTableInput{
		TableName: aws.String(name), BillingMode: ddbtypes.BillingModePayPerRequest,
		AttributeDefinitions: []ddbtypes.AttributeDefinition{{AttributeName: aws.String("id"), AttributeType: ddbtypes.ScalarAttributeTypeS}},
		KeySchema:            []ddbtypes.KeySchemaElement{{AttributeName: aws.String("id"), KeyType: ddbtypes.KeyTypeHash}},
	}); err != nil {
		t.Fatal(err)
	}
	tm, err := template.Parse([]byte(`
Resources:
  T:
    Type: AWS::DynamoDB::Table
    Properties:
      TableName: `+name+`
      AttributeDefinitions: [{AttributeName: id, AttributeType: S}]
      KeySchema: [{AttributeName: id, KeyType: HASH}]
      StreamSpecification: {StreamViewType: NEW_IMAGE}
`), nil, "")
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	if err := EnsureTables(ctx, db, tm, func(f string, a ...any) { lines = append(lines, fmt.Sprintf(f, a...)) }); err != nil {
		t.Fatal(err)
	}
	d, err := db.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(name)})
	if err != nil {
		t.Fatal(err)
	}
	if ss := d.Table.StreamSpecification; ss == nil || !aws.ToBool(ss.StreamEnabled) || ss.StreamViewType != ddbtypes.StreamViewTypeNewImage || aws.ToString(d.Table.LatestStreamArn) == "" {
		t.Errorf("stream after EnsureTables: %+v", d.Table.StreamSpecification)
	}
	if !slices.ContainsFunc(lines, func(l string) bool { return strings.Contains(l, "stream NEW_IMAGE enabled (the table had none)") }) {
		t.Errorf("log %q", lines)
	}
}
