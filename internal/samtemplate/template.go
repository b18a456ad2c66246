// Package samtemplate is the one typed model of the SAM template
// (template.yaml at the repository root): resources, the Globals merge,
// functions with their events (HttpApi, Api, Schedule, ScheduleV2, DynamoDB
// and SQS event sources, and AWS::Lambda::EventSourceMapping resources read
// as events of their function), API authorizers and CORS, tables (keys, indexes,
// TTL, streams) and queues.
//
// Two consumers read it. The checks in this package (Check) make the
// checks cfn-lint cannot: that each function's CodeUri holds a Go main
// package, that the routes are well formed and authorized, that the
// idempotency table matches the library, and that each function's
// environment and IAM policies name the same tables, and that an API's
// CORS is one API Gateway accepts and a browser can use. local/devstack serves
// the template: it resolves the intrinsic functions with local physical
// names (Template.Resolve) and reads the same model from the result.
package samtemplate

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"
)

// Resource types the checks know about.
const (
	TypeFunction    = "AWS::Serverless::Function"
	TypeHTTPAPI     = "AWS::Serverless::HttpApi"
	TypeAPI         = "AWS::Serverless::Api"
	TypeAPIGWv2API  = "AWS::ApiGatewayV2::Api"
	TypeTable       = "AWS::DynamoDB::Table"
	TypeSimpleTable = "AWS::Serverless::SimpleTable"
	TypeQueue       = "AWS::SQS::Queue"
	// TypeEventSourceMapping is read as an event of the function it names
	// (see Event.Mapping).
	TypeEventSourceMapping = "AWS::Lambda::EventSourceMapping"
)

// Template is a parsed CloudFormation/SAM template. Short-form intrinsic
// functions are expanded to their long form: `!Ref X` becomes
// map[string]any{"Ref": "X"}, `!GetAtt X.Arn` becomes
// map[string]any{"Fn::GetAtt": []any{"X", "Arn"}}, `!Sub s` becomes
// map[string]any{"Fn::Sub": s}, and so on.
//
// The typed model (Functions, Tables, Queues, API) is built once, by Parse
// or Resolve.
type Template struct {
	Raw       map[string]any
	Globals   map[string]any
	Resources map[string]Resource

	merged    bool // Globals already merged into Resources (Resolve)
	functions []Function
	tables    []Table
	queues    []Queue
	apis      map[string]*HTTPAPI
}

// Resource is one entry under Resources.
type Resource struct {
	ID         string
	Type       string
	Condition  string // "" when the resource has none
	Properties map[string]any
	Metadata   map[string]any
}

// ParseFile reads and parses a template file.
func ParseFile(path string) (*Template, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	t, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return t, nil
}

// Parse parses a YAML template and builds its typed model. A property of
// the wrong shape (Timeout: abc) is an error; an intrinsic function in a
// typed field reads as the zero value.
func Parse(data []byte) (*Template, error) {
	raw, err := Decode(data)
	if err != nil {
		return nil, err
	}
	return New(raw)
}

// New builds a template from decoded values (see Decode).
func New(raw map[string]any) (*Template, error) {
	t := &Template{Raw: raw, Resources: map[string]Resource{}}
	t.Globals, _ = raw["Globals"].(map[string]any)
	res, ok := raw["Resources"].(map[string]any)
	if !ok {
		return nil, errors.New("template has no Resources mapping")
	}
	for id, v := range res {
		m, ok := v.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("resource %s is not a mapping", id)
		}
		r := Resource{ID: id}
		r.Type, _ = m["Type"].(string)
		r.Condition, _ = m["Condition"].(string)
		r.Properties, _ = m["Properties"].(map[string]any)
		r.Metadata, _ = m["Metadata"].(map[string]any)
		if r.Properties == nil {
			r.Properties = map[string]any{}
		}
		t.Resources[id] = r
	}
	if err := t.build(); err != nil {
		return nil, err
	}
	return t, nil
}

// globalsSection is the Globals section SAM merges into a resource type.
var globalsSection = map[string]string{
	TypeFunction: "Function", TypeHTTPAPI: "HttpApi", TypeAPI: "Api", TypeSimpleTable: "SimpleTable",
}

// Merged returns r's properties with its Globals section merged in.
func (t *Template) Merged(r Resource) map[string]any {
	sec, ok := globalsSection[r.Type]
	if !ok || t.merged {
		return r.Properties
	}
	g, _ := t.Globals[sec].(map[string]any)
	if g == nil {
		return r.Properties
	}
	props, _ := MergeGlobals(g, r.Properties).(map[string]any)
	if props == nil {
		props = map[string]any{}
	}
	return props
}

// Resolve returns the template with the Globals merged into every resource
// (SAM merges before it resolves) and each resource's merged properties,
// and each Globals section, replaced by what resolve returns for them;
// resources include rejects (a false Condition, say) are left out. The
// result's typed model is read from the resolved values. A resolver marks
// the values of references to resources with Resolved, so that the model
// still knows which resource an event source names.
func (t *Template) Resolve(include func(Resource) bool, resolve func(where string, props map[string]any) (map[string]any, error)) (*Template, error) {
	out := &Template{Raw: t.Raw, Globals: map[string]any{}, Resources: map[string]Resource{}, merged: true}
	for _, sec := range slices.Sorted(maps.Keys(t.Globals)) {
		g, ok := t.Globals[sec].(map[string]any)
		if !ok {
			continue
		}
		v, err := resolve("Globals."+sec, g)
		if err != nil {
			return nil, err
		}
		out.Globals[sec] = v
	}
	for _, id := range slices.Sorted(maps.Keys(t.Resources)) {
		r := t.Resources[id]
		if include != nil && !include(r) {
			continue
		}
		props, err := resolve(id, t.Merged(r))
		if err != nil {
			return nil, err
		}
		r.Properties = props
		out.Resources[id] = r
	}
	if err := out.build(); err != nil {
		return nil, err
	}
	return out, nil
}

// build reads the typed model from the resources.
func (t *Template) build() error {
	t.apis = map[string]*HTTPAPI{}
	params, _ := t.Raw["Parameters"].(map[string]any)
	implicit, _ := t.Globals["HttpApi"].(map[string]any)
	api, err := newHTTPAPI("", TypeHTTPAPI, implicit, params)
	if err != nil {
		return err
	}
	t.apis[""] = &api
	for _, id := range slices.Sorted(maps.Keys(t.Resources)) {
		r := t.Resources[id]
		props := t.Merged(r)
		switch r.Type {
		case TypeFunction:
			f, err := newFunction(r, props)
			if err != nil {
				return err
			}
			t.functions = append(t.functions, f)
		case TypeTable, TypeSimpleTable:
			tb, err := newTable(r, props)
			if err != nil {
				return err
			}
			t.tables = append(t.tables, tb)
		case TypeQueue:
			q, err := newQueue(r, props)
			if err != nil {
				return err
			}
			t.queues = append(t.queues, q)
		case TypeHTTPAPI, TypeAPI:
			a, err := newHTTPAPI(id, r.Type, props, params)
			if err != nil {
				return err
			}
			t.apis[id] = &a
		}
	}
	// Event source mappings join their function's events, once every
	// function is read.
	for _, id := range slices.Sorted(maps.Keys(t.Resources)) {
		r := t.Resources[id]
		if r.Type != TypeEventSourceMapping {
			continue
		}
		fn, ev, err := newMapping(t, r, t.Merged(r))
		if err != nil {
			return err
		}
		i := slices.IndexFunc(t.functions, func(f Function) bool { return f.ID == fn })
		if i < 0 {
			continue // the function was left out (a false Condition)
		}
		f := &t.functions[i]
		f.Events = append(f.Events, ev)
		slices.SortFunc(f.Events, func(a, b Event) int { return strings.Compare(a.Name, b.Name) })
	}
	return nil
}

// Tables returns the template's DynamoDB tables (SimpleTables included),
// sorted by logical ID.
func (t *Template) Tables() []Table { return t.tables }

// Table returns the table with logical ID id.
func (t *Template) Table(id string) (Table, bool) {
	return byID(t.tables, id, func(tb Table) string { return tb.ID })
}

// byID finds the element of list whose id is id.
func byID[T any](list []T, id string, idOf func(T) string) (T, bool) {
	for _, e := range list {
		if idOf(e) == id {
			return e, true
		}
	}
	var zero T
	return zero, false
}

// Queues returns the template's SQS queues, sorted by logical ID.
func (t *Template) Queues() []Queue { return t.queues }

// API returns the HttpApi or Api with logical ID id ("" for the implicit
// API, whose Auth comes from Globals.HttpApi), or nil.
func (t *Template) API(id string) *HTTPAPI { return t.apis[id] }

// Decode decodes a YAML (or JSON) template into plain Go values
// (map[string]any, []any, string, int, bool, float64, nil) with every
// short-form intrinsic tag expanded to its long form, as described on
// Template. YAML merge keys (<<) are applied; a duplicate key is an error.
// Globals are not merged: see MergeGlobals.
func Decode(data []byte) (map[string]any, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("invalid YAML: %w", err)
	}
	if doc.Kind == 0 || (doc.Kind == yaml.DocumentNode && len(doc.Content) == 0) {
		return nil, errors.New("empty template")
	}
	v, err := toValue(&doc)
	if err != nil {
		return nil, err
	}
	raw, ok := v.(map[string]any)
	if !ok {
		return nil, errors.New("template is not a mapping")
	}
	return raw, nil
}

// toValue converts a YAML node into plain Go values (map[string]any, []any,
// string, int, bool, float64, nil), expanding short-form intrinsic tags.
func toValue(n *yaml.Node) (any, error) {
	switch n.Kind {
	case yaml.DocumentNode:
		if len(n.Content) == 0 {
			return nil, nil
		}
		return toValue(n.Content[0])
	case yaml.AliasNode:
		return toValue(n.Alias)
	}
	if tag := n.Tag; strings.HasPrefix(tag, "!") && !strings.HasPrefix(tag, "!!") {
		return intrinsic(n)
	}
	switch n.Kind {
	case yaml.MappingNode:
		m := make(map[string]any, len(n.Content)/2)
		var merged map[string]any // from merge keys; explicit keys win
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.Kind == yaml.ScalarNode && k.Tag == "!!merge" {
				if merged == nil {
					merged = map[string]any{}
				}
				if err := mergeKey(merged, v); err != nil {
					return nil, err
				}
				continue
			}
			if k.Kind != yaml.ScalarNode {
				return nil, fmt.Errorf("line %d: non-scalar mapping key", k.Line)
			}
			if _, dup := m[k.Value]; dup {
				return nil, fmt.Errorf("line %d: duplicate key %q", k.Line, k.Value)
			}
			val, err := toValue(v)
			if err != nil {
				return nil, err
			}
			m[k.Value] = val
		}
		for k, v := range merged {
			if _, ok := m[k]; !ok {
				m[k] = v
			}
		}
		return m, nil
	case yaml.SequenceNode:
		s := make([]any, 0, len(n.Content))
		for _, c := range n.Content {
			val, err := toValue(c)
			if err != nil {
				return nil, err
			}
			s = append(s, val)
		}
		return s, nil
	case yaml.ScalarNode:
		var v any
		if err := n.Decode(&v); err != nil {
			return nil, fmt.Errorf("line %d: %w", n.Line, err)
		}
		return v, nil
	}
	return nil, fmt.Errorf("line %d: unexpected YAML node kind %d", n.Line, n.Kind)
}

// mergeKey adds the keys of a merge key's value (a mapping or a list of
// mappings) to merged, the first one given winning.
func mergeKey(merged map[string]any, n *yaml.Node) error {
	v, err := toValue(n)
	if err != nil {
		return err
	}
	list, ok := v.([]any)
	if !ok {
		list = []any{v}
	}
	for _, e := range list {
		mm, ok := e.(map[string]any)
		if !ok {
			return fmt.Errorf("line %d: merge key value is not a mapping", n.Line)
		}
		for k, x := range mm {
			if _, ok := merged[k]; !ok {
				merged[k] = x
			}
		}
	}
	return nil
}

// intrinsic expands a short-form tag such as !Ref or !GetAtt.
func intrinsic(n *yaml.Node) (any, error) {
	name := strings.TrimPrefix(n.Tag, "!")
	// Convert the tagged node without its tag.
	inner := *n
	inner.Tag = ""
	if n.Kind == yaml.ScalarNode {
		inner.Tag = "!!str"
	}
	v, err := toValue(&inner)
	if err != nil {
		return nil, err
	}
	switch name {
	case "Ref", "Condition":
		return map[string]any{name: v}, nil
	case "GetAtt":
		if s, ok := v.(string); ok {
			id, attr, found := strings.Cut(s, ".")
			if !found {
				return nil, fmt.Errorf("line %d: !GetAtt %q is not Resource.Attribute", n.Line, s)
			}
			v = []any{id, attr}
		}
		return map[string]any{"Fn::GetAtt": v}, nil
	default:
		return map[string]any{"Fn::" + name: v}, nil
	}
}

// Functions returns the template's functions, sorted by logical ID, each
// with Globals.Function merged in.
func (t *Template) Functions() []Function { return t.functions }

// Function returns the function with logical ID id.
func (t *Template) Function(id string) (Function, bool) {
	return byID(t.functions, id, func(f Function) string { return f.ID })
}

// MergeGlobals merges a Globals section with a resource's own value the way
// SAM does: maps merge key by key, lists concatenate (Globals first), and
// anything else (scalars, intrinsic functions) is overridden by the resource.
// A value missing (nil) on one side is taken from the other.
func MergeGlobals(global, local any) any {
	if global == nil {
		return local
	}
	if local == nil {
		return global
	}
	gm, gok := global.(map[string]any)
	lm, lok := local.(map[string]any)
	if gok && lok && !isIntrinsic(gm) && !isIntrinsic(lm) {
		out := maps.Clone(gm)
		for k, v := range lm {
			out[k] = MergeGlobals(gm[k], v)
		}
		return out
	}
	gs, gok := global.([]any)
	ls, lok := local.([]any)
	if gok && lok {
		return slices.Concat(gs, ls)
	}
	return local
}

func isIntrinsic(m map[string]any) bool {
	if len(m) != 1 {
		return false
	}
	for k := range m {
		return k == "Ref" || k == "Condition" || strings.HasPrefix(k, "Fn::")
	}
	return false
}

// RefTarget returns X for {"Ref": X}.
func RefTarget(v any) (string, bool) {
	m, ok := v.(map[string]any)
	if !ok || len(m) != 1 {
		return "", false
	}
	s, ok := m["Ref"].(string)
	return s, ok
}

// GetAttTarget returns X and Attr for {"Fn::GetAtt": [X, Attr]} or
// {"Fn::GetAtt": "X.Attr"}.
func GetAttTarget(v any) (id, attr string, ok bool) {
	m, isMap := v.(map[string]any)
	if !isMap || len(m) != 1 {
		return "", "", false
	}
	switch a := m["Fn::GetAtt"].(type) {
	case []any:
		if len(a) == 2 {
			id, ok1 := a[0].(string)
			attr, ok2 := a[1].(string)
			return id, attr, ok1 && ok2
		}
	case string:
		id, attr, found := strings.Cut(a, ".")
		return id, attr, found
	}
	return "", "", false
}
