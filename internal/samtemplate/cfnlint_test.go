package samtemplate

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestCfnLint runs cfn-lint (which applies the SAM transform) on
// template.yaml and fails on any finding, warnings and informational ones
// included in its output. CI installs cfn-lint; elsewhere the test skips.
func TestCfnLint(t *testing.T) {
	bin, err := exec.LookPath("cfn-lint")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("cfn-lint is not on PATH in CI: pip install cfn-lint")
		}
		t.Skip("cfn-lint is not on PATH (pip install cfn-lint); CI runs this check")
	}
	_, e := loadRepoTemplate(t)
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "template.yaml")
	cmd.Dir = e.Root
	out, err := cmd.CombinedOutput()
	if s := strings.TrimSpace(string(out)); err != nil || s != "" {
		t.Errorf("cfn-lint template.yaml: %v\n%s", err, s)
	}
}
