package httpcontract

import (
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// The problem lists in the front doors' package documentation ("400
// idempotency-key-missing, ...") say what the problem table says: every
// slug the table has is documented, with the table's status, and no
// document names a slug or a status the table does not have.
func TestDocsMatchTheProblemTable(t *testing.T) {
	table := map[string]map[int]bool{}
	for _, k := range Kinds() {
		sp := k.Spec()
		if sp.Slug == "" || sp.Status < 400 || sp.Title == "" || sp.Detail == "" {
			t.Errorf("row %d is incomplete: %+v", k, sp)
		}
		if table[sp.Slug] == nil {
			table[sp.Slug] = map[int]bool{}
		}
		table[sp.Slug][sp.Status] = true
	}
	line := regexp.MustCompile(`^//\t(\d{3}) ([a-z-]+(?:, [a-z-]+)*)`)
	documented := map[string]bool{}
	for _, doc := range []string{"../../apigw/doc.go", "../../idemhttp/doc.go"} {
		b, err := os.ReadFile(doc)
		if err != nil {
			t.Fatal(err)
		}
		for l := range strings.Lines(string(b)) {
			m := line.FindStringSubmatch(strings.TrimRight(l, "\n"))
			if m == nil {
				continue
			}
			status, _ := strconv.Atoi(m[1])
			for _, slug := range strings.Split(m[2], ", ") {
				documented[slug] = true
				if !table[slug][status] {
					t.Errorf("%s documents %d %s; the table has %s with %v", doc, status, slug, slug, table[slug])
				}
			}
		}
	}
	for slug := range table {
		if !documented[slug] {
			t.Errorf("the table's %s is in no front door's documentation", slug)
		}
	}
}

// A stored response marked not retained keeps its status and no body.
func TestNotRetainedRoundTrip(t *testing.T) {
	enc := EncodeResponse(&Response{Status: 201, Body: "secret", NotRetained: true}, nil)
	r, err := DecodeResponse(enc)
	if err != nil || !r.NotRetained || r.Status != 201 || r.Body != "" {
		t.Fatalf("%+v %v from %q", r, err, enc)
	}
}
