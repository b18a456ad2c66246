package eventsource

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/acme/idemcheckout/ddblocal/ddbstream"
	"github.com/acme/idemcheckout/internal/checkout"
	"github.com/acme/idemcheckout/local/devstack/template"
	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	streamtypes "github.com/aws/aws-sdk-go-v2/service/dynamodbstreams/types"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// The filter matcher on records in Lambda's JSON shape, one case per
// operator, each with a record it matches and one it does not.
func TestFilterPatterns(t *testing.T) {
	stream := func(event, status string, amount string) string {
		return `{"eventName":"` + event + `","dynamodb":{"Keys":{"id":{"S":"o-1"}},"NewImage":{"status":{"S":"` + status +
			`"},"amount":{"N":"` + amount + `"},"tags":{"SS":["a","vip"]}}}}`
	}
	for _, tc := range []struct {
		name, pattern, yes, no string
	}{
		{"exact string", `{"eventName":["MODIFY"]}`, stream("MODIFY", "PAID", "5"), stream("INSERT", "PAID", "5")},
		{"one of several", `{"eventName":["INSERT","MODIFY"]}`, stream("INSERT", "PAID", "5"), stream("REMOVE", "PAID", "5")},
		{"nested", `{"dynamodb":{"NewImage":{"status":{"S":["PAID"]}}}}`, stream("MODIFY", "PAID", "5"), stream("MODIFY", "PAYING", "5")},
		{"and across fields", `{"eventName":["MODIFY"],"dynamodb":{"NewImage":{"status":{"S":["PAID"]}}}}`, stream("MODIFY", "PAID", "5"), stream("INSERT", "PAID", "5")},
		{"prefix", `{"dynamodb":{"NewImage":{"status":{"S":[{"prefix":"PA"}]}}}}`, stream("MODIFY", "PAYING", "5"), stream("MODIFY", "PENDING", "5")},
		{"suffix", `{"dynamodb":{"NewImage":{"status":{"S":[{"suffix":"ING"}]}}}}`, stream("MODIFY", "PAYING", "5"), stream("MODIFY", "PAID", "5")},
		{"equals-ignore-case", `{"eventName":[{"equals-ignore-case":"modify"}]}`, stream("MODIFY", "PAID", "5"), stream("INSERT", "PAID", "5")},
		{"anything-but value", `{"dynamodb":{"NewImage":{"status":{"S":[{"anything-but":"PAID"}]}}}}`, stream("MODIFY", "PAYING", "5"), stream("MODIFY", "PAID", "5")},
		{"anything-but list", `{"eventName":[{"anything-but":["INSERT","REMOVE"]}]}`, stream("MODIFY", "PAID", "5"), stream("REMOVE", "PAID", "5")},
		{"anything-but prefix", `{"eventName":[{"anything-but":{"prefix":"IN"}}]}`, stream("MODIFY", "PAID", "5"), stream("INSERT", "PAID", "5")},
		{"anything-but needs the field", `{"dynamodb":{"OldImage":{"status":{"S":[{"anything-but":"PAID"}]}}}}`, `{"dynamodb":{"OldImage":{"status":{"S":"PAYING"}}}}`, stream("INSERT", "PAID", "5")},
		{"numeric range on a DynamoDB N", `{"dynamodb":{"NewImage":{"amount":{"N":[{"numeric":[">",0,"<=",100]}]}}}}`, stream("MODIFY", "PAID", "100"), stream("MODIFY", "PAID", "100.5")},
		{"numeric equals", `{"n":[{"numeric":["=",3]}]}`, `{"n":3.0}`, `{"n":4}`},
		{"number by value", `{"n":[3]}`, `{"n":3.0}`, `{"n":"3"}`},
		{"exists", `{"dynamodb":{"OldImage":[{"exists":true}]}}`, `{"dynamodb":{"OldImage":{}}}`, stream("INSERT", "PAID", "5")},
		{"not exists", `{"dynamodb":{"OldImage":[{"exists":false}]}}`, stream("INSERT", "PAID", "5"), `{"dynamodb":{"OldImage":{}}}`},
		{"null", `{"v":[null]}`, `{"v":null}`, `{"w":null}`},
		{"boolean", `{"v":[true]}`, `{"v":true}`, `{"v":"true"}`},
		{"empty string", `{"v":[""]}`, `{"v":""}`, `{"v":"x"}`},
		{"an array value matches by element", `{"dynamodb":{"NewImage":{"tags":{"SS":["vip"]}}}}`, stream("MODIFY", "PAID", "5"), `{"dynamodb":{"NewImage":{"tags":{"SS":["a"]}}}}`},
		{"nested pattern needs an object", `{"dynamodb":{"NewImage":{"status":{"S":["PAID"]}}}}`, stream("MODIFY", "PAID", "5"), `{"dynamodb":"PAID"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fs, err := compileFilters([]string{tc.pattern})
			if err != nil {
				t.Fatal(err)
			}
			if !fs.pass([]byte(tc.yes)) {
				t.Errorf("%s does not match %s", tc.pattern, tc.yes)
			}
			if fs.pass([]byte(tc.no)) {
				t.Errorf("%s matches %s", tc.pattern, tc.no)
			}
		})
	}
	// Several patterns: any of them.
	fs, err := compileFilters([]string{`{"eventName":["INSERT"]}`, `{"eventName":["REMOVE"]}`})
	if err != nil {
		t.Fatal(err)
	}
	if !fs.pass([]byte(`{"eventName":"REMOVE"}`)) || fs.pass([]byte(`{"eventName":"MODIFY"}`)) {
		t.Error("two patterns: want either")
	}
	if none, _ := compileFilters(nil); !none.pass([]byte(`{}`)) || !none.pass([]byte(`not json`)) {
		t.Error("no pattern must pass every record")
	}
}

// Patterns the local stack cannot apply are refused at start, naming the
// operator, rather than matching wrongly.
func TestFilterRefusesWhatItCannotApply(t *testing.T) {
	for pattern, want := range map[string]string{
		`{"$or":[{"a":["x"]},{"b":["y"]}]}`:                       "$or",
		`{"a":[{"wildcard":"x*"}]}`:                               "wildcard",
		`{"a":[{"cidr":"10.0.0.0/24"}]}`:                          "cidr",
		`{"a":[{"anything-but":{"suffix":".png"}}]}`:              "anything-but with [suffix]",
		`{"a":[{"prefix":{"equals-ignore-case":"x"}}]}`:           "prefix with an object",
		`{"a":[{"anything-but":{"equals-ignore-case":"x"}}]}`:     "anything-but with [equals-ignore-case]",
		`{"a":[{"numeric":[">"]}]}`:                               "numeric wants",
		`{"a":"x"}`:                                               "want an object or an array",
		`["x"]`:                                                   "want a JSON object",
		`{"a":[{"prefix":"x","suffix":"y"}]}`:                     "one operator",
		`{"a":[{"exists":"yes"}]}`:                                "exists wants",
		`{"a":[{"numeric":["~",1]}]}`:                             "numeric wants operators",
		`{"dynamodb":{"NewImage":{"s":{"S":[{"unknown":"x"}]}}}}`: "unknown (dynamodb.NewImage.s.S)",
	} {
		_, err := compileFilters([]string{pattern})
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: err = %v, want one naming %q", pattern, err, want)
		}
		if strings.Contains(want, "with") || want == "$or" || want == "wildcard" || want == "cidr" {
			if !errors.Is(err, ErrUnsupportedFilter) {
				t.Errorf("%s: %v is not ErrUnsupportedFilter", pattern, err)
			}
		}
	}
}

// template.yaml's FilterCriteria selects exactly the records
// checkout.PaidTransition accepts: the fulfilment is invoked for every
// payment and nothing else.
func TestTemplateFilterIsThePaidTransition(t *testing.T) {
	tm, err := template.Load("../../../template.yaml", nil, "")
	if err != nil {
		t.Fatal(err)
	}
	f, ok := tm.Function("FulfilOrderFunction")
	if !ok {
		t.Fatal("function FulfilOrderFunction not found")
	}
	if len(f.Events) != 1 || f.Events[0].Stream == nil {
		t.Fatalf("FulfilOrderFunction events = %+v", f.Events)
	}
	fs, err := compileFilters(f.Events[0].Stream.Filters)
	if err != nil {
		t.Fatal(err)
	}
	img := func(status string) map[string]events.DynamoDBAttributeValue {
		if status == "" {
			return nil
		}
		return map[string]events.DynamoDBAttributeValue{"order_id": events.NewStringAttribute("o"), "status": events.NewStringAttribute(status)}
	}
	statuses := []string{"", string(checkout.OrderPending), string(checkout.OrderPaying), string(checkout.OrderPaid), "SHIPPED"}
	matched := 0
	for _, old := range statuses {
		for _, cur := range statuses {
			name := "MODIFY" // the images an event has: INSERT a new one, REMOVE an old one
			switch {
			case old == "" && cur == "":
				continue
			case old == "":
				name = "INSERT"
			case cur == "":
				name = "REMOVE"
			}
			{
				rec := events.DynamoDBEventRecord{EventName: name, EventSource: "aws:dynamodb",
					Change: events.DynamoDBStreamRecord{Keys: map[string]events.DynamoDBAttributeValue{"order_id": events.NewStringAttribute("o")},
						OldImage: img(old), NewImage: img(cur), SequenceNumber: "1"}}
				got, want := fs.pass(mustJSON(rec)), checkout.PaidTransition(rec)
				if got != want {
					t.Errorf("%s %q -> %q: filter %v, PaidTransition %v", name, old, cur, got, want)
				}
				if got {
					matched++
				}
			}
		}
	}
	if matched != 2 {
		t.Errorf("%d transitions matched, want 2 (PENDING -> PAID, PAYING -> PAID)", matched)
	}
}

// A partial batch response is read as Lambda reads it.
func TestReportedFailures(t *testing.T) {
	ids := []string{"a", "b", "c"}
	for _, tc := range []struct {
		out  string
		want []int
		bad  bool
	}{
		{`null`, nil, false},
		{`{}`, nil, false},
		{`{"batchItemFailures":null}`, nil, false},
		{`{"batchItemFailures":[]}`, nil, false},
		{`{"ok":true}`, nil, false},
		{`{"batchItemFailures":[{"itemIdentifier":"c"},{"itemIdentifier":"b"},{"itemIdentifier":"c"}]}`, []int{1, 2}, false},
		{`{"batchItemFailures":[{"itemIdentifier":"z"}]}`, nil, true},
		{`{"batchItemFailures":[{"itemIdentifier":""}]}`, nil, true},
		{`{"batchItemFailures":[{"id":"a"}]}`, nil, true},
		{`{"batchItemFailures":[null]}`, nil, true},
		{`"done"`, nil, true},
		{`not json`, nil, true},
	} {
		got, err := reportedFailures([]byte(tc.out), ids)
		if (err != nil) != tc.bad || !slices.Equal(got, tc.want) {
			t.Errorf("%s: %v %v, want %v (whole batch failed: %v)", tc.out, got, err, tc.want, tc.bad)
		}
		if tc.bad && !errors.Is(err, errBadBatchResponse) {
			t.Errorf("%s: %v is not errBadBatchResponse", tc.out, err)
		}
	}
}

// The records the mappings deliver have the shape of Lambda's events:
// every attribute type of a stream image converts, eventSourceARN is the
// stream's, absent images stay absent; an SQS message carries its
// attributes and message attributes, eventSource and the queue's ARN.
func TestEventShapes(t *testing.T) {
	at := time.Date(2026, 5, 1, 12, 0, 0, 250e6, time.UTC)
	rec := streamtypes.Record{
		AwsRegion: aws.String("us-east-1"), EventID: aws.String("e1"), EventName: streamtypes.OperationTypeModify,
		EventSource: aws.String("aws:dynamodb"), EventVersion: aws.String("1.1"),
		UserIdentity: &streamtypes.Identity{PrincipalId: aws.String("dynamodb.amazonaws.com"), Type: aws.String("Service")},
		Dynamodb: &streamtypes.StreamRecord{
			ApproximateCreationDateTime: aws.Time(at),
			Keys:                        map[string]streamtypes.AttributeValue{"id": &streamtypes.AttributeValueMemberS{Value: "o-1"}},
			NewImage: map[string]streamtypes.AttributeValue{
				"s": &streamtypes.AttributeValueMemberS{Value: "x"}, "n": &streamtypes.AttributeValueMemberN{Value: "1.5"},
				"b": &streamtypes.AttributeValueMemberB{Value: []byte{1, 2}}, "t": &streamtypes.AttributeValueMemberBOOL{Value: true},
				"z": &streamtypes.AttributeValueMemberNULL{Value: true}, "ss": &streamtypes.AttributeValueMemberSS{Value: []string{"a"}},
				"ns": &streamtypes.AttributeValueMemberNS{Value: []string{"2"}}, "bs": &streamtypes.AttributeValueMemberBS{Value: [][]byte{{3}}},
				"l": &streamtypes.AttributeValueMemberL{Value: []streamtypes.AttributeValue{&streamtypes.AttributeValueMemberS{Value: "e"}}},
				"m": &streamtypes.AttributeValueMemberM{Value: map[string]streamtypes.AttributeValue{"k": &streamtypes.AttributeValueMemberN{Value: "7"}}},
			},
			SequenceNumber: aws.String("100"), SizeBytes: aws.Int64(42), StreamViewType: streamtypes.StreamViewTypeNewImage,
		},
	}
	b := mustJSON(events.DynamoDBEvent{Records: []events.DynamoDBEventRecord{ddbstream.Record(rec, "arn:aws:dynamodb:us-east-1:123456789012:table/T/stream/x")}})
	var raw struct {
		Records []map[string]json.RawMessage
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		t.Fatal(err)
	}
	var change map[string]json.RawMessage
	_ = json.Unmarshal(raw.Records[0]["dynamodb"], &change)
	if string(raw.Records[0]["eventSourceARN"]) != `"arn:aws:dynamodb:us-east-1:123456789012:table/T/stream/x"` ||
		string(raw.Records[0]["eventName"]) != `"MODIFY"` || change["OldImage"] != nil {
		t.Errorf("stream event = %s", b)
	}
	wantImage := `{"b":{"B":"AQI="},"bs":{"BS":["Aw=="]},"l":{"L":[{"S":"e"}]},"m":{"M":{"k":{"N":"7"}}},"n":{"N":"1.5"},"ns":{"NS":["2"]},"s":{"S":"x"},"ss":{"SS":["a"]},"t":{"BOOL":true},"z":{"NULL":true}}`
	if got := compactJSON(t, change["NewImage"]); got != wantImage {
		t.Errorf("NewImage = %s\nwant %s", got, wantImage)
	}
	var back events.DynamoDBEvent
	if err := json.Unmarshal(b, &back); err != nil || back.Records[0].Change.NewImage["m"].Map()["k"].Number() != "7" || back.Records[0].UserIdentity.Type != "Service" ||
		back.Records[0].Change.ApproximateCreationDateTime.Sub(at).Abs() > time.Millisecond {
		t.Errorf("round trip through aws-lambda-go: %v %+v", err, back)
	}

	m := sqsRecord(sqstypes.Message{
		MessageId: aws.String("m1"), ReceiptHandle: aws.String("rh"), Body: aws.String(`{"action":"ok"}`), MD5OfBody: aws.String("md5"),
		Attributes:        map[string]string{"ApproximateReceiveCount": "2"},
		MessageAttributes: map[string]sqstypes.MessageAttributeValue{"k": {DataType: aws.String("String"), StringValue: aws.String("v")}},
	}, "arn:aws:sqs:us-east-1:123456789012:jobs", "us-east-1")
	want := events.SQSMessage{MessageId: "m1", ReceiptHandle: "rh", Body: `{"action":"ok"}`, Md5OfBody: "md5",
		Attributes:        map[string]string{"ApproximateReceiveCount": "2"},
		MessageAttributes: map[string]events.SQSMessageAttribute{"k": {DataType: "String", StringValue: aws.String("v")}},
		EventSource:       "aws:sqs", EventSourceARN: "arn:aws:sqs:us-east-1:123456789012:jobs", AWSRegion: "us-east-1"}
	if got, w := string(mustJSON(m)), string(mustJSON(want)); got != w {
		t.Errorf("sqs record = %s\nwant %s", got, w)
	}
	if v := sqsFilterView(m); v["body"].(map[string]any)["action"] != "ok" || v["messageId"] != "m1" {
		t.Errorf("filter view of a JSON body = %v", v)
	}
	m.Body = "plain"
	if v := sqsFilterView(m); v["body"] != "plain" {
		t.Errorf("filter view of a text body = %v", v)
	}
}

func compactJSON(t *testing.T, b []byte) string {
	t.Helper()
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	return string(mustJSON(v))
}
