package devstack

// Template loading.
//
// Choice of parser: github.com/awslabs/goformation/v7 (already in go.mod) was
// evaluated first, because a well-kept library beats our own code where it
// works. For serving a SAM template locally it does not:
//   - its typed model drops every intrinsic it cannot resolve (!Ref to a
//     resource, !GetAtt), so `IDEMPOTENCY_TABLE: !Ref IdempotencyTable`
//     vanishes, and it does not merge Globals into functions;
//   - its intrinsics processor resolves Fn::Sub variables through its own
//     Ref, bypassing IntrinsicHandlerOverrides, so ${SomeTable} still drops;
//   - Function.Environment.Variables is map[string]string, so a Number
//     parameter (RetentionSeconds: 86400) fails to decode;
//   - intrinsics.ProcessYAML registers its YAML tag handlers into a
//     package-global map on every call, which is a data race when two
//     stacks (parallel tests) load templates concurrently.
// So we decode with gopkg.in/yaml.v3 (also in go.mod), turn the short-form
// tags (!Ref, !Sub, !GetAtt, !If, ...) into their long form, merge Globals as
// SAM does (maps merged, lists appended, scalars overridden by the resource)
// and resolve the intrinsics we need below with local physical names. The
// decoding and the Globals merge are internal/samtemplate's (Decode,
// MergeGlobals), shared with the template checks; the resolution is ours.

import (
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/acme/idemcheckout/internal/samtemplate"
)

// Template is a SAM template resolved for local serving.
type Template struct {
	Parameters map[string]string // resolved parameter values (defaults + overrides)
	Functions  []*Function
	Tables     []*Table
	Region     string

	raw        map[string]any // whole template, intrinsics in long form, Globals not merged
	resources  map[string]map[string]any
	conditions map[string]bool
}

// Function is an AWS::Serverless::Function with Globals merged and
// intrinsics resolved.
type Function struct {
	LogicalID  string
	CodeURI    string
	Handler    string
	Timeout    time.Duration
	MemorySize int
	Env        map[string]string
	Events     []Event
}

// Event is one HttpApi or Api event source of a function.
type Event struct {
	Name       string
	Type       string // "HttpApi" or "Api"
	Method     string // upper case, "ANY" for any
	Path       string
	ApiID      string     // logical id of the API, "" for the implicit one
	Authorizer *JWTConfig // nil: no authorization on this route
	// Scopes are the route's AuthorizationScopes (HttpApi only).
	Scopes []string
}

// JWTConfig is an HttpApi JWT authorizer.
type JWTConfig struct {
	Name           string
	IdentitySource string // e.g. $request.header.Authorization
	Issuer         string // "" when the template does not resolve it
	Audience       []string
}

// Table is a DynamoDB table of the template.
type Table struct {
	LogicalID string
	Name      string // local physical name
	// Properties are the resolved CloudFormation properties of an
	// AWS::DynamoDB::Table (SimpleTable is converted to this shape).
	AttributeDefinitions   []AttributeDefinition
	KeySchema              []KeySchemaElement
	GlobalSecondaryIndexes []SecondaryIndex
	LocalSecondaryIndexes  []SecondaryIndex
	TTLAttribute           string // "" when no TimeToLiveSpecification is enabled
}

// AttributeDefinition mirrors the CloudFormation property.
type AttributeDefinition struct{ AttributeName, AttributeType string }

// KeySchemaElement mirrors the CloudFormation property.
type KeySchemaElement struct{ AttributeName, KeyType string }

// SecondaryIndex mirrors the CloudFormation GSI/LSI property.
type SecondaryIndex struct {
	IndexName        string
	KeySchema        []KeySchemaElement
	ProjectionType   string
	NonKeyAttributes []string
}

const (
	fakeAccount = "123456789012"
	stackName   = "local"
)

// LoadTemplate reads and resolves a SAM template file.
func LoadTemplate(path string, overrides map[string]string, region string) (*Template, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read template: %w", err)
	}
	t, err := ParseTemplate(data, overrides, region)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return t, nil
}

// ParseTemplate resolves a SAM template given as YAML (or JSON) bytes.
func ParseTemplate(data []byte, overrides map[string]string, region string) (*Template, error) {
	if region == "" {
		region = "us-east-1"
	}
	raw, err := samtemplate.Decode(data)
	if err != nil {
		return nil, err
	}
	t := &Template{raw: raw, Region: region, Parameters: map[string]string{}, resources: map[string]map[string]any{}}
	if err := t.loadParameters(overrides); err != nil {
		return nil, err
	}
	res, _ := raw["Resources"].(map[string]any)
	if len(res) == 0 {
		return nil, errors.New("template has no Resources")
	}
	for id, r := range res {
		m, ok := r.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("resource %s is not a mapping", id)
		}
		t.resources[id] = m
	}
	if err := t.evalConditions(); err != nil {
		return nil, err
	}
	if err := t.loadTables(); err != nil {
		return nil, err
	}
	if err := t.loadFunctions(); err != nil {
		return nil, err
	}
	return t, nil
}

func (t *Template) loadParameters(overrides map[string]string) error {
	params, _ := t.raw["Parameters"].(map[string]any)
	for name, p := range params {
		pm, _ := p.(map[string]any)
		if d, ok := pm["Default"]; ok {
			t.Parameters[name] = scalarString(d)
		} else {
			t.Parameters[name] = ""
		}
	}
	var unknown []string
	for k, v := range overrides {
		if _, ok := params[k]; !ok {
			unknown = append(unknown, k)
			continue
		}
		t.Parameters[k] = v
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return fmt.Errorf("parameter overrides name parameters the template does not declare: %s", strings.Join(unknown, ", "))
	}
	names := make([]string, 0, len(params))
	for name := range params {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		pm, _ := params[name].(map[string]any)
		if err := checkParameter(name, t.Parameters[name], pm); err != nil {
			return err
		}
	}
	return nil
}

// checkParameter applies the constraints CloudFormation checks on deploy
// (MinValue/MaxValue, Min/MaxLength, AllowedValues, AllowedPattern) to a
// non-empty value, so a bad override fails at start-up with the template's
// ConstraintDescription instead of as a function that will not start.
func checkParameter(name, v string, p map[string]any) error {
	if v == "" {
		return nil
	}
	bad := func(why string) error {
		msg := fmt.Sprintf("parameter %s=%q %s", name, v, why)
		if cd := scalarString(p["ConstraintDescription"]); cd != "" {
			msg += " (" + strings.TrimSpace(cd) + ")"
		}
		return errors.New(msg)
	}
	if scalarString(p["Type"]) == "Number" {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return bad("is not a number")
		}
		if mv := scalarString(p["MinValue"]); mv != "" {
			if m, err := strconv.ParseFloat(mv, 64); err == nil && f < m {
				return bad("is below MinValue " + mv)
			}
		}
		if mv := scalarString(p["MaxValue"]); mv != "" {
			if m, err := strconv.ParseFloat(mv, 64); err == nil && f > m {
				return bad("is above MaxValue " + mv)
			}
		}
	}
	if ml := scalarString(p["MinLength"]); ml != "" {
		if m, err := strconv.Atoi(ml); err == nil && len(v) < m {
			return bad("is shorter than MinLength " + ml)
		}
	}
	if ml := scalarString(p["MaxLength"]); ml != "" {
		if m, err := strconv.Atoi(ml); err == nil && len(v) > m {
			return bad("is longer than MaxLength " + ml)
		}
	}
	if av, ok := p["AllowedValues"].([]any); ok && len(av) > 0 {
		found := false
		for _, a := range av {
			if scalarString(a) == v {
				found = true
			}
		}
		if !found {
			return bad("is not one of AllowedValues " + scalarString(av))
		}
	}
	if ap := scalarString(p["AllowedPattern"]); ap != "" {
		re, err := regexp.Compile("^(?:" + ap + ")$")
		if err == nil && !re.MatchString(v) {
			return bad("does not match AllowedPattern " + ap)
		}
	}
	return nil
}

func scalarString(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case bool:
		return strconv.FormatBool(x)
	case int:
		return strconv.Itoa(x)
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case []any:
		parts := make([]string, len(x))
		for i, e := range x {
			parts[i] = scalarString(e)
		}
		return strings.Join(parts, ",")
	}
	return fmt.Sprint(v)
}

func (t *Template) evalConditions() error {
	t.conditions = map[string]bool{}
	conds, _ := t.raw["Conditions"].(map[string]any)
	visiting := map[string]bool{}
	var eval func(name string) (bool, error)
	eval = func(name string) (bool, error) {
		if v, ok := t.conditions[name]; ok {
			return v, nil
		}
		if visiting[name] {
			return false, fmt.Errorf("condition %s refers to itself", name)
		}
		c, ok := conds[name]
		if !ok {
			return false, fmt.Errorf("unknown condition %s", name)
		}
		visiting[name] = true
		v, err := t.resolve(c, eval)
		if err != nil {
			return false, fmt.Errorf("condition %s: %w", name, err)
		}
		b, _ := v.(bool)
		t.conditions[name] = b
		return b, nil
	}
	for name := range conds {
		if _, err := eval(name); err != nil {
			return err
		}
	}
	return nil
}

// physicalName is the local name a Ref to a resource resolves to.
func (t *Template) physicalName(id string) string {
	r := t.resources[id]
	props, _ := r["Properties"].(map[string]any)
	if tn, ok := props["TableName"]; ok {
		if v, err := t.resolve(tn, nil); err == nil {
			if s, ok := v.(string); ok && s != "" {
				return s
			}
		}
	}
	return id
}

func (t *Template) ref(name string) (any, error) {
	switch name {
	case "AWS::Region":
		return t.Region, nil
	case "AWS::AccountId":
		return fakeAccount, nil
	case "AWS::StackName":
		return stackName, nil
	case "AWS::StackId":
		return "arn:aws:cloudformation:" + t.Region + ":" + fakeAccount + ":stack/" + stackName + "/local", nil
	case "AWS::Partition":
		return "aws", nil
	case "AWS::URLSuffix":
		return "amazonaws.com", nil
	case "AWS::NoValue":
		return noValue{}, nil
	case "AWS::NotificationARNs":
		return []any{}, nil
	}
	if v, ok := t.Parameters[name]; ok {
		params, _ := t.raw["Parameters"].(map[string]any)
		pm, _ := params[name].(map[string]any)
		if ty, _ := pm["Type"].(string); strings.HasPrefix(ty, "List<") || ty == "CommaDelimitedList" {
			var l []any
			if v != "" {
				for _, p := range strings.Split(v, ",") {
					l = append(l, strings.TrimSpace(p))
				}
			}
			return l, nil
		}
		return v, nil
	}
	if _, ok := t.resources[name]; ok {
		return t.physicalName(name), nil
	}
	return nil, fmt.Errorf("!Ref %s: no such parameter or resource", name)
}

func (t *Template) getAtt(id, attr string) (any, error) {
	r, ok := t.resources[id]
	if !ok {
		return nil, fmt.Errorf("!GetAtt %s.%s: no such resource", id, attr)
	}
	ty, _ := r["Type"].(string)
	name := t.physicalName(id)
	switch {
	case (ty == "AWS::DynamoDB::Table" || ty == "AWS::Serverless::SimpleTable") && attr == "Arn":
		return "arn:aws:dynamodb:" + t.Region + ":" + fakeAccount + ":table/" + name, nil
	case (ty == "AWS::DynamoDB::Table") && attr == "StreamArn":
		return "arn:aws:dynamodb:" + t.Region + ":" + fakeAccount + ":table/" + name + "/stream/local", nil
	case ty == "AWS::Serverless::Function" && attr == "Arn":
		return "arn:aws:lambda:" + t.Region + ":" + fakeAccount + ":function:" + name, nil
	}
	return "local:" + id + "." + attr, nil
}

// noValue marks AWS::NoValue; the enclosing key or list element is removed.
type noValue struct{}

var subVar = regexp.MustCompile(`\$\{([^}!]+)\}`)

// resolve evaluates intrinsic functions in v. cond evaluates a named
// condition (nil: use the already evaluated t.conditions).
func (t *Template) resolve(v any, cond func(string) (bool, error)) (any, error) {
	if cond == nil {
		cond = func(name string) (bool, error) {
			b, ok := t.conditions[name]
			if !ok {
				return false, fmt.Errorf("unknown condition %s", name)
			}
			return b, nil
		}
	}
	switch x := v.(type) {
	case map[string]any:
		if len(x) == 1 {
			for k, arg := range x {
				if k == "Ref" || k == "Condition" || strings.HasPrefix(k, "Fn::") {
					return t.intrinsic(k, arg, cond)
				}
			}
		}
		out := make(map[string]any, len(x))
		for k, e := range x {
			r, err := t.resolve(e, cond)
			if err != nil {
				return nil, err
			}
			if _, skip := r.(noValue); skip {
				continue
			}
			out[k] = r
		}
		return out, nil
	case []any:
		out := make([]any, 0, len(x))
		for _, e := range x {
			r, err := t.resolve(e, cond)
			if err != nil {
				return nil, err
			}
			if _, skip := r.(noValue); skip {
				continue
			}
			out = append(out, r)
		}
		return out, nil
	}
	return v, nil
}

func (t *Template) intrinsic(name string, arg any, cond func(string) (bool, error)) (any, error) {
	// Fn::If and Condition must not resolve the branch not taken.
	if name == "Fn::If" {
		l, ok := arg.([]any)
		if !ok || len(l) != 3 {
			return nil, errors.New("Fn::If needs [condition, then, else]")
		}
		cn, _ := l[0].(string)
		b, err := cond(cn)
		if err != nil {
			return nil, err
		}
		if b {
			return t.resolve(l[1], cond)
		}
		return t.resolve(l[2], cond)
	}
	if name == "Condition" {
		cn, _ := arg.(string)
		return cond(cn)
	}
	a, err := t.resolve(arg, cond)
	if err != nil {
		return nil, err
	}
	switch name {
	case "Ref":
		s, ok := a.(string)
		if !ok {
			return nil, errors.New("ref needs a name")
		}
		return t.ref(s)
	case "Fn::GetAtt":
		l, ok := a.([]any)
		if !ok || len(l) != 2 {
			return nil, errors.New("Fn::GetAtt needs Resource.Attribute")
		}
		return t.getAtt(scalarString(l[0]), scalarString(l[1]))
	case "Fn::Sub":
		var src string
		vars := map[string]any{}
		switch y := a.(type) {
		case string:
			src = y
		case []any:
			if len(y) != 2 {
				return nil, errors.New("Fn::Sub needs a string or [string, map]")
			}
			src, _ = y[0].(string)
			vars, _ = y[1].(map[string]any)
		default:
			return nil, errors.New("Fn::Sub needs a string or [string, map]")
		}
		var subErr error
		out := subVar.ReplaceAllStringFunc(src, func(m string) string {
			key := strings.TrimSpace(m[2 : len(m)-1])
			if v, ok := vars[key]; ok {
				return scalarString(v)
			}
			var r any
			var err error
			if i := strings.Index(key, "."); i > 0 && !strings.HasPrefix(key, "AWS::") {
				r, err = t.getAtt(key[:i], key[i+1:])
			} else {
				r, err = t.ref(key)
			}
			if err != nil {
				subErr = err
				return m
			}
			return scalarString(r)
		})
		out = strings.ReplaceAll(out, "${!", "${")
		return out, subErr
	case "Fn::Join":
		l, ok := a.([]any)
		if !ok || len(l) != 2 {
			return nil, errors.New("Fn::Join needs [delimiter, list]")
		}
		parts, _ := l[1].([]any)
		s := make([]string, len(parts))
		for i, p := range parts {
			s[i] = scalarString(p)
		}
		return strings.Join(s, scalarString(l[0])), nil
	case "Fn::Split":
		l, ok := a.([]any)
		if !ok || len(l) != 2 {
			return nil, errors.New("Fn::Split needs [delimiter, string]")
		}
		var out []any
		for _, p := range strings.Split(scalarString(l[1]), scalarString(l[0])) {
			out = append(out, p)
		}
		return out, nil
	case "Fn::Select":
		l, ok := a.([]any)
		if !ok || len(l) != 2 {
			return nil, errors.New("Fn::Select needs [index, list]")
		}
		i, err := strconv.Atoi(scalarString(l[0]))
		items, _ := l[1].([]any)
		if err != nil || i < 0 || i >= len(items) {
			return nil, errors.New("Fn::Select index out of range")
		}
		return items[i], nil
	case "Fn::Base64":
		return base64.StdEncoding.EncodeToString([]byte(scalarString(a))), nil
	case "Fn::Equals":
		l, ok := a.([]any)
		if !ok || len(l) != 2 {
			return nil, errors.New("Fn::Equals needs two values")
		}
		return scalarString(l[0]) == scalarString(l[1]), nil
	case "Fn::Not":
		l, ok := a.([]any)
		if !ok || len(l) != 1 {
			return nil, errors.New("Fn::Not needs one condition")
		}
		b, _ := l[0].(bool)
		return !b, nil
	case "Fn::And", "Fn::Or":
		l, _ := a.([]any)
		res := name == "Fn::And"
		for _, e := range l {
			b, _ := e.(bool)
			if name == "Fn::And" {
				res = res && b
			} else {
				res = res || b
			}
		}
		return res, nil
	case "Fn::FindInMap":
		l, ok := a.([]any)
		if !ok || len(l) != 3 {
			return nil, errors.New("Fn::FindInMap needs [map, key, key]")
		}
		maps, _ := t.raw["Mappings"].(map[string]any)
		m1, _ := maps[scalarString(l[0])].(map[string]any)
		m2, _ := m1[scalarString(l[1])].(map[string]any)
		v, ok := m2[scalarString(l[2])]
		if !ok {
			return nil, fmt.Errorf("Fn::FindInMap %v: not found", l)
		}
		return t.resolve(v, cond)
	case "Fn::GetAZs":
		return []any{t.Region + "a", t.Region + "b", t.Region + "c"}, nil
	case "Fn::ImportValue":
		return "local-import:" + scalarString(a), nil
	}
	return nil, fmt.Errorf("intrinsic %s is not supported locally", name)
}

// mergeGlobals merges SAM Globals into resource properties: maps are merged
// recursively, lists are appended (globals first) and scalars or intrinsics
// set on the resource win (samtemplate.MergeGlobals).
func mergeGlobals(global, local any) any { return samtemplate.MergeGlobals(global, local) }

// resourceIncluded reports whether a resource's Condition (if any) holds.
func (t *Template) resourceIncluded(r map[string]any) bool {
	c, ok := r["Condition"].(string)
	if !ok {
		return true
	}
	return t.conditions[c]
}

func (t *Template) sortedIDs(types ...string) []string {
	var ids []string
	for id, r := range t.resources {
		ty, _ := r["Type"].(string)
		for _, want := range types {
			if ty == want && t.resourceIncluded(r) {
				ids = append(ids, id)
			}
		}
	}
	sort.Strings(ids)
	return ids
}

func (t *Template) resolvedProps(id string, globalsKey string) (map[string]any, error) {
	r := t.resources[id]
	props, _ := r["Properties"].(map[string]any)
	var merged any = props
	if globalsKey != "" {
		globals, _ := t.raw["Globals"].(map[string]any)
		if g, ok := globals[globalsKey]; ok {
			merged = mergeGlobals(g, props)
		}
	}
	if merged == nil {
		merged = map[string]any{}
	}
	v, err := t.resolve(merged, nil)
	if err != nil {
		return nil, fmt.Errorf("resource %s: %w", id, err)
	}
	m, _ := v.(map[string]any)
	if m == nil {
		m = map[string]any{}
	}
	return m, nil
}

func (t *Template) loadTables() error {
	for _, id := range t.sortedIDs("AWS::DynamoDB::Table", "AWS::Serverless::SimpleTable") {
		ty, _ := t.resources[id]["Type"].(string)
		gk := ""
		if ty == "AWS::Serverless::SimpleTable" {
			gk = "SimpleTable"
		}
		p, err := t.resolvedProps(id, gk)
		if err != nil {
			return err
		}
		tb := &Table{LogicalID: id, Name: t.physicalName(id)}
		if ty == "AWS::Serverless::SimpleTable" {
			name, typ := "id", "S"
			if pk, ok := p["PrimaryKey"].(map[string]any); ok {
				if n := scalarString(pk["Name"]); n != "" {
					name = n
				}
				switch scalarString(pk["Type"]) {
				case "Number":
					typ = "N"
				case "Binary":
					typ = "B"
				}
			}
			tb.AttributeDefinitions = []AttributeDefinition{{name, typ}}
			tb.KeySchema = []KeySchemaElement{{name, "HASH"}}
		} else {
			for _, a := range listOfMaps(p["AttributeDefinitions"]) {
				tb.AttributeDefinitions = append(tb.AttributeDefinitions, AttributeDefinition{scalarString(a["AttributeName"]), scalarString(a["AttributeType"])})
			}
			tb.KeySchema = keySchema(p["KeySchema"])
			for _, key := range []string{"GlobalSecondaryIndexes", "LocalSecondaryIndexes"} {
				for _, ix := range listOfMaps(p[key]) {
					si := SecondaryIndex{IndexName: scalarString(ix["IndexName"]), KeySchema: keySchema(ix["KeySchema"]), ProjectionType: "ALL"}
					if pr, ok := ix["Projection"].(map[string]any); ok {
						if pt := scalarString(pr["ProjectionType"]); pt != "" {
							si.ProjectionType = pt
						}
						if nk, ok := pr["NonKeyAttributes"].([]any); ok {
							for _, a := range nk {
								si.NonKeyAttributes = append(si.NonKeyAttributes, scalarString(a))
							}
						}
					}
					if key == "GlobalSecondaryIndexes" {
						tb.GlobalSecondaryIndexes = append(tb.GlobalSecondaryIndexes, si)
					} else {
						tb.LocalSecondaryIndexes = append(tb.LocalSecondaryIndexes, si)
					}
				}
			}
			if ttl, ok := p["TimeToLiveSpecification"].(map[string]any); ok {
				if en, _ := ttl["Enabled"].(bool); en || scalarString(ttl["Enabled"]) == "true" {
					tb.TTLAttribute = scalarString(ttl["AttributeName"])
				}
			}
		}
		if len(tb.KeySchema) == 0 || len(tb.AttributeDefinitions) == 0 {
			return fmt.Errorf("table %s: KeySchema and AttributeDefinitions are required", id)
		}
		t.Tables = append(t.Tables, tb)
	}
	return nil
}

func listOfMaps(v any) []map[string]any {
	l, _ := v.([]any)
	var out []map[string]any
	for _, e := range l {
		if m, ok := e.(map[string]any); ok {
			out = append(out, m)
		}
	}
	return out
}

func keySchema(v any) []KeySchemaElement {
	var out []KeySchemaElement
	for _, k := range listOfMaps(v) {
		out = append(out, KeySchemaElement{scalarString(k["AttributeName"]), scalarString(k["KeyType"])})
	}
	return out
}

func (t *Template) loadFunctions() error {
	// Implicit HttpApi (events without ApiId) takes its Auth from
	// Globals.HttpApi.
	apiAuth := map[string]map[string]any{}
	globals, _ := t.raw["Globals"].(map[string]any)
	if g, ok := globals["HttpApi"].(map[string]any); ok {
		v, err := t.resolve(g, nil)
		if err != nil {
			return fmt.Errorf("Globals.HttpApi: %w", err)
		}
		gm, _ := v.(map[string]any)
		apiAuth[""], _ = gm["Auth"].(map[string]any)
	}
	for _, id := range t.sortedIDs("AWS::Serverless::HttpApi") {
		p, err := t.resolvedProps(id, "HttpApi")
		if err != nil {
			return err
		}
		apiAuth[id], _ = p["Auth"].(map[string]any)
	}
	for _, id := range t.sortedIDs("AWS::Serverless::Function") {
		p, err := t.resolvedProps(id, "Function")
		if err != nil {
			return err
		}
		f := &Function{LogicalID: id, CodeURI: scalarString(p["CodeUri"]), Handler: scalarString(p["Handler"]), Env: map[string]string{}}
		if f.CodeURI == "" {
			return fmt.Errorf("function %s: CodeUri is required locally (inline code is not supported)", id)
		}
		f.Timeout = 3 * time.Second
		if s := scalarString(p["Timeout"]); s != "" {
			n, err := strconv.Atoi(s)
			if err != nil || n <= 0 {
				return fmt.Errorf("function %s: bad Timeout %q", id, s)
			}
			f.Timeout = time.Duration(n) * time.Second
		}
		f.MemorySize = 128
		if s := scalarString(p["MemorySize"]); s != "" {
			n, err := strconv.Atoi(s)
			if err != nil || n <= 0 {
				return fmt.Errorf("function %s: bad MemorySize %q", id, s)
			}
			f.MemorySize = n
		}
		if env, ok := p["Environment"].(map[string]any); ok {
			vars, _ := env["Variables"].(map[string]any)
			for k, v := range vars {
				f.Env[k] = scalarString(v)
			}
		}
		evs, _ := p["Events"].(map[string]any)
		names := make([]string, 0, len(evs))
		for n := range evs {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			em, _ := evs[n].(map[string]any)
			ty := scalarString(em["Type"])
			if ty != "HttpApi" && ty != "Api" {
				continue
			}
			ep, _ := em["Properties"].(map[string]any)
			ev := Event{Name: n, Type: ty, Method: strings.ToUpper(scalarString(ep["Method"])), Path: scalarString(ep["Path"])}
			if ty == "HttpApi" {
				ev.ApiID = scalarString(ep["ApiId"])
				if ev.Method == "" {
					ev.Method = "ANY"
				}
				if ev.Path == "" {
					ev.Path = "$default"
				}
			} else {
				ev.ApiID = scalarString(ep["RestApiId"])
				if ev.Method == "" || ev.Path == "" {
					return fmt.Errorf("function %s event %s: Api events need Method and Path", id, n)
				}
			}
			if ev.Method == "X-AMAZON-APIGATEWAY-ANY-METHOD" || ev.Method == "*" {
				ev.Method = "ANY"
			}
			if ty == "HttpApi" {
				auth, err := routeAuthorizer(apiAuth[ev.ApiID], ep)
				if err != nil {
					return fmt.Errorf("function %s event %s: %w", id, n, err)
				}
				ev.Authorizer = auth
				if ra, ok := ep["Auth"].(map[string]any); ok {
					for _, s := range toList(ra["AuthorizationScopes"]) {
						ev.Scopes = append(ev.Scopes, scalarString(s))
					}
				}
			}
			f.Events = append(f.Events, ev)
		}
		t.Functions = append(t.Functions, f)
	}
	return nil
}

func toList(v any) []any {
	switch x := v.(type) {
	case []any:
		return x
	case nil:
		return nil
	}
	return []any{v}
}

// routeAuthorizer picks the JWT authorizer of a route: the event's
// Auth.Authorizer, else the API's DefaultAuthorizer; "NONE" disables it.
func routeAuthorizer(apiAuth map[string]any, eventProps map[string]any) (*JWTConfig, error) {
	name := scalarString(apiAuth["DefaultAuthorizer"])
	if ra, ok := eventProps["Auth"].(map[string]any); ok {
		if n := scalarString(ra["Authorizer"]); n != "" {
			name = n
		}
	}
	if name == "" || name == "NONE" || name == "AWS_IAM" {
		return nil, nil
	}
	auths, _ := apiAuth["Authorizers"].(map[string]any)
	a, ok := auths[name].(map[string]any)
	if !ok {
		return nil, fmt.Errorf("authorizer %s is not defined in the API's Auth.Authorizers", name)
	}
	jc, ok := a["JwtConfiguration"].(map[string]any)
	if !ok {
		return nil, fmt.Errorf("authorizer %s: only JWT authorizers (JwtConfiguration) are emulated locally", name)
	}
	cfg := &JWTConfig{Name: name, IdentitySource: "$request.header.Authorization"}
	if is := toList(a["IdentitySource"]); len(is) > 0 {
		cfg.IdentitySource = scalarString(is[0])
	}
	cfg.Issuer = scalarString(firstOf(jc, "issuer", "Issuer"))
	for _, au := range toList(firstOf(jc, "audience", "Audience")) {
		if s := scalarString(au); s != "" {
			cfg.Audience = append(cfg.Audience, s)
		}
	}
	return cfg, nil
}

func firstOf(m map[string]any, keys ...string) any {
	for _, k := range keys {
		if v, ok := m[k]; ok {
			return v
		}
	}
	return nil
}
