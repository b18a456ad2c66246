package lambda

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/acme/idemcheckout/ddblocal/localddb"
	"github.com/acme/idemcheckout/internal/samtemplate"
)

// Builds is what Build produces: the emulator and one bootstrap per
// function, by logical id.
type Builds struct {
	RIE        string
	Bootstraps map[string]string
}

// Build builds the emulator (once, into cfg.CacheDir) and fns into
// generation 0 of their build directories, saying what it fetches and
// builds (the first run downloads modules).
func Build(ctx context.Context, cfg Config, fns []samtemplate.Function) (Builds, error) {
	b := Builds{Bootstraps: map[string]string{}}
	var err error
	b.RIE, err = buildRIE(ctx, cfg.CacheDir, cfg.Logf)
	if err != nil {
		return b, err
	}
	for _, f := range fns {
		start := time.Now()
		cfg.Logf("building %s (%s) ...", f.ID, codePackage(&f))
		b.Bootstraps[f.ID], err = buildFunction(ctx, cfg.Root, cfg.buildDir(f.ID, 0), &f)
		if err != nil {
			return b, err
		}
		cfg.Logf("built %s in %s", f.ID, time.Since(start).Round(10*time.Millisecond))
	}
	return b, nil
}

// rieModule is the pinned AWS Lambda Runtime Interface Emulator, built from
// the Go module proxy.
const rieModule = "github.com/aws/aws-lambda-runtime-interface-emulator/cmd/aws-lambda-rie@v0.0.0-20261030222936-bef5c4ba774d"

// GoTool returns the go command that builds the functions and the
// emulator; its absence is a localddb.ErrPrerequisite saying how to get it.
func GoTool() (string, error) {
	g, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("%w: the Go toolchain (go) is not on PATH. Install Go 1.26+ from https://go.dev/doc/install", localddb.ErrPrerequisite)
	}
	return g, nil
}

// buildRIE builds the emulator once into cacheDir and returns its path,
// saying so: the first build downloads it from the Go module proxy.
func buildRIE(ctx context.Context, cacheDir string, logf func(string, ...any)) (string, error) {
	ver := rieModule[strings.LastIndexByte(rieModule, '@')+1:]
	dir := filepath.Join(cacheDir, "aws-lambda-rie-"+ver+"-"+runtime.GOOS+"-"+runtime.GOARCH)
	bin := filepath.Join(dir, "aws-lambda-rie")
	if fi, err := os.Stat(bin); err == nil && fi.Mode().IsRegular() {
		return bin, nil
	}
	g, err := GoTool()
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	tmp, err := os.MkdirTemp(dir, "build-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	logf("first run: fetching and building the AWS Lambda Runtime Interface Emulator (%s) from the Go module proxy into %s ...", rieModule, dir)
	start := time.Now()
	cmd := exec.CommandContext(ctx, g, "install", rieModule)
	cmd.Dir = tmp
	cmd.Env = append(os.Environ(), "GOBIN="+tmp, "CGO_ENABLED=0", "GOFLAGS=-buildvcs=false")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build the Lambda Runtime Interface Emulator (go install %s; it needs the Go module proxy once): %v\n%s", rieModule, err, out)
	}
	if err := os.Rename(filepath.Join(tmp, "aws-lambda-rie"), bin); err != nil {
		return "", err
	}
	logf("built the emulator in %s", time.Since(start).Round(100*time.Millisecond))
	return bin, nil
}

// buildFunction builds one function's CodeUri as a Linux bootstrap for the
// host architecture (the template may say arm64; locally the host runs it)
// into dir/bootstrap. A compile error is a *BuildError.
func buildFunction(ctx context.Context, root, dir string, f *samtemplate.Function) (string, error) {
	g, err := GoTool()
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "bootstrap")
	cmd := exec.CommandContext(ctx, g, "build", "-tags", "lambda.norpc", "-o", bin, codePackage(f))
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+runtime.GOARCH)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", &BuildError{Function: f.ID, CodeURI: f.CodeURI, Output: strings.TrimSpace(string(out)), Err: err}
	}
	return bin, nil
}

// codePackage is the Go package path of a function's CodeUri, relative to
// the module root.
func codePackage(f *samtemplate.Function) string {
	return "./" + strings.TrimPrefix(filepath.ToSlash(filepath.Clean(f.CodeURI)), "./")
}

// BuildError is a function that does not compile; Output is the compiler's.
type BuildError struct {
	Function, CodeURI, Output string
	Err                       error
}

// Error names the function and gives the compiler output.
func (e *BuildError) Error() string {
	return fmt.Sprintf("build %s (CodeUri %s): %v\n%s", e.Function, e.CodeURI, e.Err, e.Output)
}

// Unwrap returns the go command's error.
func (e *BuildError) Unwrap() error { return e.Err }

// functionEnv is the environment one function instance runs with: the
// template's variables plus what Lambda itself sets, and nothing from the
// developer's shell (so AWS_PROFILE and friends cannot leak in).
func functionEnv(f *samtemplate.Function, region, engineEndpoint string) []string {
	env := map[string]string{
		"PATH": "/usr/local/bin:/usr/bin:/bin",
		"TZ":   "UTC",
		"LANG": "en_US.UTF-8",
	}
	for k, v := range f.EnvStrings() {
		env[k] = v
	}
	// Set after the template's variables: Lambda reserves these names, and
	// locally the engine endpoint always wins (a template may declare
	// AWS_ENDPOINT_URL_DYNAMODB: "" so that `sam local --env-vars` can set it).
	for k, v := range map[string]string{
		"AWS_LAMBDA_FUNCTION_NAME":        f.ID,
		"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": strconv.Itoa(f.MemoryOrDefault()),
		"AWS_LAMBDA_FUNCTION_TIMEOUT":     strconv.Itoa(int(f.TimeoutOrDefault() / time.Second)),
		"AWS_LAMBDA_FUNCTION_VERSION":     "$LATEST",
		"AWS_LAMBDA_LOG_GROUP_NAME":       "/aws/lambda/" + f.ID,
		"AWS_LAMBDA_LOG_STREAM_NAME":      "local",
		"AWS_REGION":                      region,
		"AWS_DEFAULT_REGION":              region,
		"AWS_ACCESS_KEY_ID":               "test",
		"AWS_SECRET_ACCESS_KEY":           "test",
		"AWS_SESSION_TOKEN":               "test",
		"AWS_CONFIG_FILE":                 "/dev/null",
		"AWS_SHARED_CREDENTIALS_FILE":     "/dev/null",
		"AWS_EC2_METADATA_DISABLED":       "true",
		"AWS_ENDPOINT_URL_DYNAMODB":       engineEndpoint,
		// moto serves DynamoDB Streams and SQS on the same endpoint.
		"AWS_ENDPOINT_URL_DYNAMODB_STREAMS": engineEndpoint,
		"AWS_ENDPOINT_URL_SQS":              engineEndpoint,
		// Secrets are read from the engine too, never from AWS.
		"AWS_ENDPOINT_URL_SECRETS_MANAGER": engineEndpoint,
		"_HANDLER":                         f.Handler,
	} {
		env[k] = v
	}
	keys := make([]string, 0, len(env))
	for k := range env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]string, 0, len(env))
	for _, k := range keys {
		out = append(out, k+"="+env[k])
	}
	return out
}
