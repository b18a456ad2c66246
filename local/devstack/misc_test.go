package devstack

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/acme/idemcheckout/ddblocal/localddb"
	"github.com/acme/idemcheckout/internal/samtemplate"
	"github.com/acme/idemcheckout/local/devstack/template"
)

// A missing moto is reported with the install hint, not a stack trace.
func TestEngineMissingPrerequisite(t *testing.T) {
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "local"), 0o755); err != nil {
		t.Fatal(err)
	}
	script := "import sys\nsys.stderr.write(\"motoserver: moto with its server extras is not installed (No module named 'moto').\\nInstall it with:  pip install 'moto[server]'\\n\")\nsys.exit(3)\n"
	if err := os.WriteFile(filepath.Join(root, "local", "motoserver.py"), []byte(script), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := localddb.StartMoto(context.Background(), root, engineOptions(0, ""))
	if !errors.Is(err, ErrPrerequisite) || !strings.Contains(err.Error(), "pip install 'moto[server]'") || strings.Contains(err.Error(), "Traceback") {
		t.Errorf("err = %v", err)
	}
}

// local/env.json (for `sam local start-api --env-vars`) must name the
// template's functions and variables: SAM silently ignores the others.
func TestEnvJSONMatchesTemplate(t *testing.T) {
	tm, err := template.Load("../../template.yaml", nil, "")
	if errors.Is(err, os.ErrNotExist) {
		t.Skip("no template.yaml yet")
	}
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile("../env.json")
	if err != nil {
		t.Fatal(err)
	}
	var envs map[string]map[string]string
	if err := json.Unmarshal(b, &envs); err != nil {
		t.Fatal(err)
	}
	fns := map[string]samtemplate.Function{}
	for _, f := range tm.Functions() {
		fns[f.ID] = f
		if _, ok := envs[f.ID]; !ok {
			t.Errorf("env.json has no entry for function %s", f.ID)
		}
	}
	for id, vars := range envs {
		f, ok := fns[id]
		if !ok {
			t.Errorf("env.json names %s, which is not a function of template.yaml", id)
			continue
		}
		for k := range vars {
			if _, declared := f.Env()[k]; !declared {
				if k == "AWS_ENDPOINT_URL_DYNAMODB" {
					t.Logf("%s: template.yaml does not declare %s, so sam local ignores it (declare it as \"\" in Globals)", id, k)
					continue
				}
				t.Errorf("env.json sets %s.%s, which template.yaml does not declare (sam local would ignore it)", id, k)
			}
		}
	}
}
