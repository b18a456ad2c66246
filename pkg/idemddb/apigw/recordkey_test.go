package apigw_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/acme/idemcheckout/pkg/idemddb"
	"github.com/acme/idemcheckout/pkg/idemddb/apigw"
	"github.com/aws/aws-lambda-go/events"
)

// RecordKey and the principal helpers name the record the wrapper stored,
// for each API type, and DecodeStoredResponse gives back its response.
func TestRecordKeyFindsTheWrappersRecord(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, idemddb.Config{})
	v2 := apigw.WrapV2(f.store, func(context.Context, events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
		return events.APIGatewayV2HTTPResponse{StatusCode: 201, Headers: map[string]string{"Location": "/orders/1", "X-Request-Id": "dropped"},
			Cookies: []string{"c=1"}, Body: `{"order_id":"1"}`}, nil
	}, f.opts()...)
	if _, err := v2(ctx, v2req("POST", "/orders", "/orders", "u1", "client-key-1", `{"a":1}`)); err != nil {
		t.Fatal(err)
	}
	rec, err := f.store.Lookup(ctx, apigw.RecordKey("POST /orders", apigw.JWTPrincipal("https://issuer.example", "u1"), "client-key-1"))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := apigw.DecodeStoredResponse(rec.Result)
	if err != nil {
		t.Fatal(err)
	}
	h := resp.Header()
	if rec.Status != idemddb.StatusCompleted || resp.Status != 201 || string(resp.Body) != `{"order_id":"1"}` ||
		h.Get("Location") != "/orders/1" || h.Get("X-Request-Id") != "" || h.Get("Set-Cookie") != "c=1" {
		t.Errorf("record %s, response %d %v %q", rec.Status, resp.Status, h, resp.Body)
	}
	for name, key := range map[string]string{
		"other caller": apigw.RecordKey("POST /orders", apigw.JWTPrincipal("https://issuer.example", "u2"), "client-key-1"),
		"other route":  apigw.RecordKey("POST /payments", apigw.JWTPrincipal("https://issuer.example", "u1"), "client-key-1"),
		"other key":    apigw.RecordKey("POST /orders", apigw.JWTPrincipal("https://issuer.example", "u1"), "client-key-2"),
	} {
		if _, err := f.store.Lookup(ctx, key); !errors.Is(err, idemddb.ErrNoRecord) {
			t.Errorf("%s: %v", name, err)
		}
	}

	v1 := apigw.WrapV1(f.store, func(context.Context, events.APIGatewayProxyRequest) (events.APIGatewayProxyResponse, error) {
		return events.APIGatewayProxyResponse{StatusCode: 402, Body: "AAEC", IsBase64Encoded: true}, nil
	}, f.opts()...)
	if _, err := v1(ctx, v1req("POST", "/pay/{id}", "/pay/7", "principal-7", []string{"k"}, `{}`)); err != nil {
		t.Fatal(err)
	}
	rec, err = f.store.Lookup(ctx, apigw.RecordKey("POST /pay/{id}", apigw.LambdaPrincipal("principal-7"), "k"))
	if err != nil {
		t.Fatal(err)
	}
	if resp, err := apigw.DecodeStoredResponse(rec.Result); err != nil || resp.Status != 402 || !resp.Base64 || string(resp.Body) != "\x00\x01\x02" {
		t.Errorf("v1 response %+v, %v", resp, err)
	}
	if _, err := apigw.DecodeStoredResponse([]byte("not a stored response")); err == nil {
		t.Error("garbage decoded")
	}
}

// The record key of a support ticket: "POST /orders" by the JWT subject
// dev-user, client Idempotency-Key order-1.
func ExampleRecordKey() {
	key := apigw.RecordKey("POST /orders", apigw.JWTPrincipal("https://issuer.example.com/", "dev-user"), "order-1")
	fmt.Println(len(key), key[:7])
	// Then: store.Lookup(ctx, key) reads the record, and
	// apigw.DecodeStoredResponse(record.Result) its stored response.

	// Output: 50 apigw1:
}
