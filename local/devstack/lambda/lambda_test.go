package lambda

import (
	"context"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/acme/idemcheckout/internal/samtemplate"
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
	f := &samtemplate.Function{ID: "Fn", Handler: "bootstrap", Timeout: 7 * time.Second, MemorySize: 512,
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

// A Lambda error document is a function error; a proxy response that
// happens to carry an errorMessage is not.
func TestFunctionErrorPayload(t *testing.T) {
	if msg, ok := functionError([]byte(`{"errorMessage":"boom","errorType":"errorString"}`)); !ok || !strings.Contains(msg, "boom") {
		t.Errorf("functionError = %q %v", msg, ok)
	}
	if _, ok := functionError([]byte(`{"statusCode":200,"errorMessage":"x"}`)); ok {
		t.Error("an envelope is not a function error")
	}
}

// TestWatchedDirsIncludeTheLibrary: the library is a module of its own that
// the root go.mod replaces with its folder, so hot reload must watch its
// packages as well as the main module's: an edit of pkg/idemddb rebuilds
// the functions that import it.
func TestWatchedDirsIncludeTheLibrary(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	testRoot, err := filepath.Abs("../../..")
	if err != nil {
		t.Fatal(err)
	}
	dirs, err := packageDirs(ctx, testRoot, &samtemplate.Function{ID: "CreateOrderFunction", CodeURI: "functions/create-order/"})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"functions/create-order", "internal/checkout", "pkg/idemddb", "pkg/idemddb/apigw"} {
		if !slices.Contains(dirs, filepath.Join(testRoot, filepath.FromSlash(want))) {
			t.Errorf("hot reload does not watch %s; it watches %v", want, dirs)
		}
	}
}
