package devstack

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestStorefrontHandler: the page, its modules and /config.json are
// served; the unit tests, other files and writes are not.
func TestStorefrontHandler(t *testing.T) {
	dir := t.TempDir()
	for name, body := range map[string]string{
		"index.html": "<!doctype html>", "storefront.js": "export {}", "package.json": "{}",
		"test/x.test.js": "secret",
	} {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	srv := httptest.NewServer(StorefrontHandler(dir, func() StorefrontConfig {
		return StorefrontConfig{API: "http://127.0.0.1:3000", Token: "tok"}
	}))
	defer srv.Close()
	get := func(method, path string) (int, string, string) {
		req, _ := http.NewRequest(method, srv.URL+path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header.Get("Content-Type"), string(b)
	}
	if code, _, body := get("GET", "/"); code != 200 || body != "<!doctype html>" {
		t.Fatalf("/: %d %q", code, body)
	}
	if code, ct, _ := get("GET", "/storefront.js"); code != 200 || !strings.HasPrefix(ct, "text/javascript") {
		t.Fatalf("module: %d %q (a module needs a JavaScript MIME type)", code, ct)
	}
	code, _, body := get("GET", "/config.json")
	var cfg StorefrontConfig
	if code != 200 || json.Unmarshal([]byte(body), &cfg) != nil || cfg.API != "http://127.0.0.1:3000" || cfg.Token != "tok" {
		t.Fatalf("config: %d %s", code, body)
	}
	for _, p := range []string{"/test/x.test.js", "/package.json", "/../go.mod"} {
		if code, _, _ := get("GET", p); code != 404 {
			t.Fatalf("%s: %d, want 404", p, code)
		}
	}
	if code, _, _ := get("POST", "/"); code != http.StatusMethodNotAllowed {
		t.Fatalf("POST: %d", code)
	}
}
