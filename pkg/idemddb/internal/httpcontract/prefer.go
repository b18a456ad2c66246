package httpcontract

import (
	"strconv"
	"strings"
	"time"
)

// PreferHeader is the request header carrying RFC 7240 preferences; the
// contract honours "wait". PreferenceAppliedHeader answers it.
const (
	PreferHeader            = "Prefer"
	PreferenceAppliedHeader = "Preference-Applied"
)

// DefaultMaxWait caps the wait a client asks for with "Prefer: wait=N"
// (the front doors' WithMaxWait).
const DefaultMaxWait = 10 * time.Second

// PreferWait returns the "wait" preference of the Prefer header values
// (RFC 7240: a comma-separated list of preferences, each a token with an
// optional "=" value, a token or a quoted string, and ";" parameters;
// names match case-insensitively; only the first "wait" counts). ok is
// false when there is none or its value is not a number of seconds.
func PreferWait(values []string) (secs int64, ok bool) {
	for _, v := range values {
		for _, pref := range splitOutsideQuotes(v, ',') {
			pref, _, _ = strings.Cut(pref, ";")
			name, val, hasVal := strings.Cut(pref, "=")
			if !strings.EqualFold(strings.TrimSpace(name), "wait") {
				continue
			}
			if !hasVal {
				return 0, false
			}
			val = strings.TrimSpace(val)
			if len(val) >= 2 && val[0] == '"' && val[len(val)-1] == '"' {
				val = val[1 : len(val)-1]
			}
			n, err := strconv.ParseUint(val, 10, 63)
			if err != nil {
				if ne, isNum := err.(*strconv.NumError); isNum && ne.Err == strconv.ErrRange {
					return 1 << 62, true // absurdly long: the cap applies
				}
				return 0, false
			}
			return int64(n), true
		}
	}
	return 0, false
}

// splitOutsideQuotes splits s at sep, except inside double quotes (with
// backslash escapes).
func splitOutsideQuotes(s string, sep byte) []string {
	var parts []string
	start, quoted := 0, false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\\' && quoted:
			i++
		case c == '"':
			quoted = !quoted
		case c == sep && !quoted:
			parts = append(parts, s[start:i])
			start = i + 1
		}
	}
	return append(parts, s[start:])
}

// WaitFor returns how long a request that finds its key in progress waits,
// and the Preference-Applied value to answer with when the wait honours
// the client's preference ("" when it does not).
func (c *Config) WaitFor(prefer []string) (time.Duration, string) {
	if c.MaxWait > 0 {
		if secs, ok := PreferWait(prefer); ok {
			d := c.MaxWait
			if secs < int64(c.MaxWait/time.Second) {
				d = time.Duration(secs) * time.Second
			}
			return d, "wait=" + strconv.FormatInt(int64(d/time.Second), 10)
		}
	}
	return c.Wait, ""
}
