package devstack

import (
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"time"

	"github.com/acme/idemcheckout/ddblocal/ddbstream"
	"github.com/acme/idemcheckout/internal/samtemplate"
	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	streamtypes "github.com/aws/aws-sdk-go-v2/service/dynamodbstreams/types"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// Sample event kinds for SampleEvent (make event TYPE=...).
const (
	SampleHTTP     = "http"
	SampleSchedule = "schedule"
	SampleSQS      = "sqs"
	SampleDynamoDB = "dynamodb"
)

// SampleEvent returns an event of kind for function fn of tm (fn "" picks
// the first function that has such an event), to save and pass to `make
// invoke`, like `sam local generate-event`:
//   - http: API Gateway's event for the function's first route (a POST if
//     it has one), payload 2.0 (1.0 for Api routes), with an unsigned local
//     JWT for subject dev-user when the route has a JWT authorizer, an
//     Idempotency-Key and body as the JSON body;
//   - schedule: the Scheduled Event of the function's schedule;
//   - sqs: an SQS event with one message whose body is body;
//   - dynamodb: a stream event with one INSERT of an item with the
//     table's key attributes.
func SampleEvent(tm *Template, kind, fn, body string, now time.Time) ([]byte, error) {
	if body == "" {
		body = "{}"
	}
	for _, f := range tm.Functions() {
		if fn != "" && f.ID != fn {
			continue
		}
		for _, ev := range f.Events {
			switch {
			case kind == SampleHTTP && ev.HTTP != nil:
				return sampleHTTP(tm, &f, body, now)
			case kind == SampleSchedule && ev.Schedule != nil:
				return schedulePayload(tm.Region, &f, &ev, now), nil
			case kind == SampleSQS && ev.Queue != nil:
				return sampleSQS(tm, ev.Queue.Queue.Value, body, now)
			case kind == SampleDynamoDB && ev.Stream != nil:
				tb, _ := tm.Model.Table(ev.Stream.Stream.Resource)
				return sampleStream(tm, tb, ev.Stream.Stream.Value, now)
			}
		}
	}
	switch kind {
	case SampleSchedule:
		return ScheduledEvent(tm.Region, "arn:aws:events:"+tm.Region+":"+fakeAccount+":rule/sample", now), nil
	case SampleSQS:
		return sampleSQS(tm, "", body, now)
	case SampleDynamoDB:
		return sampleStream(tm, Table{ID: "SampleTable", KeySchema: nil}, "", now)
	case SampleHTTP:
		return nil, fmt.Errorf("no function %s has an HttpApi or Api event", orAny(fn))
	}
	return nil, fmt.Errorf("unknown event type %q (want %s, %s, %s or %s)", kind, SampleHTTP, SampleSchedule, SampleSQS, SampleDynamoDB)
}

func orAny(fn string) string {
	if fn == "" {
		return "of the template"
	}
	return fn
}

var pathParam = regexp.MustCompile(`\{[^}]+\}`)

func sampleHTTP(tm *Template, f *Function, body string, now time.Time) ([]byte, error) {
	var route *Route
	for _, r := range mustRoutes(tm) {
		if r.Function.ID == f.ID && (route == nil || (r.Event.HTTP.Method == "POST" && route.Event.HTTP.Method != "POST")) {
			route = r
		}
	}
	method := route.Event.HTTP.Method
	if method == "ANY" {
		method = http.MethodPost
	}
	path := route.Event.HTTP.Path
	if path == "$default" {
		path = "/"
	}
	params := map[string]string{}
	for _, p := range pathParam.FindAllString(path, -1) {
		params[strings.Trim(p, "{}+")] = "sample"
	}
	path = pathParam.ReplaceAllString(path, "sample")
	r := httptest.NewRequest(method, "http://127.0.0.1:3000"+path, strings.NewReader(body))
	r.RemoteAddr = "127.0.0.1:50000"
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("Idempotency-Key", "sample-"+newRequestID())
	r.Header.Set("User-Agent", "make-event")
	ri := &RequestInfo{Req: r, Body: []byte(body), Route: route, PathParams: params, Now: now, RequestID: newRequestID()}
	if len(params) == 0 {
		ri.PathParams = nil
	}
	if a := route.Authorizer; a != nil {
		r.Header.Set("Authorization", "Bearer "+devToken(a, route.Event.HTTP.Scopes, now))
		res, err := authorize(a, r.Header, route.Event.HTTP.Scopes, now)
		if err != nil {
			return nil, err
		}
		ri.JWT = res
	}
	if route.v1() {
		return json.MarshalIndent(BuildV1Event(ri), "", "  ")
	}
	return json.MarshalIndent(BuildV2Event(ri), "", "  ")
}

func sampleSQS(tm *Template, queueARN, body string, now time.Time) ([]byte, error) {
	if queueARN == "" {
		queueARN = "arn:aws:sqs:" + tm.Region + ":" + fakeAccount + ":sample-queue"
	}
	sum := md5.Sum([]byte(body))
	ms := fmt.Sprint(now.UnixMilli())
	msg := sqstypes.Message{
		MessageId:     aws.String(newRequestID()),
		ReceiptHandle: aws.String("local-" + newRequestID()),
		Body:          aws.String(body),
		MD5OfBody:     aws.String(hex.EncodeToString(sum[:])),
		Attributes: map[string]string{
			"ApproximateReceiveCount": "1", "SentTimestamp": ms, "SenderId": fakeAccount,
			"ApproximateFirstReceiveTimestamp": ms,
		},
	}
	return json.MarshalIndent(events.SQSEvent{Records: []events.SQSMessage{sqsRecord(msg, queueARN, tm.Region)}}, "", "  ")
}

func sampleStream(tm *Template, tb Table, streamARN string, now time.Time) ([]byte, error) {
	if streamARN == "" {
		streamARN = "arn:aws:dynamodb:" + tm.Region + ":" + fakeAccount + ":table/" + physical(tb) + "/stream/local"
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
		EventID:      aws.String(strings.ReplaceAll(newRequestID(), "-", "")),
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

// devToken is the local token for subject dev-user that authorizer a
// accepts (its issuer and first audience) with scopes, valid for 24 hours
// from now: make event's requests and the storefront's calls carry it.
func devToken(a *samtemplate.Authorizer, scopes []string, now time.Time) string {
	claims := map[string]any{"sub": "dev-user", "exp": now.Add(24 * time.Hour).Unix(), "scope": strings.Join(scopes, " ")}
	if a.JWT != nil && a.JWT.Issuer != "" {
		claims["iss"] = a.JWT.Issuer
	}
	if a.JWT != nil && len(a.JWT.Audience) > 0 {
		claims["aud"] = a.JWT.Audience[0]
	}
	return UnsignedJWT(claims)
}
