package idemhttp_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/acme/idemcheckout/pkg/idemddb/apigw"
	"github.com/acme/idemcheckout/pkg/idemddb/idemhttp"
	"github.com/aws/aws-lambda-go/events"
)

// frontDoor sends one POST /orders through one of the three front doors,
// as caller (a Lambda authorizer principal id, "" for none), with the
// given Idempotency-Key values (none: no header) and body; the handler
// answers 201 with the body it was given.
type frontDoor struct {
	name string
	send func(t *testing.T, caller string, keys []string, body string) (status int, header http.Header, respBody string)
}

// frontDoors builds the three front doors over one fixture, each with its
// own handler run counter, all with a 32-byte body limit and a required
// principal.
func frontDoors(t *testing.T, f *fixture, runs *atomic.Int64) []frontDoor {
	logger := slog.New(slog.NewJSONHandler(f.logs, nil))
	aopts := []apigw.Option{apigw.WithLogger(logger), apigw.WithMetrics(io.Discard), apigw.WithMaxBodyBytes(32), apigw.WithPrincipalRequired()}
	v2 := apigw.WrapV2(f.store, func(ctx context.Context, r events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
		runs.Add(1)
		return events.APIGatewayV2HTTPResponse{StatusCode: 201, Headers: map[string]string{"Content-Type": "application/json"}, Body: r.Body}, nil
	}, aopts...)
	v1 := apigw.WrapV1(f.store, func(ctx context.Context, r events.APIGatewayProxyRequest) (events.APIGatewayProxyResponse, error) {
		runs.Add(1)
		return events.APIGatewayProxyResponse{StatusCode: 201, Headers: map[string]string{"Content-Type": "application/json"}, Body: r.Body}, nil
	}, aopts...)
	// The net/http service runs behind the Lambda Web Adapter: the caller
	// comes from the request context it passes in a header.
	srv := f.server(t, "POST /orders", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		runs.Add(1)
		b, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(201)
		_, _ = w.Write(b)
	}), apigw.WithMaxBodyBytes(32), apigw.WithPrincipalRequired(), idemhttp.WithPrincipal(idemhttp.LambdaWebAdapterPrincipal))

	fromV2 := func(r events.APIGatewayV2HTTPResponse) (int, http.Header, string) {
		h := http.Header{}
		for k, v := range r.Headers {
			h.Set(k, v)
		}
		return r.StatusCode, h, r.Body
	}
	return []frontDoor{
		{"apigw.WrapV2", func(t *testing.T, caller string, keys []string, body string) (int, http.Header, string) {
			ev := events.APIGatewayV2HTTPRequest{RouteKey: "POST /orders", RawPath: "/orders", Body: body,
				Headers: map[string]string{"content-type": "application/json"},
				RequestContext: events.APIGatewayV2HTTPRequestContext{RouteKey: "POST /orders",
					HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{Method: "POST", Path: "/orders"}}}
			if len(keys) > 0 {
				ev.Headers["idempotency-key"] = strings.Join(keys, ",") // how HTTP APIs deliver a repeated header
			}
			if caller != "" {
				ev.RequestContext.Authorizer = &events.APIGatewayV2HTTPRequestContextAuthorizerDescription{Lambda: map[string]any{"principalId": caller}}
			}
			resp, err := v2(context.Background(), ev)
			if err != nil {
				t.Fatal(err)
			}
			return fromV2(resp)
		}},
		{"apigw.WrapV1", func(t *testing.T, caller string, keys []string, body string) (int, http.Header, string) {
			ev := events.APIGatewayProxyRequest{Resource: "/orders", Path: "/orders", HTTPMethod: "POST", Body: body,
				Headers:           map[string]string{"Content-Type": "application/json"},
				MultiValueHeaders: map[string][]string{"Content-Type": {"application/json"}},
				RequestContext:    events.APIGatewayProxyRequestContext{ResourcePath: "/orders", HTTPMethod: "POST"}}
			if len(keys) > 0 {
				ev.Headers["Idempotency-Key"] = keys[len(keys)-1]
				ev.MultiValueHeaders["Idempotency-Key"] = keys
			}
			if caller != "" {
				ev.RequestContext.Authorizer = map[string]any{"principalId": caller}
			}
			resp, err := v1(context.Background(), ev)
			if err != nil {
				t.Fatal(err)
			}
			return fromV2(events.APIGatewayV2HTTPResponse{StatusCode: resp.StatusCode, Headers: resp.Headers, Body: resp.Body})
		}},
		{"idemhttp.Middleware", func(t *testing.T, caller string, keys []string, body string) (int, http.Header, string) {
			var extra []string
			for _, k := range keys {
				extra = append(extra, "Idempotency-Key: "+k)
			}
			rc := map[string]any{"http": map[string]string{"method": "POST"}}
			if caller != "" {
				rc["authorizer"] = map[string]any{"lambda": map[string]any{"principalId": caller}}
			}
			b, _ := json.Marshal(rc)
			extra = append(extra, "X-Amzn-Request-Context: "+string(b))
			r := do(t, context.Background(), srv.URL+"/orders", "", body, extra...)
			return r.status, r.header, string(r.body)
		}},
	}
}

// The contract, row by row, through all three front doors: each answers
// the same status and problem type, runs the handler as often and makes as
// many DynamoDB requests. Each door has its own caller, so their records do
// not meet.
func TestContractAcrossFrontDoors(t *testing.T) {
	f := newFixture(t)
	var runs atomic.Int64
	for _, door := range frontDoors(t, f, &runs) {
		t.Run(door.name, func(t *testing.T) {
			caller := "caller-" + door.name
			rows := []struct {
				name     string
				caller   string
				keys     []string
				body     string
				status   int
				slug     string // "" for the handler's own answer
				replayed bool
				runs     int64
				requests int
			}{
				{"missing key", caller, nil, `{}`, 400, apigw.ProblemKeyMissing, false, 0, 0},
				{"empty key", caller, []string{""}, `{}`, 400, apigw.ProblemKeyInvalid, false, 0, 0},
				{"key with a space", caller, []string{"a b"}, `{}`, 400, apigw.ProblemKeyInvalid, false, 0, 0},
				{"key too long", caller, []string{strings.Repeat("k", 256)}, `{}`, 400, apigw.ProblemKeyInvalid, false, 0, 0},
				{"repeated key", caller, []string{"k1", "k2"}, `{}`, 400, apigw.ProblemKeyInvalid, false, 0, 0},
				{"body too large", caller, []string{"k1"}, strings.Repeat("x", 33), 413, apigw.ProblemBodyTooLarge, false, 0, 0},
				{"anonymous caller", "", []string{"k1"}, `{}`, 403, apigw.ProblemPrincipalRequired, false, 0, 0},
				{"first", caller, []string{"k1"}, `{"a":1}`, 201, "", false, 1, 2},
				{"replay", caller, []string{`"k1"`}, `{ "a": 1.0 }`, 201, "", true, 0, 1},
				{"mismatch", caller, []string{"k1"}, `{"a":2}`, 422, apigw.ProblemKeyReused, false, 0, 1},
			}
			for _, row := range rows {
				before := runs.Load()
				f.client.Reset()
				status, header, body := door.send(t, row.caller, row.keys, row.body)
				if status != row.status {
					t.Errorf("%s: status %d %s, want %d", row.name, status, body, row.status)
					continue
				}
				if row.slug != "" {
					var p apigw.Problem
					if err := json.Unmarshal([]byte(body), &p); err != nil || !strings.HasSuffix(p.Type, "/"+row.slug) ||
						header.Get("Content-Type") != apigw.ProblemContentType {
						t.Errorf("%s: %q %s, want problem %s", row.name, header.Get("Content-Type"), body, row.slug)
					}
				}
				if got := header.Get(apigw.ReplayedHeader) == "true"; got != row.replayed {
					t.Errorf("%s: Idempotent-Replayed %v, want %v", row.name, got, row.replayed)
				}
				if n := runs.Load() - before; n != row.runs {
					t.Errorf("%s: handler ran %d times, want %d", row.name, n, row.runs)
				}
				if n := f.client.Total(); n != row.requests {
					t.Errorf("%s: %d DynamoDB requests (%v), want %d", row.name, n, f.client.Counts(), row.requests)
				}
			}
			// DynamoDB unreachable: 503 with Retry-After, the handler not run.
			f.client.Before(func(string, any) error { return errors.New("connection refused") })
			defer f.client.Before(nil)
			before := runs.Load()
			status, header, body := door.send(t, caller, []string{"k-down"}, `{}`)
			if status != 503 || header.Get("Retry-After") == "" || !strings.Contains(body, apigw.ProblemStoreUnavailable) || runs.Load() != before {
				t.Errorf("store down: %d Retry-After %q %s, runs +%d", status, header.Get("Retry-After"), body, runs.Load()-before)
			}
		})
	}
}
