package devstack

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"
)

// The storefront: the web/ directory (a cart, "Place order", "Pay Now",
// and the idempotent client module they use) served on an origin of its
// own, as S3 + CloudFront would serve it in AWS, so that the browser calls
// the API cross-origin and the API's CORS configuration applies.
// make dev serves it on 127.0.0.1:4000 (DEV_STOREFRONT_PORT).

// StorefrontConfig is what the storefront page is told in /config.json.
type StorefrontConfig struct {
	// API is the API's origin, e.g. http://127.0.0.1:3000 ("": the page
	// needs ?api=... in its URL).
	API string `json:"api"`
	// Token is the bearer token the page sends (a local unsigned JWT).
	Token string `json:"token"`
}

// StorefrontHandler serves the storefront files of dir (.html, .js, .css,
// .png, .svg; "/" is index.html, nothing under test/) and /config.json
// from cfg, called per request.
func StorefrontHandler(dir string, cfg func() StorefrontConfig) http.Handler {
	files := http.FileServer(http.Dir(dir))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		w.Header().Set("Cache-Control", "no-store")
		p := path.Clean("/" + r.URL.Path)
		switch {
		case p == "/config.json":
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(cfg())
			return
		case p == "/":
		case strings.HasPrefix(p, "/test/"), !servable(p):
			http.NotFound(w, r)
			return
		}
		files.ServeHTTP(w, r)
	})
}

// servable reports whether the storefront serves a file with this path.
func servable(p string) bool {
	switch path.Ext(p) {
	case ".html", ".js", ".css", ".png", ".svg":
		return true
	}
	return false
}

// storefront is the storefront's listener and server in a stack.
type storefront struct {
	ln   net.Listener
	srv  *http.Server
	done chan struct{}
}

// startStorefront serves the storefront on addr, telling the page the
// gateway's URL and a local token every route's authorizer accepts.
func (s *Stack) startStorefront(addr string) error {
	dir := s.cfg.StorefrontDir
	if _, err := os.Stat(filepath.Join(dir, "index.html")); err != nil {
		s.logf("no storefront: %v", err)
		return nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	sf := &storefront{ln: ln, done: make(chan struct{})}
	sf.srv = &http.Server{Handler: StorefrontHandler(dir, func() StorefrontConfig {
		return StorefrontConfig{API: s.URL(), Token: s.DevToken(time.Now())}
	}), ReadHeaderTimeout: 30 * time.Second}
	go func() {
		defer close(sf.done)
		if err := sf.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.logf("storefront stopped: %v", err)
		}
	}()
	s.storefront = sf
	return nil
}

func (sf *storefront) close() {
	if sf == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if sf.srv.Shutdown(ctx) != nil {
		sf.srv.Close()
	}
	<-sf.done
}

// StorefrontURL is the storefront's URL, e.g. http://127.0.0.1:4000 (""
// without one).
func (s *Stack) StorefrontURL() string {
	if s.storefront == nil {
		return ""
	}
	return "http://" + s.storefront.ln.Addr().String()
}

// DevToken is a local token for subject dev-user that the first JWT
// authorizer of the gateway's routes accepts, with every scope the routes
// ask for ("" when no route has one).
func (s *Stack) DevToken(now time.Time) string { return s.router.DevToken(now) }
