package idemddb_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/acme/idemcheckout/pkg/idemddb"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// stubTransport answers DynamoDB requests in process: no network, so the
// benchmarks measure the SDK and the library only. replay makes every
// conditional PutItem fail with the stored item, as DynamoDB does with
// ReturnValuesOnConditionCheckFailure=ALL_OLD.
type stubTransport struct {
	replayBody string
	replay     bool
}

func (s *stubTransport) Do(r *http.Request) (*http.Response, error) {
	_, _ = io.Copy(io.Discard, r.Body)
	_ = r.Body.Close()
	status, body := 200, "{}"
	if s.replay && strings.HasSuffix(r.Header.Get("X-Amz-Target"), ".PutItem") {
		status, body = 400, s.replayBody
	}
	return &http.Response{
		StatusCode: status, Header: http.Header{"Content-Type": {"application/x-amz-json-1.0"}},
		Body: io.NopCloser(strings.NewReader(body)), ContentLength: int64(len(body)), Request: r,
	}, nil
}

func stubClient(tr *stubTransport) *dynamodb.Client {
	return dynamodb.NewFromConfig(aws.Config{
		Region:      "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider("test", "test", ""),
		HTTPClient:  tr,
	}, func(o *dynamodb.Options) { o.BaseEndpoint = aws.String("http://127.0.0.1:1") })
}

// completedItemJSON is a COMPLETED record as DynamoDB returns it with a
// failed condition (a 201 order body of ~200 bytes as the result).
func completedItemJSON(fp []byte) string {
	result := `{"order_id":"ord_0123456789abcdefghijkl","status":"PENDING","amount":500000,"currency":"INR","items":[{"sku":"SKU-1","quantity":2,"unit_price":250000}],"created_at":"2026-11-27T10:00:00Z"}`
	b64 := func(b []byte) string {
		return strings.TrimRight(encodeStd(b), "\n")
	}
	return fmt.Sprintf(`{"__type":"com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException","message":"The conditional request failed","Item":{"id":{"S":"k"},"status":{"S":"COMPLETED"},"fp":{"B":"%s"},"lease_owner":{"S":"tok"},"lease_until":{"N":"0"},"expires_at":{"N":"4102444800"},"rid":{"S":"rid"},"created_at":{"N":"1"},"completed_at":{"N":"2"},"enc":{"N":"0"},"v":{"N":"1"},"result":{"B":"%s"}}}`,
		b64(fp), b64([]byte(result)))
}

func benchStore(b *testing.B, tr *stubTransport) *idemddb.Store {
	s, err := idemddb.New(stubClient(tr), idemddb.Config{Table: "idem"})
	if err != nil {
		b.Fatal(err)
	}
	return s
}

var benchResult = []byte(`{"order_id":"ord_0123456789abcdefghijkl","status":"PENDING","amount":500000,"currency":"INR"}`)

// BenchmarkFirstCall: claim + completion (PutItem + PutItem).
func BenchmarkFirstCall(b *testing.B) {
	s := benchStore(b, &stubTransport{})
	ctx := context.Background()
	req := idemddb.Request{Key: "scope/route/key-0123456789", Fingerprint: []byte(`POST /orders {"currency":"INR"}`)}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Run(ctx, req, func(context.Context, *idemddb.Claim) ([]byte, error) { return benchResult, nil }); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkFirstCallTransaction: claim + one TransactWriteItems carrying a
// business put (the checkout functions' path).
func BenchmarkFirstCallTransaction(b *testing.B) {
	s := benchStore(b, &stubTransport{})
	ctx := context.Background()
	req := idemddb.Request{Key: "scope/route/key-0123456789", Fingerprint: []byte(`POST /orders {"currency":"INR"}`)}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Run(ctx, req, func(_ context.Context, c *idemddb.Claim) ([]byte, error) {
			c.AddWrites(businessPut())
			return benchResult, nil
		}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkReplay: one PutItem whose condition fails with the old item.
func BenchmarkReplay(b *testing.B) {
	fp := []byte(`POST /orders {"currency":"INR"}`)
	tr := &stubTransport{replay: true, replayBody: completedItemJSON(sha(fp))}
	s := benchStore(b, tr)
	ctx := context.Background()
	req := idemddb.Request{Key: "k", Fingerprint: fp}
	b.ReportAllocs()
	for b.Loop() {
		res, err := s.Run(ctx, req, func(context.Context, *idemddb.Claim) ([]byte, error) { return nil, nil })
		if err != nil || !res.Replayed {
			b.Fatal(res, err)
		}
	}
}

// BenchmarkReplayCached: a hit in the in-process cache.
func BenchmarkReplayCached(b *testing.B) {
	s, err := idemddb.New(stubClient(&stubTransport{}), idemddb.Config{Table: "idem", Cache: idemddb.NewCache(1024, 0)})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	req := idemddb.Request{Key: "k", Fingerprint: []byte("p")}
	if _, err := s.Run(ctx, req, func(context.Context, *idemddb.Claim) ([]byte, error) { return benchResult, nil }); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if res, err := s.Run(ctx, req, nil); err != nil || !res.Replayed {
			b.Fatal(res, err)
		}
	}
}

func businessPut() types.TransactWriteItem {
	return types.TransactWriteItem{Put: &types.Put{
		TableName: aws.String("orders"),
		Item: map[string]types.AttributeValue{
			"order_id": &types.AttributeValueMemberS{Value: "ord_0123456789abcdefghijkl"},
			"amount":   &types.AttributeValueMemberN{Value: "500000"},
			"currency": &types.AttributeValueMemberS{Value: "INR"},
		},
		ConditionExpression: aws.String("attribute_not_exists(order_id)"),
	}}
}

// The baselines make the same SDK calls directly, with items and
// expressions of the same shape, so (library - baseline) is the library's
// own cost.
func BenchmarkBaselineSDKFirstCall(b *testing.B) {
	c := stubClient(&stubTransport{})
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.PutItem(ctx, baselineClaim()); err != nil {
			b.Fatal(err)
		}
		if _, err := c.PutItem(ctx, baselineComplete()); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkBaselineSDKFirstCallTransaction(b *testing.B) {
	c := stubClient(&stubTransport{})
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.PutItem(ctx, baselineClaim()); err != nil {
			b.Fatal(err)
		}
		p := baselineComplete()
		if _, err := c.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{
			ClientRequestToken: aws.String("0123456789abcdefghijkl"),
			TransactItems: []types.TransactWriteItem{businessPut(), {Put: &types.Put{
				TableName: p.TableName, Item: p.Item, ConditionExpression: p.ConditionExpression,
				ExpressionAttributeNames: p.ExpressionAttributeNames, ExpressionAttributeValues: p.ExpressionAttributeValues,
			}}},
		}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkBaselineSDKReplay(b *testing.B) {
	fp := []byte(`POST /orders {"currency":"INR"}`)
	c := stubClient(&stubTransport{replay: true, replayBody: completedItemJSON(sha(fp))})
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.PutItem(ctx, baselineClaim()); err == nil {
			b.Fatal("want a condition failure")
		}
	}
}

func s(v string) types.AttributeValue { return &types.AttributeValueMemberS{Value: v} }
func n(v string) types.AttributeValue { return &types.AttributeValueMemberN{Value: v} }

func baselineClaim() *dynamodb.PutItemInput {
	return &dynamodb.PutItemInput{
		TableName: aws.String("idem"),
		Item: map[string]types.AttributeValue{
			"id": s("scope/route/key-0123456789"), "status": s("IN_PROGRESS"), "fp": &types.AttributeValueMemberB{Value: make([]byte, 32)},
			"lease_owner": s("0123456789abcdefghijkl"), "lease_until": n("1790000000000"), "expires_at": n("1790000000"),
			"rid": s("0123456789abcdefghijkl"), "created_at": n("1790000000000"), "v": n("1"),
		},
		ConditionExpression: aws.String("attribute_not_exists(#id) OR #exp <= :now OR (#st = :inprog AND #lease <= :nowms AND #fp = :fp)"),
		ExpressionAttributeNames: map[string]string{
			"#id": "id", "#exp": "expires_at", "#st": "status", "#lease": "lease_until", "#fp": "fp",
		},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":now": n("1790000000"), ":nowms": n("1790000000000"), ":inprog": s("IN_PROGRESS"), ":fp": &types.AttributeValueMemberB{Value: make([]byte, 32)},
		},
		ReturnValues:                        types.ReturnValueAllOld,
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	}
}

func baselineComplete() *dynamodb.PutItemInput {
	return &dynamodb.PutItemInput{
		TableName: aws.String("idem"),
		Item: map[string]types.AttributeValue{
			"id": s("scope/route/key-0123456789"), "status": s("COMPLETED"), "fp": &types.AttributeValueMemberB{Value: make([]byte, 32)},
			"lease_owner": s("0123456789abcdefghijkl"), "lease_until": n("0"), "expires_at": n("1790000000"),
			"rid": s("0123456789abcdefghijkl"), "created_at": n("1790000000000"), "completed_at": n("1790000000001"),
			"enc": n("0"), "v": n("1"), "result": &types.AttributeValueMemberB{Value: benchResult},
		},
		ConditionExpression:       aws.String("#st = :inprog AND #owner = :tok"),
		ExpressionAttributeNames:  map[string]string{"#st": "status", "#owner": "lease_owner"},
		ExpressionAttributeValues: map[string]types.AttributeValue{":inprog": s("IN_PROGRESS"), ":tok": s("0123456789abcdefghijkl")},
	}
}

// fakeClient answers at the Client interface, below the SDK: the
// BenchmarkLibraryOnly* figures are the library's own cost, measured
// directly rather than as a difference of two noisy totals.
type fakeClient struct {
	idemddb.Client
	replayItem map[string]types.AttributeValue
}

func (f *fakeClient) PutItem(ctx context.Context, in *dynamodb.PutItemInput, _ ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	if f.replayItem != nil {
		return nil, &types.ConditionalCheckFailedException{Item: f.replayItem}
	}
	return &dynamodb.PutItemOutput{}, nil
}

func (f *fakeClient) TransactWriteItems(ctx context.Context, in *dynamodb.TransactWriteItemsInput, _ ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error) {
	return &dynamodb.TransactWriteItemsOutput{}, nil
}

func BenchmarkLibraryOnlyFirstCall(b *testing.B) {
	s, err := idemddb.New(&fakeClient{}, idemddb.Config{Table: "idem"})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	req := idemddb.Request{Key: "scope/route/key-0123456789", Fingerprint: []byte(`POST /orders {"currency":"INR"}`)}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Run(ctx, req, func(_ context.Context, c *idemddb.Claim) ([]byte, error) {
			c.AddWrites(businessPut())
			return benchResult, nil
		}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkLibraryOnlyReplay(b *testing.B) {
	fp := []byte(`POST /orders {"currency":"INR"}`)
	item := map[string]types.AttributeValue{
		"id": s("k"), "status": s("COMPLETED"), "fp": &types.AttributeValueMemberB{Value: sha(fp)},
		"lease_owner": s("tok"), "lease_until": n("0"), "expires_at": n("4102444800"), "rid": s("rid"),
		"created_at": n("1"), "completed_at": n("2"), "enc": n("0"), "v": n("1"),
		"result": &types.AttributeValueMemberB{Value: benchResult},
	}
	st, err := idemddb.New(&fakeClient{replayItem: item}, idemddb.Config{Table: "idem"})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	req := idemddb.Request{Key: "k", Fingerprint: fp}
	b.ReportAllocs()
	for b.Loop() {
		if res, err := st.Run(ctx, req, nil); err != nil || !res.Replayed {
			b.Fatal(res, err)
		}
	}
}
