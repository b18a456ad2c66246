package ddbmem

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// This file parses and evaluates the expression subset the engine
// implements: condition (and filter) expressions with comparisons, BETWEEN,
// IN, AND/OR/NOT, parentheses, attribute_exists, attribute_not_exists,
// attribute_type, begins_with, contains and size; update expressions with
// SET (operands, +, -, if_not_exists, list_append), REMOVE, ADD and DELETE
// on top-level attributes. Anything else is an *UnsupportedError or, where
// DynamoDB itself rejects it, a ValidationException.

// tokKind is a lexical token kind.
type tokKind int

const (
	tEOF tokKind = iota
	tIdent
	tName  // #name
	tValue // :value
	tNum   // digits inside [ ]
	tPunct // ( ) , . [ ] = <> < <= > >= + -
)

type token struct {
	kind tokKind
	text string
}

func lex(s string) ([]token, error) {
	var out []token
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '#' || c == ':':
			j := i + 1
			for j < len(s) && isIdentByte(s[j]) {
				j++
			}
			if j == i+1 {
				return nil, validation("Invalid expression: syntax error near %q", s[i:])
			}
			k := tName
			if c == ':' {
				k = tValue
			}
			out = append(out, token{k, s[i:j]})
			i = j
		case isIdentByte(c) && !(c >= '0' && c <= '9'):
			j := i
			for j < len(s) && isIdentByte(s[j]) {
				j++
			}
			out = append(out, token{tIdent, s[i:j]})
			i = j
		case c >= '0' && c <= '9':
			j := i
			for j < len(s) && s[j] >= '0' && s[j] <= '9' {
				j++
			}
			out = append(out, token{tNum, s[i:j]})
			i = j
		case c == '<' && i+1 < len(s) && (s[i+1] == '>' || s[i+1] == '='):
			out = append(out, token{tPunct, s[i : i+2]})
			i += 2
		case c == '>' && i+1 < len(s) && s[i+1] == '=':
			out = append(out, token{tPunct, ">="})
			i += 2
		case strings.IndexByte("(),.[]=<>+-", c) >= 0:
			out = append(out, token{tPunct, string(c)})
			i++
		default:
			return nil, validation("Invalid expression: unexpected character %q", string(c))
		}
	}
	return append(out, token{kind: tEOF}), nil
}

func isIdentByte(c byte) bool {
	return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// pathElem is one step of a document path: an attribute or map member name,
// or a list index.
type pathElem struct {
	name  string
	index int
	isIdx bool
}

type path []pathElem

func (p path) String() string {
	var b strings.Builder
	for i, e := range p {
		switch {
		case e.isIdx:
			fmt.Fprintf(&b, "[%d]", e.index)
		case i > 0:
			b.WriteString("." + e.name)
		default:
			b.WriteString(e.name)
		}
	}
	return b.String()
}

// operand kinds.
type operand interface{ isOperand() }

type (
	pathOperand  struct{ p path }
	valueOperand struct{ v types.AttributeValue }
	sizeOperand  struct{ p path }
	ifNotExists  struct {
		p   path
		alt operand
	}
	listAppend struct{ a, b operand }
	arith      struct {
		op   string // + or -
		a, b operand
	}
)

func (pathOperand) isOperand()  {}
func (valueOperand) isOperand() {}
func (sizeOperand) isOperand()  {}
func (ifNotExists) isOperand()  {}
func (listAppend) isOperand()   {}
func (arith) isOperand()        {}

// condition kinds.
type cond interface{ isCond() }

type (
	andCond struct{ a, b cond }
	orCond  struct{ a, b cond }
	notCond struct{ a cond }
	cmpCond struct {
		op   string
		a, b operand
	}
	betweenCond struct{ a, lo, hi operand }
	inCond      struct {
		a    operand
		list []operand
	}
	funcCond struct {
		name string
		p    path
		arg  operand // attribute_type, begins_with, contains
	}
)

func (andCond) isCond()     {}
func (orCond) isCond()      {}
func (notCond) isCond()     {}
func (cmpCond) isCond()     {}
func (betweenCond) isCond() {}
func (inCond) isCond()      {}
func (funcCond) isCond()    {}

// exprCtx resolves #names and :values for one request and records which
// were used, since DynamoDB rejects unused ones.
type exprCtx struct {
	op         string
	names      map[string]string
	values     map[string]types.AttributeValue
	usedNames  map[string]bool
	usedValues map[string]bool
}

func newExprCtx(op string, names map[string]string, values map[string]types.AttributeValue) *exprCtx {
	return &exprCtx{op: op, names: names, values: values, usedNames: map[string]bool{}, usedValues: map[string]bool{}}
}

// checkUnused reports names or values given but used by no expression.
func (x *exprCtx) checkUnused() error {
	for k := range x.names {
		if !x.usedNames[k] {
			return validation("Value provided in ExpressionAttributeNames unused in expressions: keys: {%s}", k)
		}
	}
	for k := range x.values {
		if !x.usedValues[k] {
			return validation("Value provided in ExpressionAttributeValues unused in expressions: keys: {%s}", k)
		}
	}
	return nil
}

type parser struct {
	x    *exprCtx
	toks []token
	pos  int
	kind string // "condition" or "update", for messages
}

func (p *parser) peek() token { return p.toks[p.pos] }
func (p *parser) next() token {
	t := p.toks[p.pos]
	if t.kind != tEOF {
		p.pos++
	}
	return t
}

func (p *parser) isKeyword(kw string) bool {
	t := p.peek()
	return t.kind == tIdent && strings.EqualFold(t.text, kw)
}

func (p *parser) isPunct(s string) bool {
	t := p.peek()
	return t.kind == tPunct && t.text == s
}

func (p *parser) expect(s string) error {
	if !p.isPunct(s) {
		return p.syntax()
	}
	p.next()
	return nil
}

func (p *parser) syntax() error {
	t := p.peek()
	if t.kind == tEOF {
		return validation("Invalid %sExpression: Syntax error; token: <EOF>", p.kind)
	}
	return validation("Invalid %sExpression: Syntax error; token: %q", p.kind, t.text)
}

func parseCondition(x *exprCtx, kind, s string) (cond, error) {
	toks, err := lex(s)
	if err != nil {
		return nil, err
	}
	p := &parser{x: x, toks: toks, kind: kind}
	c, err := p.or()
	if err != nil {
		return nil, err
	}
	if p.peek().kind != tEOF {
		return nil, p.syntax()
	}
	return c, nil
}

func (p *parser) or() (cond, error) {
	a, err := p.and()
	if err != nil {
		return nil, err
	}
	for p.isKeyword("OR") {
		p.next()
		b, err := p.and()
		if err != nil {
			return nil, err
		}
		a = orCond{a, b}
	}
	return a, nil
}

func (p *parser) and() (cond, error) {
	a, err := p.not()
	if err != nil {
		return nil, err
	}
	for p.isKeyword("AND") {
		p.next()
		b, err := p.not()
		if err != nil {
			return nil, err
		}
		a = andCond{a, b}
	}
	return a, nil
}

func (p *parser) not() (cond, error) {
	if p.isKeyword("NOT") {
		p.next()
		a, err := p.not()
		if err != nil {
			return nil, err
		}
		return notCond{a}, nil
	}
	return p.primary()
}

var condFuncs = map[string]bool{"attribute_exists": true, "attribute_not_exists": true, "attribute_type": true, "begins_with": true, "contains": true}

// primary parses a parenthesised condition, a condition function, or a
// comparison, BETWEEN or IN on an operand.
func (p *parser) primary() (cond, error) {
	if p.isPunct("(") {
		p.next()
		c, err := p.or()
		if err != nil {
			return nil, err
		}
		if err := p.expect(")"); err != nil {
			return nil, err
		}
		return c, nil
	}
	t := p.peek()
	if t.kind == tIdent && p.toks[p.pos+1].kind == tPunct && p.toks[p.pos+1].text == "(" {
		if condFuncs[t.text] {
			return p.funcCall(t.text)
		}
		if t.text != "size" {
			if isUpdateFunc(t.text) {
				return nil, validation("Invalid ConditionExpression: The function is not allowed to be used this way in an expression; function: %s", t.text)
			}
			return nil, unsupported(p.x.op, "function "+t.text+" in a "+p.kind+" expression")
		}
	}
	a, err := p.operand(false)
	if err != nil {
		return nil, err
	}
	switch {
	case p.isKeyword("BETWEEN"):
		return p.between(a)
	case p.isKeyword("IN"):
		return p.in(a)
	}
	t = p.peek()
	if t.kind == tPunct {
		switch t.text {
		case "=", "<>", "<", "<=", ">", ">=":
			p.next()
			b, err := p.operand(false)
			if err != nil {
				return nil, err
			}
			return cmpCond{t.text, a, b}, nil
		}
	}
	return nil, p.syntax()
}

// funcCall parses a call of the condition function name (one of
// condFuncs), from its name: name(path) or name(path, operand).
func (p *parser) funcCall(name string) (cond, error) {
	p.next()
	p.next()
	pa, err := p.path()
	if err != nil {
		return nil, err
	}
	fc := funcCond{name: name, p: pa}
	if name != "attribute_exists" && name != "attribute_not_exists" {
		if err := p.expect(","); err != nil {
			return nil, err
		}
		if fc.arg, err = p.operand(false); err != nil {
			return nil, err
		}
	}
	if err := p.expect(")"); err != nil {
		return nil, err
	}
	return fc, nil
}

// between parses "BETWEEN lo AND hi" after the operand a.
func (p *parser) between(a operand) (cond, error) {
	p.next()
	lo, err := p.operand(false)
	if err != nil {
		return nil, err
	}
	if !p.isKeyword("AND") {
		return nil, p.syntax()
	}
	p.next()
	hi, err := p.operand(false)
	if err != nil {
		return nil, err
	}
	return betweenCond{a, lo, hi}, nil
}

// in parses "IN (operand, ...)" after the operand a.
func (p *parser) in(a operand) (cond, error) {
	p.next()
	if err := p.expect("("); err != nil {
		return nil, err
	}
	var list []operand
	for {
		o, err := p.operand(false)
		if err != nil {
			return nil, err
		}
		list = append(list, o)
		if !p.isPunct(",") {
			break
		}
		p.next()
	}
	if err := p.expect(")"); err != nil {
		return nil, err
	}
	return inCond{a, list}, nil
}

func isUpdateFunc(name string) bool { return name == "if_not_exists" || name == "list_append" }

// operand parses a path, a :value, size(path), and in update expressions
// (inUpdate) if_not_exists and list_append.
func (p *parser) operand(inUpdate bool) (operand, error) {
	t := p.peek()
	switch t.kind {
	case tValue:
		p.next()
		v, ok := p.x.values[t.text]
		if !ok {
			return nil, validation("Invalid %sExpression: An expression attribute value used in expression is not defined; attribute value: %s", p.kind, t.text)
		}
		p.x.usedValues[t.text] = true
		return valueOperand{v}, nil
	case tIdent:
		if p.toks[p.pos+1].kind == tPunct && p.toks[p.pos+1].text == "(" {
			name := t.text
			p.next()
			p.next()
			var o operand
			switch {
			case name == "size" && !inUpdate:
				pa, err := p.path()
				if err != nil {
					return nil, err
				}
				o = sizeOperand{pa}
			case name == "if_not_exists" && inUpdate:
				pa, err := p.path()
				if err != nil {
					return nil, err
				}
				if err := p.expect(","); err != nil {
					return nil, err
				}
				alt, err := p.operand(true)
				if err != nil {
					return nil, err
				}
				o = ifNotExists{pa, alt}
			case name == "list_append" && inUpdate:
				a, err := p.operand(true)
				if err != nil {
					return nil, err
				}
				if err := p.expect(","); err != nil {
					return nil, err
				}
				b, err := p.operand(true)
				if err != nil {
					return nil, err
				}
				o = listAppend{a, b}
			case condFuncs[name] || isUpdateFunc(name) || name == "size":
				return nil, validation("Invalid %sExpression: The function is not allowed to be used this way in an expression; function: %s", p.kind, name)
			default:
				return nil, unsupported(p.x.op, "function "+name)
			}
			if err := p.expect(")"); err != nil {
				return nil, err
			}
			return o, nil
		}
		pa, err := p.path()
		if err != nil {
			return nil, err
		}
		return pathOperand{pa}, nil
	case tName:
		pa, err := p.path()
		if err != nil {
			return nil, err
		}
		return pathOperand{pa}, nil
	}
	return nil, p.syntax()
}

// path parses name(.name | [n])*.
func (p *parser) path() (path, error) {
	first, err := p.pathName()
	if err != nil {
		return nil, err
	}
	out := path{{name: first}}
	for {
		switch {
		case p.isPunct("."):
			p.next()
			n, err := p.pathName()
			if err != nil {
				return nil, err
			}
			out = append(out, pathElem{name: n})
		case p.isPunct("["):
			p.next()
			t := p.next()
			if t.kind != tNum {
				return nil, p.syntax()
			}
			i, err := strconv.Atoi(t.text)
			if err != nil {
				return nil, p.syntax()
			}
			if err := p.expect("]"); err != nil {
				return nil, err
			}
			out = append(out, pathElem{index: i, isIdx: true})
		default:
			return out, nil
		}
	}
}

func (p *parser) pathName() (string, error) {
	t := p.next()
	switch t.kind {
	case tName:
		n, ok := p.x.names[t.text]
		if !ok {
			return "", validation("Invalid %sExpression: An expression attribute name used in the document path is not defined; attribute name: %s", p.kind, t.text)
		}
		p.x.usedNames[t.text] = true
		return n, nil
	case tIdent:
		if reserved[strings.ToUpper(t.text)] {
			return "", validation("Invalid %sExpression: Attribute name is a reserved keyword; reserved keyword: %s", p.kind, t.text)
		}
		return t.text, nil
	}
	p.pos--
	return "", p.syntax()
}

// reserved holds the DynamoDB reserved words most likely to be used as bare
// attribute names (the full list has over 500 entries; a name missing here
// is accepted where DynamoDB would refuse it).
var reserved = map[string]bool{
	"ADD": true, "AND": true, "BETWEEN": true, "BY": true, "COUNT": true, "DATA": true, "DATE": true, "DELETE": true,
	"KEY": true, "KEYS": true, "NAME": true, "NOT": true, "OR": true, "ORDER": true, "REMOVE": true, "SET": true,
	"SIZE": true, "STATUS": true, "TIME": true, "TIMESTAMP": true, "TTL": true, "TYPE": true, "USER": true,
	"VALUE": true, "VALUES": true, "IN": true, "RESULT": true, "OWNER": true, "STATE": true, "LEVEL": true,
	"DURATION": true, "SOURCE": true, "CURRENT": true, "ITEM": true, "ITEMS": true,
}

// update actions.
type setAction struct {
	p path
	v operand
}

type addAction struct {
	p path
	v types.AttributeValue
}

type updateExpr struct {
	set    []setAction
	remove []path
	add    []addAction
	del    []addAction
}

func parseUpdate(x *exprCtx, s string) (*updateExpr, error) {
	toks, err := lex(s)
	if err != nil {
		return nil, err
	}
	p := &parser{x: x, toks: toks, kind: "Update"}
	u := &updateExpr{}
	seen := map[string]bool{}
	for p.peek().kind != tEOF {
		t := p.next()
		kw := strings.ToUpper(t.text)
		if t.kind != tIdent || (kw != "SET" && kw != "REMOVE" && kw != "ADD" && kw != "DELETE") {
			p.pos--
			return nil, p.syntax()
		}
		if seen[kw] {
			return nil, validation("Invalid UpdateExpression: The \"%s\" section can only be used once in an update expression;", kw)
		}
		seen[kw] = true
		for {
			pa, err := p.path()
			if err != nil {
				return nil, err
			}
			switch kw {
			case "SET":
				if err := p.expect("="); err != nil {
					return nil, err
				}
				v, err := p.operand(true)
				if err != nil {
					return nil, err
				}
				if p.isPunct("+") || p.isPunct("-") {
					op := p.next().text
					b, err := p.operand(true)
					if err != nil {
						return nil, err
					}
					v = arith{op, v, b}
				}
				u.set = append(u.set, setAction{pa, v})
			case "REMOVE":
				u.remove = append(u.remove, pa)
			default: // ADD, DELETE: path :value
				t := p.next()
				if t.kind != tValue {
					p.pos--
					return nil, p.syntax()
				}
				v, ok := x.values[t.text]
				if !ok {
					return nil, validation("Invalid UpdateExpression: An expression attribute value used in expression is not defined; attribute value: %s", t.text)
				}
				x.usedValues[t.text] = true
				if kw == "ADD" {
					u.add = append(u.add, addAction{pa, v})
				} else {
					u.del = append(u.del, addAction{pa, v})
				}
			}
			if !p.isPunct(",") {
				break
			}
			p.next()
		}
	}
	if len(seen) == 0 {
		return nil, validation("Invalid UpdateExpression: The expression can not be empty;")
	}
	return u, nil
}

// resolve returns the value at p in item.
func resolve(item map[string]types.AttributeValue, p path) (types.AttributeValue, bool) {
	v, ok := item[p[0].name]
	if !ok {
		return nil, false
	}
	for _, e := range p[1:] {
		switch x := v.(type) {
		case *types.AttributeValueMemberM:
			if e.isIdx {
				return nil, false
			}
			v, ok = x.Value[e.name]
		case *types.AttributeValueMemberL:
			if !e.isIdx || e.index >= len(x.Value) {
				return nil, false
			}
			v, ok = x.Value[e.index], true
		default:
			return nil, false
		}
		if !ok {
			return nil, false
		}
	}
	return v, true
}

// evalCond evaluates c on item (nil: no item).
func evalCond(c cond, item map[string]types.AttributeValue) (bool, error) {
	switch c := c.(type) {
	case andCond:
		a, err := evalCond(c.a, item)
		if err != nil || !a {
			return false, err
		}
		return evalCond(c.b, item)
	case orCond:
		a, err := evalCond(c.a, item)
		if err != nil || a {
			return a, err
		}
		return evalCond(c.b, item)
	case notCond:
		a, err := evalCond(c.a, item)
		return !a, err
	case cmpCond:
		return evalCmp(c, item), nil
	case betweenCond:
		a, aok := condOperand(c.a, item)
		lo, lok := condOperand(c.lo, item)
		hi, hok := condOperand(c.hi, item)
		if !aok || !lok || !hok {
			return false, nil
		}
		n1, ok1 := compare(a, lo)
		n2, ok2 := compare(a, hi)
		return ok1 && ok2 && n1 >= 0 && n2 <= 0, nil
	case inCond:
		a, aok := condOperand(c.a, item)
		if !aok {
			return false, nil
		}
		for _, o := range c.list {
			if b, ok := condOperand(o, item); ok && equal(a, b) {
				return true, nil
			}
		}
		return false, nil
	case funcCond:
		return evalFunc(c, item)
	}
	return false, fmt.Errorf("ddbmem: unknown condition node %T", c)
}

// evalCmp evaluates a comparison: false when an operand is missing (true
// for <>) or the operands are not comparable.
func evalCmp(c cmpCond, item map[string]types.AttributeValue) bool {
	a, aok := condOperand(c.a, item)
	b, bok := condOperand(c.b, item)
	if c.op == "<>" {
		return !aok || !bok || !equal(a, b)
	}
	if !aok || !bok {
		return false
	}
	if c.op == "=" {
		return equal(a, b)
	}
	n, ok := compare(a, b)
	if !ok {
		return false
	}
	switch c.op {
	case "<":
		return n < 0
	case "<=":
		return n <= 0
	case ">":
		return n > 0
	default:
		return n >= 0
	}
}

// evalFunc evaluates a condition function on item.
func evalFunc(c funcCond, item map[string]types.AttributeValue) (bool, error) {
	v, ok := resolve(item, c.p)
	switch c.name {
	case "attribute_exists":
		return ok, nil
	case "attribute_not_exists":
		return !ok, nil
	}
	arg, argOK := condOperand(c.arg, item)
	if !ok || !argOK {
		return false, nil
	}
	switch c.name {
	case "attribute_type":
		s, isS := arg.(*types.AttributeValueMemberS)
		if !isS {
			return false, validation("Invalid ConditionExpression: Incorrect operand type for operator or function; operator or function: attribute_type")
		}
		return typeName(v) == s.Value, nil
	case "begins_with":
		return beginsWith(v, arg), nil
	default:
		return contains(v, arg), nil
	}
}

// beginsWith is begins_with(v, arg): a string or binary prefix.
func beginsWith(v, arg types.AttributeValue) bool {
	ok, _ := onBytes(v, arg, strings.HasPrefix)
	return ok
}

// onBytes applies f to the values of v and arg when v is a string or a
// binary (handled), false unless arg is of the same type.
func onBytes(v, arg types.AttributeValue, f func(s, t string) bool) (result, handled bool) {
	switch x := v.(type) {
	case *types.AttributeValueMemberS:
		y, ok := arg.(*types.AttributeValueMemberS)
		return ok && f(x.Value, y.Value), true
	case *types.AttributeValueMemberB:
		y, ok := arg.(*types.AttributeValueMemberB)
		return ok && f(string(x.Value), string(y.Value)), true
	}
	return false, false
}

// contains is contains(v, arg): a substring, a list element or a set
// member.
func contains(v, arg types.AttributeValue) bool {
	if r, handled := onBytes(v, arg, strings.Contains); handled {
		return r
	}
	switch x := v.(type) {
	case *types.AttributeValueMemberL:
		return slices.ContainsFunc(x.Value, func(e types.AttributeValue) bool { return equal(e, arg) })
	case *types.AttributeValueMemberSS, *types.AttributeValueMemberNS, *types.AttributeValueMemberBS:
		return slices.ContainsFunc(setElems(v), func(e types.AttributeValue) bool { return equal(e, arg) })
	}
	return false
}

// condOperand evaluates an operand of a condition: a path, a value or size.
func condOperand(o operand, item map[string]types.AttributeValue) (types.AttributeValue, bool) {
	switch o := o.(type) {
	case valueOperand:
		return o.v, true
	case pathOperand:
		return resolve(item, o.p)
	case sizeOperand:
		v, ok := resolve(item, o.p)
		if !ok {
			return nil, false
		}
		n, ok := sizeOf(v)
		if !ok {
			return nil, false
		}
		return &types.AttributeValueMemberN{Value: strconv.Itoa(n)}, true
	}
	return nil, false
}

// updateOperand evaluates an operand of a SET action against the item as it
// was before the update.
func updateOperand(o operand, item map[string]types.AttributeValue) (types.AttributeValue, error) {
	switch o := o.(type) {
	case valueOperand:
		return o.v, nil
	case pathOperand:
		v, ok := resolve(item, o.p)
		if !ok {
			return nil, validation("The provided expression refers to an attribute that does not exist in the item")
		}
		return v, nil
	case ifNotExists:
		if v, ok := resolve(item, o.p); ok {
			return v, nil
		}
		return updateOperand(o.alt, item)
	case listAppend:
		a, err := updateOperand(o.a, item)
		if err != nil {
			return nil, err
		}
		b, err := updateOperand(o.b, item)
		if err != nil {
			return nil, err
		}
		la, ok1 := a.(*types.AttributeValueMemberL)
		lb, ok2 := b.(*types.AttributeValueMemberL)
		if !ok1 || !ok2 {
			return nil, validation("Invalid UpdateExpression: Incorrect operand type for operator or function; operator or function: list_append")
		}
		out := make([]types.AttributeValue, 0, len(la.Value)+len(lb.Value))
		out = append(append(out, la.Value...), lb.Value...)
		return &types.AttributeValueMemberL{Value: out}, nil
	case arith:
		a, err := updateOperand(o.a, item)
		if err != nil {
			return nil, err
		}
		b, err := updateOperand(o.b, item)
		if err != nil {
			return nil, err
		}
		na, ok1 := a.(*types.AttributeValueMemberN)
		nb, ok2 := b.(*types.AttributeValueMemberN)
		if !ok1 || !ok2 {
			return nil, validation("An operand in the update expression has an incorrect data type")
		}
		s, err := addNumbers(na.Value, nb.Value, o.op == "-")
		if err != nil {
			return nil, err
		}
		return &types.AttributeValueMemberN{Value: s}, nil
	}
	return nil, fmt.Errorf("ddbmem: unknown operand %T", o)
}

// applyUpdate returns the item u makes of old (nil: absent) with key
// attributes keyAttrs, and the names of the top-level attributes it
// touched. old is not modified.
func applyUpdate(op string, u *updateExpr, old map[string]types.AttributeValue, key map[string]types.AttributeValue, keyAttrs []string) (map[string]types.AttributeValue, []string, error) {
	var targets []path
	for _, a := range u.set {
		targets = append(targets, a.p)
	}
	targets = append(targets, u.remove...)
	for _, a := range u.add {
		targets = append(targets, a.p)
	}
	for _, a := range u.del {
		targets = append(targets, a.p)
	}
	for i, t := range targets {
		if len(t) > 1 {
			return nil, nil, unsupported(op, "update of a nested document path ("+t.String()+")")
		}
		for _, k := range keyAttrs {
			if t[0].name == k {
				return nil, nil, validation("One or more parameter values were invalid: Cannot update attribute %s. This attribute is part of the key", k)
			}
		}
		for _, o := range targets[:i] {
			if o[0].name == t[0].name {
				return nil, nil, validation("Invalid UpdateExpression: Two document paths overlap with each other; must remove or rewrite one of these paths; path one: [%s], path two: [%s]", o, t)
			}
		}
	}
	base := old
	if base == nil {
		base = map[string]types.AttributeValue{}
	}
	out := make(map[string]types.AttributeValue, len(base)+len(u.set))
	for k, v := range base {
		out[k] = v
	}
	for k, v := range key {
		out[k] = v
	}
	touched := make([]string, 0, len(targets))
	for _, a := range u.set {
		v, err := updateOperand(a.v, base)
		if err != nil {
			return nil, nil, err
		}
		out[a.p[0].name] = v
	}
	for _, p := range u.remove {
		delete(out, p[0].name)
	}
	for _, a := range u.add {
		cur, ok := base[a.p[0].name]
		v, err := addValue(cur, ok, a.v)
		if err != nil {
			return nil, nil, err
		}
		out[a.p[0].name] = v
	}
	for _, a := range u.del {
		cur, ok := base[a.p[0].name]
		if !ok {
			if !isSet(a.v) {
				return nil, nil, validation("Invalid UpdateExpression: Incorrect operand type for operator or function; operator: DELETE, operand type: %s", typeName(a.v))
			}
			continue
		}
		v, err := deleteValue(cur, a.v)
		if err != nil {
			return nil, nil, err
		}
		if v == nil {
			delete(out, a.p[0].name)
		} else {
			out[a.p[0].name] = v
		}
	}
	for _, t := range targets {
		touched = append(touched, t[0].name)
	}
	return out, touched, nil
}
