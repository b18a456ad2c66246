package idemddb_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/acme/idemcheckout/pkg/idemddb"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// stubTransport answers DynamoDB requests in process: no network, so the
// benchmarks measure the SDK and the library only. replay makes every
// conditional PutItem fail with the stored item, as DynamoDB does with
// ReturnValuesOnConditionCheckFailure=ALL_OLD. It counts the request body
// bytes of each operation (X-Amz-Target): what the SDK marshals and signs.
type stubTransport struct {
	replayBody string
	replay     bool
	mu         sync.Mutex
	bytes      map[string]int
	calls      map[string]int
}

func (s *stubTransport) Do(r *http.Request) (*http.Response, error) {
	n, _ := io.Copy(io.Discard, r.Body)
	_ = r.Body.Close()
	op := r.Header.Get("X-Amz-Target")
	op = op[strings.LastIndexByte(op, '.')+1:]
	s.mu.Lock()
	if s.bytes == nil {
		s.bytes, s.calls = map[string]int{}, map[string]int{}
	}
	s.bytes[op] += int(n)
	s.calls[op]++
	s.mu.Unlock()
	status, body := 200, "{}"
	if s.replay && op == "PutItem" {
		status, body = 400, s.replayBody
	}
	return &http.Response{
		StatusCode: status, Header: http.Header{"Content-Type": {"application/x-amz-json-1.0"}},
		Body: io.NopCloser(strings.NewReader(body)), ContentLength: int64(len(body)), Request: r,
	}, nil
}

// perCall returns the mean request body bytes of op so far.
func (s *stubTransport) perCall(op string) float64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.calls[op] == 0 {
		return 0
	}
	return float64(s.bytes[op]) / float64(s.calls[op])
}

func stubClient(tr *stubTransport) *dynamodb.Client { return stubClientH(tr) }

func stubClientH(tr aws.HTTPClient) *dynamodb.Client {
	return dynamodb.NewFromConfig(aws.Config{
		Region: "us-east-1",
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: "test", SecretAccessKey: "test"}, nil
		}),
		HTTPClient: tr,
	}, func(o *dynamodb.Options) { o.BaseEndpoint = aws.String("http://127.0.0.1:1") })
}

// completedItemJSON is a COMPLETED record as DynamoDB returns it with a
// failed condition (a 201 order body of ~200 bytes as the result).
func completedItemJSON(fp []byte) string {
	result := workloadResult
	b64 := func(b []byte) string {
		return strings.TrimRight(encodeStd(b), "\n")
	}
	return fmt.Sprintf(`{"__type":"com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException","message":"The conditional request failed","Item":{"id":{"S":"%s"},"status":{"S":"COMPLETED"},"fp":{"B":"%s"},"lease_owner":{"S":"tok"},"expires_at":{"N":"4102444800"},"result":{"B":"%s"}}}`,
		workloadKey, b64(fp), b64(result))
}

func benchStore(b *testing.B, tr *stubTransport) *idemddb.Store {
	s, err := idemddb.New(stubClient(tr), idemddb.Config{Table: workloadTable})
	if err != nil {
		b.Fatal(err)
	}
	return s
}

// BenchmarkFirstCall: claim + completion (PutItem + UpdateItem), for the
// workload of the size targets (a 41-byte key, a 293-byte response). It
// reports the request body bytes of each.
func BenchmarkFirstCall(b *testing.B) {
	tr := &stubTransport{}
	s, err := idemddb.New(stubClient(tr), idemddb.Config{Table: workloadTable})
	if err != nil {
		b.Fatal(err)
	}
	req := idemddb.Request{Key: workloadKey, Fingerprint: []byte(`POST /orders {"currency":"INR"}`)}
	loopRun(b, s, req, false, func(context.Context, *idemddb.Claim) ([]byte, error) { return workloadResult, nil })
	b.ReportMetric(tr.perCall("PutItem"), "claim-B/op")
	b.ReportMetric(tr.perCall("UpdateItem"), "completion-B/op")
}

// workloadTable is a table name as CloudFormation makes it (stack name,
// logical id, suffix), for realistic request sizes.
const workloadTable = "idem-checkout-IdempotencyTable-1Q2W3E4R5T6Y7"

// TestWireBytes: for the workload of the size targets, the claim sends at
// most 730 body bytes and the completion at most 880 (the Go port of
// Powertools sends 729 and 877), counted at the HTTP transport.
func TestWireBytes(t *testing.T) {
	tr := &stubTransport{}
	st, err := idemddb.New(stubClient(tr), idemddb.Config{Table: workloadTable})
	if err != nil {
		t.Fatal(err)
	}
	req := idemddb.Request{Key: workloadKey, Fingerprint: []byte("p")}
	if len(req.Key) != 41 || len(workloadResult) != 293 {
		t.Fatalf("workload is %d/%d bytes", len(req.Key), len(workloadResult))
	}
	if _, err := st.Run(context.Background(), req, func(context.Context, *idemddb.Claim) ([]byte, error) { return workloadResult, nil }); err != nil {
		t.Fatal(err)
	}
	claim, done := tr.perCall("PutItem"), tr.perCall("UpdateItem")
	t.Logf("claim %.0f bytes, completion %.0f bytes", claim, done)
	if claim == 0 || claim > 730 || done == 0 || done > 880 {
		t.Fatalf("claim %.0f bytes (want 1..730), completion %.0f bytes (want 1..880)", claim, done)
	}
}

// BenchmarkFirstCallTransaction: claim + one TransactWriteItems carrying a
// business put (the checkout functions' path).
func BenchmarkFirstCallTransaction(b *testing.B) {
	req := idemddb.Request{Key: workloadKey, Fingerprint: []byte(`POST /orders {"currency":"INR"}`)}
	loopRun(b, benchStore(b, &stubTransport{}), req, false, withBusinessPut)
}

// BenchmarkReplay: one PutItem whose condition fails with the old item.
func BenchmarkReplay(b *testing.B) {
	fp := []byte(`POST /orders {"currency":"INR"}`)
	tr := &stubTransport{replay: true, replayBody: completedItemJSON(sha(fp))}
	s := benchStore(b, tr)
	loopRun(b, s, idemddb.Request{Key: workloadKey, Fingerprint: fp}, true, nil)
}

// BenchmarkReplayCached: a hit in the in-process cache.
func BenchmarkReplayCached(b *testing.B) {
	s, err := idemddb.New(stubClient(&stubTransport{}), idemddb.Config{Table: workloadTable, Cache: idemddb.NewCache(1024, 0)})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	req := idemddb.Request{Key: "k", Fingerprint: []byte("p")}
	if _, err := s.Run(ctx, req, func(context.Context, *idemddb.Claim) ([]byte, error) { return workloadResult, nil }); err != nil {
		b.Fatal(err)
	}
	loopRun(b, s, req, true, nil)
}

// lambdaContext is a context as Lambda gives a handler: with the
// invocation's deadline (so the work's context needs no deadline of its
// own). The baselines use it too, so both sides see the same context.
func lambdaContext(b *testing.B) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	b.Cleanup(cancel)
	return ctx
}

// loopRun runs req through s once per benchmark iteration; replay says
// whether each run must be a replay.
func loopRun(b *testing.B, s *idemddb.Store, req idemddb.Request, replay bool, work func(context.Context, *idemddb.Claim) ([]byte, error)) {
	b.Helper()
	ctx := lambdaContext(b)
	loopCPU(b, func() {
		res, err := s.Run(ctx, req, work)
		if err != nil || res.Replayed != replay {
			b.Fatal(res, err)
		}
	})
}

// loopCPU runs op once per iteration and reports, besides time and
// allocations, the process's CPU time per op (user + system, from
// getrusage): on a shared machine wall time counts the time other
// processes hold the cores, CPU time does not.
func loopCPU(b *testing.B, op func()) {
	b.Helper()
	b.ReportAllocs()
	before := cpuTime()
	n := 0
	for b.Loop() {
		op()
		n++
	}
	b.ReportMetric(float64((cpuTime()-before).Nanoseconds())/1e3/float64(n), "cpu-µs/op")
}

// cpuTime is the process's user + system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// withBusinessPut is work that adds the checkout's business put.
func withBusinessPut(_ context.Context, c *idemddb.Claim) ([]byte, error) {
	c.AddWrites(businessPut())
	return workloadResult, nil
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

// The baselines make the same SDK calls directly, with the same items and
// expressions (BenchmarkFirstCall's workload), so (library - baseline) is
// the library's own cost.
func BenchmarkBaselineSDKFirstCall(b *testing.B) {
	c := stubClient(&stubTransport{})
	ctx := lambdaContext(b)
	loopCPU(b, func() {
		if _, err := c.PutItem(ctx, baselineClaim()); err != nil {
			b.Fatal(err)
		}
		if _, err := c.UpdateItem(ctx, baselineComplete()); err != nil {
			b.Fatal(err)
		}
	})
}

func BenchmarkBaselineSDKFirstCallTransaction(b *testing.B) {
	c := stubClient(&stubTransport{})
	ctx := lambdaContext(b)
	loopCPU(b, func() {
		if err := baselineFirstCallTransaction(ctx, c); err != nil {
			b.Fatal(err)
		}
	})
}

// baselineFirstCallTransaction makes BenchmarkFirstCallTransaction's
// requests directly: the claim's PutItem, then one TransactWriteItems with
// the business put and the completion.
func baselineFirstCallTransaction(ctx context.Context, c idemddb.Client) error {
	if _, err := c.PutItem(ctx, baselineClaim()); err != nil {
		return err
	}
	p := baselineComplete()
	_, err := c.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{
		ClientRequestToken: aws.String("0123456789abcdefghijkl"),
		TransactItems: []types.TransactWriteItem{businessPut(), {Update: &types.Update{
			TableName: p.TableName, Key: p.Key, UpdateExpression: p.UpdateExpression, ConditionExpression: p.ConditionExpression,
			ExpressionAttributeNames: p.ExpressionAttributeNames, ExpressionAttributeValues: p.ExpressionAttributeValues,
		}}},
	})
	return err
}

func BenchmarkBaselineSDKReplay(b *testing.B) {
	fp := []byte(`POST /orders {"currency":"INR"}`)
	c := stubClient(&stubTransport{replay: true, replayBody: completedItemJSON(sha(fp))})
	ctx := lambdaContext(b)
	loopCPU(b, func() {
		if _, err := c.PutItem(ctx, baselineClaim()); err == nil {
			b.Fatal("want a condition failure")
		}
	})
}

func s(v string) types.AttributeValue { return &types.AttributeValueMemberS{Value: v} }
func n(v string) types.AttributeValue { return &types.AttributeValueMemberN{Value: v} }

// baselineClaim is the claim's PutItem as the library sends it.
func baselineClaim() *dynamodb.PutItemInput {
	return &dynamodb.PutItemInput{
		TableName: aws.String(workloadTable),
		Item: map[string]types.AttributeValue{
			"id": s(workloadKey), "status": s("IN_PROGRESS"), "fp": &types.AttributeValueMemberB{Value: make([]byte, 32)},
			"lease_owner": s("0123456789abcdefghijkl"), "lease_until": n("1790000000000"), "expires_at": n("1790000000"),
		},
		ConditionExpression:                 aws.String("attribute_not_exists(#k) OR #e <= :now"),
		ExpressionAttributeNames:            map[string]string{"#k": "id", "#e": "expires_at"},
		ExpressionAttributeValues:           map[string]types.AttributeValue{":now": n("1790000000")},
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	}
}

// baselineComplete is the completion's UpdateItem as the library sends it.
func baselineComplete() *dynamodb.UpdateItemInput {
	return &dynamodb.UpdateItemInput{
		TableName:           aws.String(workloadTable),
		Key:                 map[string]types.AttributeValue{"id": s(workloadKey)},
		UpdateExpression:    aws.String("SET #s = :c, #e = :e, #r = :r REMOVE #l"),
		ConditionExpression: aws.String("#o = :t"),
		ExpressionAttributeNames: map[string]string{
			"#s": "status", "#o": "lease_owner", "#e": "expires_at", "#r": "result", "#l": "lease_until",
		},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":t": s("0123456789abcdefghijkl"), ":c": s("COMPLETED"), ":e": n("1790000000"),
			":r": &types.AttributeValueMemberB{Value: workloadResult},
		},
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

func (f *fakeClient) UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, _ ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error) {
	return &dynamodb.UpdateItemOutput{}, nil
}

func (f *fakeClient) TransactWriteItems(ctx context.Context, in *dynamodb.TransactWriteItemsInput, _ ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error) {
	return &dynamodb.TransactWriteItemsOutput{}, nil
}

func BenchmarkLibraryOnlyFirstCall(b *testing.B) {
	s, err := idemddb.New(&fakeClient{}, idemddb.Config{Table: workloadTable})
	if err != nil {
		b.Fatal(err)
	}
	req := idemddb.Request{Key: workloadKey, Fingerprint: []byte(`POST /orders {"currency":"INR"}`)}
	loopRun(b, s, req, false, withBusinessPut)
}

func BenchmarkLibraryOnlyReplay(b *testing.B) {
	fp := []byte(`POST /orders {"currency":"INR"}`)
	st, err := idemddb.New(&fakeClient{replayItem: replayItem(fp)}, idemddb.Config{Table: workloadTable})
	if err != nil {
		b.Fatal(err)
	}
	loopRun(b, st, idemddb.Request{Key: workloadKey, Fingerprint: fp}, true, nil)
}

// replayItem is the COMPLETED record a replay's claim meets.
func replayItem(fp []byte) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{
		"id": s(workloadKey), "status": s("COMPLETED"), "fp": &types.AttributeValueMemberB{Value: sha(fp)},
		"lease_owner": s("tok"), "expires_at": n("4102444800"),
		"result": &types.AttributeValueMemberB{Value: workloadResult},
	}
}

// The BaselineOnly benchmarks make the baselines' requests on the same
// fakeClient as the LibraryOnly ones: what the same calls cost a caller
// without the library, less the SDK. (LibraryOnly - BaselineOnly) is the
// library's own CPU per call, measured without the SDK's noise.
func BenchmarkBaselineOnlyFirstCall(b *testing.B) {
	c := &fakeClient{}
	ctx := lambdaContext(b)
	loopCPU(b, func() {
		if err := baselineFirstCallTransaction(ctx, c); err != nil {
			b.Fatal(err)
		}
	})
}

func BenchmarkBaselineOnlyReplay(b *testing.B) {
	c := &fakeClient{replayItem: replayItem([]byte(`POST /orders {"currency":"INR"}`))}
	ctx := lambdaContext(b)
	loopCPU(b, func() {
		if _, err := c.PutItem(ctx, baselineClaim()); err == nil {
			b.Fatal("want a condition failure")
		}
	})
}
