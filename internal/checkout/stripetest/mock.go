package stripetest

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// MockVersion is the stripe-mock the request-shape tests run (.ci/run
// installs it).
const MockVersion = "v0.203.0"

// MockInstall is the command that installs stripe-mock.
const MockInstall = "go install github.com/stripe/stripe-mock@" + MockVersion

// StartMock starts stripe-mock (Stripe's official mock server: it checks
// requests against Stripe's OpenAPI description and answers fixtures; it
// keeps no state) on free 127.0.0.1 ports and returns its HTTP base URL;
// it is stopped when the test ends. The binary is $STRIPE_MOCK, or
// stripe-mock on PATH or in $(go env GOPATH)/bin. Without it the test is
// skipped, or fails when CI is set.
func StartMock(t *testing.T) string {
	t.Helper()
	bin := mockBinary()
	if bin == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("stripe-mock not found in CI: " + MockInstall)
		}
		t.Skip("stripe-mock not found (" + MockInstall + "); CI runs this test")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, "-http-addr", "127.0.0.1:0", "-https-addr", "127.0.0.1:0")
	out, err := cmd.StdoutPipe()
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("start %s: %v", bin, err)
	}
	t.Cleanup(func() { cancel(); _ = cmd.Wait() })
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if a, ok := strings.CutPrefix(sc.Text(), "Listening for HTTP at address: "); ok {
				addr <- a
			}
		}
	}()
	select {
	case a := <-addr:
		return "http://" + a
	case <-time.After(30 * time.Second):
		t.Fatal("stripe-mock did not report its HTTP address within 30 s")
	}
	return ""
}

func mockBinary() string {
	if b := os.Getenv("STRIPE_MOCK"); b != "" {
		return b
	}
	if b, err := exec.LookPath("stripe-mock"); err == nil {
		return b
	}
	gopath := os.Getenv("GOPATH")
	if gopath == "" {
		if home, err := os.UserHomeDir(); err == nil {
			gopath = filepath.Join(home, "go")
		}
	}
	for _, dir := range filepath.SplitList(gopath) {
		if b := filepath.Join(dir, "bin", "stripe-mock"); fileExists(b) {
			return b
		}
	}
	return ""
}

func fileExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir()
}
