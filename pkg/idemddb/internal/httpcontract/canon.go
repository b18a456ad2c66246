package httpcontract

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"math/big"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"
)

// CanonicalJSON returns a canonical form of the JSON text b, so that two
// documents with the same canonical form are the same request for
// fingerprinting:
//
//   - insignificant whitespace is removed;
//   - object members are sorted by key, comparing the keys' UTF-8 bytes;
//   - strings are re-escaped minimally (\" \\ \b \f \n \r \t, \u00XX for
//     other control characters, everything else literal), so "\u0041" and
//     "A" are equal;
//   - numbers are compared by exact decimal value, never through float64:
//     1, 1.0, 1e0 and 0.1e1 are equal, -0 equals 0, while 0.1 and
//     0.10000000000000001 stay distinct. A number is written as its
//     significant digits followed by an exponent when not zero ("15e-1").
//
// It fails, and the caller fingerprints the raw bytes instead, on invalid
// JSON, invalid UTF-8, a \uD800-\uDFFF escape (which a decoder would turn
// into U+FFFD, merging distinct documents), trailing data, and an object
// with a duplicate key (whose meaning differs between parsers).
func CanonicalJSON(b []byte) ([]byte, error) {
	if !utf8.Valid(b) {
		return nil, errors.New("invalid UTF-8")
	}
	if hasSurrogateEscape(b) {
		return nil, errors.New("surrogate escape")
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	out := make([]byte, 0, len(b))
	out, err := canonValue(dec, out, 0)
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("trailing data after JSON value")
	}
	return out, nil
}

// hasSurrogateEscape reports whether b may contain a \uD800-\uDFFF escape.
// False positives (an escaped backslash followed by "uD8..") only cost the
// canonicalisation.
func hasSurrogateEscape(b []byte) bool {
	for {
		i := bytes.Index(b, []byte(`\u`))
		if i < 0 || i+3 >= len(b) {
			return false
		}
		if c, d := b[i+2], b[i+3]; (c == 'd' || c == 'D') && strings.IndexByte("89abcdefABCDEF", d) >= 0 {
			return true
		}
		b = b[i+2:]
	}
}

// maxDepth bounds nesting (and recursion); deeper documents are
// fingerprinted raw.
const maxDepth = 512

func canonValue(dec *json.Decoder, out []byte, depth int) ([]byte, error) {
	if depth > maxDepth {
		return nil, errors.New("nesting too deep")
	}
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '{':
			return canonObject(dec, out, depth+1)
		case '[':
			out = append(out, '[')
			for i := 0; dec.More(); i++ {
				if i > 0 {
					out = append(out, ',')
				}
				if out, err = canonValue(dec, out, depth+1); err != nil {
					return nil, err
				}
			}
			if _, err := dec.Token(); err != nil { // ']'
				return nil, err
			}
			return append(out, ']'), nil
		}
		return nil, errors.New("unexpected delimiter")
	case string:
		return appendString(out, t), nil
	case json.Number:
		return appendNumber(out, string(t))
	case bool:
		return strconv.AppendBool(out, t), nil
	case nil:
		return append(out, "null"...), nil
	}
	return nil, errors.New("unexpected token")
}

func canonObject(dec *json.Decoder, out []byte, depth int) ([]byte, error) {
	type member struct {
		key string
		val []byte
	}
	var members []member
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		k, ok := tok.(string)
		if !ok {
			return nil, errors.New("object key is not a string")
		}
		if seen[k] {
			return nil, errors.New("duplicate object key")
		}
		seen[k] = true
		v, err := canonValue(dec, nil, depth)
		if err != nil {
			return nil, err
		}
		members = append(members, member{k, v})
	}
	if _, err := dec.Token(); err != nil { // '}'
		return nil, err
	}
	sort.Slice(members, func(i, j int) bool { return members[i].key < members[j].key })
	out = append(out, '{')
	for i, m := range members {
		if i > 0 {
			out = append(out, ',')
		}
		out = appendString(out, m.key)
		out = append(out, ':')
		out = append(out, m.val...)
	}
	return append(out, '}'), nil
}

func appendString(out []byte, s string) []byte {
	const hex = "0123456789abcdef"
	out = append(out, '"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch c {
		case '"', '\\':
			out = append(out, '\\', c)
		case '\b':
			out = append(out, '\\', 'b')
		case '\f':
			out = append(out, '\\', 'f')
		case '\n':
			out = append(out, '\\', 'n')
		case '\r':
			out = append(out, '\\', 'r')
		case '\t':
			out = append(out, '\\', 't')
		default:
			if c < 0x20 {
				out = append(out, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			} else {
				out = append(out, c)
			}
		}
	}
	return append(out, '"')
}

// appendNumber appends the canonical form of a JSON number literal (already
// validated by the decoder): "0", or an optional "-", the significant
// digits without leading or trailing zeros, and "e<exp>" when exp != 0.
func appendNumber(out []byte, lit string) ([]byte, error) {
	neg := strings.HasPrefix(lit, "-")
	lit = strings.TrimPrefix(lit, "-")
	mant, expLit, _ := strings.Cut(strings.ToLower(lit), "e")
	intPart, frac, _ := strings.Cut(mant, ".")
	digits := strings.TrimLeft(intPart+frac, "0")
	if digits == "" {
		return append(out, '0'), nil
	}
	trimmed := strings.TrimRight(digits, "0")
	// value = digits × 10^(exp - len(frac)); moving trailing zeros into the
	// exponent keeps it exact.
	shift := int64(len(digits)-len(trimmed)) - int64(len(frac))
	exp := new(big.Int)
	if expLit != "" {
		if _, ok := exp.SetString(strings.TrimPrefix(expLit, "+"), 10); !ok {
			return nil, errors.New("bad exponent")
		}
	}
	exp.Add(exp, big.NewInt(shift))
	if neg {
		out = append(out, '-')
	}
	out = append(out, trimmed...)
	if exp.Sign() != 0 {
		out = append(out, 'e')
		out = exp.Append(out, 10)
	}
	return out, nil
}
