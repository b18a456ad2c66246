// Package template resolves a SAM template (template.yaml) for local
// serving. The model (resources, Globals merge, functions and their
// events, authorizers, tables, queues) is internal/samtemplate's; here the
// parameters get their values (defaults, overrides, constraints), the
// conditions are evaluated, and the intrinsic functions the template uses
// are resolved with local physical names (a table is named by its
// TableName, else its logical id; see Template.TableName) in the fake
// account FakeAccount. It does not serve anything: the gateway, the
// Lambda runtime and the event sources of local/devstack read the
// resolved Template.
//
// goformation was evaluated and left out: its typed model drops every
// intrinsic it cannot resolve (!Ref to a resource, !GetAtt), it does not
// merge Globals, a Number parameter in Environment.Variables fails to
// decode, and its YAML tag handlers are package-global state (a data race
// when parallel tests load templates).
package template

import (
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/acme/idemcheckout/internal/samtemplate"
)

// Template is a SAM template resolved for local serving: Model is the
// typed model read from the resolved values, so every field is a literal.
type Template struct {
	Parameters map[string]string // resolved parameter values (defaults + overrides)
	Region     string
	Model      *samtemplate.Template

	src        *samtemplate.Template // as written
	conditions map[string]bool
}

// Functions returns the functions, sorted by logical id.
func (t *Template) Functions() []samtemplate.Function { return t.Model.Functions() }

// Tables returns the tables, sorted by logical id.
func (t *Template) Tables() []samtemplate.Table { return t.Model.Tables() }

// Function returns the function with logical id id.
func (t *Template) Function(id string) (*samtemplate.Function, bool) {
	f, ok := t.Model.Function(id)
	return &f, ok
}

// TableName is the local physical name of a table: its TableName, else
// its logical id ("" when there is no such table).
func (t *Template) TableName(id string) string {
	tb, ok := t.Model.Table(id)
	if !ok {
		return ""
	}
	if tb.Name != "" {
		return tb.Name
	}
	return tb.ID
}

// The local stack's fake AWS account id and CloudFormation stack name, in
// every ARN and name it makes up.
const (
	FakeAccount = "123456789012"
	StackName   = "local"
)

// Load reads and resolves a SAM template file.
func Load(path string, overrides map[string]string, region string) (*Template, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read template: %w", err)
	}
	t, err := Parse(data, overrides, region)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return t, nil
}

// Parse resolves a SAM template given as YAML (or JSON) bytes.
func Parse(data []byte, overrides map[string]string, region string) (*Template, error) {
	if region == "" {
		region = "us-east-1"
	}
	src, err := samtemplate.Parse(data)
	if err != nil {
		return nil, err
	}
	if len(src.Resources) == 0 {
		return nil, errors.New("template has no Resources")
	}
	t := &Template{src: src, Region: region, Parameters: map[string]string{}}
	if err := t.loadParameters(overrides); err != nil {
		return nil, err
	}
	if err := t.evalConditions(); err != nil {
		return nil, err
	}
	t.Model, err = src.Resolve(t.resourceIncluded, func(where string, props map[string]any) (map[string]any, error) {
		v, err := t.resolve(props, nil)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
		m, _ := v.(map[string]any)
		if m == nil {
			m = map[string]any{}
		}
		return m, nil
	})
	if err != nil {
		return nil, err
	}
	for _, f := range t.Model.Functions() {
		if f.CodeURI == "" {
			return nil, fmt.Errorf("function %s: CodeUri is required locally (inline code is not supported)", f.ID)
		}
	}
	for _, tb := range t.Model.Tables() {
		if len(tb.KeySchema) == 0 || len(tb.AttributeDefinitions) == 0 {
			return nil, fmt.Errorf("table %s: KeySchema and AttributeDefinitions are required", tb.ID)
		}
	}
	return t, nil
}

func (t *Template) loadParameters(overrides map[string]string) error {
	params, _ := t.src.Raw["Parameters"].(map[string]any)
	for name, p := range params {
		pm, _ := p.(map[string]any)
		if d, ok := pm["Default"]; ok {
			t.Parameters[name] = samtemplate.String(d)
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
		if cd := samtemplate.String(p["ConstraintDescription"]); cd != "" {
			msg += " (" + strings.TrimSpace(cd) + ")"
		}
		return errors.New(msg)
	}
	if samtemplate.String(p["Type"]) == "Number" {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return bad("is not a number")
		}
		if mv := samtemplate.String(p["MinValue"]); mv != "" {
			if m, err := strconv.ParseFloat(mv, 64); err == nil && f < m {
				return bad("is below MinValue " + mv)
			}
		}
		if mv := samtemplate.String(p["MaxValue"]); mv != "" {
			if m, err := strconv.ParseFloat(mv, 64); err == nil && f > m {
				return bad("is above MaxValue " + mv)
			}
		}
	}
	if ml := samtemplate.String(p["MinLength"]); ml != "" {
		if m, err := strconv.Atoi(ml); err == nil && len(v) < m {
			return bad("is shorter than MinLength " + ml)
		}
	}
	if ml := samtemplate.String(p["MaxLength"]); ml != "" {
		if m, err := strconv.Atoi(ml); err == nil && len(v) > m {
			return bad("is longer than MaxLength " + ml)
		}
	}
	if av, ok := p["AllowedValues"].([]any); ok && len(av) > 0 {
		found := false
		for _, a := range av {
			if samtemplate.String(a) == v {
				found = true
			}
		}
		if !found {
			return bad("is not one of AllowedValues " + samtemplate.String(av))
		}
	}
	if ap := samtemplate.String(p["AllowedPattern"]); ap != "" {
		re, err := regexp.Compile("^(?:" + ap + ")$")
		if err == nil && !re.MatchString(v) {
			return bad("does not match AllowedPattern " + ap)
		}
	}
	return nil
}

func (t *Template) evalConditions() error {
	t.conditions = map[string]bool{}
	conds, _ := t.src.Raw["Conditions"].(map[string]any)
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

// physicalName is the local name a Ref to a resource resolves to: a
// table's or queue's own name when the template gives one, else the
// logical id (with ".fifo" for a FIFO queue, which SQS requires).
func (t *Template) physicalName(id string) string {
	r := t.src.Resources[id]
	for _, k := range []string{"TableName", "QueueName"} {
		if tn, ok := r.Properties[k]; ok {
			if v, err := t.resolve(tn, nil); err == nil {
				if s := samtemplate.String(v); s != "" {
					return s
				}
			}
		}
	}
	if fifo, _ := t.resolve(r.Properties["FifoQueue"], nil); r.Type == samtemplate.TypeQueue && samtemplate.String(fifo) == "true" {
		return id + ".fifo"
	}
	return id
}

func (t *Template) ref(name string) (any, error) {
	switch name {
	case "AWS::Region":
		return t.Region, nil
	case "AWS::AccountId":
		return FakeAccount, nil
	case "AWS::StackName":
		return StackName, nil
	case "AWS::StackId":
		return "arn:aws:cloudformation:" + t.Region + ":" + FakeAccount + ":stack/" + StackName + "/local", nil
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
		params, _ := t.src.Raw["Parameters"].(map[string]any)
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
	if r, ok := t.src.Resources[name]; ok {
		v := t.physicalName(name)
		if r.Type == samtemplate.TypeQueue { // a queue's Ref is its URL
			v = "https://sqs." + t.Region + ".amazonaws.com/" + FakeAccount + "/" + v
		}
		return samtemplate.Resolved{Value: v, Resource: name}, nil
	}
	return nil, fmt.Errorf("!Ref %s: no such parameter or resource", name)
}

func (t *Template) getAtt(id, attr string) (any, error) {
	r, ok := t.src.Resources[id]
	if !ok {
		return nil, fmt.Errorf("!GetAtt %s.%s: no such resource", id, attr)
	}
	name := t.physicalName(id)
	v := "local:" + id + "." + attr
	switch {
	case (r.Type == samtemplate.TypeTable || r.Type == samtemplate.TypeSimpleTable) && attr == "Arn":
		v = "arn:aws:dynamodb:" + t.Region + ":" + FakeAccount + ":table/" + name
	case r.Type == samtemplate.TypeTable && attr == "StreamArn":
		v = "arn:aws:dynamodb:" + t.Region + ":" + FakeAccount + ":table/" + name + "/stream/local"
	case r.Type == samtemplate.TypeFunction && attr == "Arn":
		v = "arn:aws:lambda:" + t.Region + ":" + FakeAccount + ":function:" + name
	case r.Type == samtemplate.TypeQueue && attr == "Arn":
		v = "arn:aws:sqs:" + t.Region + ":" + FakeAccount + ":" + name
	case r.Type == samtemplate.TypeQueue && attr == "QueueName":
		v = name
	}
	return samtemplate.Resolved{Value: v, Resource: id, Attribute: attr}, nil
}

// noValue marks AWS::NoValue; the enclosing key or list element is removed.
type noValue struct{}

var subVar = regexp.MustCompile(`\$\{([^}!]+)\}`)

// resolve evaluates intrinsic functions in v. cond evaluates a named
// condition (nil: use the already evaluated t.conditions).
func (t *Template) resolve(v any, cond cond) (any, error) {
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
				if k == "Ref" || strings.HasPrefix(k, "Fn::") {
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

// cond evaluates a named condition.
type cond func(name string) (bool, error)

// intrinsic evaluates the intrinsic function name with argument arg.
func (t *Template) intrinsic(name string, arg any, cond cond) (any, error) {
	// Fn::If and Condition must not resolve the branch not taken.
	if name == "Fn::If" {
		return t.fnIf(arg, cond)
	}
	a, err := t.resolve(arg, cond)
	if err != nil {
		return nil, err
	}
	switch name {
	case "Ref":
		s, ok := a.(string)
		if !ok {
			return nil, errors.New("a Ref needs a name")
		}
		return t.ref(s)
	case "Fn::GetAtt":
		l, err := args(a, 2, "Fn::GetAtt needs Resource.Attribute")
		if err != nil {
			return nil, err
		}
		return t.getAtt(samtemplate.String(l[0]), samtemplate.String(l[1]))
	case "Fn::Sub":
		return t.fnSub(a)
	case "Fn::Join":
		return fnJoin(a)
	case "Fn::Split":
		return fnSplit(a)
	case "Fn::Select":
		return fnSelect(a)
	case "Fn::Base64":
		return base64.StdEncoding.EncodeToString([]byte(samtemplate.String(a))), nil
	case "Fn::Equals":
		l, err := args(a, 2, "Fn::Equals needs two values")
		if err != nil {
			return nil, err
		}
		return samtemplate.String(l[0]) == samtemplate.String(l[1]), nil
	case "Fn::FindInMap":
		return t.fnFindInMap(a, cond)
	}
	return nil, fmt.Errorf("intrinsic %s is not supported locally", name)
}

// args is a resolved argument that must be a list of n values; usage
// says what the intrinsic needs.
func args(a any, n int, usage string) ([]any, error) {
	l, ok := a.([]any)
	if !ok || len(l) != n {
		return nil, errors.New(usage)
	}
	return l, nil
}

// fnIf resolves the branch of [condition, then, else] the condition takes.
func (t *Template) fnIf(arg any, cond cond) (any, error) {
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

// fnSub substitutes ${Name}, ${Resource.Attribute} and the variables of
// the [string, map] form in a resolved Fn::Sub argument.
func (t *Template) fnSub(a any) (any, error) {
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
			return samtemplate.String(v)
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
		return samtemplate.String(r)
	})
	out = strings.ReplaceAll(out, "${!", "${")
	return out, subErr
}

// fnJoin joins a resolved [delimiter, list].
func fnJoin(a any) (any, error) {
	l, err := args(a, 2, "Fn::Join needs [delimiter, list]")
	if err != nil {
		return nil, err
	}
	parts, _ := l[1].([]any)
	s := make([]string, len(parts))
	for i, p := range parts {
		s[i] = samtemplate.String(p)
	}
	return strings.Join(s, samtemplate.String(l[0])), nil
}

// fnSplit splits a resolved [delimiter, string].
func fnSplit(a any) (any, error) {
	l, err := args(a, 2, "Fn::Split needs [delimiter, string]")
	if err != nil {
		return nil, err
	}
	delim, ok := l[0].(string)
	if !ok || delim == "" {
		return nil, errors.New("Fn::Split needs a non-empty delimiter")
	}
	var out []any
	for _, p := range strings.Split(samtemplate.String(l[1]), delim) {
		out = append(out, p)
	}
	return out, nil
}

// fnSelect picks an element of a resolved [index, list].
func fnSelect(a any) (any, error) {
	l, err := args(a, 2, "Fn::Select needs [index, list]")
	if err != nil {
		return nil, err
	}
	i, err := strconv.Atoi(samtemplate.String(l[0]))
	items, _ := l[1].([]any)
	if err != nil || i < 0 || i >= len(items) {
		return nil, errors.New("Fn::Select index out of range")
	}
	return items[i], nil
}

// fnFindInMap looks up a resolved [map, key, key] in the Mappings.
func (t *Template) fnFindInMap(a any, cond cond) (any, error) {
	l, err := args(a, 3, "Fn::FindInMap needs [map, key, key]")
	if err != nil {
		return nil, err
	}
	maps, _ := t.src.Raw["Mappings"].(map[string]any)
	m1, _ := maps[samtemplate.String(l[0])].(map[string]any)
	m2, _ := m1[samtemplate.String(l[1])].(map[string]any)
	v, ok := m2[samtemplate.String(l[2])]
	if !ok {
		return nil, fmt.Errorf("Fn::FindInMap %v: not found", l)
	}
	return t.resolve(v, cond)
}

// resourceIncluded reports whether a resource's Condition (if any) holds.
func (t *Template) resourceIncluded(r samtemplate.Resource) bool {
	return r.Condition == "" || t.conditions[r.Condition]
}
