package ddbmem

import (
	"bytes"
	"math/big"
	"sort"
	"strings"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// typeName is DynamoDB's name for v's type (S, N, B, BOOL, NULL, L, M, SS,
// NS, BS).
func typeName(v types.AttributeValue) string {
	switch v.(type) {
	case *types.AttributeValueMemberS:
		return "S"
	case *types.AttributeValueMemberN:
		return "N"
	case *types.AttributeValueMemberB:
		return "B"
	case *types.AttributeValueMemberBOOL:
		return "BOOL"
	case *types.AttributeValueMemberNULL:
		return "NULL"
	case *types.AttributeValueMemberL:
		return "L"
	case *types.AttributeValueMemberM:
		return "M"
	case *types.AttributeValueMemberSS:
		return "SS"
	case *types.AttributeValueMemberNS:
		return "NS"
	case *types.AttributeValueMemberBS:
		return "BS"
	}
	return "?"
}

func isSet(v types.AttributeValue) bool {
	switch v.(type) {
	case *types.AttributeValueMemberSS, *types.AttributeValueMemberNS, *types.AttributeValueMemberBS:
		return true
	}
	return false
}

// setElems returns the elements of a set as scalar values.
func setElems(v types.AttributeValue) []types.AttributeValue {
	var out []types.AttributeValue
	switch x := v.(type) {
	case *types.AttributeValueMemberSS:
		for _, s := range x.Value {
			out = append(out, &types.AttributeValueMemberS{Value: s})
		}
	case *types.AttributeValueMemberNS:
		for _, s := range x.Value {
			out = append(out, &types.AttributeValueMemberN{Value: s})
		}
	case *types.AttributeValueMemberBS:
		for _, b := range x.Value {
			out = append(out, &types.AttributeValueMemberB{Value: b})
		}
	}
	return out
}

// parseNumber parses a DynamoDB number.
func parseNumber(s string) (*big.Rat, error) {
	r, ok := new(big.Rat).SetString(strings.TrimSpace(s))
	if !ok || strings.ContainsAny(s, "/xXpP_") {
		return nil, validation("A value provided cannot be converted into a number")
	}
	return r, nil
}

// formatNumber writes r the way DynamoDB returns numbers: no exponent, no
// leading or trailing zeros.
func formatNumber(r *big.Rat) string {
	if r.IsInt() {
		return r.Num().String()
	}
	s := r.FloatString(40)
	s = strings.TrimRight(s, "0")
	return strings.TrimSuffix(s, ".")
}

// normalizeNumber returns s in DynamoDB's canonical form.
func normalizeNumber(s string) (string, error) {
	r, err := parseNumber(s)
	if err != nil {
		return "", err
	}
	return formatNumber(r), nil
}

func addNumbers(a, b string, subtract bool) (string, error) {
	x, err := parseNumber(a)
	if err != nil {
		return "", err
	}
	y, err := parseNumber(b)
	if err != nil {
		return "", err
	}
	if subtract {
		return formatNumber(new(big.Rat).Sub(x, y)), nil
	}
	return formatNumber(new(big.Rat).Add(x, y)), nil
}

// compare orders two scalars of the same type (N, S or B).
func compare(a, b types.AttributeValue) (int, bool) {
	switch x := a.(type) {
	case *types.AttributeValueMemberN:
		y, ok := b.(*types.AttributeValueMemberN)
		if !ok {
			return 0, false
		}
		rx, err1 := parseNumber(x.Value)
		ry, err2 := parseNumber(y.Value)
		if err1 != nil || err2 != nil {
			return 0, false
		}
		return rx.Cmp(ry), true
	case *types.AttributeValueMemberS:
		y, ok := b.(*types.AttributeValueMemberS)
		if !ok {
			return 0, false
		}
		return strings.Compare(x.Value, y.Value), true
	case *types.AttributeValueMemberB:
		y, ok := b.(*types.AttributeValueMemberB)
		if !ok {
			return 0, false
		}
		return bytes.Compare(x.Value, y.Value), true
	}
	return 0, false
}

// equal is DynamoDB equality: same type and value; numbers by value, sets
// regardless of order.
func equal(a, b types.AttributeValue) bool {
	if typeName(a) != typeName(b) {
		return false
	}
	switch x := a.(type) {
	case *types.AttributeValueMemberN, *types.AttributeValueMemberS, *types.AttributeValueMemberB:
		n, ok := compare(a, b)
		return ok && n == 0
	case *types.AttributeValueMemberBOOL:
		return x.Value == b.(*types.AttributeValueMemberBOOL).Value
	case *types.AttributeValueMemberNULL:
		return true
	case *types.AttributeValueMemberL:
		y := b.(*types.AttributeValueMemberL)
		if len(x.Value) != len(y.Value) {
			return false
		}
		for i := range x.Value {
			if !equal(x.Value[i], y.Value[i]) {
				return false
			}
		}
		return true
	case *types.AttributeValueMemberM:
		y := b.(*types.AttributeValueMemberM)
		if len(x.Value) != len(y.Value) {
			return false
		}
		for k, v := range x.Value {
			w, ok := y.Value[k]
			if !ok || !equal(v, w) {
				return false
			}
		}
		return true
	default: // sets
		xs, ys := setElems(a), setElems(b)
		if len(xs) != len(ys) {
			return false
		}
		for _, e := range xs {
			if !containsValue(ys, e) {
				return false
			}
		}
		return true
	}
}

// EqualItems reports whether two items hold the same attributes with equal
// values (numbers compared by value, sets regardless of order).
func EqualItems(a, b map[string]types.AttributeValue) bool {
	return equal(&types.AttributeValueMemberM{Value: a}, &types.AttributeValueMemberM{Value: b})
}

func containsValue(list []types.AttributeValue, v types.AttributeValue) bool {
	for _, e := range list {
		if equal(e, v) {
			return true
		}
	}
	return false
}

// sizeOf is the size() function: string length in bytes, binary length,
// number of elements of a set, list or map.
func sizeOf(v types.AttributeValue) (int, bool) {
	switch x := v.(type) {
	case *types.AttributeValueMemberS:
		return len(x.Value), true
	case *types.AttributeValueMemberB:
		return len(x.Value), true
	case *types.AttributeValueMemberL:
		return len(x.Value), true
	case *types.AttributeValueMemberM:
		return len(x.Value), true
	case *types.AttributeValueMemberSS, *types.AttributeValueMemberNS, *types.AttributeValueMemberBS:
		return len(setElems(v)), true
	}
	return 0, false
}

// addValue is ADD: a number added to a number (absent counts as 0), or a
// set unioned with a set of the same type (absent counts as empty).
func addValue(cur types.AttributeValue, present bool, v types.AttributeValue) (types.AttributeValue, error) {
	switch x := v.(type) {
	case *types.AttributeValueMemberN:
		if !present {
			s, err := normalizeNumber(x.Value)
			if err != nil {
				return nil, err
			}
			return &types.AttributeValueMemberN{Value: s}, nil
		}
		c, ok := cur.(*types.AttributeValueMemberN)
		if !ok {
			return nil, validation("An operand in the update expression has an incorrect data type")
		}
		s, err := addNumbers(c.Value, x.Value, false)
		if err != nil {
			return nil, err
		}
		return &types.AttributeValueMemberN{Value: s}, nil
	case *types.AttributeValueMemberSS, *types.AttributeValueMemberNS, *types.AttributeValueMemberBS:
		if !present {
			return copyValue(v), nil
		}
		if typeName(cur) != typeName(v) {
			return nil, validation("An operand in the update expression has an incorrect data type")
		}
		elems := setElems(cur)
		for _, e := range setElems(v) {
			if !containsValue(elems, e) {
				elems = append(elems, e)
			}
		}
		return makeSet(typeName(v), elems), nil
	}
	return nil, validation("Invalid UpdateExpression: Incorrect operand type for operator or function; operator: ADD, operand type: %s", typeName(v))
}

// deleteValue is DELETE: the elements of v removed from the set cur; nil
// when none remain.
func deleteValue(cur, v types.AttributeValue) (types.AttributeValue, error) {
	if !isSet(v) {
		return nil, validation("Invalid UpdateExpression: Incorrect operand type for operator or function; operator: DELETE, operand type: %s", typeName(v))
	}
	if typeName(cur) != typeName(v) {
		return nil, validation("An operand in the update expression has an incorrect data type")
	}
	drop := setElems(v)
	var keep []types.AttributeValue
	for _, e := range setElems(cur) {
		if !containsValue(drop, e) {
			keep = append(keep, e)
		}
	}
	if len(keep) == 0 {
		return nil, nil
	}
	return makeSet(typeName(v), keep), nil
}

func makeSet(kind string, elems []types.AttributeValue) types.AttributeValue {
	switch kind {
	case "SS":
		out := &types.AttributeValueMemberSS{}
		for _, e := range elems {
			out.Value = append(out.Value, e.(*types.AttributeValueMemberS).Value)
		}
		return out
	case "NS":
		out := &types.AttributeValueMemberNS{}
		for _, e := range elems {
			out.Value = append(out.Value, e.(*types.AttributeValueMemberN).Value)
		}
		return out
	default:
		out := &types.AttributeValueMemberBS{}
		for _, e := range elems {
			out.Value = append(out.Value, e.(*types.AttributeValueMemberB).Value)
		}
		return out
	}
}

// copyValue deep-copies v, so nothing the caller holds aliases the
// engine's state.
func copyValue(v types.AttributeValue) types.AttributeValue {
	switch x := v.(type) {
	case *types.AttributeValueMemberS:
		return &types.AttributeValueMemberS{Value: x.Value}
	case *types.AttributeValueMemberN:
		return &types.AttributeValueMemberN{Value: x.Value}
	case *types.AttributeValueMemberB:
		return &types.AttributeValueMemberB{Value: bytes.Clone(x.Value)}
	case *types.AttributeValueMemberBOOL:
		return &types.AttributeValueMemberBOOL{Value: x.Value}
	case *types.AttributeValueMemberNULL:
		return &types.AttributeValueMemberNULL{Value: x.Value}
	case *types.AttributeValueMemberL:
		out := make([]types.AttributeValue, len(x.Value))
		for i, e := range x.Value {
			out[i] = copyValue(e)
		}
		return &types.AttributeValueMemberL{Value: out}
	case *types.AttributeValueMemberM:
		return &types.AttributeValueMemberM{Value: copyItem(x.Value)}
	case *types.AttributeValueMemberSS:
		return &types.AttributeValueMemberSS{Value: append([]string(nil), x.Value...)}
	case *types.AttributeValueMemberNS:
		return &types.AttributeValueMemberNS{Value: append([]string(nil), x.Value...)}
	case *types.AttributeValueMemberBS:
		out := make([][]byte, len(x.Value))
		for i, b := range x.Value {
			out[i] = bytes.Clone(b)
		}
		return &types.AttributeValueMemberBS{Value: out}
	}
	return v
}

func copyItem(item map[string]types.AttributeValue) map[string]types.AttributeValue {
	if item == nil {
		return nil
	}
	out := make(map[string]types.AttributeValue, len(item))
	for k, v := range item {
		out[k] = copyValue(v)
	}
	return out
}

// checkValue validates a value to be stored and returns it in stored form
// (numbers canonical, everything copied).
func checkValue(v types.AttributeValue) (types.AttributeValue, error) {
	switch x := v.(type) {
	case nil:
		return nil, validation("Supplied AttributeValue is empty, must contain exactly one of the supported datatypes")
	case *types.AttributeValueMemberN:
		s, err := normalizeNumber(x.Value)
		if err != nil {
			return nil, err
		}
		return &types.AttributeValueMemberN{Value: s}, nil
	case *types.AttributeValueMemberSS, *types.AttributeValueMemberNS, *types.AttributeValueMemberBS:
		elems := setElems(v)
		if len(elems) == 0 {
			return nil, validation("One or more parameter values were invalid: An number set  may not be empty")
		}
		var norm []types.AttributeValue
		for _, e := range elems {
			e, err := checkValue(e)
			if err != nil {
				return nil, err
			}
			if containsValue(norm, e) {
				return nil, validation("One or more parameter values were invalid: Input collection contains duplicates")
			}
			norm = append(norm, e)
		}
		return makeSet(typeName(v), norm), nil
	case *types.AttributeValueMemberL:
		out := make([]types.AttributeValue, len(x.Value))
		for i, e := range x.Value {
			c, err := checkValue(e)
			if err != nil {
				return nil, err
			}
			out[i] = c
		}
		return &types.AttributeValueMemberL{Value: out}, nil
	case *types.AttributeValueMemberM:
		out := make(map[string]types.AttributeValue, len(x.Value))
		for k, e := range x.Value {
			c, err := checkValue(e)
			if err != nil {
				return nil, err
			}
			out[k] = c
		}
		return &types.AttributeValueMemberM{Value: out}, nil
	case *types.AttributeValueMemberS, *types.AttributeValueMemberB, *types.AttributeValueMemberBOOL, *types.AttributeValueMemberNULL:
		return copyValue(v), nil
	}
	return nil, unsupported("", "attribute value type "+typeName(v))
}

// itemSize approximates DynamoDB's item size: attribute names plus values
// (strings and binaries by length, numbers about one byte per two digits,
// containers 3 bytes plus one per element).
func itemSize(item map[string]types.AttributeValue) int {
	n := 0
	for k, v := range item {
		n += len(k) + valueSize(v)
	}
	return n
}

func valueSize(v types.AttributeValue) int {
	switch x := v.(type) {
	case *types.AttributeValueMemberS:
		return len(x.Value)
	case *types.AttributeValueMemberB:
		return len(x.Value)
	case *types.AttributeValueMemberN:
		return (len(x.Value)+1)/2 + 1
	case *types.AttributeValueMemberBOOL, *types.AttributeValueMemberNULL:
		return 1
	case *types.AttributeValueMemberL:
		n := 3
		for _, e := range x.Value {
			n += 1 + valueSize(e)
		}
		return n
	case *types.AttributeValueMemberM:
		n := 3
		for k, e := range x.Value {
			n += 1 + len(k) + valueSize(e)
		}
		return n
	default:
		n := 0
		for _, e := range setElems(v) {
			n += valueSize(e)
		}
		return n
	}
}

// sortedKeys returns m's keys in order.
func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
