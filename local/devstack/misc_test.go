package devstack

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func envMap(l []string) map[string]string {
	m := map[string]string{}
	for _, kv := range l {
		k, v, _ := strings.Cut(kv, "=")
		m[k] = v
	}
	return m
}

func TestFunctionEnv(t *testing.T) {
	f := &Function{ID: "Fn", Handler: "bootstrap", Timeout: 7 * time.Second, MemorySize: 512,
		Props: map[string]any{"Environment": map[string]any{"Variables": map[string]any{"TABLE": "T", "AWS_ENDPOINT_URL_DYNAMODB": "", "AWS_REGION": "xx"}}}}
	env := envMap(functionEnv(f, "eu-central-1", "http://127.0.0.1:1234"))
	for k, want := range map[string]string{
		"TABLE": "T", "AWS_ENDPOINT_URL_DYNAMODB": "http://127.0.0.1:1234", "AWS_ENDPOINT_URL_SQS": "http://127.0.0.1:1234",
		"AWS_ENDPOINT_URL_DYNAMODB_STREAMS": "http://127.0.0.1:1234", "AWS_REGION": "eu-central-1", "AWS_DEFAULT_REGION": "eu-central-1",
		"AWS_LAMBDA_FUNCTION_NAME": "Fn", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "512", "AWS_LAMBDA_FUNCTION_TIMEOUT": "7",
		"AWS_LAMBDA_FUNCTION_VERSION": "$LATEST", "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
	} {
		if env[k] != want {
			t.Errorf("%s = %q, want %q", k, env[k], want)
		}
	}
	if _, ok := env["HOME"]; ok {
		t.Error("the developer's environment must not leak into functions")
	}
}

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
	_, err := startEngine(context.Background(), root, 0, "")
	if !errors.Is(err, ErrPrerequisite) || !strings.Contains(err.Error(), "pip install 'moto[server]'") || strings.Contains(err.Error(), "Traceback") {
		t.Errorf("err = %v", err)
	}
}

// local/env.json (for `sam local start-api --env-vars`) must name the
// template's functions and variables: SAM silently ignores the others.
func TestEnvJSONMatchesTemplate(t *testing.T) {
	tm, err := LoadTemplate("../../template.yaml", nil, "")
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
	fns := map[string]Function{}
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

// TestWatchedDirsIncludeTheLibrary: the library is a module of its own that
// the root go.mod replaces with its folder, so hot reload must watch its
// packages as well as the main module's: an edit of pkg/idemddb rebuilds
// the functions that import it.
func TestWatchedDirsIncludeTheLibrary(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s := &Stack{cfg: Config{Root: testRoot}}
	dirs, err := s.packageDirs(ctx, &Function{ID: "CreateOrderFunction", CodeURI: "functions/create-order/"})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"functions/create-order", "internal/checkout", "pkg/idemddb", "pkg/idemddb/apigw"} {
		if !slices.Contains(dirs, filepath.Join(testRoot, filepath.FromSlash(want))) {
			t.Errorf("hot reload does not watch %s; it watches %v", want, dirs)
		}
	}
}
