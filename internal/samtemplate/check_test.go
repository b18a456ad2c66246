package samtemplate

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// validBase is a small template every check accepts; the cases below break
// it one way each and expect the checker to say so.
const validBase = `
Transform: AWS::Serverless-2016-10-31
Parameters:
  Origins:
    Type: String
    Default: https://shop.example,http://localhost:4000
Globals:
  Function:
    Runtime: provided.al2023
    Architectures: [arm64]
    Handler: bootstrap
    Environment:
      Variables:
        IDEMPOTENCY_TABLE: !Ref Idem
Resources:
  Api:
    Type: AWS::Serverless::HttpApi
    Properties:
      CorsConfiguration:
        AllowOrigins: !Split [",", !Ref Origins]
        AllowHeaders: [Authorization, Idempotency-Key]
        AllowMethods: [GET, POST]
        MaxAge: 600
      Auth:
        DefaultAuthorizer: Jwt
        Authorizers:
          Jwt:
            IdentitySource: "$request.header.Authorization"
            JwtConfiguration: {issuer: https://i.example/, audience: [a]}
  FnA:
    Type: AWS::Serverless::Function
    Metadata:
      BuildMethod: go1.x
    Properties:
      CodeUri: fn/a/
      Environment:
        Variables:
          ORDERS_TABLE: !Ref Orders
      Policies:
        - Statement:
            - Sid: IdemA
              Effect: Allow
              Action: [dynamodb:PutItem, dynamodb:GetItem]
              Resource: !GetAtt Idem.Arn
            - Sid: OrdersA
              Effect: Allow
              Action: dynamodb:PutItem
              Resource: !GetAtt Orders.Arn
      Events:
        Post:
          Type: HttpApi
          Properties:
            ApiId: !Ref Api
            Path: /orders/{orderId}
            Method: POST
  FnB:
    Type: AWS::Serverless::Function
    Metadata:
      BuildMethod: go1.x
    Properties:
      CodeUri: fn/b
      Policies:
        - Statement:
            - Sid: IdemB
              Effect: Allow
              Action: dynamodb:GetItem
              Resource:
                - Fn::GetAtt: [Idem, Arn]
                - !Sub "${Idem.Arn}/index/*"
      Events:
        Get:
          Type: HttpApi
          Properties:
            ApiId: !Ref Api
            Path: /payments/{proxy+}
            Method: get
  FnC:
    Type: AWS::Serverless::Function
    Metadata:
      BuildMethod: go1.x
    Properties:
      CodeUri: fn/a
      Policies:
        - Statement:
            - Sid: IdemC
              Effect: Allow
              Action: [dynamodb:PutItem]
              Resource: !GetAtt Idem.Arn
            - Sid: Stream
              Effect: Allow
              Action: [dynamodb:DescribeStream, dynamodb:GetRecords, dynamodb:GetShardIterator]
              Resource: !GetAtt Orders.StreamArn
            - Sid: List
              Effect: Allow
              Action: dynamodb:ListStreams
              Resource: "*"
            - Sid: Dead
              Effect: Allow
              Action: sqs:SendMessage
              Resource: !GetAtt Dead.Arn
  OnOrders:
    Type: AWS::Lambda::EventSourceMapping
    Properties:
      FunctionName: !Ref FnC
      EventSourceArn: !GetAtt Orders.StreamArn
      StartingPosition: TRIM_HORIZON
      FunctionResponseTypes: [ReportBatchItemFailures]
      MaximumRetryAttempts: 3
      DestinationConfig: {OnFailure: {Destination: !GetAtt Dead.Arn}}
  Dead:
    Type: AWS::SQS::Queue
  Idem:
    Type: AWS::DynamoDB::Table
    Properties:
      AttributeDefinitions: [{AttributeName: id, AttributeType: S}]
      KeySchema: [{AttributeName: id, KeyType: HASH}]
      TimeToLiveSpecification: {AttributeName: expires_at, Enabled: true}
  Orders:
    Type: AWS::DynamoDB::Table
    Properties:
      AttributeDefinitions: [{AttributeName: order_id, AttributeType: S}]
      KeySchema: [{AttributeName: order_id, KeyType: HASH}]
      StreamSpecification: {StreamViewType: NEW_AND_OLD_IMAGES}
`

// fakeRepo writes the directories validBase's CodeUris point at, plus a few
// broken ones the cases use.
func fakeRepo(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	files := map[string]string{
		"fn/a/main.go":      "package main\n\nfunc main() {}\n",
		"fn/b/main.go":      "package main\n\nimport \"fmt\"\n\nfunc main() { fmt.Println() }\n",
		"fn/b/main_test.go": "package main\n",
		"fn/lib/lib.go":     "package lib\n\nfunc main() {}\n",
		"fn/nomain/x.go":    "package main\n\ntype T struct{}\n\nfunc (T) main() {}\n",
		"fn/empty/README":   "no Go here\n",
	}
	for name, body := range files {
		p := filepath.Join(root, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func checkSnippet(t *testing.T, root, src string) []Problem {
	t.Helper()
	tpl, err := Parse([]byte(src))
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	return Check(tpl, Expect{Root: root, IdempotencyTable: "Idem", KeyAttribute: "id", TTLAttribute: "expires_at"})
}

func TestCheckerAcceptsValidBase(t *testing.T) {
	root := fakeRepo(t)
	reportProblems(t, checkSnippet(t, root, validBase))
}

func TestCheckerReportsBrokenTemplates(t *testing.T) {
	root := fakeRepo(t)
	cases := []struct {
		name     string
		old, new string // replaced once in validBase
		want     string // substring of some problem
	}{
		{"unknown method", "Method: POST", "Method: FETCH", `Method "FETCH"`},
		{"relative path", "Path: /orders/{orderId}", "Path: orders", "must begin with /"},
		{"unclosed parameter", "Path: /orders/{orderId}", "Path: /orders/{orderId", "malformed path parameter"},
		{"partial segment parameter", "Path: /orders/{orderId}", "Path: /orders/id-{orderId}", "malformed path parameter"},
		{"greedy not last", "Path: /payments/{proxy+}", "Path: /payments/{proxy+}/x", "must be the last segment"},
		{"empty segment", "Path: /orders/{orderId}", "Path: /orders//{orderId}", "empty segment"},
		{"parameter twice", "Path: /orders/{orderId}", "Path: /orders/{orderId}/{orderId}", "appears twice"},
		{"duplicate route", "Path: /payments/{proxy+}\n            Method: get", "Path: /orders/{other}\n            Method: post", "duplicates"},
		{"unknown api", "ApiId: !Ref Api\n            Path: /orders", "ApiId: !Ref Nope\n            Path: /orders", "not an HttpApi resource"},
		{"api is not an api", "ApiId: !Ref Api\n            Path: /orders", "ApiId: !Ref Orders\n            Path: /orders", "not an HttpApi resource"},
		{"implicit api", "ApiId: !Ref Api\n            Path: /orders", "Path: /orders", "ApiId must be"},
		{"route without authorizer", "Method: POST", "Method: POST\n            Auth: {Authorizer: NONE}", "not authorized"},
		{"no default authorizer", "DefaultAuthorizer: Jwt", "FailOnWarnings: true", "not authorized"},
		{"unknown authorizer", "DefaultAuthorizer: Jwt", "DefaultAuthorizer: Cognito", `authorizer "Cognito" is not defined`},
		{"ttl attribute differs", "AttributeName: expires_at", "AttributeName: ttl", "TTL attribute is ttl"},
		{"ttl disabled", "Enabled: true}", "Enabled: false}", "Enabled is false"},
		{"no ttl", "TimeToLiveSpecification: {AttributeName: expires_at, Enabled: true}", "", "no TimeToLiveSpecification"},
		{"idempotency key differs", "[{AttributeName: id, KeyType: HASH}]", "[{AttributeName: pk, KeyType: HASH}]", "want HASH key \"id\""},
		{"idempotency key not string", "[{AttributeName: id, AttributeType: S}]", "[{AttributeName: id, AttributeType: N}]", "want S"},
		{"policy table without env", "          ORDERS_TABLE: !Ref Orders\n", "          OTHER: plain\n", "policies grant access to Orders but no environment variable"},
		{"env table without policy", "      CodeUri: fn/b\n", "      CodeUri: fn/b\n      Environment: {Variables: {ORDERS_TABLE: !Ref Orders}}\n", "no policy grants access to it"},
		{"no idempotency table env", "        IDEMPOTENCY_TABLE: !Ref Idem\n", "        LOG_LEVEL: INFO\n", "IDEMPOTENCY_TABLE is <nil>"},
		{"idempotency env names another table", "IDEMPOTENCY_TABLE: !Ref Idem", "IDEMPOTENCY_TABLE: !Ref Orders", "want !Ref Idem"},
		{"dynamodb wildcard action", "Action: dynamodb:PutItem", "Action: dynamodb:*", "wildcard"},
		{"prefix wildcard action", "Action: dynamodb:GetItem", "Action: dynamodb:Get*", "wildcard"},
		{"star resource", "Resource: !GetAtt Orders.Arn", `Resource: "*"`, "is a wildcard"},
		{"wildcard table arn", "Resource: !GetAtt Orders.Arn", `Resource: !Sub "arn:${AWS::Partition}:dynamodb:${AWS::Region}:${AWS::AccountId}:table/*"`, "is a wildcard"},
		{"resource is a table name", "Resource: !GetAtt Orders.Arn", "Resource: !Ref Orders", "is a name, not an ARN"},
		{"policy template", "      Policies:\n        - Statement:\n            - Sid: IdemB", "      Policies:\n        - DynamoDBCrudPolicy: {TableName: !Ref Idem}\n        - Statement:\n            - Sid: IdemB", "policy template"},
		{"managed policy", "      Policies:\n        - Statement:\n            - Sid: IdemB", "      Policies:\n        - AmazonDynamoDBFullAccess\n        - Statement:\n            - Sid: IdemB", "managed policy"},
		{"not action", "Action: dynamodb:PutItem", "NotAction: dynamodb:DeleteTable", "NotAction"},
		{"own role", "      CodeUri: fn/b\n", "      CodeUri: fn/b\n      Role: arn:aws:iam::123456789012:role/x\n", "Role is set"},
		{"runtime", "Runtime: provided.al2023", "Runtime: provided.al2", "Runtime is provided.al2,"},
		{"handler", "Handler: bootstrap", "Handler: main", "Handler is main"},
		{"architectures concatenate", "      CodeUri: fn/b\n", "      CodeUri: fn/b\n      Architectures: [x86_64]\n", "Architectures is [arm64 x86_64]"},
		{"no build method", "      BuildMethod: go1.x\n    Properties:\n      CodeUri: fn/b", "      Foo: bar\n    Properties:\n      CodeUri: fn/b", "BuildMethod is <nil>"},
		{"missing code dir", "CodeUri: fn/b", "CodeUri: fn/missing", "no such directory"},
		{"code dir outside repo", "CodeUri: fn/b", "CodeUri: ../fn/b", "outside the repository"},
		{"not package main", "CodeUri: fn/b", "CodeUri: fn/lib", "want package main"},
		{"no func main", "CodeUri: fn/b", "CodeUri: fn/nomain", "no func main"},
		{"no Go files", "CodeUri: fn/b", "CodeUri: fn/empty", "no buildable Go source files"},
		{"mapping without partial failures", "      FunctionResponseTypes: [ReportBatchItemFailures]\n      MaximumRetryAttempts: 3", "      MaximumRetryAttempts: 3", "lacks ReportBatchItemFailures"},
		{"mapping with unbounded retries", "MaximumRetryAttempts: 3", "MaximumRetryAttempts: -1", "MaximumRetryAttempts is unset or -1"},
		{"mapping without destination", "      DestinationConfig: {OnFailure: {Destination: !GetAtt Dead.Arn}}\n", "", "no DestinationConfig.OnFailure"},
		{"destination not allowed", "Action: sqs:SendMessage", "Action: sqs:GetQueueUrl", "no policy statement allows sqs:SendMessage on !GetAtt Dead.Arn"},
		{"stream read not allowed", "[dynamodb:DescribeStream, dynamodb:GetRecords, dynamodb:GetShardIterator]", "[dynamodb:DescribeStream]", "no policy statement allows dynamodb:GetRecords on !GetAtt Orders.StreamArn"},
		{"no ListStreams", "Action: dynamodb:ListStreams", "Action: dynamodb:DescribeLimits", "allows dynamodb:ListStreams"},
		{"star for a scoped action", "Action: dynamodb:ListStreams", "Action: [dynamodb:ListStreams, dynamodb:GetItem]", `resource * is a wildcard`},
		{"table without stream", "      StreamSpecification: {StreamViewType: NEW_AND_OLD_IMAGES}\n", "", "table Orders has no StreamSpecification"},
		{"stream of another resource", "      EventSourceArn: !GetAtt Orders.StreamArn", "      EventSourceArn: !GetAtt Idem.Arn", "is not a table's StreamArn or a queue's Arn"},
		{"cors wildcard with credentials", `AllowOrigins: !Split [",", !Ref Origins]`, "AllowOrigins: [\"*\"]\n        AllowCredentials: true", "has '*' with AllowCredentials"},
		{"cors origin with trailing slash", "Default: https://shop.example,", "Default: https://shop.example/,", `AllowOrigins (the Default of parameter Origins) entry "https://shop.example/" is not scheme://host[:port]`},
		{"cors origin with path", `AllowOrigins: !Split [",", !Ref Origins]`, "AllowOrigins: [https://shop.example/pay]", `entry "https://shop.example/pay"`},
		{"cors without the token header", "AllowHeaders: [Authorization, Idempotency-Key]", "AllowHeaders: [Idempotency-Key]", "AllowHeaders lacks Authorization, the header authorizer Jwt reads"},
		{"SAM stream event", "      Events:\n        Post:", "      Events:\n        Changes: {Type: DynamoDB, Properties: {Stream: !GetAtt Orders.StreamArn, StartingPosition: LATEST}}\n        Post:", "attaches the managed policy AWSLambdaDynamoDBExecutionRole"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if strings.Count(validBase, c.old) != 1 {
				t.Fatalf("case must replace exactly one occurrence of %q", c.old)
			}
			src := strings.Replace(validBase, c.old, c.new, 1)
			ps := checkSnippet(t, root, src)
			for _, p := range ps {
				if strings.Contains(p.String(), c.want) {
					return
				}
			}
			t.Errorf("no problem contains %q; got %v", c.want, ps)
		})
	}
}

func TestParseShortFormIntrinsics(t *testing.T) {
	src := `
Resources:
  R:
    Type: X
    Properties:
      A: !Ref T
      B: !GetAtt T.Arn
      C: !Sub "${T.Arn}/index/*"
      D: !Join ["", [a, !Ref T]]
      E: {"Fn::GetAtt": "T.Arn"}
      F: 10
`
	tpl, err := Parse([]byte(src))
	if err != nil {
		t.Fatal(err)
	}
	got := tpl.Resources["R"].Properties
	want := map[string]any{
		"A": map[string]any{"Ref": "T"},
		"B": map[string]any{"Fn::GetAtt": []any{"T", "Arn"}},
		"C": map[string]any{"Fn::Sub": "${T.Arn}/index/*"},
		"D": map[string]any{"Fn::Join": []any{"", []any{"a", map[string]any{"Ref": "T"}}}},
		"E": map[string]any{"Fn::GetAtt": "T.Arn"},
		"F": 10,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %#v\nwant %#v", got, want)
	}
	if id, attr, ok := GetAttTarget(got["E"]); !ok || id != "T" || attr != "Arn" {
		t.Errorf("GetAttTarget(long form) = %q, %q, %v", id, attr, ok)
	}
	for _, bad := range []string{"A: !GetAtt NoDot", "A: 1\nA: 2"} {
		if _, err := Parse([]byte("Resources: {}\n" + bad)); err == nil {
			t.Errorf("Parse(%q) succeeded, want an error", bad)
		}
	}
	if _, err := Parse(nil); err == nil {
		t.Error("Parse(empty) succeeded, want an error")
	}
}

func TestMergeGlobals(t *testing.T) {
	g := map[string]any{
		"Timeout":       10,
		"Architectures": []any{"arm64"},
		"Environment":   map[string]any{"Variables": map[string]any{"A": "g", "B": map[string]any{"Ref": "X"}}},
	}
	l := map[string]any{
		"Timeout":     3,
		"Environment": map[string]any{"Variables": map[string]any{"B": map[string]any{"Fn::GetAtt": []any{"Y", "Arn"}}, "C": "l"}},
	}
	got := MergeGlobals(g, l)
	want := map[string]any{
		"Timeout":       3,
		"Architectures": []any{"arm64"},
		"Environment": map[string]any{"Variables": map[string]any{
			"A": "g", "B": map[string]any{"Fn::GetAtt": []any{"Y", "Arn"}}, "C": "l",
		}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %#v\nwant %#v", got, want)
	}
}

// An event source mapping is an event of the function it names, and one
// that names none of the template's functions is refused by name.
func TestEventSourceMappingIsAnEventOfItsFunction(t *testing.T) {
	tpl, err := Parse([]byte(validBase))
	if err != nil {
		t.Fatal(err)
	}
	f, _ := tpl.Function("FnC")
	if len(f.Events) != 1 || f.Events[0].Mapping != "OnOrders" || f.Events[0].Type != EventDynamoDB || f.Events[0].Stream == nil ||
		f.Events[0].Stream.Stream != (Ref{Resource: "Orders", Attribute: "StreamArn"}) || *f.Events[0].Stream.MaximumRetryAttempts != 3 {
		t.Fatalf("FnC events = %+v", f.Events)
	}
	src := strings.Replace(validBase, "FunctionName: !Ref FnC", "FunctionName: !Ref Orders", 1)
	if _, err := Parse([]byte(src)); err == nil || !strings.Contains(err.Error(), "event source mapping OnOrders: FunctionName") {
		t.Errorf("a mapping naming a table: err = %v", err)
	}
	src = strings.Replace(validBase, "EventSourceArn: !GetAtt Orders.StreamArn", "EventSourceArn: arn:aws:sqs:us-east-1:123456789012:jobs", 1)
	if tpl, err = Parse([]byte(src)); err != nil {
		t.Fatal(err)
	}
	if f, _ := tpl.Function("FnC"); f.Events[0].Type != EventSQS || f.Events[0].Queue.Queue.Value != "arn:aws:sqs:us-east-1:123456789012:jobs" {
		t.Errorf("a mapping of a literal queue ARN = %+v", f.Events[0])
	}
}
