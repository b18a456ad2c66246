package batch_test

import (
	"go/build"
	"slices"
	"testing"
)

// TestNoFrontDoorImport: batch shares the library's internals
// (httpcontract's canonical JSON and hashed keys, obs's options and EMF
// writer) and imports neither HTTP front door.
func TestNoFrontDoorImport(t *testing.T) {
	p, err := build.ImportDir(".", 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, banned := range []string{"github.com/acme/idemcheckout/pkg/idemddb/apigw", "github.com/acme/idemcheckout/pkg/idemddb/idemhttp"} {
		if slices.Contains(p.Imports, banned) {
			t.Errorf("batch imports %s", banned)
		}
	}
	if !slices.Contains(p.Imports, "github.com/acme/idemcheckout/pkg/idemddb/internal/obs") {
		t.Errorf("batch does not use the shared obs package: %v", p.Imports)
	}
}
