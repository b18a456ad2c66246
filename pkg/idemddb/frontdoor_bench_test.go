package idemddb_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/acme/idemcheckout/pkg/idemddb"
	"github.com/acme/idemcheckout/pkg/idemddb/apigw"
	"github.com/acme/idemcheckout/pkg/idemddb/idemhttp"
	"github.com/acme/idemcheckout/pkg/idemddb/internal/httpcontract"
	"github.com/aws/aws-lambda-go/events"
)

// The front doors' cost per call on the stubbed transport, side by side:
// apigw.WrapV2 (an HTTP API event) and idemhttp.Middleware (a net/http
// request), for one workload: POST /orders with a JSON body, a 201 with a
// 293-byte body. Logs and metrics are written to io.Discard on both sides.

const frontDoorBody = `{"currency":"INR","amount":500000}`

func frontDoorLogger() *slog.Logger { return slog.New(slog.NewJSONHandler(io.Discard, nil)) }

func v2Event() events.APIGatewayV2HTTPRequest {
	return events.APIGatewayV2HTTPRequest{
		Version: "2.0", RouteKey: "POST /orders", RawPath: "/orders",
		Headers: map[string]string{"content-type": "application/json", "idempotency-key": "order-key-0123456789"},
		Body:    frontDoorBody,
		RequestContext: events.APIGatewayV2HTTPRequestContext{RouteKey: "POST /orders", RequestID: "req",
			HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{Method: "POST", Path: "/orders"}},
	}
}

func wrapV2(s *idemddb.Store) apigw.HandlerV2 {
	return apigw.WrapV2(s, func(ctx context.Context, r events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
		return events.APIGatewayV2HTTPResponse{StatusCode: 201, Headers: map[string]string{"Content-Type": "application/json"}, Body: string(workloadResult)}, nil
	}, apigw.WithLogger(frontDoorLogger()), apigw.WithMetrics(io.Discard))
}

// discardWriter is a ResponseWriter that keeps nothing but its header map.
type discardWriter struct {
	h      http.Header
	status int
}

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) WriteHeader(code int)        { w.status = code }
func (w *discardWriter) Write(p []byte) (int, error) { return len(p), nil }

// WriteString is there because net/http's own ResponseWriter has it.
func (w *discardWriter) WriteString(s string) (int, error) { return len(s), nil }

// resettableBody is a request body read again on every iteration.
type resettableBody struct{ strings.Reader }

func (*resettableBody) Close() error { return nil }

func middleware(s *idemddb.Store) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("POST /orders", idemhttp.Middleware(s, apigw.WithLogger(frontDoorLogger()), apigw.WithMetrics(io.Discard))(
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(201)
			_, _ = w.Write(workloadResult)
		})))
	return mux
}

// serveLoop sends the workload's request through h once per iteration and
// checks the status and the replay header.
func serveLoop(b *testing.B, h http.Handler, replayed string) {
	b.Helper()
	ctx := lambdaContext(b)
	w := &discardWriter{}
	body := &resettableBody{}
	r, _ := http.NewRequestWithContext(ctx, http.MethodPost, "http://127.0.0.1/orders", body)
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("Idempotency-Key", "order-key-0123456789")
	r.ContentLength = int64(len(frontDoorBody))
	loopCPU(b, func() {
		body.Reset(frontDoorBody)
		w.h, w.status = http.Header{}, 0
		h.ServeHTTP(w, r)
		if w.status != 201 || w.h.Get(apigw.ReplayedHeader) != replayed {
			b.Fatalf("status %d, replayed %q", w.status, w.h.Get(apigw.ReplayedHeader))
		}
	})
}

func v2Loop(b *testing.B, h apigw.HandlerV2, replayed string) {
	b.Helper()
	ctx := lambdaContext(b)
	ev := v2Event()
	loopCPU(b, func() {
		resp, err := h(ctx, ev)
		if err != nil || resp.StatusCode != 201 || resp.Headers[apigw.ReplayedHeader] != replayed {
			b.Fatal(resp, err)
		}
	})
}

// frontDoorReplayTransport answers every claim with the completed record
// of the workload's response, as both front doors store it.
func frontDoorReplayTransport() *stubTransport {
	in := &httpcontract.Request{Method: "POST", Route: "POST /orders", Path: "/orders", ContentType: "application/json"}
	fp := httpcontract.Fingerprint(in, []byte(frontDoorBody))
	stored := httpcontract.EncodeResponse(&httpcontract.Response{Status: 201,
		Headers: map[string]string{"Content-Type": "application/json"}, Body: string(workloadResult)}, nil)
	item := fmt.Sprintf(`{"__type":"com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException","message":"The conditional request failed","Item":{"id":{"S":"k"},"status":{"S":"COMPLETED"},"fp":{"B":"%s"},"lease_owner":{"S":"tok"},"expires_at":{"N":"4102444800"},"result":{"B":"%s"}}}`,
		encodeStd(sha(fp)), encodeStd(stored))
	return &stubTransport{replay: true, replayBody: item}
}

// BenchmarkFrontDoorWrapV2FirstCall: claim + completion through WrapV2.
func BenchmarkFrontDoorWrapV2FirstCall(b *testing.B) {
	v2Loop(b, wrapV2(benchStore(b, &stubTransport{})), "")
}

// BenchmarkFrontDoorMiddlewareFirstCall: the same through idemhttp.
func BenchmarkFrontDoorMiddlewareFirstCall(b *testing.B) {
	serveLoop(b, middleware(benchStore(b, &stubTransport{})), "")
}

// BenchmarkFrontDoorWrapV2Replay: one PutItem answered with the record.
func BenchmarkFrontDoorWrapV2Replay(b *testing.B) {
	v2Loop(b, wrapV2(benchStore(b, frontDoorReplayTransport())), "true")
}

// BenchmarkFrontDoorMiddlewareReplay: the same through idemhttp.
func BenchmarkFrontDoorMiddlewareReplay(b *testing.B) {
	serveLoop(b, middleware(benchStore(b, frontDoorReplayTransport())), "true")
}

// cachedStore is a store whose in-process cache answers every replay, so
// a replay makes no DynamoDB request and the front door's own cost is what
// is measured (the SDK's cost, ~200 µs here, hides a difference of a few
// µs in the benchmarks above).
func cachedStore(b *testing.B) *idemddb.Store {
	s, err := idemddb.New(stubClient(&stubTransport{}), idemddb.Config{Table: workloadTable, Cache: idemddb.NewCache(1024, 0)})
	if err != nil {
		b.Fatal(err)
	}
	return s
}

// BenchmarkFrontDoorWrapV2ReplayCached: a replay from the cache through
// WrapV2 (the first call stores the response).
func BenchmarkFrontDoorWrapV2ReplayCached(b *testing.B) {
	h := wrapV2(cachedStore(b))
	if resp, err := h(lambdaContext(b), v2Event()); err != nil || resp.StatusCode != 201 {
		b.Fatal(resp, err)
	}
	v2Loop(b, h, "true")
}

// BenchmarkFrontDoorMiddlewareReplayCached: the same through idemhttp.
func BenchmarkFrontDoorMiddlewareReplayCached(b *testing.B) {
	h := middleware(cachedStore(b))
	r, _ := http.NewRequestWithContext(lambdaContext(b), http.MethodPost, "http://127.0.0.1/orders", strings.NewReader(frontDoorBody))
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("Idempotency-Key", "order-key-0123456789")
	h.ServeHTTP(&discardWriter{h: http.Header{}}, r)
	serveLoop(b, h, "true")
}
