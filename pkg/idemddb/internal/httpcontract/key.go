package httpcontract

import (
	"strings"
)

// HeaderName is the request header carrying the client's idempotency key.
const HeaderName = "Idempotency-Key"

// MaxKeyLen is the longest accepted idempotency key, in bytes (characters)
// after decoding.
const MaxKeyLen = 255

// KeyError says why a header could not be used; its text goes into a
// problem's detail and never contains the header's value.
type KeyError string

func (e KeyError) Error() string { return "idempotency key " + string(e) }

// Why a key is refused.
const (
	ErrKeyMissing  KeyError = "missing"
	ErrKeyEmpty    KeyError = "is empty"
	ErrKeyTooLong  KeyError = "is longer than 255 characters"
	ErrKeyChar     KeyError = "contains a character other than visible ASCII (0x21-0x7E)"
	ErrKeyRepeated KeyError = "has more than one value (a repeated header or a comma-separated list)"
	ErrKeyQuote    KeyError = "is not a valid structured-field string (RFC 9651)"
)

// ParseKey returns the idempotency key carried by the values of every
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
func ParseKey(values []string) (string, error) {
	switch len(values) {
	case 0:
		return "", ErrKeyMissing
	case 1:
	default:
		return "", ErrKeyRepeated
	}
	v := strings.Trim(values[0], " \t")
	if v == "" {
		return "", ErrKeyEmpty
	}
	if v[0] == '"' {
		return parseQuoted(v)
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case c == ',':
			return "", ErrKeyRepeated
		case c == '"':
			return "", ErrKeyQuote
		case c < 0x21 || c > 0x7e:
			return "", ErrKeyChar
		}
	}
	if len(v) > MaxKeyLen {
		return "", ErrKeyTooLong
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
				return "", ErrKeyQuote
			}
			b.WriteByte(v[i])
		case c == '"':
			rest := strings.TrimLeft(v[i+1:], " \t")
			switch {
			case rest == "":
			case rest[0] == ',':
				return "", ErrKeyRepeated
			default:
				return "", ErrKeyQuote
			}
			k := b.String()
			if k == "" {
				return "", ErrKeyEmpty
			}
			if len(k) > MaxKeyLen {
				return "", ErrKeyTooLong
			}
			return k, nil
		case c < 0x21 || c > 0x7e:
			// sf-string allows SP; keys do not (see ParseKey). Anything
			// else outside 0x20-0x7E is invalid in an sf-string anyway.
			return "", ErrKeyChar
		default:
			b.WriteByte(c)
		}
		if b.Len() > MaxKeyLen {
			return "", ErrKeyTooLong
		}
	}
	return "", ErrKeyQuote // no closing quote
}

// QuoteKey returns key as an sf-string.
func QuoteKey(key string) string {
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

// ValidKey reports whether k satisfies the key invariant.
func ValidKey(k string) bool {
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
