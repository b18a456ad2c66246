package devstack

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

const fixtureTemplate = "../testdata/template.yaml"

func fn(t *testing.T, tm *Template, id string) *Function {
	t.Helper()
	for _, f := range tm.Functions {
		if f.LogicalID == id {
			return f
		}
	}
	t.Fatalf("function %s not found", id)
	return nil
}

func TestTemplateGlobalsMergeAndIntrinsics(t *testing.T) {
	tm, err := LoadTemplate(fixtureTemplate, nil, "eu-west-1")
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
	if !reflect.DeepEqual(echo.Env, want) {
		t.Errorf("EchoFunction env = %v, want %v", echo.Env, want)
	}
	if echo.Timeout != 10*time.Second || echo.MemorySize != 512 || echo.Handler != "bootstrap" {
		t.Errorf("EchoFunction timeout/memory/handler = %s/%d/%s, want 10s/512 (own)/bootstrap (global)", echo.Timeout, echo.MemorySize, echo.Handler)
	}
	slow := fn(t, tm, "SlowFunction")
	if slow.Timeout != time.Second || slow.MemorySize != 256 {
		t.Errorf("SlowFunction timeout/memory = %s/%d, want 1s (own)/256 (global)", slow.Timeout, slow.MemorySize)
	}
	if slow.Env["ITEMS_TABLE"] != "ItemsTable" {
		t.Errorf("SlowFunction did not get Globals env: %v", slow.Env)
	}
	if len(echo.Events) != 3 {
		t.Fatalf("EchoFunction events = %+v", echo.Events)
	}
	byName := map[string]Event{}
	for _, e := range echo.Events {
		byName[e.Name] = e
	}
	v2 := byName["EchoV2"]
	if v2.Type != "HttpApi" || v2.Method != "ANY" || v2.Path != "/echo/{id}" || v2.ApiID != "TestApi" {
		t.Errorf("EchoV2 = %+v", v2)
	}
	if v2.Authorizer == nil || v2.Authorizer.Name != "JwtAuthorizer" || v2.Authorizer.Issuer != "" || !reflect.DeepEqual(v2.Authorizer.Audience, []string{"checkout-local"}) {
		t.Errorf("EchoV2 authorizer = %+v", v2.Authorizer)
	}
	if byName["EchoOpen"].Authorizer != nil {
		t.Errorf("Auth.Authorizer NONE must disable the default authorizer")
	}
	if v1 := byName["EchoV1"]; v1.Type != "Api" || v1.Method != "POST" || v1.Authorizer != nil {
		t.Errorf("EchoV1 = %+v", v1)
	}
}

func TestTemplateParameterOverrides(t *testing.T) {
	ov, err := ParseParameterOverrides("RetentionSeconds=120 ParameterKey=Stage,ParameterValue=prod JwtIssuer='https://issuer.test/'")
	if err != nil {
		t.Fatal(err)
	}
	tm, err := LoadTemplate(fixtureTemplate, ov, "")
	if err != nil {
		t.Fatal(err)
	}
	echo := fn(t, tm, "EchoFunction")
	if echo.Env["RETENTION_SECONDS"] != "120" || echo.Env["MODE"] != "production" || echo.Env["GREETING"] != "hello-prod-us-east-1" {
		t.Errorf("overrides not applied: %v", echo.Env)
	}
	if got := echo.Events[2].Authorizer; echo.Events[2].Name != "EchoV2" || got == nil || got.Issuer != "https://issuer.test/" {
		t.Errorf("issuer override not applied: %+v", got)
	}
	var named *Table
	for _, tb := range tm.Tables {
		if tb.LogicalID == "NamedTable" {
			named = tb
		}
	}
	if named == nil || named.Name != "named-prod" {
		t.Errorf("TableName !Sub with override = %+v", named)
	}
	if _, err := LoadTemplate(fixtureTemplate, map[string]string{"Nope": "1"}, ""); err == nil || !strings.Contains(err.Error(), "Nope") {
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
		got, err := ParseParameterOverrides(tc.in)
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
	tm, err := LoadTemplate(fixtureTemplate, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]*Table{}
	for _, tb := range tm.Tables {
		got[tb.LogicalID] = tb
	}
	items := got["ItemsTable"]
	if items == nil || items.Name != "ItemsTable" || items.TTLAttribute != "expires_at" ||
		!reflect.DeepEqual(items.KeySchema, []KeySchemaElement{{"id", "HASH"}}) ||
		!reflect.DeepEqual(items.AttributeDefinitions, []AttributeDefinition{{"id", "S"}}) {
		t.Errorf("ItemsTable = %+v", items)
	}
	named := got["NamedTable"]
	if named == nil || named.Name != "named-dev" || named.TTLAttribute != "" ||
		!reflect.DeepEqual(named.KeySchema, []KeySchemaElement{{"pk", "HASH"}, {"sk", "RANGE"}}) ||
		!reflect.DeepEqual(named.AttributeDefinitions, []AttributeDefinition{{"pk", "S"}, {"sk", "N"}}) {
		t.Errorf("NamedTable = %+v", named)
	}
	simple := got["Simple"]
	if simple == nil || !reflect.DeepEqual(simple.KeySchema, []KeySchemaElement{{"sid", "HASH"}}) ||
		!reflect.DeepEqual(simple.AttributeDefinitions, []AttributeDefinition{{"sid", "N"}}) {
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
`
	tm, err := ParseTemplate([]byte(src), nil, "")
	if err != nil {
		t.Fatal(err)
	}
	f := tm.Functions[0]
	want := map[string]string{
		"SHARED": "g", "OVER": "local", "JOIN": "test-b", "SUBMAP": "test/T",
		"ESC": "${Literal}-123456789012", "B64": "aGk=",
		"ATT": "arn:aws:dynamodb:us-east-1:123456789012:table/T",
	}
	if !reflect.DeepEqual(f.Env, want) {
		t.Errorf("env = %v\nwant  %v", f.Env, want)
	}
	if f.MemorySize != 64 || f.Timeout != 5*time.Second {
		t.Errorf("memory/timeout = %d/%s", f.MemorySize, f.Timeout)
	}
	if _, err := ParseTemplate([]byte("Resources:\n  F:\n    Type: AWS::Serverless::Function\n    Properties:\n      CodeUri: x/\n      Environment: {Variables: {X: !Ref Missing}}\n"), nil, ""); err == nil {
		t.Error("!Ref to an unknown name must fail")
	}
}

func TestMergeGlobals(t *testing.T) {
	g := map[string]any{"A": 1, "L": []any{"g"}, "M": map[string]any{"x": 1, "y": 1}}
	l := map[string]any{"A": 2, "L": []any{"l"}, "M": map[string]any{"y": 2}, "N": 3}
	got := mergeGlobals(g, l)
	want := map[string]any{"A": 2, "L": []any{"g", "l"}, "M": map[string]any{"x": 1, "y": 2}, "N": 3}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("merge = %v, want %v", got, want)
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
	if _, err := ParseTemplate([]byte(src), nil, ""); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	for _, ov := range []map[string]string{{"N": "2"}, {"N": "11"}, {"N": "x"}, {"S": "TRACE"}, {"U": "http://x/"}, {"L": "abcd"}} {
		if _, err := ParseTemplate([]byte(src), ov, ""); err == nil {
			t.Errorf("override %v accepted", ov)
		}
	}
	_, err := ParseTemplate([]byte(src), map[string]string{"N": "2"}, "")
	if err == nil || !strings.Contains(err.Error(), "must be 3-10") {
		t.Errorf("want the ConstraintDescription in %v", err)
	}
	if _, err := ParseTemplate([]byte(src), map[string]string{"N": "10", "S": "DEBUG", "L": "abc", "U": "https://y/"}, ""); err != nil {
		t.Errorf("valid overrides: %v", err)
	}
}
