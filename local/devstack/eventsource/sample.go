package eventsource

import (
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/acme/idemcheckout/ddblocal/ddbstream"
	"github.com/acme/idemcheckout/internal/samtemplate"
	"github.com/acme/idemcheckout/local/devstack/lambda"
	"github.com/acme/idemcheckout/local/devstack/template"
	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	streamtypes "github.com/aws/aws-sdk-go-v2/service/dynamodbstreams/types"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// SampleSQS is an SQS event with one message whose body is body, from
// the queue queueARN (a sample queue's when ""), indented, as `make event
// TYPE=sqs` prints it.
func SampleSQS(tm *template.Template, queueARN, body string, now time.Time) ([]byte, error) {
	if queueARN == "" {
		queueARN = "arn:aws:sqs:" + tm.Region + ":" + template.FakeAccount + ":sample-queue"
	}
	sum := md5.Sum([]byte(body))
	ms := fmt.Sprint(now.UnixMilli())
	msg := sqstypes.Message{
		MessageId:     aws.String(lambda.NewRequestID()),
		ReceiptHandle: aws.String("local-" + lambda.NewRequestID()),
		Body:          aws.String(body),
		MD5OfBody:     aws.String(hex.EncodeToString(sum[:])),
		Attributes: map[string]string{
			"ApproximateReceiveCount": "1", "SentTimestamp": ms, "SenderId": template.FakeAccount,
			"ApproximateFirstReceiveTimestamp": ms,
		},
	}
	return json.MarshalIndent(events.SQSEvent{Records: []events.SQSMessage{sqsRecord(msg, queueARN, tm.Region)}}, "", "  ")
}

// SampleStream is a stream event with one INSERT of an item with the key
// attributes of table tb, from the stream streamARN (made up from the
// table's name when ""), indented, as `make event TYPE=dynamodb` prints
// it.
func SampleStream(tm *template.Template, tb samtemplate.Table, streamARN string, now time.Time) ([]byte, error) {
	if streamARN == "" {
		name := tm.TableName(tb.ID)
		if name == "" {
			name = tb.ID // a sample table, not one of the template
		}
		streamARN = "arn:aws:dynamodb:" + tm.Region + ":" + template.FakeAccount + ":table/" + name + "/stream/local"
	}
	keys := map[string]streamtypes.AttributeValue{}
	for _, k := range tb.KeySchema {
		typ := "S"
		for _, a := range tb.AttributeDefinitions {
			if a.AttributeName == k.AttributeName {
				typ = a.AttributeType
			}
		}
		if typ == "N" {
			keys[k.AttributeName] = &streamtypes.AttributeValueMemberN{Value: "1"}
		} else {
			keys[k.AttributeName] = &streamtypes.AttributeValueMemberS{Value: "sample"}
		}
	}
	if len(keys) == 0 {
		keys["id"] = &streamtypes.AttributeValueMemberS{Value: "sample"}
	}
	image := map[string]streamtypes.AttributeValue{"sample": &streamtypes.AttributeValueMemberS{Value: "value"}}
	for k, v := range keys {
		image[k] = v
	}
	view := tb.StreamViewType
	if view == "" {
		view = "NEW_AND_OLD_IMAGES"
	}
	rec := streamtypes.Record{
		AwsRegion:    aws.String(tm.Region),
		EventID:      aws.String(strings.ReplaceAll(lambda.NewRequestID(), "-", "")),
		EventName:    streamtypes.OperationTypeInsert,
		EventSource:  aws.String("aws:dynamodb"),
		EventVersion: aws.String("1.1"),
		Dynamodb: &streamtypes.StreamRecord{
			ApproximateCreationDateTime: aws.Time(now.Truncate(time.Second)),
			Keys:                        keys,
			NewImage:                    image,
			SequenceNumber:              aws.String(fmt.Sprint(now.UnixNano())),
			SizeBytes:                   aws.Int64(64),
			StreamViewType:              streamtypes.StreamViewType(view),
		},
	}
	return json.MarshalIndent(events.DynamoDBEvent{Records: []events.DynamoDBEventRecord{ddbstream.Record(rec, streamARN)}}, "", "  ")
}
