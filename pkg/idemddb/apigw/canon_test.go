package apigw

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"testing"
)

func TestCanonicalJSON(t *testing.T) {
	for _, tc := range []struct{ a, b string }{
		{`{"a":1,"b":2}`, "{ \"b\" : 2 ,\n\t\"a\" : 1 }"},
		{`{"x":{"b":[1,2],"a":null}}`, `{"x":{"a":null,"b":[1,2]}}`},
		{`[1]`, `[1.0]`},
		{`[1]`, `[1e0]`},
		{`[1]`, `[0.1e1]`},
		{`[100]`, `[1E2]`},
		{`[100]`, `[1e+2]`},
		{`[0]`, `[-0.0]`},
		{`[0.5]`, `[5e-1]`},
		{`["A"]`, `["\u0041"]`},
		{`["\/"]`, `["/"]`},
		{`[true,false,null]`, ` [ true , false , null ] `},
	} {
		ca, err := canonicalJSON([]byte(tc.a))
		if err != nil {
			t.Fatalf("%s: %v", tc.a, err)
		}
		cb, err := canonicalJSON([]byte(tc.b))
		if err != nil {
			t.Fatalf("%s: %v", tc.b, err)
		}
		if !bytes.Equal(ca, cb) {
			t.Errorf("canonical(%s) = %s != canonical(%s) = %s", tc.a, ca, tc.b, cb)
		}
	}
	for _, tc := range []struct{ a, b string }{
		{`[0.1]`, `[0.10000000000000001]`},
		{`[1]`, `["1"]`},
		{`{"a":1}`, `{"a":1,"b":null}`},
		{`[1,2]`, `[2,1]`},
		{`[-1]`, `[1]`},
	} {
		ca, _ := canonicalJSON([]byte(tc.a))
		cb, _ := canonicalJSON([]byte(tc.b))
		if bytes.Equal(ca, cb) {
			t.Errorf("canonical(%s) == canonical(%s)", tc.a, tc.b)
		}
	}
	for _, bad := range []string{`{"a":1,"a":2}`, `{"a":1`, `[1] [2]`, `nope`, "[\"\xff\"]", `["\ud800"]`, ``} {
		if c, err := canonicalJSON([]byte(bad)); err == nil {
			t.Errorf("canonicalJSON(%q) = %s, want an error", bad, c)
		}
	}
	if c, _ := canonicalJSON([]byte(`{"b":1.50,"a":"x\n"}`)); string(c) != `{"a":"x\n","b":15e-1}` {
		t.Errorf("canonical form %s", c)
	}
}

// permute re-encodes a decoded JSON value with object members in a random
// order and random insignificant whitespace.
func permute(r *rand.Rand, v any, buf *bytes.Buffer) {
	ws := func() {
		if r.IntN(3) == 0 {
			buf.WriteString(" \n\t"[:r.IntN(3)+1])
		}
	}
	ws()
	switch x := v.(type) {
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		r.Shuffle(len(keys), func(i, j int) { keys[i], keys[j] = keys[j], keys[i] })
		buf.WriteByte('{')
		for i, k := range keys {
			if i > 0 {
				buf.WriteByte(',')
			}
			kb, _ := json.Marshal(k)
			buf.Write(kb)
			ws()
			buf.WriteByte(':')
			permute(r, x[k], buf)
		}
		buf.WriteByte('}')
	case []any:
		buf.WriteByte('[')
		for i, e := range x {
			if i > 0 {
				buf.WriteByte(',')
			}
			permute(r, e, buf)
		}
		buf.WriteByte(']')
	default:
		b, _ := json.Marshal(x)
		buf.Write(b)
	}
	ws()
}

func FuzzCanonicalJSON(f *testing.F) {
	for _, s := range []string{`{"a":1,"b":[true,null,"x"]}`, `[1.50e3,-0,0.001]`, `{"z":{"y":{"x":"\u00e9\n"}}}`, `"s"`, `{"a":1,"a":2}`, `[`, `1e999999999999999999999`} {
		f.Add([]byte(s), uint64(1))
	}
	f.Fuzz(func(t *testing.T, b []byte, seed uint64) {
		c, err := canonicalJSON(b)
		if err != nil {
			return
		}
		if !json.Valid(c) {
			t.Fatalf("canonical form %q of %q is not JSON", c, b)
		}
		c2, err := canonicalJSON(c)
		if err != nil || !bytes.Equal(c, c2) {
			t.Fatalf("not idempotent: %q -> %q -> %q (%v)", b, c, c2, err)
		}
		var v any
		d := json.NewDecoder(bytes.NewReader(b))
		d.UseNumber()
		if d.Decode(&v) != nil {
			t.Fatalf("accepted %q that encoding/json rejects", b)
		}
		var buf bytes.Buffer
		permute(rand.New(rand.NewPCG(seed, seed>>1)), v, &buf)
		c3, err := canonicalJSON(buf.Bytes())
		if err != nil || !bytes.Equal(c, c3) {
			t.Fatalf("permutation %q of %q canonicalised to %q, want %q (%v)", buf.Bytes(), b, c3, c, err)
		}
	})
}
