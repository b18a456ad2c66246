package apigw_test

import (
	"flag"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/acme/idemcheckout/ddblocal/ddbtest"
	"github.com/acme/idemcheckout/ddblocal/localddb"
	"github.com/acme/idemcheckout/pkg/idemddb"
	"github.com/acme/idemcheckout/pkg/idemddb/apigw"
	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
)

// engine is the package's moto server, started once in TestMain.
var engine *localddb.Engine

func TestMain(m *testing.M) {
	flag.Parse()
	// A fuzz worker process runs only a fuzz target, which needs no engine,
	// and is killed without running deferred functions: starting moto there
	// would leak one server per worker.
	if f := flag.Lookup("test.fuzzworker"); f != nil && f.Value.String() == "true" {
		os.Exit(m.Run())
	}
	os.Exit(ddbtest.Main(m, ddbtest.StartMoto, &engine))
}

// fixture is one table on the package engine, a store on a counting
// client, and buffers catching the wrapper's logs and metrics.
type fixture struct {
	raw     *dynamodb.Client
	client  *ddbtest.Client
	table   string
	store   *idemddb.Store
	logs    *ddbtest.Buffer
	metrics *ddbtest.Buffer
}

func newFixture(t *testing.T, cfg idemddb.Config) *fixture {
	t.Helper()
	raw := engine.Client()
	f := &fixture{raw: raw, client: ddbtest.Wrap(raw), table: ddbtest.NewTable(t, raw, "id"),
		logs: &ddbtest.Buffer{}, metrics: &ddbtest.Buffer{}}
	cfg.Table = f.table
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewJSONHandler(f.logs, nil))
	}
	s, err := idemddb.New(f.client, cfg)
	if err != nil {
		t.Fatal(err)
	}
	f.store = s
	return f
}

// opts returns the options routing logs and metrics to the fixture's
// buffers, followed by extra.
func (f *fixture) opts(extra ...apigw.Option) []apigw.Option {
	return append([]apigw.Option{
		apigw.WithLogger(slog.New(slog.NewJSONHandler(f.logs, nil))),
		apigw.WithMetrics(f.metrics),
	}, extra...)
}

// noKey marks a request without an Idempotency-Key header.
const noKey = "\x00none"

// v2req builds an HTTP API request as API Gateway delivers it: lower-case
// header names, route key "METHOD /path", JWT claims when sub is set.
func v2req(method, route, path, sub, key, body string) events.APIGatewayV2HTTPRequest {
	r := events.APIGatewayV2HTTPRequest{
		Version: "2.0", RouteKey: method + " " + route, RawPath: path,
		Headers: map[string]string{"content-type": "application/json"},
		Body:    body,
		RequestContext: events.APIGatewayV2HTTPRequestContext{
			RouteKey: method + " " + route, RequestID: "req-" + time.Now().Format("150405.000000000"),
			HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{Method: method, Path: path},
		},
	}
	if key != noKey {
		r.Headers["idempotency-key"] = key
	}
	if sub != "" {
		r.RequestContext.Authorizer = &events.APIGatewayV2HTTPRequestContextAuthorizerDescription{
			JWT: &events.APIGatewayV2HTTPRequestContextAuthorizerJWTDescription{
				Claims: map[string]string{"sub": sub, "iss": "https://issuer.example"},
			},
		}
	}
	return r
}

// v1req builds a REST API request: headers and multiValueHeaders both
// filled, Lambda authorizer principalId when principal is set.
func v1req(method, resource, path, principal string, keys []string, body string) events.APIGatewayProxyRequest {
	r := events.APIGatewayProxyRequest{
		Resource: resource, Path: path, HTTPMethod: method,
		Headers:           map[string]string{"Content-Type": "application/json"},
		MultiValueHeaders: map[string][]string{"Content-Type": {"application/json"}},
		Body:              body,
		RequestContext: events.APIGatewayProxyRequestContext{
			ResourcePath: resource, HTTPMethod: method, RequestID: "req-v1",
		},
	}
	if len(keys) > 0 {
		r.Headers["Idempotency-Key"] = keys[len(keys)-1]
		r.MultiValueHeaders["Idempotency-Key"] = keys
	}
	if principal != "" {
		r.RequestContext.Authorizer = map[string]any{"principalId": principal}
	}
	return r
}

func newJSONLogger(w *ddbtest.Buffer) *slog.Logger { return slog.New(slog.NewJSONHandler(w, nil)) }
