package eventsource

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
)

// Event filtering: the FilterCriteria of an event source mapping, as
// Lambda applies them before it batches records. A record is delivered
// when any of the mapping's patterns matches it; a pattern is the subset
// of the EventBridge pattern syntax Lambda supports:
//   - an object matches when each of its fields matches the record's field
//     of that name (nested objects recurse);
//   - an array of conditions matches when any of them matches the field's
//     value (or, when the value is an array, any of its elements);
//   - conditions: a string, number, boolean or null (exact match; a number
//     compares by value, "" is the empty string), and the objects
//     {"prefix": "s"}, {"suffix": "s"}, {"equals-ignore-case": "s"},
//     {"anything-but": v | [v...] | {"prefix": "s"}} (a present value that
//     is none of them), {"numeric": ["<", 10, ">=", 0]} (operators =, <,
//     <=, >, >=; a JSON number, or a string holding one, as a DynamoDB N
//     value is in the record) and {"exists": true|false}.
//
// Not supported, refused when the stack starts: $or, wildcard, cidr,
// anything-but with suffix, wildcard or equals-ignore-case, and prefix
// or suffix with equals-ignore-case.
//
// The record is matched as Lambda sees it: a stream record's JSON (keys
// such as "eventName" and "dynamodb": {"NewImage": {"status": {"S": ...}}}),
// an SQS message's JSON with its "body" decoded when it is a JSON object.

// ErrUnsupportedFilter is returned for a pattern the local stack cannot
// apply; the error names the operator.
var ErrUnsupportedFilter = errors.New("filter pattern not supported locally")

// eventFilter is one compiled FilterCriteria pattern.
type eventFilter struct {
	fields map[string]fieldPattern
}

// fieldPattern is what one field of a pattern asks: a nested pattern, or
// a list of conditions.
type fieldPattern struct {
	nested *eventFilter
	conds  []condition
}

// condition is one element of a pattern's array.
type condition func(v any, present bool) bool

// compileFilter parses a FilterCriteria pattern (a JSON object).
func compileFilter(pattern string) (*eventFilter, error) {
	var v any
	dec := json.NewDecoder(strings.NewReader(pattern))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("filter pattern %s: not JSON: %w", pattern, err)
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("filter pattern %s: want a JSON object", pattern)
	}
	f, err := compileObject(obj, "")
	if err != nil {
		return nil, fmt.Errorf("filter pattern %s: %w", pattern, err)
	}
	return f, nil
}

func compileObject(obj map[string]any, path string) (*eventFilter, error) {
	f := &eventFilter{fields: map[string]fieldPattern{}}
	for _, k := range slices.Sorted(maps.Keys(obj)) {
		where := strings.TrimPrefix(path+"."+k, ".")
		if strings.HasPrefix(k, "$") {
			return nil, fmt.Errorf("%w: %s (%s)", ErrUnsupportedFilter, k, where)
		}
		switch x := obj[k].(type) {
		case map[string]any:
			nested, err := compileObject(x, where)
			if err != nil {
				return nil, err
			}
			f.fields[k] = fieldPattern{nested: nested}
		case []any:
			var conds []condition
			for _, c := range x {
				cond, err := compileCondition(c, where)
				if err != nil {
					return nil, err
				}
				conds = append(conds, cond)
			}
			f.fields[k] = fieldPattern{conds: conds}
		default:
			return nil, fmt.Errorf("%s: want an object or an array of conditions, got %v", where, x)
		}
	}
	return f, nil
}

func compileCondition(c any, where string) (condition, error) {
	switch x := c.(type) {
	case nil:
		return func(v any, present bool) bool { return present && v == nil }, nil
	case string, bool, json.Number:
		return func(v any, present bool) bool { return present && equalScalar(v, x) }, nil
	case map[string]any:
		if len(x) != 1 {
			return nil, fmt.Errorf("%s: a condition object has one operator, got %v", where, slices.Sorted(maps.Keys(x)))
		}
		for op, arg := range x {
			return compileOperator(op, arg, where)
		}
	}
	return nil, fmt.Errorf("%s: unexpected condition %v", where, c)
}

func compileOperator(op string, arg any, where string) (condition, error) {
	str := func() (string, error) {
		s, ok := arg.(string)
		if !ok {
			if _, isObj := arg.(map[string]any); isObj {
				return "", fmt.Errorf("%w: %s with an object (%s)", ErrUnsupportedFilter, op, where)
			}
			return "", fmt.Errorf("%s: %s wants a string", where, op)
		}
		return s, nil
	}
	switch op {
	case "prefix", "suffix", "equals-ignore-case":
		s, err := str()
		if err != nil {
			return nil, err
		}
		test := map[string]func(string) bool{
			"prefix":             func(v string) bool { return strings.HasPrefix(v, s) },
			"suffix":             func(v string) bool { return strings.HasSuffix(v, s) },
			"equals-ignore-case": func(v string) bool { return strings.EqualFold(v, s) },
		}[op]
		return func(v any, present bool) bool {
			vs, ok := v.(string)
			return present && ok && test(vs)
		}, nil
	case "exists":
		want, ok := arg.(bool)
		if !ok {
			return nil, fmt.Errorf("%s: exists wants true or false", where)
		}
		return func(_ any, present bool) bool { return present == want }, nil
	case "anything-but":
		switch a := arg.(type) {
		case map[string]any:
			p, ok := a["prefix"].(string)
			if len(a) != 1 || !ok {
				return nil, fmt.Errorf("%w: anything-but with %v (%s); only a value, a list or a prefix", ErrUnsupportedFilter, slices.Sorted(maps.Keys(a)), where)
			}
			return func(v any, present bool) bool {
				vs, ok := v.(string)
				return present && ok && !strings.HasPrefix(vs, p)
			}, nil
		case []any:
			for _, e := range a {
				if _, ok := e.(map[string]any); ok {
					return nil, fmt.Errorf("%s: anything-but lists values, not objects", where)
				}
			}
			return func(v any, present bool) bool {
				return present && !slices.ContainsFunc(a, func(e any) bool { return equalScalar(v, e) })
			}, nil
		case string, json.Number, bool:
			return func(v any, present bool) bool { return present && !equalScalar(v, a) }, nil
		}
		return nil, fmt.Errorf("%s: anything-but wants a value, a list or a prefix", where)
	case "numeric":
		return compileNumeric(arg, where)
	}
	return nil, fmt.Errorf("%w: %s (%s)", ErrUnsupportedFilter, op, where)
}

// compileNumeric reads ["<", 10] or [">=", 0, "<", 10].
func compileNumeric(arg any, where string) (condition, error) {
	l, ok := arg.([]any)
	if !ok || len(l) == 0 || len(l)%2 != 0 || len(l) > 4 {
		return nil, fmt.Errorf("%s: numeric wants [op, n] or [op, n, op, n]", where)
	}
	type bound struct {
		op string
		n  float64
	}
	var bounds []bound
	for i := 0; i < len(l); i += 2 {
		op, _ := l[i].(string)
		num, isNum := l[i+1].(json.Number)
		n, err := num.Float64()
		if !slices.Contains([]string{"=", "<", "<=", ">", ">="}, op) || !isNum || err != nil {
			return nil, fmt.Errorf("%s: numeric wants operators =, <, <=, >, >= each followed by a number, got %v", where, l)
		}
		bounds = append(bounds, bound{op, n})
	}
	return func(v any, present bool) bool {
		x, ok := number(v)
		if !present || !ok {
			return false
		}
		for _, b := range bounds {
			var hold bool
			switch b.op {
			case "=":
				hold = x == b.n
			case "<":
				hold = x < b.n
			case "<=":
				hold = x <= b.n
			case ">":
				hold = x > b.n
			case ">=":
				hold = x >= b.n
			}
			if !hold {
				return false
			}
		}
		return true
	}, nil
}

// number reads a JSON number, or a string holding one (a DynamoDB N).
func number(v any) (float64, bool) {
	var s string
	switch x := v.(type) {
	case json.Number:
		s = string(x)
	case string:
		s = x
	default:
		return 0, false
	}
	f, err := strconv.ParseFloat(s, 64)
	return f, err == nil && !math.IsInf(f, 0) && !math.IsNaN(f)
}

// equalScalar compares an event value with a pattern value: strings and
// booleans exactly, numbers by value.
func equalScalar(v, p any) bool {
	switch pv := p.(type) {
	case json.Number:
		vn, ok := v.(json.Number)
		if !ok {
			return false
		}
		a, errA := vn.Float64()
		b, errB := pv.Float64()
		return errA == nil && errB == nil && a == b
	case string:
		vs, ok := v.(string)
		return ok && vs == pv
	case bool:
		vb, ok := v.(bool)
		return ok && vb == pv
	}
	return false
}

// match reports whether the record (decoded JSON, numbers as json.Number)
// matches the pattern.
func (f *eventFilter) match(record map[string]any) bool {
	for name, fp := range f.fields {
		v, present := record[name]
		if fp.nested != nil {
			obj, ok := v.(map[string]any)
			if !ok || !fp.nested.match(obj) {
				return false
			}
			continue
		}
		if !fp.matchValue(v, present) {
			return false
		}
	}
	return true
}

func (fp fieldPattern) matchValue(v any, present bool) bool {
	values := []any{v}
	if l, ok := v.([]any); ok && present {
		values = l
	}
	for _, c := range fp.conds {
		for _, x := range values {
			if c(x, present) {
				return true
			}
		}
	}
	return false
}

// filters are a mapping's compiled patterns; none means every record.
type filters []*eventFilter

func compileFilters(patterns []string) (filters, error) {
	var out filters
	for _, p := range patterns {
		f, err := compileFilter(p)
		if err != nil {
			return nil, err
		}
		out = append(out, f)
	}
	return out, nil
}

// pass reports whether a record, given as its JSON, is delivered: it
// matches one of the patterns, or there are none. A record that is not a
// JSON object passes no pattern.
func (fs filters) pass(recordJSON []byte) bool {
	if len(fs) == 0 {
		return true
	}
	rec, ok := decodeObject(recordJSON)
	if !ok {
		return false
	}
	return fs.passDecoded(rec)
}

func (fs filters) passDecoded(rec map[string]any) bool {
	for _, f := range fs {
		if f.match(rec) {
			return true
		}
	}
	return len(fs) == 0
}

// decodeObject decodes a JSON object, numbers as json.Number.
func decodeObject(b []byte) (map[string]any, bool) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v map[string]any
	if err := dec.Decode(&v); err != nil || v == nil {
		return nil, false
	}
	return v, true
}
