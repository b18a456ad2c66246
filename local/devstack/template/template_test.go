package template_test

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/acme/idemcheckout/internal/samtemplate"
	"github.com/acme/idemcheckout/local/devstack/gateway"
	"github.com/acme/idemcheckout/local/devstack/template"
)

const fixtureTemplate = "../../testdata/template.yaml"

func fn(t *testing.T, tm *template.Template, id string) *samtemplate.Function {
	t.Helper()
	f, ok := tm.Function(id)
	if !ok {
		t.Fatalf("function %s not found", id)
	}
	return f
}

// routesOf returns a function's routes by event name.
func routesOf(t *testing.T, tm *template.Template, id string) map[string]*gateway.Route {
	t.Helper()
	rs, err := gateway.Routes(tm)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*gateway.Route{}
	for _, r := range rs {
		if r.Function.ID == id {
			out[r.Event.Name] = r
		}
	}
	return out
}

func TestTemplateGlobalsMergeAndIntrinsics(t *testing.T) {
	tm, err := template.Load(fixtureTemplate, nil, "eu-west-1")
	if err != nil {
		t.Fatal(err)
	}
	echo := fn(t, tm, "EchoFunction")
	want := map[string]string{
		"ITEMS_TABLE":       "ItemsTable",
		"RETENTION_SECONDS": "86400",
		"LOG_LEVEL":         "INFO",
		"TABLE_ARN":         "arn:aws:dynamodb:eu-west-1:123456789012:table/ItemsTable",
		"GREETING":          "hello-dev-eu-west-1",
		"MODE":              "development",
	}
	if got := echo.EnvStrings(); !reflect.DeepEqual(got, want) {
		t.Errorf("EchoFunction env = %v, want %v", got, want)
	}
	if echo.TimeoutOrDefault() != 10*time.Second || echo.MemoryOrDefault() != 512 || echo.Handler != "bootstrap" {
		t.Errorf("EchoFunction timeout/memory/handler = %s/%d/%s, want 10s/512 (own)/bootstrap (global)", echo.Timeout, echo.MemorySize, echo.Handler)
	}
	slow := fn(t, tm, "SlowFunction")
	if slow.TimeoutOrDefault() != time.Second || slow.MemoryOrDefault() != 256 {
		t.Errorf("SlowFunction timeout/memory = %s/%d, want 1s (own)/256 (global)", slow.Timeout, slow.MemorySize)
	}
	if slow.EnvStrings()["ITEMS_TABLE"] != "ItemsTable" {
		t.Errorf("SlowFunction did not get Globals env: %v", slow.Env())
	}
	if len(echo.Events) != 3 {
		t.Fatalf("EchoFunction events = %+v", echo.Events)
	}
	byName := routesOf(t, tm, "EchoFunction")
	v2 := byName["EchoV2"]
	if v2.Event.Type != "HttpApi" || v2.Event.HTTP.Method != "ANY" || v2.Event.HTTP.Path != "/echo/{id}" || v2.Event.HTTP.API != "TestApi" || v2.V1() {
		t.Errorf("EchoV2 = %+v", v2.Event.HTTP)
	}
	if a := v2.Authorizer; a == nil || a.Name != "JwtAuthorizer" || a.JWT.Issuer != "" || !reflect.DeepEqual(a.JWT.Audience, []string{"checkout-local"}) {
		t.Errorf("EchoV2 authorizer = %+v", v2.Authorizer)
	}
	if byName["EchoOpen"].Authorizer != nil {
		t.Errorf("Auth.Authorizer NONE must disable the default authorizer")
	}
	if v1 := byName["EchoV1"]; v1.Event.Type != "Api" || v1.Event.HTTP.Method != "POST" || v1.Authorizer != nil || !v1.V1() {
		t.Errorf("EchoV1 = %+v", v1.Event.HTTP)
	}
}

func TestTemplateParameterOverrides(t *testing.T) {
	ov, err := template.ParseOverrides("RetentionSeconds=120 ParameterKey=Stage,ParameterValue=prod JwtIssuer='https://issuer.test/'")
	if err != nil {
		t.Fatal(err)
	}
	tm, err := template.Load(fixtureTemplate, ov, "")
	if err != nil {
		t.Fatal(err)
	}
	env := fn(t, tm, "EchoFunction").EnvStrings()
	if env["RETENTION_SECONDS"] != "120" || env["MODE"] != "production" || env["GREETING"] != "hello-prod-us-east-1" {
		t.Errorf("overrides not applied: %v", env)
	}
	if got := routesOf(t, tm, "EchoFunction")["EchoV2"].Authorizer; got == nil || got.JWT.Issuer != "https://issuer.test/" {
		t.Errorf("issuer override not applied: %+v", got)
	}
	if got := tm.TableName("NamedTable"); got != "named-prod" {
		t.Errorf("TableName !Sub with override = %q", got)
	}
	if _, err := template.Load(fixtureTemplate, map[string]string{"Nope": "1"}, ""); err == nil || !strings.Contains(err.Error(), "Nope") {
		t.Errorf("unknown override: err = %v", err)
	}
}

func TestParseParameterOverrides(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want map[string]string
		bad  bool
	}{
		{"", map[string]string{}, false},
		{"A=1 B=two", map[string]string{"A": "1", "B": "two"}, false},
		{"ParameterKey=A,ParameterValue=x=y ParameterKey=B,ParameterValue=", map[string]string{"A": "x=y", "B": ""}, false},
		{`A="with space" B='q'`, map[string]string{"A": "with space", "B": "q"}, false},
		{"novalue", nil, true},
		{"ParameterKey=A", nil, true},
		{"=1", nil, true},
	} {
		got, err := template.ParseOverrides(tc.in)
		if tc.bad {
			if err == nil {
				t.Errorf("%q: want error, got %v", tc.in, got)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%q = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
}

func TestTemplateTables(t *testing.T) {
	tm, err := template.Load(fixtureTemplate, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	type (
		ks = samtemplate.KeySchemaElement
		ad = samtemplate.AttributeDefinition
	)
	items, _ := tm.Model.Table("ItemsTable")
	if tm.TableName("ItemsTable") != "ItemsTable" || items.TTLAttribute() != "expires_at" ||
		!reflect.DeepEqual(items.KeySchema, []ks{{AttributeName: "id", KeyType: "HASH"}}) ||
		!reflect.DeepEqual(items.AttributeDefinitions, []ad{{AttributeName: "id", AttributeType: "S"}}) {
		t.Errorf("ItemsTable = %+v", items)
	}
	named, _ := tm.Model.Table("NamedTable")
	if tm.TableName("NamedTable") != "named-dev" || named.TTLAttribute() != "" ||
		!reflect.DeepEqual(named.KeySchema, []ks{{AttributeName: "pk", KeyType: "HASH"}, {AttributeName: "sk", KeyType: "RANGE"}}) ||
		!reflect.DeepEqual(named.AttributeDefinitions, []ad{{AttributeName: "pk", AttributeType: "S"}, {AttributeName: "sk", AttributeType: "N"}}) {
		t.Errorf("NamedTable = %+v", named)
	}
	simple, _ := tm.Model.Table("Simple")
	if !reflect.DeepEqual(simple.KeySchema, []ks{{AttributeName: "sid", KeyType: "HASH"}}) ||
		!reflect.DeepEqual(simple.AttributeDefinitions, []ad{{AttributeName: "sid", AttributeType: "N"}}) {
		t.Errorf("SimpleTable = %+v", simple)
	}
}

func TestTemplateIntrinsicsInline(t *testing.T) {
	src := `
Parameters:
  Env: {Type: String, Default: test}
  Names: {Type: CommaDelimitedList, Default: "a,b,c"}
Mappings:
  M: {test: {Size: 64}}
Globals:
  Function:
    Timeout: 5
    Environment: {Variables: {SHARED: g, OVER: global}}
Resources:
  T:
    Type: AWS::Serverless::SimpleTable
  F:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: x/
      MemorySize: !FindInMap [M, !Ref Env, Size]
      Environment:
        Variables:
          OVER: local
          JOIN: !Join ["-", [!Ref Env, !Select [1, !Ref Names]]]
          SUBMAP: !Sub ["${A}/${T}", {A: !Ref Env}]
          ESC: !Sub "${!Literal}-${AWS::AccountId}"
          B64: !Base64 hi
          ATT: !GetAtt [T, Arn]
          GONE: !Ref AWS::NoValue
          SPLIT: !Select [1, !Split [",", !Sub "${Env},second"]]
`
	tm, err := template.Parse([]byte(src), nil, "")
	if err != nil {
		t.Fatal(err)
	}
	f := tm.Functions()[0]
	want := map[string]string{
		"SHARED": "g", "OVER": "local", "JOIN": "test-b", "SUBMAP": "test/T",
		"ESC": "${Literal}-123456789012", "B64": "aGk=", "SPLIT": "second",
		"ATT": "arn:aws:dynamodb:us-east-1:123456789012:table/T",
	}
	if got := f.EnvStrings(); !reflect.DeepEqual(got, want) {
		t.Errorf("env = %v\nwant  %v", got, want)
	}
	if f.MemorySize != 64 || f.Timeout != 5*time.Second {
		t.Errorf("memory/timeout = %d/%s", f.MemorySize, f.Timeout)
	}
	if _, err := template.Parse([]byte("Resources:\n  F:\n    Type: AWS::Serverless::Function\n    Properties:\n      CodeUri: x/\n      Environment: {Variables: {X: !Ref Missing}}\n"), nil, ""); err == nil {
		t.Error("!Ref to an unknown name must fail")
	}
	// Intrinsics no template here uses are refused by name, not guessed.
	_, err = template.Parse([]byte("Resources:\n  F:\n    Type: AWS::Serverless::Function\n    Properties:\n      CodeUri: x/\n      Environment: {Variables: {X: !Select [0, !GetAZs '']}}\n"), nil, "")
	if err == nil || !strings.Contains(err.Error(), "intrinsic Fn::GetAZs is not supported locally") || !strings.Contains(err.Error(), "F") {
		t.Errorf("unsupported intrinsic: %v", err)
	}
}

func TestParameterConstraints(t *testing.T) {
	src := `
Parameters:
  N: {Type: Number, Default: 5, MinValue: 3, MaxValue: 10, ConstraintDescription: must be 3-10}
  S: {Type: String, Default: INFO, AllowedValues: [DEBUG, INFO]}
  U: {Type: String, Default: "https://x/", AllowedPattern: "^https://.+"}
  L: {Type: String, Default: ab, MinLength: 1, MaxLength: 3}
Resources:
  T: {Type: AWS::Serverless::SimpleTable}
`
	if _, err := template.Parse([]byte(src), nil, ""); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	for _, ov := range []map[string]string{{"N": "2"}, {"N": "11"}, {"N": "x"}, {"S": "TRACE"}, {"U": "http://x/"}, {"L": "abcd"}} {
		if _, err := template.Parse([]byte(src), ov, ""); err == nil {
			t.Errorf("override %v accepted", ov)
		}
	}
	_, err := template.Parse([]byte(src), map[string]string{"N": "2"}, "")
	if err == nil || !strings.Contains(err.Error(), "must be 3-10") {
		t.Errorf("want the ConstraintDescription in %v", err)
	}
	if _, err := template.Parse([]byte(src), map[string]string{"N": "10", "S": "DEBUG", "L": "abc", "U": "https://y/"}, ""); err != nil {
		t.Errorf("valid overrides: %v", err)
	}
}

// The template with the event types other branches add (GET routes with
// path parameters, schedules, stream and queue consumers) resolves: every
// reference keeps its resource and gets its local value.
func TestTemplateWithEveryEventType(t *testing.T) {
	tm, err := template.Load("../../testdata/template-events.yaml", nil, "eu-west-1")
	if err != nil {
		t.Fatal(err)
	}
	routes := routesOf(t, tm, "GetOrderFunction")
	if g := routes["GetOrder"]; g == nil || g.RouteKey() != "GET /orders/{id}" || g.Authorizer == nil || g.Authorizer.JWT.Issuer != "https://issuer.example.com/" {
		t.Errorf("GET route = %+v", g)
	}
	rec := fn(t, tm, "ReconcileFunction")
	if s := rec.Events[1].Schedule; s == nil || s.Expression != "rate(5 minutes)" {
		t.Errorf("schedule = %+v", s)
	}
	st := fn(t, tm, "StreamFunction")
	ds, q := st.Events[0].Stream, st.Events[1].Queue
	if ds.Stream.Resource != "OrdersTable" || ds.Stream.Value != "arn:aws:dynamodb:eu-west-1:123456789012:table/OrdersTable/stream/local" ||
		ds.OnFailure.Resource != "StreamDLQ" || ds.OnFailure.Value != "arn:aws:sqs:eu-west-1:123456789012:StreamDLQ" {
		t.Errorf("stream event = %+v", ds)
	}
	if q.Queue.Resource != "JobsQueue" || q.Queue.Value != "arn:aws:sqs:eu-west-1:123456789012:jobs" {
		t.Errorf("queue event = %+v", q)
	}
	if env := st.EnvStrings(); env["ORDERS_TABLE"] != "OrdersTable" {
		t.Errorf("env = %v", env)
	}
}
