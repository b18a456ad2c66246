package apigw

import (
	"strings"
	"testing"
	"time"
)

func TestParseKey(t *testing.T) {
	long := strings.Repeat("k", 255)
	for _, tc := range []struct {
		name   string
		values []string
		want   string // "" means rejected
		miss   bool
	}{
		{"token", []string{"abc-123"}, "abc-123", false},
		{"uuid", []string{"550e8400-e29b-41d4-a716-446655440000"}, "550e8400-e29b-41d4-a716-446655440000", false},
		{"sf-string", []string{`"abc"`}, "abc", false},
		{"sf-string escapes", []string{`"a\"b\\c"`}, `a"b\c`, false},
		{"comma inside quotes", []string{`"a,b"`}, "a,b", false},
		{"OWS trimmed", []string{" \tabc \t"}, "abc", false},
		{"OWS around quotes", []string{`  "abc"  `}, "abc", false},
		{"255 chars", []string{long}, long, false},
		{"255 chars quoted", []string{`"` + long + `"`}, long, false},
		{"token with backslash", []string{`a\b`}, `a\b`, false},
		{"missing", nil, "", true},
		{"empty", []string{""}, "", false},
		{"whitespace only", []string{"  "}, "", false},
		{"empty sf-string", []string{`""`}, "", false},
		{"256 chars", []string{long + "k"}, "", false},
		{"256 chars quoted", []string{`"` + long + `k"`}, "", false},
		{"non-ASCII", []string{"caf\u00e9"}, "", false},
		{"non-ASCII quoted", []string{"\"caf\u00e9\""}, "", false},
		{"control char", []string{"a\x01b"}, "", false},
		{"DEL", []string{"a\x7fb"}, "", false},
		{"inner space", []string{"a b"}, "", false},
		{"space in quotes", []string{`"a b"`}, "", false},
		{"inner tab", []string{"a\tb"}, "", false},
		{"repeated header", []string{"a", "b"}, "", false},
		{"comma list", []string{"a, b"}, "", false},
		{"comma list quoted", []string{`"a", "b"`}, "", false},
		{"trailing comma", []string{"abc,"}, "", false},
		{"unterminated", []string{`"abc`}, "", false},
		{"bad escape", []string{`"a\nb"`}, "", false},
		{"parameters", []string{`"abc";x=1`}, "", false},
		{"quote inside token", []string{`ab"c`}, "", false},
		{"text after quotes", []string{`"abc"def`}, "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseKey(tc.values)
			if tc.want == "" {
				if err == nil {
					t.Fatalf("parseKey(%q) = %q, want an error", tc.values, got)
				}
				if (err == errKeyMissing) != tc.miss {
					t.Fatalf("parseKey(%q) error %v, missing=%v", tc.values, err, tc.miss)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("parseKey(%q) = %q, %v; want %q", tc.values, got, err, tc.want)
			}
		})
	}
}

func TestQuoteKeyRoundTrip(t *testing.T) {
	for _, k := range []string{"abc", `a"b`, `a\b`, "a,b", `\"`} {
		got, err := parseKey([]string{quoteKey(k)})
		if err != nil || got != k {
			t.Fatalf("parseKey(quoteKey(%q)) = %q, %v", k, got, err)
		}
	}
}

func TestCeilSeconds(t *testing.T) {
	for _, tc := range []struct {
		d    time.Duration
		want int
	}{{0, 1}, {-time.Second, 1}, {time.Millisecond, 1}, {time.Second, 1}, {1001 * time.Millisecond, 2}, {29999 * time.Millisecond, 30}} {
		if got := ceilSeconds(tc.d); got != tc.want {
			t.Errorf("ceilSeconds(%v) = %d, want %d", tc.d, got, tc.want)
		}
	}
}

func FuzzParseKey(f *testing.F) {
	for _, s := range []string{"abc", `"abc"`, `"a\"b\\c"`, " abc ", `"a,b"`, "a,b", `""`, "", "caf\u00e9", "a\x00", `"abc";x`, strings.Repeat("x", 256)} {
		f.Add(s, "")
	}
	f.Add("a", "b")
	f.Fuzz(func(t *testing.T, v, second string) {
		values := []string{v}
		if second != "" {
			values = append(values, second)
		}
		k, err := parseKey(values)
		if err != nil {
			if k != "" {
				t.Fatalf("rejected value returned key %q", k)
			}
			return
		}
		if len(values) != 1 {
			t.Fatalf("accepted %d values", len(values))
		}
		if !validKey(k) {
			t.Fatalf("accepted invalid key %q from %q", k, v)
		}
		// Every accepted key round-trips through its sf-string form.
		if k2, err := parseKey([]string{quoteKey(k)}); err != nil || k2 != k {
			t.Fatalf("quoted form of %q parsed as %q, %v", k, k2, err)
		}
		// A key accepted as a bare token is the trimmed value and parses
		// to itself.
		if tv := strings.Trim(v, " \t"); tv[0] != '"' {
			if k != tv {
				t.Fatalf("token %q decoded as %q", tv, k)
			}
			if k2, err := parseKey([]string{k}); err != nil || k2 != k {
				t.Fatalf("token %q does not round-trip: %q, %v", k, k2, err)
			}
		}
	})
}
