// Package samtemplate reads the SAM template (template.yaml at the repository
// root) and checks the things cfn-lint cannot know: that each function's
// CodeUri holds a Go main package, that the routes are well formed and
// authorized, that the idempotency table matches the library, and that each
// function's environment and IAM policies name the same tables.
//
// Decode and MergeGlobals are also the template reader of local/devstack,
// which resolves the decoded template for the local stack.
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
	TypeFunction   = "AWS::Serverless::Function"
	TypeHTTPAPI    = "AWS::Serverless::HttpApi"
	TypeAPIGWv2API = "AWS::ApiGatewayV2::Api"
	TypeTable      = "AWS::DynamoDB::Table"
)

// Template is a parsed CloudFormation/SAM template. Short-form intrinsic
// functions are expanded to their long form: `!Ref X` becomes
// map[string]any{"Ref": "X"}, `!GetAtt X.Arn` becomes
// map[string]any{"Fn::GetAtt": []any{"X", "Arn"}}, `!Sub s` becomes
// map[string]any{"Fn::Sub": s}, and so on.
type Template struct {
	Raw       map[string]any
	Globals   map[string]any
	Resources map[string]Resource
}

// Resource is one entry under Resources.
type Resource struct {
	ID         string
	Type       string
	Properties map[string]any
	Metadata   map[string]any
}

// Function is an AWS::Serverless::Function with Globals.Function merged in
// the way SAM merges them.
type Function struct {
	ID       string
	Props    map[string]any
	Metadata map[string]any
}

// Env returns the function's environment variables (Globals merged).
func (f Function) Env() map[string]any {
	env, _ := f.Props["Environment"].(map[string]any)
	vars, _ := env["Variables"].(map[string]any)
	return vars
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

// Parse parses a YAML template.
func Parse(data []byte) (*Template, error) {
	raw, err := Decode(data)
	if err != nil {
		return nil, err
	}
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
		r.Properties, _ = m["Properties"].(map[string]any)
		r.Metadata, _ = m["Metadata"].(map[string]any)
		if r.Properties == nil {
			r.Properties = map[string]any{}
		}
		t.Resources[id] = r
	}
	return t, nil
}

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
func (t *Template) Functions() []Function {
	globals, _ := t.Globals["Function"].(map[string]any)
	var out []Function
	for _, id := range slices.Sorted(maps.Keys(t.Resources)) {
		r := t.Resources[id]
		if r.Type != TypeFunction {
			continue
		}
		props, _ := MergeGlobals(globals, r.Properties).(map[string]any)
		out = append(out, Function{ID: id, Props: props, Metadata: r.Metadata})
	}
	return out
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
