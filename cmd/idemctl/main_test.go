package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/acme/idemcheckout/ddblocal/ddbtest"
	"github.com/acme/idemcheckout/ddblocal/localddb"
	"github.com/acme/idemcheckout/pkg/idemddb"
	"github.com/acme/idemcheckout/pkg/idemddb/apigw"
	"github.com/aws/aws-lambda-go/events"
)

var engine *localddb.Engine

func TestMain(m *testing.M) { os.Exit(ddbtest.Main(m, ddbtest.StartMoto, &engine)) }

// idemctl against the local engine, configured as a user would: the SDK's
// standard environment with AWS_ENDPOINT_URL_DYNAMODB. The records come
// from the library's public API.
func TestIdemctlAgainstLocalEngine(t *testing.T) {
	for k, v := range map[string]string{
		"AWS_ENDPOINT_URL_DYNAMODB": engine.Endpoint, "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
		"AWS_REGION": "us-east-1", "AWS_CONFIG_FILE": "/dev/null", "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
		"AWS_EC2_METADATA_DISABLED": "true", "AWS_PROFILE": "", "IDEMPOTENCY_TABLE": "",
	} {
		t.Setenv(k, v)
	}
	ctx := context.Background()
	raw := engine.Client()
	table := ddbtest.NewTable(t, raw, "id")
	store, err := idemddb.New(raw, idemddb.Config{Table: table})
	if err != nil {
		t.Fatal(err)
	}
	h := apigw.WrapV2(store, func(context.Context, events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
		return events.APIGatewayV2HTTPResponse{StatusCode: 201, Headers: map[string]string{"Location": "/orders/o-1", "Content-Type": "application/json"}, Body: `{"order_id":"o-1"}`}, nil
	})
	req := events.APIGatewayV2HTTPRequest{RouteKey: "POST /orders", RawPath: "/orders", Body: "{}",
		Headers: map[string]string{"idempotency-key": "order-1", "content-type": "application/json"},
		RequestContext: events.APIGatewayV2HTTPRequestContext{HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{Method: "POST", Path: "/orders"},
			Authorizer: &events.APIGatewayV2HTTPRequestContextAuthorizerDescription{JWT: &events.APIGatewayV2HTTPRequestContextAuthorizerJWTDescription{
				Claims: map[string]string{"iss": "https://issuer.example.com/", "sub": "dev-user"}}}}}
	if resp, err := h(ctx, req); err != nil || resp.StatusCode != 201 {
		t.Fatalf("%v %+v", err, resp)
	}
	// A claim whose work died an hour ago (its lease is over), and one running now.
	past, err := idemddb.New(raw, idemddb.Config{Table: table, Now: func() time.Time { return time.Now().Add(-time.Hour) }})
	if err != nil {
		t.Fatal(err)
	}
	dead, _, err := past.Begin(ctx, idemddb.Request{Key: "worker-died", Fingerprint: []byte("x")})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := store.Begin(ctx, idemddb.Request{Key: "running-now", Fingerprint: []byte("x")}); err != nil {
		t.Fatal(err)
	}

	idemctl := func(stdin string, args ...string) (int, string, string) {
		var out, errOut bytes.Buffer
		code := run(ctx, append([]string{"-table", table}, args...), strings.NewReader(stdin), &out, &errOut)
		return code, out.String(), errOut.String()
	}
	byRoute := []string{"-route", "POST /orders", "-iss", "https://issuer.example.com/", "-sub", "dev-user", "-client-key", "order-1"}

	code, out, errOut := idemctl("", append([]string{"show"}, byRoute...)...)
	for _, want := range []string{"status:       COMPLETED", "stored response: HTTP 201", "Location: /orders/o-1", `{"order_id":"o-1"}`, "expires at:", "resource id:"} {
		if code != 0 || !strings.Contains(out, want) {
			t.Errorf("show: exit %d, no %q in:\n%s%s", code, want, out, errOut)
		}
	}
	code, out, _ = idemctl("", "show", "-json", "-key", "worker-died")
	var v recordView
	if err := json.Unmarshal([]byte(out), &v); code != 0 || err != nil || v.Status != idemddb.StatusInProgress || v.LeaseOwner != dead.Token ||
		v.LeaseUntil == nil || !v.LeaseUntil.Equal(dead.LeaseUntil) || !strings.HasPrefix(v.Condition, "stuck") {
		t.Errorf("show -json: exit %d %v %s", code, err, out)
	}

	code, out, _ = idemctl("", "stuck")
	if code != 0 || !strings.Contains(out, "worker-died") || strings.Contains(out, "running-now") || !strings.Contains(out, "1 stuck records of 3") {
		t.Errorf("stuck: exit %d\n%s", code, out)
	}

	// delete asks; anything but y keeps the record.
	if code, out, _ := idemctl("n\n", append([]string{"delete"}, byRoute...)...); code != 1 || !strings.Contains(out, "delete this record") {
		t.Errorf("declined delete: exit %d\n%s", code, out)
	}
	if code, _, _ := idemctl("", append([]string{"show"}, byRoute...)...); code != 0 {
		t.Error("a declined delete deleted the record")
	}
	if code, out, _ := idemctl("y\n", append([]string{"delete"}, byRoute...)...); code != 0 || !strings.Contains(out, "deleted") || !strings.Contains(out, "WARNING: deleting a completed record") {
		t.Errorf("delete: exit %d\n%s", code, out)
	}
	if code, _, errOut := idemctl("", append([]string{"show"}, byRoute...)...); code != 1 || !strings.Contains(errOut, "no record for key") {
		t.Errorf("show after delete: exit %d %s", code, errOut)
	}
	if code, _, _ := idemctl("", "delete", "-yes", "-key", "worker-died"); code != 0 {
		t.Errorf("delete -yes: exit %d", code)
	}
	if _, err := store.Lookup(ctx, "worker-died"); err == nil {
		t.Error("delete -yes left the record")
	}

	for _, args := range [][]string{{"show"}, {"show", "-route", "orders", "-client-key", "k"}, {"frobnicate"}} {
		if code, _, _ := idemctl("", args...); code != 2 {
			t.Errorf("%v: exit %d, want 2 (usage)", args, code)
		}
	}
	var out2, errOut2 bytes.Buffer
	if code := run(ctx, []string{"stuck"}, strings.NewReader(""), &out2, &errOut2); code != 2 || !strings.Contains(errOut2.String(), "IDEMPOTENCY_TABLE") {
		t.Errorf("no table: exit %d %s", code, errOut2.String())
	}
}
