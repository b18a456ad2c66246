package batch_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"log/slog"

	"github.com/acme/idemcheckout/pkg/idemddb"
	"github.com/acme/idemcheckout/pkg/idemddb/batch"
	"github.com/acme/idemcheckout/pkg/idemddb/ddbmem"
	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// exampleTables gives an example the in-memory engine (ddbmem, for tests)
// with one table per name, each with partition key "id" (S) and TTL on
// "expires_at" (the store's table). In a Lambda, the client is
// dynamodb.NewFromConfig(cfg) and the tables come from the template.
func exampleTables(names ...string) (*ddbmem.Engine, []string) {
	db := ddbmem.New()
	for _, n := range names {
		if err := db.CreateIdempotencyTable(n); err != nil {
			log.Fatal(err)
		}
	}
	return db, names
}

// An SQS consumer that sends one receipt per order, keyed by the order id
// in the message body: the producer's duplicate (another message id)
// replays, the failing message is the only one Lambda retries.
func ExampleWrapSQS() {
	ctx := context.Background()
	client, tables := exampleTables("idempotency")
	store, err := idemddb.New(client, idemddb.Config{Table: tables[0]})
	if err != nil {
		log.Fatal(err)
	}
	mailDown := true
	sendReceipt := func(ctx context.Context, c *idemddb.Claim, msg events.SQSMessage) error {
		var order struct {
			ID string `json:"order_id"`
		}
		if err := json.Unmarshal([]byte(msg.Body), &order); err != nil {
			return err
		}
		if order.ID == "o-2" && mailDown {
			return errors.New("mail server unavailable")
		}
		fmt.Println("receipt sent for", order.ID)
		return nil
	}
	// In a Lambda function: lambda.Start(handler), with
	// ReportBatchItemFailures on the event source mapping. Logs and
	// metrics go to stdout by default; this example discards them.
	handler := batch.WrapSQS(store, "send-receipt", sendReceipt,
		batch.WithKey(batch.BodyField("order_id")),
		batch.WithLogger(slog.New(slog.DiscardHandler)), batch.WithMetrics(nil))

	ev := events.SQSEvent{Records: []events.SQSMessage{
		{MessageId: "m-1", Body: `{"order_id":"o-1","amount":500000}`},
		{MessageId: "m-2", Body: `{"order_id":"o-2","amount":250000}`},
		{MessageId: "m-3", Body: `{"order_id":"o-1","amount":500000}`}, // the producer sent o-1 twice
	}}
	resp, err := handler(ctx, ev)
	fmt.Println("retry:", resp.BatchItemFailures, err)

	// SQS redelivers m-2 after its visibility timeout.
	mailDown = false
	resp, err = handler(ctx, events.SQSEvent{Records: ev.Records[1:2]})
	fmt.Println("retry:", resp.BatchItemFailures, err)
	// Output:
	// receipt sent for o-1
	// retry: [{m-2}] <nil>
	// receipt sent for o-2
	// retry: [] <nil>
}

// A DynamoDB Streams consumer that creates one receipt per paid order, in
// the same transaction as its idempotency record: a re-read of the shard
// creates nothing twice.
func ExampleWrapStream() {
	ctx := context.Background()
	client, tables := exampleTables("idempotency", "receipts")
	store, err := idemddb.New(client, idemddb.Config{Table: tables[0]})
	if err != nil {
		log.Fatal(err)
	}
	receipts := tables[1]
	fulfil := func(ctx context.Context, c *idemddb.Claim, rec events.DynamoDBEventRecord) error {
		orderID := rec.Change.NewImage["order_id"].String()
		c.AddWrites(types.TransactWriteItem{Put: &types.Put{
			TableName: aws.String(receipts),
			Item: map[string]types.AttributeValue{
				"id":       &types.AttributeValueMemberS{Value: "rcpt-" + c.ResourceID}, // stable across retries
				"order_id": &types.AttributeValueMemberS{Value: orderID},
				"amount":   &types.AttributeValueMemberN{Value: rec.Change.NewImage["amount"].Number()},
			},
			ConditionExpression: aws.String("attribute_not_exists(id)"),
		}})
		fmt.Println("receipt for", orderID)
		return nil
	}
	handler := batch.WrapStream(store, "fulfil-order", fulfil,
		batch.WithKey(batch.NewImageField("order_id")), // with the event name: MODIFY
		batch.WithLogger(slog.New(slog.DiscardHandler)), batch.WithMetrics(nil))

	// Two orders turned PAID, as Lambda delivers them from the stream.
	var ev events.DynamoDBEvent
	if err := json.Unmarshal([]byte(`{"Records":[
	  {"eventID":"1","eventName":"MODIFY","eventSource":"aws:dynamodb","dynamodb":{"SequenceNumber":"100",
	   "Keys":{"order_id":{"S":"o-1"}},
	   "NewImage":{"order_id":{"S":"o-1"},"status":{"S":"PAID"},"amount":{"N":"500000"}}}},
	  {"eventID":"2","eventName":"MODIFY","eventSource":"aws:dynamodb","dynamodb":{"SequenceNumber":"101",
	   "Keys":{"order_id":{"S":"o-2"}},
	   "NewImage":{"amount":{"N":"250000"},"status":{"S":"PAID"},"order_id":{"S":"o-2"}}}}]}`), &ev); err != nil {
		log.Fatal(err)
	}
	for range 2 { // the second time: the shard re-read after a crash
		resp, err := handler(ctx, ev)
		fmt.Println("retry:", resp.BatchItemFailures, err)
	}
	out, err := client.Scan(ctx, &dynamodb.ScanInput{TableName: aws.String(receipts)})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("receipts:", out.Count)
	// Output:
	// receipt for o-1
	// receipt for o-2
	// retry: [] <nil>
	// retry: [] <nil>
	// receipts: 2
}

// A producer resends an order with a new sent_at each time. Keyed by the
// order id, the resend replays by default (no body field is fingerprinted);
// WithFingerprintFields makes a change of the amount, the field that
// matters, a mismatch, reported so the redrive policy moves it to the
// dead-letter queue.
func ExampleWithFingerprintFields() {
	ctx := context.Background()
	client, tables := exampleTables("idempotency")
	store, err := idemddb.New(client, idemddb.Config{Table: tables[0]})
	if err != nil {
		log.Fatal(err)
	}
	charge := func(ctx context.Context, c *idemddb.Claim, msg events.SQSMessage) error {
		fmt.Println("charged", msg.MessageId)
		return nil
	}
	handler := batch.WrapSQS(store, "charge", charge,
		batch.WithKey(batch.BodyField("order_id")),
		batch.WithFingerprintFields("order_id", "amount"),
		batch.WithLogger(slog.New(slog.DiscardHandler)), batch.WithMetrics(nil))

	resp, err := handler(ctx, events.SQSEvent{Records: []events.SQSMessage{
		{MessageId: "m-1", Body: `{"order_id":"o-1","amount":500,"sent_at":"10:00:00"}`},
		{MessageId: "m-2", Body: `{"order_id":"o-1","amount":500,"sent_at":"10:00:07"}`}, // a resend
		{MessageId: "m-3", Body: `{"order_id":"o-1","amount":900,"sent_at":"10:00:09"}`}, // a real change
	}})
	fmt.Println("retry:", resp.BatchItemFailures, err)
	// Output:
	// charged m-1
	// retry: [{m-3}] <nil>
}
