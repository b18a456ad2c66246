package lambdaenv

import (
	"strings"
	"testing"
)

// A bad configuration is logged with the function's name and exits 1
// before any client is built.
func TestStartInvalidConfigurationExits(t *testing.T) {
	var out strings.Builder
	code := -1
	f := start(func(string) string { return "" }, &out, func(c int) { code = c }, "create-order", EnvOrdersTable)
	if code != 1 || f.DynamoDB != nil || f.Store != nil {
		t.Errorf("exit code %d, client %v, store %v", code, f.DynamoDB, f.Store)
	}
	if !strings.Contains(out.String(), `"msg":"create-order: invalid configuration, not starting"`) || !strings.Contains(out.String(), EnvOrdersTable) {
		t.Errorf("log = %s", out.String())
	}
	out.Reset()
	code = -1
	f.Check(nil)
	if code != -1 || out.Len() != 0 {
		t.Errorf("Check(nil) exited %d, logged %q", code, out.String())
	}
	f.Check(ErrInvalid)
	if code != 1 || !strings.Contains(out.String(), `"msg":"create-order: not starting"`) {
		t.Errorf("Check(err): exit %d, log %s", code, out.String())
	}
}
