package apigw

import (
	"strings"
)

// HeaderName is the request header carrying the client's idempotency key.
const HeaderName = "Idempotency-Key"

// MaxKeyLen is the longest accepted idempotency key, in bytes (characters)
// after decoding.
const MaxKeyLen = 255

// keyError says why a header could not be used; its text goes into a
// problem's detail and never contains the header's value.
type keyError string

func (e keyError) Error() string { return "idempotency key " + string(e) }

const (
	errKeyMissing  keyError = "missing"
	errKeyEmpty    keyError = "is empty"
	errKeyTooLong  keyError = "is longer than 255 characters"
	errKeyChar     keyError = "contains a character other than visible ASCII (0x21-0x7E)"
	errKeyRepeated keyError = "has more than one value (a repeated header or a comma-separated list)"
	errKeyQuote    keyError = "is not a valid structured-field string (RFC 9651)"
)

// parseKey returns the idempotency key carried by the values of every
// Idempotency-Key header field of a request (all spellings of the name, all
// occurrences). The field must occur once and hold exactly one key in one of
// two forms, after trimming optional whitespace (SP, HTAB) at both ends:
//
//   - an RFC 9651 sf-string, `"..."`, whose only escapes are \" and \\;
//     the decoded content is the key; parameters (`"k";a=1`) are rejected;
//   - a bare token (the form Stripe documents): the whole value is the key.
//
// Either way the key is 1 to MaxKeyLen characters in 0x21-0x7E: a space,
// although sf-string allows it, is rejected, so that every key has one
// spelling in both forms (`abc` and `"abc"` are the same key). A bare token
// cannot contain `"` or `,` (a comma outside quotes makes a list, which is
// more than one value); a quoted key can contain both.
func parseKey(values []string) (string, error) {
	switch len(values) {
	case 0:
		return "", errKeyMissing
	case 1:
	default:
		return "", errKeyRepeated
	}
	v := strings.Trim(values[0], " \t")
	if v == "" {
		return "", errKeyEmpty
	}
	if v[0] == '"' {
		return parseQuoted(v)
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case c == ',':
			return "", errKeyRepeated
		case c == '"':
			return "", errKeyQuote
		case c < 0x21 || c > 0x7e:
			return "", errKeyChar
		}
	}
	if len(v) > MaxKeyLen {
		return "", errKeyTooLong
	}
	return v, nil
}

// parseQuoted decodes an sf-string that starts at v[0] and must end the value.
func parseQuoted(v string) (string, error) {
	var b strings.Builder
	i := 1
	for ; i < len(v); i++ {
		c := v[i]
		switch {
		case c == '\\':
			i++
			if i == len(v) || (v[i] != '"' && v[i] != '\\') {
				return "", errKeyQuote
			}
			b.WriteByte(v[i])
		case c == '"':
			rest := strings.TrimLeft(v[i+1:], " \t")
			switch {
			case rest == "":
			case rest[0] == ',':
				return "", errKeyRepeated
			default:
				return "", errKeyQuote
			}
			k := b.String()
			if k == "" {
				return "", errKeyEmpty
			}
			if len(k) > MaxKeyLen {
				return "", errKeyTooLong
			}
			return k, nil
		case c < 0x21 || c > 0x7e:
			// sf-string allows SP; keys do not (see parseKey). Anything
			// else outside 0x20-0x7E is invalid in an sf-string anyway.
			return "", errKeyChar
		default:
			b.WriteByte(c)
		}
		if b.Len() > MaxKeyLen {
			return "", errKeyTooLong
		}
	}
	return "", errKeyQuote // no closing quote
}

// quoteKey returns key as an sf-string.
func quoteKey(key string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(key); i++ {
		if key[i] == '"' || key[i] == '\\' {
			b.WriteByte('\\')
		}
		b.WriteByte(key[i])
	}
	b.WriteByte('"')
	return b.String()
}

// validKey reports whether k satisfies the key invariant.
func validKey(k string) bool {
	if len(k) < 1 || len(k) > MaxKeyLen {
		return false
	}
	for i := 0; i < len(k); i++ {
		if k[i] < 0x21 || k[i] > 0x7e {
			return false
		}
	}
	return true
}
