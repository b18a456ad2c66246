package template

import (
	"fmt"
	"strings"
)

// ParseOverrides parses parameter overrides the way
// `sam local start-api --parameter-overrides` accepts them: whitespace
// separated `Key=Value` pairs or `ParameterKey=K,ParameterValue=V` groups.
// Values may be quoted with ' or " to contain spaces.
func ParseOverrides(s string) (map[string]string, error) {
	out := map[string]string{}
	for _, tok := range splitQuoted(s) {
		if strings.HasPrefix(tok, "ParameterKey=") {
			rest := strings.TrimPrefix(tok, "ParameterKey=")
			i := strings.Index(rest, ",ParameterValue=")
			if i < 0 {
				return nil, fmt.Errorf("parameter override %q: want ParameterKey=K,ParameterValue=V", tok)
			}
			k, v := rest[:i], rest[i+len(",ParameterValue="):]
			if k == "" {
				return nil, fmt.Errorf("parameter override %q: empty key", tok)
			}
			out[k] = v
			continue
		}
		k, v, ok := strings.Cut(tok, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("parameter override %q: want Key=Value", tok)
		}
		out[k] = v
	}
	return out, nil
}

func splitQuoted(s string) []string {
	var out []string
	var cur strings.Builder
	var quote rune
	in := false
	for _, r := range s {
		switch {
		case quote != 0:
			if r == quote {
				quote = 0
			} else {
				cur.WriteRune(r)
			}
		case r == '\'' || r == '"':
			quote, in = r, true
		case r == ' ' || r == '\t' || r == '\n':
			if in {
				out = append(out, cur.String())
				cur.Reset()
				in = false
			}
		default:
			cur.WriteRune(r)
			in = true
		}
	}
	if in {
		out = append(out, cur.String())
	}
	return out
}
