package samtemplate

import (
	"fmt"
	"go/ast"
	"go/build"
	"go/parser"
	"go/token"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
)

// Problem is one finding of a check.
type Problem struct {
	Where string // logical ID, optionally with a property path
	Msg   string
}

func (p Problem) String() string { return p.Where + ": " + p.Msg }

type problems []Problem

func (ps *problems) add(where, format string, args ...any) {
	*ps = append(*ps, Problem{Where: where, Msg: fmt.Sprintf(format, args...)})
}

// Expect is what the template must agree with outside itself.
type Expect struct {
	// Root is the repository root; CodeUri paths are relative to it.
	Root string
	// IdempotencyTable is the logical ID of the idempotency table, which
	// every function receives as IDEMPOTENCY_TABLE.
	IdempotencyTable string
	// KeyAttribute and TTLAttribute are the idempotency library's partition
	// key and expiry attribute.
	KeyAttribute string
	TTLAttribute string
}

// Check runs every check and returns the problems found.
func Check(t *Template, e Expect) []Problem {
	return slices.Concat(
		CheckFunctions(t),
		CheckCode(t, e.Root),
		CheckRoutes(t),
		CheckIdempotencyTable(t, e.IdempotencyTable, e.KeyAttribute, e.TTLAttribute),
		CheckEnvPolicies(t, e.IdempotencyTable),
		CheckLeastPrivilege(t),
		CheckEventSources(t),
		CheckCORS(t),
	)
}

// CheckFunctions: after the Globals merge every function is a zip package
// for provided.al2023 on arm64 with the handler bootstrap.
func CheckFunctions(t *Template) []Problem {
	var ps problems
	fns := t.Functions()
	if len(fns) == 0 {
		ps.add("Resources", "no %s", TypeFunction)
	}
	for _, f := range fns {
		if v := f.Props["Runtime"]; v != "provided.al2023" {
			ps.add(f.ID, "Runtime is %v, want provided.al2023", v)
		}
		if v := f.Props["Handler"]; v != "bootstrap" {
			ps.add(f.ID, "Handler is %v, want bootstrap", v)
		}
		if a, ok := f.Props["Architectures"].([]any); !ok || len(a) != 1 || a[0] != "arm64" {
			ps.add(f.ID, "Architectures is %v, want [arm64]", f.Props["Architectures"])
		}
		if v, ok := f.Props["PackageType"]; ok && v != "Zip" {
			ps.add(f.ID, "PackageType is %v, want Zip", v)
		}
	}
	return ps
}

// CheckCode: each function's CodeUri is a directory of the repository
// holding a Go main package (as built for linux/arm64 with lambda.norpc)
// with a func main, and its build method is one SAM can build Go with.
func CheckCode(t *Template, root string) []Problem {
	var ps problems
	for _, f := range t.Functions() {
		switch bm := f.Metadata["BuildMethod"]; bm {
		case "go1.x", "makefile":
		default:
			ps.add(f.ID, "Metadata.BuildMethod is %v, want go1.x (or makefile)", bm)
		}
		uri, ok := f.Props["CodeUri"].(string)
		if !ok || uri == "" {
			ps.add(f.ID, "CodeUri is %v, want a directory path", f.Props["CodeUri"])
			continue
		}
		rel := filepath.Clean(filepath.FromSlash(uri))
		if filepath.IsAbs(rel) || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
			ps.add(f.ID, "CodeUri %q is outside the repository", uri)
			continue
		}
		dir := filepath.Join(root, rel)
		if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
			ps.add(f.ID, "CodeUri %q: no such directory", uri)
			continue
		}
		ctx := build.Default
		ctx.GOOS, ctx.GOARCH, ctx.CgoEnabled = "linux", "arm64", false
		ctx.BuildTags = []string{"lambda.norpc"}
		pkg, err := ctx.ImportDir(dir, 0)
		if err != nil {
			ps.add(f.ID, "CodeUri %q: %v", uri, err)
			continue
		}
		if pkg.Name != "main" {
			ps.add(f.ID, "CodeUri %q holds package %s, want package main", uri, pkg.Name)
			continue
		}
		if !hasFuncMain(dir, pkg.GoFiles) {
			ps.add(f.ID, "CodeUri %q: package main has no func main", uri)
		}
	}
	return ps
}

func hasFuncMain(dir string, files []string) bool {
	fset := token.NewFileSet()
	for _, name := range files {
		file, err := parser.ParseFile(fset, filepath.Join(dir, name), nil, parser.SkipObjectResolution)
		if err != nil {
			continue
		}
		for _, d := range file.Decls {
			if fd, ok := d.(*ast.FuncDecl); ok && fd.Recv == nil && fd.Name.Name == "main" {
				return true
			}
		}
	}
	return false
}

// Route is one HttpApi event of a function.
type Route struct {
	Function string
	Event    string
	API      string // logical ID from ApiId
	Method   string // upper case
	Path     string

	http *HTTPEvent
}

func (r Route) String() string { return r.Method + " " + r.Path }

// Routes returns every HttpApi event of every function.
func (t *Template) Routes() []Route {
	var out []Route
	for _, f := range t.Functions() {
		for _, ev := range f.Events {
			if ev.Type != EventHTTPAPI {
				continue
			}
			out = append(out, Route{Function: f.ID, Event: ev.Name, API: ev.HTTP.API, Method: ev.HTTP.Method, Path: ev.HTTP.Path, http: ev.HTTP})
		}
	}
	return out
}

var (
	httpMethods  = []string{"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "ANY"}
	literalSeg   = regexp.MustCompile(`^[A-Za-z0-9._~!$&'()*+,;=:@%-]+$`)
	paramSeg     = regexp.MustCompile(`^\{[A-Za-z0-9._-]+\}$`)
	greedyParSeg = regexp.MustCompile(`^\{[A-Za-z0-9._-]+\+\}$`)
)

// CheckRoutes: every HttpApi event has a valid method and path, belongs to
// an HttpApi resource of this template, is authorized by a JWT authorizer
// the API defines, and no two events claim the same route.
func CheckRoutes(t *Template) []Problem {
	var ps problems
	seen := map[string]string{}
	for _, r := range t.Routes() {
		where := r.Function + ".Events." + r.Event
		if !slices.Contains(httpMethods, r.Method) {
			ps.add(where, "Method %q is not one of %v", r.Method, httpMethods)
		}
		for _, msg := range pathProblems(r.Path) {
			ps.add(where, "Path %q: %s", r.Path, msg)
		}
		api, ok := t.Resources[r.API]
		switch {
		case r.API == "":
			ps.add(where, "ApiId must be !Ref to an HttpApi of this template (without it SAM creates an implicit API with no authorizer)")
		case !ok || (api.Type != TypeHTTPAPI && api.Type != TypeAPIGWv2API):
			ps.add(where, "ApiId references %q, which is not an HttpApi resource of this template", r.API)
		default:
			ps = append(ps, routeAuthProblems(t, where, r)...)
		}
		key := r.API + " " + r.Method + " " + normalizePath(r.Path)
		if prev, dup := seen[key]; dup {
			ps.add(where, "route %s duplicates %s", r, prev)
		} else {
			seen[key] = where
		}
	}
	return ps
}

// SignedRoutePrefix starts the paths of POST routes that may have no
// authorizer: webhooks, whose handlers verify their sender's signature
// (POST /webhooks/stripe checks Stripe-Signature).
const SignedRoutePrefix = "/webhooks/"

func routeAuthProblems(t *Template, where string, r Route) []Problem {
	var ps problems
	api := t.API(r.API)
	if api == nil || api.Type != TypeHTTPAPI {
		return nil
	}
	chosen := api.RouteAuthorizer(r.http)
	switch a, ok := api.Authorizers[chosen]; {
	case (chosen == "" || chosen == "NONE") && strings.HasPrefix(r.Path, SignedRoutePrefix) && r.Method == "POST":
		// A webhook: its sender signs each request and the handler
		// verifies the signature instead of a JWT.
	case chosen == "" || chosen == "NONE":
		ps.add(where, "route %s is not authorized (no DefaultAuthorizer on %s, or Authorizer NONE)", r, r.API)
	case !ok:
		ps.add(where, "authorizer %q is not defined in %s.Auth.Authorizers", chosen, r.API)
	case a.JWT == nil:
		ps.add(where, "authorizer %q has no JwtConfiguration", chosen)
	}
	return ps
}

func pathProblems(p string) []string {
	if !strings.HasPrefix(p, "/") {
		return []string{"must begin with /"}
	}
	if p == "/" {
		return nil
	}
	var out []string
	segs := strings.Split(p[1:], "/")
	params := map[string]bool{}
	for i, s := range segs {
		switch {
		case s == "":
			out = append(out, "empty segment (// or trailing /)")
			continue
		case greedyParSeg.MatchString(s):
			if i != len(segs)-1 {
				out = append(out, fmt.Sprintf("greedy parameter %s must be the last segment", s))
			}
		case paramSeg.MatchString(s):
		case strings.ContainsAny(s, "{}"):
			out = append(out, fmt.Sprintf("malformed path parameter in segment %q (want the whole segment as {name} or {name+})", s))
			continue
		case !literalSeg.MatchString(s):
			out = append(out, fmt.Sprintf("invalid characters in segment %q", s))
			continue
		default:
			continue
		}
		name := strings.TrimSuffix(strings.Trim(s, "{}"), "+")
		if params[name] {
			out = append(out, fmt.Sprintf("parameter {%s} appears twice", name))
		}
		params[name] = true
	}
	return out
}

// normalizePath replaces parameter names, so /a/{x} and /a/{y} collide as
// API Gateway considers them.
func normalizePath(p string) string {
	segs := strings.Split(p, "/")
	for i, s := range segs {
		switch {
		case greedyParSeg.MatchString(s):
			segs[i] = "{+}"
		case paramSeg.MatchString(s):
			segs[i] = "{}"
		}
	}
	return strings.Join(segs, "/")
}

// CheckIdempotencyTable: the idempotency table exists, its only key is the
// string partition key the library uses, and TTL is enabled on the
// attribute the library writes.
func CheckIdempotencyTable(t *Template, id, keyAttr, ttlAttr string) []Problem {
	var ps problems
	tb, ok := t.Table(id)
	if !ok || tb.Type != TypeTable {
		ps.add(id, "no %s named %s", TypeTable, id)
		return ps
	}
	if len(tb.KeySchema) != 1 {
		ps.add(id, "KeySchema has %d elements, want only the HASH key %q", len(tb.KeySchema), keyAttr)
	} else if k := tb.KeySchema[0]; k.AttributeName != keyAttr || k.KeyType != "HASH" {
		ps.add(id, "KeySchema is %v, want HASH key %q", k, keyAttr)
	}
	found := false
	for _, d := range tb.AttributeDefinitions {
		if d.AttributeName == keyAttr {
			found = true
			if d.AttributeType != "S" {
				ps.add(id, "key attribute %q has type %v, want S", keyAttr, d.AttributeType)
			}
		}
	}
	if !found {
		ps.add(id, "AttributeDefinitions lacks the key attribute %q", keyAttr)
	}
	if tb.TTL == nil {
		ps.add(id, "no TimeToLiveSpecification; records would never expire")
		return ps
	}
	if tb.TTL.AttributeName != ttlAttr {
		ps.add(id, "TTL attribute is %v, but the idempotency library writes %q", tb.TTL.AttributeName, ttlAttr)
	}
	if !tb.TTL.Enabled {
		ttl, _ := tb.Props["TimeToLiveSpecification"].(map[string]any)
		ps.add(id, "TimeToLiveSpecification.Enabled is %v, want true", ttl["Enabled"])
	}
	return ps
}

// CheckEnvPolicies: for each function, the tables its environment names
// (Ref) are exactly the tables its policies grant access to, and
// IDEMPOTENCY_TABLE is a Ref to the idempotency table.
func CheckEnvPolicies(t *Template, idemTable string) []Problem {
	var ps problems
	for _, f := range t.Functions() {
		env := f.Env()
		if ref, ok := RefTarget(env["IDEMPOTENCY_TABLE"]); !ok || ref != idemTable {
			ps.add(f.ID, "environment IDEMPOTENCY_TABLE is %v, want !Ref %s", env["IDEMPOTENCY_TABLE"], idemTable)
		}
		envTables := map[string]string{} // table -> variable
		for _, name := range slices.Sorted(maps.Keys(env)) {
			if ref, ok := RefTarget(env[name]); ok && t.Resources[ref].Type == TypeTable {
				envTables[ref] = name
			}
		}
		polTables := map[string]bool{}
		eachGrant(t, f, func(st statement, g Grant, err error) {
			switch {
			case err != nil:
				ps.add(f.ID, "policy statement %s: %v", st.Name, err)
			case g.Kind == KindTable:
				polTables[g.ID] = true
			}
		})
		for _, table := range slices.Sorted(maps.Keys(polTables)) {
			if _, ok := envTables[table]; !ok {
				ps.add(f.ID, "policies grant access to %s but no environment variable is !Ref %s", table, table)
			}
		}
		for _, table := range slices.Sorted(maps.Keys(envTables)) {
			if !polTables[table] {
				ps.add(f.ID, "environment %s names %s but no policy grants access to it", envTables[table], table)
			}
		}
	}
	return ps
}

var subRef = regexp.MustCompile(`\$\{([A-Za-z0-9]+)(\.Arn)?\}`)

// Kinds of what a policy statement's Resource names (Grant.Kind).
const (
	KindTable  = "table"  // a table's ARN (!GetAtt T.Arn) or its indexes (!Sub "${T.Arn}/index/*")
	KindStream = "stream" // a table's stream (!GetAtt T.StreamArn)
	KindQueue  = "queue"  // a queue's ARN (!GetAtt Q.Arn)
	KindAll    = "*"      // every resource: only for actions without resource-level permissions
	// KindSecret is one Secrets Manager secret named by a template
	// parameter: !Sub "arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:${Param}-??????".
	KindSecret = "secret"
)

// secretARN matches a policy Resource naming one Secrets Manager secret by
// the template parameter holding its name (the -?????? stands for the
// random suffix of the secret's ARN).
var secretARN = regexp.MustCompile(`^arn:\$\{AWS::Partition\}:secretsmanager:\$\{AWS::Region\}:\$\{AWS::AccountId\}:secret:\$\{([A-Za-z0-9]+)\}-\?{6}$`)

// unscopedActions are the actions IAM cannot scope to a resource, which
// least privilege grants on "*" in a statement of their own:
// dynamodb:ListStreams, which a DynamoDB event source mapping needs (it
// lists stream metadata, never items).
var unscopedActions = []string{"dynamodb:ListStreams"}

// Grant is what one policy statement Resource names: a resource of this
// template of Kind (ID its logical ID), or every resource (KindAll).
type Grant struct {
	Kind string
	ID   string
}

// targetOf resolves a policy Resource to what it names: a table of this
// template (!GetAtt T.Arn, or !Sub "${T.Arn}/index/*"), a table's stream
// (!GetAtt T.StreamArn), a queue (!GetAtt Q.Arn), or "*".
func targetOf(t *Template, res any) (Grant, error) {
	if res == "*" {
		return Grant{Kind: KindAll}, nil
	}
	if id, attr, ok := GetAttTarget(res); ok {
		switch typ := t.Resources[id].Type; {
		case typ == TypeTable && attr == "Arn":
			return Grant{KindTable, id}, nil
		case typ == TypeTable && attr == "StreamArn":
			return Grant{KindStream, id}, nil
		case typ == TypeTable:
			return Grant{}, fmt.Errorf("resource !GetAtt %s.%s: want %s.Arn (or %s.StreamArn)", id, attr, id, id)
		case typ == TypeQueue && attr == "Arn":
			return Grant{KindQueue, id}, nil
		}
		return Grant{}, fmt.Errorf("resource !GetAtt %s.%s is not a DynamoDB table, table stream or SQS queue of this template", id, attr)
	}
	if ref, ok := RefTarget(res); ok {
		return Grant{}, fmt.Errorf("resource !Ref %s is a name, not an ARN (use !GetAtt %s.Arn)", ref, ref)
	}
	if m, ok := res.(map[string]any); ok && len(m) == 1 {
		s, _ := m["Fn::Sub"].(string)
		if l, ok := m["Fn::Sub"].([]any); ok && len(l) > 0 {
			s, _ = l[0].(string)
		}
		if sm := subRef.FindStringSubmatch(s); sm != nil && sm[2] != "" && strings.HasPrefix(s, sm[0]) &&
			t.Resources[sm[1]].Type == TypeTable {
			return Grant{KindTable, sm[1]}, nil
		}
		if sm := secretARN.FindStringSubmatch(s); sm != nil {
			if params, _ := t.Raw["Parameters"].(map[string]any); params[sm[1]] != nil {
				return Grant{KindSecret, sm[1]}, nil
			}
		}
	}
	return Grant{}, fmt.Errorf("resource %v is not !GetAtt <Table>.Arn of a table of this template", res)
}

// eachGrant calls fn with each Resource of f's Allow statements: what it
// names, or why it names nothing the checks understand.
func eachGrant(t *Template, f Function, fn func(st statement, g Grant, err error)) {
	for _, st := range statements(f) {
		if st.Effect != "Allow" {
			continue
		}
		for _, res := range st.Resources {
			g, err := targetOf(t, res)
			fn(st, g, err)
		}
	}
}

// Grants returns what f's Allow statements grant: the actions on each
// resource they name (sorted, without repeats). A Resource the checks do
// not understand is left out (CheckEnvPolicies reports it).
func Grants(t *Template, f Function) map[Grant][]string {
	out := map[Grant][]string{}
	eachGrant(t, f, func(st statement, g Grant, err error) {
		if err != nil {
			return
		}
		for _, a := range st.Actions {
			if s, ok := a.(string); ok {
				out[g] = append(out[g], s)
			}
		}
	})
	for g, actions := range out {
		slices.Sort(actions)
		out[g] = slices.Compact(actions)
	}
	return out
}

type statement struct {
	Name      string // Sid, or the index
	Effect    string
	Actions   []any
	Resources []any
	Raw       map[string]any
}

// statements returns the function's inline policy statements.
func statements(f Function) []statement {
	var out []statement
	pols, _ := f.Props["Policies"].([]any)
	if m, ok := f.Props["Policies"].(map[string]any); ok {
		pols = []any{m}
	}
	for i, p := range pols {
		doc, _ := p.(map[string]any)
		sts, _ := doc["Statement"].([]any)
		if m, ok := doc["Statement"].(map[string]any); ok {
			sts = []any{m}
		}
		for j, s := range sts {
			sm, _ := s.(map[string]any)
			st := statement{Raw: sm, Name: fmt.Sprintf("Policies[%d].Statement[%d]", i, j)}
			if sid, ok := sm["Sid"].(string); ok {
				st.Name = sid
			}
			st.Effect, _ = sm["Effect"].(string)
			st.Actions = List(sm["Action"])
			st.Resources = List(sm["Resource"])
			out = append(out, st)
		}
	}
	return out
}

// CheckLeastPrivilege: functions use inline policy statements only (no
// managed policies, SAM policy templates or a Role of their own); no Allow
// statement has a wildcard action, NotAction, NotResource, or a wildcard
// resource other than a table's index ARNs.
func CheckLeastPrivilege(t *Template) []Problem {
	var ps problems
	for _, f := range t.Functions() {
		if _, ok := f.Props["Role"]; ok {
			ps.add(f.ID, "Role is set, so Policies are ignored; let SAM create the role from inline Policies")
		}
		pols, _ := f.Props["Policies"].([]any)
		if m, ok := f.Props["Policies"].(map[string]any); ok {
			pols = []any{m}
		}
		if len(pols) == 0 {
			ps.add(f.ID, "no Policies")
		}
		for i, p := range pols {
			doc, ok := p.(map[string]any)
			switch {
			case !ok:
				ps.add(f.ID, "Policies[%d] is the managed policy %v; use an inline Statement", i, p)
			case doc["Statement"] == nil:
				ps.add(f.ID, "Policies[%d] is a policy template (%v); use an inline Statement", i, slices.Sorted(maps.Keys(doc)))
			}
		}
		for _, st := range statements(f) {
			where := f.ID + " " + st.Name
			if st.Effect != "Allow" && st.Effect != "Deny" {
				ps.add(where, "Effect is %q", st.Effect)
			}
			for _, k := range []string{"NotAction", "NotResource"} {
				if _, ok := st.Raw[k]; ok && st.Effect == "Allow" {
					ps.add(where, "Allow with %s grants nearly everything", k)
				}
			}
			if len(st.Actions) == 0 {
				ps.add(where, "no Action")
			}
			for _, a := range st.Actions {
				if s, ok := a.(string); !ok || strings.Contains(s, "*") {
					ps.add(where, "action %v is a wildcard or not a literal action", a)
				}
			}
			if len(st.Resources) == 0 {
				ps.add(where, "no Resource")
			}
			unscoped := len(st.Actions) > 0 && !slices.ContainsFunc(st.Actions, func(a any) bool {
				s, _ := a.(string)
				return !slices.Contains(unscopedActions, s)
			})
			for _, r := range st.Resources {
				if wildcardResource(r) && (r != "*" || !unscoped) {
					ps.add(where, "resource %v is a wildcard (only %v, which IAM cannot scope, may have Resource \"*\", in a statement of their own)", r, unscopedActions)
				}
			}
		}
		for _, ev := range f.Events {
			if ev.Mapping == "" && (ev.Stream != nil || ev.Queue != nil) {
				ps.add(f.ID+".Events."+ev.Name, "a SAM %s event attaches the managed policy %s (Resource \"*\"); declare an %s with the function's inline policies instead",
					ev.Type, samManagedPolicy[ev.Type], TypeEventSourceMapping)
			}
		}
	}
	return ps
}

// samManagedPolicy is the managed policy SAM attaches to the role of a
// function with an event of this type.
var samManagedPolicy = map[string]string{
	EventDynamoDB: "AWSLambdaDynamoDBExecutionRole",
	EventSQS:      "AWSLambdaSQSQueueExecutionRole",
}

// What an event source mapping needs from its function's role: to read
// its stream or queue, and to send to its on-failure destination.
var (
	streamReadActions  = []string{"dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator"}
	queueReadActions   = []string{"sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:ReceiveMessage"}
	destinationActions = []string{"sqs:SendMessage"}
)

// CheckEventSources: each stream or queue event source mapping reads a
// stream or queue of this template (a table with a StreamSpecification),
// its function's policies grant what Lambda needs for it (stream read and
// dynamodb:ListStreams; queue receive and delete; sqs:SendMessage on the
// on-failure destination), it answers partial batch failures
// (ReportBatchItemFailures: without it a batch handler's reported records
// are dropped as done), and poison records end somewhere: a stream
// mapping has bounded MaximumRetryAttempts and an on-failure destination,
// a queue a redrive policy to a dead-letter queue.
func CheckEventSources(t *Template) []Problem {
	var ps problems
	for _, f := range t.Functions() {
		grants := Grants(t, f)
		need := func(where string, g Grant, actions []string, what string) {
			for _, a := range actions {
				if !slices.Contains(grants[g], a) {
					ps.add(where, "%s: no policy statement allows %s on %s", what, a, grantString(g))
				}
			}
		}
		for _, ev := range f.Events {
			where := f.ID + " event " + ev.Name
			var b *Batching
			switch {
			case ev.Stream != nil:
				s := ev.Stream
				b = &s.Batching
				tb, ok := t.Table(s.Stream.Resource)
				switch {
				case !ok || s.Stream.Attribute != "StreamArn":
					ps.add(where, "the stream is %v, want !GetAtt <Table>.StreamArn of a table of this template", s.Stream)
					continue
				case tb.StreamViewType == "":
					ps.add(where, "table %s has no StreamSpecification", tb.ID)
				}
				need(where, Grant{KindStream, tb.ID}, streamReadActions, "stream read")
				need(where, Grant{Kind: KindAll}, unscopedActions, "stream read")
				if s.MaximumRetryAttempts == nil || *s.MaximumRetryAttempts < 0 {
					ps.add(where, "MaximumRetryAttempts is unset or -1: a poison record holds its shard until it expires")
				}
				switch q, ok := byID(t.Queues(), s.OnFailure.Resource, func(q Queue) string { return q.ID }); {
				case s.OnFailure.IsZero():
					ps.add(where, "no DestinationConfig.OnFailure: records that exhaust their retries are lost")
				case !ok || s.OnFailure.Attribute != "Arn":
					ps.add(where, "OnFailure destination %v is not !GetAtt <Queue>.Arn of a queue of this template", s.OnFailure)
				default:
					need(where, Grant{KindQueue, q.ID}, destinationActions, "on-failure destination")
				}
			case ev.Queue != nil:
				q := ev.Queue
				b = &q.Batching
				qu, ok := byID(t.Queues(), q.Queue.Resource, func(q Queue) string { return q.ID })
				if !ok || q.Queue.Attribute != "Arn" {
					ps.add(where, "the queue is %v, want !GetAtt <Queue>.Arn of a queue of this template", q.Queue)
					continue
				}
				need(where, Grant{KindQueue, qu.ID}, queueReadActions, "queue read")
				if qu.DeadLetter.IsZero() || qu.MaxReceiveCount <= 0 {
					ps.add(where, "queue %s has no RedrivePolicy (deadLetterTargetArn, maxReceiveCount): a poison message is retried until it expires", qu.ID)
				}
			case ev.Mapping != "" && ev.Type == "":
				ps.add(where, "EventSourceArn %v is not a table's StreamArn or a queue's Arn of this template (the checks and the local stack know DynamoDB streams and SQS)", ev.Properties["EventSourceArn"])
				continue
			default:
				continue
			}
			if !b.ReportsBatchItemFailures() {
				ps.add(where, "FunctionResponseTypes lacks ReportBatchItemFailures: the records a batch handler reports would be dropped as done")
			}
		}
	}
	return ps
}

func grantString(g Grant) string {
	switch g.Kind {
	case KindAll:
		return `"*"`
	case KindStream:
		return "!GetAtt " + g.ID + ".StreamArn"
	case KindSecret:
		return "the secret named by !Ref " + g.ID
	}
	return "!GetAtt " + g.ID + ".Arn"
}

func wildcardResource(r any) bool {
	switch r := r.(type) {
	case string:
		return strings.Contains(r, "*")
	case map[string]any:
		s, _ := r["Fn::Sub"].(string)
		if l, ok := r["Fn::Sub"].([]any); ok && len(l) > 0 {
			s, _ = l[0].(string)
		}
		s = strings.TrimSuffix(s, "/index/*")
		return strings.Contains(s, "*")
	}
	return false
}

// corsOrigin is an origin as a browser sends it: scheme://host[:port],
// nothing after it (an entry with a path or a trailing slash never matches).
var corsOrigin = regexp.MustCompile(`^https?://([A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*|\[[0-9A-Fa-f:.]+\])(:[0-9]{1,5})?$`)

// CheckCORS: an HttpApi's CorsConfiguration is one API Gateway accepts and
// a browser can use. A '*' origin with AllowCredentials is refused (API
// Gateway's create fails with "allow-credentials is not supported if
// 'allow-origin' is *"); every origin is '*', 'http://*', 'https://*' or
// scheme://host[:port] exactly (a path or trailing slash never matches a
// browser's Origin); and the header a JWT authorizer reads the token from
// is an allowed header, or a browser can never send it cross-origin.
func CheckCORS(t *Template) []Problem {
	var ps problems
	for _, id := range slices.Sorted(maps.Keys(t.apis)) {
		a := t.apis[id]
		c := a.CORS
		if c == nil {
			continue
		}
		where := id + ".CorsConfiguration"
		from := ""
		if c.OriginsParameter != "" {
			from = " (the Default of parameter " + c.OriginsParameter + ")"
		}
		for _, o := range c.AllowOrigins {
			switch {
			case o == "*" && c.AllowCredentials:
				ps.add(where, "AllowOrigins%s has '*' with AllowCredentials: true; API Gateway refuses it (and a browser would too): list the origins", from)
			case o == "*" || o == "http://*" || o == "https://*":
			case !corsOrigin.MatchString(o):
				ps.add(where, "AllowOrigins%s entry %q is not scheme://host[:port] (no path, no trailing slash), '*', 'http://*' or 'https://*'", from, o)
			}
		}
		for _, name := range slices.Sorted(maps.Keys(a.Authorizers)) {
			h, ok := strings.CutPrefix(a.Authorizers[name].IdentitySource, "$request.header.")
			if ok && !slices.ContainsFunc(c.AllowHeaders, func(x string) bool { return x == "*" || strings.EqualFold(x, h) }) {
				ps.add(where, "AllowHeaders lacks %s, the header authorizer %s reads the token from", h, name)
			}
		}
	}
	return ps
}
