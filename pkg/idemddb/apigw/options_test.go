package apigw_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"testing"

	"github.com/acme/idemcheckout/pkg/idemddb"
	"github.com/acme/idemcheckout/pkg/idemddb/apigw"
	"github.com/acme/idemcheckout/pkg/idemddb/ddbmem"
	"github.com/acme/idemcheckout/pkg/idemddb/idemhttp"
	"github.com/aws/aws-lambda-go/events"
)

// TestWrapRefusesNetHTTPOptions: the front doors share one Option type, so
// idemhttp's own settings (the principal function, the route, the response
// buffer) can be passed to WrapV1 and WrapV2, which cannot honour them:
// every call then reports ErrNotConfigured, and the handler never runs,
// rather than serving with a setting silently ignored. The contract's
// settings alone serve.
func TestWrapRefusesNetHTTPOptions(t *testing.T) {
	db := ddbmem.New()
	if err := db.CreateIdempotencyTable("idem"); err != nil {
		t.Fatal(err)
	}
	store, err := idemddb.New(db, idemddb.Config{Table: "idem"})
	if err != nil {
		t.Fatal(err)
	}
	quiet := []apigw.Option{apigw.WithLogger(slog.New(slog.DiscardHandler)), apigw.WithMetrics(io.Discard)}
	runs := 0
	v2 := func(context.Context, events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
		runs++
		return events.APIGatewayV2HTTPResponse{StatusCode: 201}, nil
	}
	v1 := func(context.Context, events.APIGatewayProxyRequest) (events.APIGatewayProxyResponse, error) {
		runs++
		return events.APIGatewayProxyResponse{StatusCode: 201}, nil
	}
	req2 := events.APIGatewayV2HTTPRequest{RouteKey: "POST /o", RawPath: "/o", Headers: map[string]string{"idempotency-key": "k2"},
		RequestContext: events.APIGatewayV2HTTPRequestContext{HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{Method: "POST", Path: "/o"}}}
	req1 := events.APIGatewayProxyRequest{HTTPMethod: "POST", Resource: "/o", Path: "/o", Headers: map[string]string{"Idempotency-Key": "k1"}}

	for name, opt := range map[string]apigw.Option{
		"WithPrincipal":        idemhttp.WithPrincipal(func(*http.Request) (string, error) { return "u", nil }),
		"WithRoute":            idemhttp.WithRoute(func(*http.Request) string { return "r" }),
		"WithMaxResponseBytes": idemhttp.WithMaxResponseBytes(1),
	} {
		opts := append(quiet[:len(quiet):len(quiet)], opt)
		if _, err := apigw.WrapV2(store, v2, opts...)(context.Background(), req2); !errors.Is(err, apigw.ErrNotConfigured) {
			t.Errorf("WrapV2 with idemhttp.%s: %v, want ErrNotConfigured", name, err)
		}
		if _, err := apigw.WrapV1(store, v1, opts...)(context.Background(), req1); !errors.Is(err, apigw.ErrNotConfigured) {
			t.Errorf("WrapV1 with idemhttp.%s: %v, want ErrNotConfigured", name, err)
		}
	}
	if runs != 0 {
		t.Fatalf("the handler ran %d times under a refused configuration", runs)
	}

	opts := append(quiet[:len(quiet):len(quiet)], apigw.WithWait(0), apigw.WithMaxBodyBytes(64))
	r2, err := apigw.WrapV2(store, v2, opts...)(context.Background(), req2)
	if err != nil || r2.StatusCode != 201 {
		t.Fatalf("WrapV2 with the contract's options: %d %v", r2.StatusCode, err)
	}
	r1, err := apigw.WrapV1(store, v1, opts...)(context.Background(), req1)
	if err != nil || r1.StatusCode != 201 {
		t.Fatalf("WrapV1 with the contract's options: %d %v", r1.StatusCode, err)
	}
	if runs != 2 {
		t.Fatalf("handler runs %d, want 2", runs)
	}
}
