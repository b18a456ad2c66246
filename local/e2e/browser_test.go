package e2e

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/acme/idemcheckout/local/devstack"
	"github.com/chromedp/cdproto/cdp"
	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// The browser tests: the storefront (web/) in headless Chromium, on an
// origin of its own (shopSite, in AllowedOrigins of the checkout and slow
// stacks) calling the stack cross-origin, and on an origin the stacks do
// not allow (foreignSite). Captures are counted in the engine.

// chromium returns the Chromium binary, or skips the test (fails it under
// CI=true) with how to get it.
func chromium(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("CHROMIUM"); p != "" {
		return p
	}
	for _, p := range []string{"/usr/bin/chromium", "chromium"} {
		if path, err := exec.LookPath(p); err == nil {
			return path
		}
	}
	msg := "the browser tests need headless Chromium: apt-get update && apt-get install -y chromium (Debian/Ubuntu; .ci/run installs it), or set CHROMIUM=/path/to/chromium"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// newBrowser starts headless Chromium with a fresh profile, stopped when
// the test ends.
func newBrowser(t *testing.T) context.Context {
	t.Helper()
	path := chromium(t)
	profile := t.TempDir()
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(path), chromedp.UserDataDir(profile),
		chromedp.Flag("headless", true), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.NoFirstRun, chromedp.Flag("disable-quic", true), chromedp.Flag("disable-sync", true),
		chromedp.NoDefaultBrowserCheck, chromedp.WindowSize(800, 640),
	)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() { cancel(); cancelAlloc() }) // before TempDir's removal (cleanups run last first)
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start %s: %v", path, err)
	}
	return ctx
}

// netRequest is one request the page sent, from the CDP Network events.
type netRequest struct {
	method, url, key string
	preflight        bool
	failed           string
}

// tab is one browser tab with what it saw: requests and console errors.
type tab struct {
	t   *testing.T
	ctx context.Context

	mu       sync.Mutex
	requests map[network.RequestID]*netRequest
	order    []network.RequestID
	errors   []string
}

// newTab opens a tab in browser and starts recording its network and
// console.
func newTab(t *testing.T, browser context.Context) *tab {
	t.Helper()
	ctx, cancel := chromedp.NewContext(browser)
	t.Cleanup(cancel)
	b := &tab{t: t, ctx: ctx, requests: map[network.RequestID]*netRequest{}}
	err := chromedp.Listen(ctx, func(ev any) {
		b.mu.Lock()
		defer b.mu.Unlock()
		switch ev := ev.(type) {
		case *network.EventRequestWillBeSent:
			r := &netRequest{method: ev.Request.Method, url: ev.Request.URL, preflight: ev.Type == network.ResourceTypePreflight || ev.Request.Method == "OPTIONS"}
			for k, v := range ev.Request.Headers {
				if strings.EqualFold(k, "Idempotency-Key") {
					r.key = fmt.Sprint(v)
				}
			}
			if _, seen := b.requests[ev.RequestID]; !seen {
				b.order = append(b.order, ev.RequestID)
			}
			b.requests[ev.RequestID] = r
		case *network.EventLoadingFailed:
			if r := b.requests[ev.RequestID]; r != nil {
				r.failed = ev.ErrorText
			}
		case *runtime.EventConsoleAPICalled:
			if ev.Type == runtime.ConsoleAPICalledTypeError {
				var parts []string
				for _, a := range ev.Args {
					parts = append(parts, string(a.Value)+a.Description)
				}
				b.errors = append(b.errors, "console.error: "+strings.Join(parts, " "))
			}
		case *runtime.EventExceptionThrown:
			b.errors = append(b.errors, "exception: "+ev.ExceptionDetails.Text)
		case *cdplog.EventEntryAdded:
			if ev.Entry.Level == cdplog.EntryLevelError {
				b.errors = append(b.errors, "log: "+ev.Entry.Text+" "+ev.Entry.URL)
			}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func (b *tab) do(actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	if err := chromedp.Do(b.ctx, actions...); err != nil {
		b.t.Fatal(err)
	}
}

func (b *tab) eval(js string) string {
	b.t.Helper()
	v, err := chromedp.Run(b.ctx, chromedp.Evaluate[string](js))
	if err != nil {
		b.t.Fatalf("%s: %v", js, err)
	}
	return v
}

// open loads the storefront from site for stack s as subject sub, with
// extra query parameters, and waits for the page to be set up.
func (b *tab) open(site string, s *devstack.Stack, sub string, extra url.Values) {
	b.t.Helper()
	q := url.Values{"api": {s.URL()}, "token": {token(sub)}}
	for k, v := range extra {
		q[k] = v
	}
	b.do(chromedp.Navigate(site+"/?"+q.Encode()), chromedp.WaitVisible(chromedp.CSS("#api")))
	if _, err := chromedp.Run(b.ctx, chromedp.Poll[bool](`document.getElementById("api").textContent !== "?"`, chromedp.WithPollingTimeout(10*time.Second))); err != nil {
		b.t.Fatalf("the storefront did not start: %v (%v)", err, b.consoleErrors())
	}
}

// pay clicks "Pay Now" clicks times, after clearing the outcome shown, so
// that result waits for this payment's.
func (b *tab) pay(clicks int) {
	b.t.Helper()
	actions := []chromedp.Action[chromedp.Void]{chromedp.Evaluate[chromedp.Void](`document.getElementById("result").dataset.outcome = ""`)}
	for range clicks {
		actions = append(actions, chromedp.Click(chromedp.ID("pay")))
	}
	b.do(actions...)
}

// placeOrder clicks "Place order" and returns the order id the page shows.
func (b *tab) placeOrder() string {
	b.t.Helper()
	b.do(chromedp.Click(chromedp.ID("place")))
	if _, err := chromedp.Run(b.ctx, chromedp.Poll[bool](`!document.getElementById("checkout").hidden || ["gave-up","rejected","unexpected","programming-error"].includes(document.getElementById("result").dataset.outcome)`, chromedp.WithPollingTimeout(30*time.Second))); err != nil {
		b.t.Fatalf("place order: %v", err)
	}
	id := b.eval(`document.getElementById("order-id").textContent`)
	if id == "" {
		b.t.Fatalf("place order: %s (%v)", b.eval(`document.getElementById("result").textContent`), b.consoleErrors())
	}
	return id
}

// pageResult is the outcome the page shows.
type pageResult struct {
	Outcome, PaymentID, Key, Text string
	Replayed                      bool
	Attempts, MS                  int
}

// result waits (up to limit) for the page to show a final outcome of
// "Pay Now".
func (b *tab) result(limit time.Duration) pageResult {
	b.t.Helper()
	if _, err := chromedp.Run(b.ctx, chromedp.Poll[bool](`(o => !!o && o !== "processing")(document.getElementById("result").dataset.outcome)`,
		chromedp.WithPollingTimeout(limit), chromedp.WithPollingInterval(20*time.Millisecond))); err != nil {
		b.t.Fatalf("no outcome within %v: %v; page says %q", limit, err, b.eval(`document.getElementById("result").textContent`))
	}
	r, err := chromedp.Run(b.ctx, chromedp.Evaluate[pageResult](`(d => ({Outcome: d.dataset.outcome, PaymentID: d.dataset.paymentId || "",
		Key: d.dataset.key || "", Text: d.textContent, Replayed: d.dataset.replayed === "true",
		Attempts: Number(d.dataset.attempts || 0), MS: Number(d.dataset.ms || 0)}))(document.getElementById("result"))`))
	if err != nil {
		b.t.Fatal(err)
	}
	return r
}

// network sets the tab's network conditions: offline, or a latency in ms
// (0: none) on every request. It sends Network.emulateNetworkConditions,
// which cdproto no longer generates (deprecated for
// emulateNetworkConditionsByRule, whose latency Chromium 156 did not apply
// to these loopback requests); it also sets navigator.onLine.
func (b *tab) network(offline bool, latency float64) {
	b.t.Helper()
	type conditions struct {
		Offline            bool    `json:"offline"`
		Latency            float64 `json:"latency"`
		DownloadThroughput float64 `json:"downloadThroughput"`
		UploadThroughput   float64 `json:"uploadThroughput"`
	}
	emulate := cdp.Command[conditions, cdp.Empty]{Method: "Network.emulateNetworkConditions"}
	if _, err := chromedp.Call(b.ctx, emulate, conditions{Offline: offline, Latency: latency, DownloadThroughput: -1, UploadThroughput: -1}); err != nil {
		b.t.Fatal(err)
	}
}

// sent returns the requests to path on the API, in order: POSTs and
// preflights (OPTIONS).
func (b *tab) sent(api, path string) (posts, preflights []netRequest) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, id := range b.order {
		r := b.requests[id]
		if r.url != api+path {
			continue
		}
		switch {
		case r.preflight:
			preflights = append(preflights, *r)
		case r.method == "POST":
			posts = append(posts, *r)
		}
	}
	return posts, preflights
}

func (b *tab) consoleErrors() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.errors)
}

// keys returns the distinct Idempotency-Keys of requests.
func keys(rs []netRequest) []string {
	var out []string
	for _, r := range rs {
		if !slices.Contains(out, r.key) {
			out = append(out, r.key)
		}
	}
	return out
}

// screenshot saves the tab's viewport as .dev/artifacts/<name>.png (kept as
// a test artefact).
func (b *tab) screenshot(name string) {
	b.t.Helper()
	png, err := chromedp.Run(b.ctx, chromedp.CaptureScreenshot())
	if err != nil {
		b.t.Fatal(err)
	}
	dir := filepath.Join("..", "..", ".dev", "artifacts")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.t.Fatal(err)
	}
	p := filepath.Join(dir, name+".png")
	if err := os.WriteFile(p, png, 0o644); err != nil {
		b.t.Fatal(err)
	}
	b.t.Logf("screenshot: %s (%d bytes)", p, len(png))
}

// TestBrowserPayNowThreeClicksSlowNetwork: the user story in a browser.
// With 400 ms of network latency and a 1 s provider, "Pay Now" clicked
// three times: one POST (the clicks join the call in flight), one capture,
// one success shown, no console error. A fourth click later sends one
// POST and no preflight (the preflight is cached) and shows the replay.
func TestBrowserPayNowThreeClicksSlowNetwork(t *testing.T) {
	b := newTab(t, newBrowser(t))
	b.open(shopSite.URL, slow, "browser-alice", nil)
	b.network(false, 400)
	order := b.placeOrder()
	b.pay(3)
	r := b.result(30 * time.Second)
	if r.Outcome != "succeeded" || r.PaymentID == "" || r.Replayed {
		t.Fatalf("outcome %+v; want a fresh success with a payment id", r)
	}
	if !strings.Contains(r.Text, r.PaymentID) || strings.Count(r.Text, "Paid") != 1 {
		t.Fatalf("page shows %q; want one success naming %s", r.Text, r.PaymentID)
	}
	posts, preflights := b.sent(slow.URL(), "/payments")
	t.Logf("three clicks: %d POST /payments, %d preflight(s), %d ms click to success (400 ms latency, 1 s provider)", len(posts), len(preflights), r.MS)
	if len(posts) != 1 || posts[0].key != r.Key {
		t.Fatalf("three clicks sent %d POSTs (%v); want one with key %s", len(posts), posts, r.Key)
	}
	wantOneChargeOn(t, slow, order)
	b.screenshot("storefront-paid")

	b.pay(1) // a fourth click, after the success
	again := b.result(30 * time.Second)
	posts2, preflights2 := b.sent(slow.URL(), "/payments")
	t.Logf("a later click: %d more POST, %d more preflight; replayed=%v", len(posts2)-len(posts), len(preflights2)-len(preflights), again.Replayed)
	if len(posts2) != 2 || posts2[1].key != r.Key {
		t.Fatalf("the fourth click sent %d POSTs in all; want one more with the same key", len(posts2))
	}
	wantOneChargeOn(t, slow, order)
	if errs := b.consoleErrors(); len(errs) > 0 {
		t.Fatalf("console errors: %v", errs)
	}
}

// TestBrowserReloadWhilePaying: click, reload while the payment runs (1 s
// provider), click again: the key survives the reload in sessionStorage,
// every POST carries it, one capture.
func TestBrowserReloadWhilePaying(t *testing.T) {
	b := newTab(t, newBrowser(t))
	b.open(shopSite.URL, slow, "browser-reloader", nil)
	order := b.placeOrder()
	b.pay(1)
	until(t, 10*time.Second, "the first POST /payments was never sent", func() bool {
		posts, _ := b.sent(slow.URL(), "/payments")
		return len(posts) > 0
	})
	before := b.eval(`JSON.parse(sessionStorage.getItem("idem:pay:` + order + `")).key`)
	b.do(chromedp.Reload(), chromedp.WaitVisible(chromedp.ID("checkout")))
	if shown := b.eval(`document.getElementById("order-id").textContent`); shown != order {
		t.Fatalf("after the reload the page shows order %q, want %s", shown, order)
	}
	b.pay(1)
	r := b.result(30 * time.Second)
	posts, _ := b.sent(slow.URL(), "/payments")
	t.Logf("reload while paying: %d POSTs, keys %v, outcome %s replayed=%v in %d ms", len(posts), keys(posts), r.Outcome, r.Replayed, r.MS)
	if r.Outcome != "succeeded" || r.Key != before {
		t.Fatalf("after the reload: %+v; want success with the key from before the reload (%s)", r, before)
	}
	if k := keys(posts); len(posts) < 2 || len(k) != 1 || k[0] != before {
		t.Fatalf("POSTs %v; want the one before and after the reload, all with key %s", posts, before)
	}
	wantOneChargeOn(t, slow, order)
}

// TestBrowserOfflineThenOnline: offline at the click, online two seconds
// later: the client retries with the same key and pays once.
func TestBrowserOfflineThenOnline(t *testing.T) {
	b := newTab(t, newBrowser(t))
	b.open(shopSite.URL, checkout, "browser-offline", nil)
	order := b.placeOrder()
	b.network(true, 0)
	b.pay(1)
	time.Sleep(2 * time.Second) // the scenario: the network comes back two seconds later
	b.network(false, 0)
	r := b.result(30 * time.Second)
	posts, _ := b.sent(checkout.URL(), "/payments")
	failed := 0
	for _, p := range posts {
		if p.failed != "" {
			failed++
		}
	}
	t.Logf("offline for 2 s: %d attempts (%d POSTs seen, %d failed), outcome %s in %d ms", r.Attempts, len(posts), failed, r.Outcome, r.MS)
	if r.Outcome != "succeeded" || r.Attempts < 2 {
		t.Fatalf("outcome %+v; want success after retries", r)
	}
	if k := keys(posts); len(k) != 1 || k[0] != r.Key {
		t.Fatalf("keys sent %v; want only %s", k, r.Key)
	}
	wantOneChargeOn(t, checkout, order)
}

// TestBrowserTwoTabsOneOrder: two tabs pay the same order at once, each
// with its own key (sessionStorage is per tab): one capture; one tab shows
// the payment, the other the final "already paid" answer, and stops.
func TestBrowserTwoTabsOneOrder(t *testing.T) {
	browser := newBrowser(t)
	sub := "browser-two-tabs"
	order := createOrderOn(t, slow, sub)
	id := order["order_id"].(string)
	q := url.Values{"order": {id}, "amount": {fmt.Sprint(order["amount"])}, "currency": {"INR"}}
	tabs := []*tab{newTab(t, browser), newTab(t, browser)}
	for _, b := range tabs {
		b.open(shopSite.URL, slow, sub, q)
	}
	var wg sync.WaitGroup
	errs := make([]error, len(tabs))
	for i, b := range tabs {
		wg.Go(func() { errs[i] = chromedp.Do(b.ctx, chromedp.Click(chromedp.ID("pay"))) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("tab %d: click: %v", i+1, err)
		}
	}
	var results []pageResult
	for _, b := range tabs {
		results = append(results, b.result(40*time.Second))
	}
	outcomes := []string{results[0].Outcome, results[1].Outcome}
	sort.Strings(outcomes)
	t.Logf("two tabs: %+v / %+v", results[0], results[1])
	if outcomes[0] != "already-paid" || outcomes[1] != "succeeded" {
		t.Fatalf("outcomes %v; want one succeeded and one already-paid", outcomes)
	}
	if results[0].Key == results[1].Key || results[0].PaymentID != results[1].PaymentID {
		t.Fatalf("keys %s / %s, payments %s / %s: want two keys, one payment", results[0].Key, results[1].Key, results[0].PaymentID, results[1].PaymentID)
	}
	for i, b := range tabs {
		posts, _ := b.sent(slow.URL(), "/payments")
		if len(posts) != results[i].Attempts {
			t.Fatalf("tab %d: %d POSTs for %d attempts", i+1, len(posts), results[i].Attempts)
		}
	}
	wantOneChargeOn(t, slow, id)
}

// TestBrowserForeignOriginBlocked: the storefront served from an origin
// that is not in AllowedOrigins: the browser refuses the preflight, the
// POST is never sent, the page reports that it got no answer, and nothing
// is charged.
func TestBrowserForeignOriginBlocked(t *testing.T) {
	b := newTab(t, newBrowser(t))
	sub := "browser-foreign"
	order := createOrder(t, sub)
	id := order["order_id"].(string)
	b.open(foreignSite.URL, checkout, sub, url.Values{"order": {id}, "amount": {fmt.Sprint(order["amount"])}, "deadline": {"3000"}})
	b.pay(1)
	r := b.result(20 * time.Second)
	posts, preflights := b.sent(checkout.URL(), "/payments")
	errs := b.consoleErrors()
	t.Logf("foreign origin: outcome %s (%s), %d preflight(s), %d POST(s) attempted, %d console error(s), the first: %.200s", r.Outcome, r.Text, len(preflights), len(posts), len(errs), strings.Join(errs, " | "))
	if r.Outcome != "gave-up" {
		t.Fatalf("outcome %+v; want gave-up (no answer the page may read)", r)
	}
	for _, p := range posts {
		if p.failed == "" {
			t.Fatalf("a POST from a foreign origin completed: %+v", p)
		}
	}
	if items := ledger(t, id); len(items) != 0 {
		t.Fatalf("ledger has %d records for an order paid from a foreign origin", len(items))
	}
	if st := orderStatus(t, checkout, token(sub), id); st != "PENDING" {
		t.Fatalf("order %s is %s, want PENDING", id, st)
	}
}

// timing runs TestBrowserClickToSuccess (make browser-timing): about two
// minutes on a loaded two-core machine, so not part of make test.
var timing = flag.Bool("timing", false, "run the browser timing measurements (TestBrowserClickToSuccess)")

// TestBrowserClickToSuccess measures (logs, never asserts) the
// click-to-success time over 20 payments, each a new order, on the checkout
// stack and on the slow-provider stack (1 s), each with and without 400 ms
// of emulated network latency (DevTools' latency is a minimum per request:
// a request slower than that is not delayed further); and the requests one
// click costs once the preflight is cached (asserted: one POST per click).
func TestBrowserClickToSuccess(t *testing.T) {
	if !*timing {
		t.Skip("a measurement: make browser-timing (go test -run TestBrowserClickToSuccess ./local/e2e/ -args -timing)")
	}
	const runs = 20
	for _, c := range []struct {
		name    string
		s       *devstack.Stack
		latency float64
	}{
		{"fast provider, no latency", checkout, 0},
		{"fast provider, 400 ms latency", checkout, 400},
		{"1 s provider, no latency", slow, 0},
		{"1 s provider, 400 ms latency", slow, 400},
	} {
		b := newTab(t, newBrowser(t))
		sub := "browser-timing"
		var ms []int
		for i := range runs {
			order := createOrderOn(t, c.s, sub)
			b.open(shopSite.URL, c.s, sub, url.Values{"order": {order["order_id"].(string)}, "amount": {fmt.Sprint(order["amount"])}})
			if i == 0 && c.latency > 0 {
				b.network(false, c.latency)
			}
			b.pay(1)
			r := b.result(30 * time.Second)
			if r.Outcome != "succeeded" {
				t.Fatalf("%s run %d: %+v", c.name, i, r)
			}
			ms = append(ms, r.MS)
		}
		posts, preflights := b.sent(c.s.URL(), "/payments")
		slices.Sort(ms)
		t.Logf("%s: click to success p50 %d ms (min %d, max %d) over %d payments; %d POST /payments and %d preflight(s) for %d clicks",
			c.name, ms[len(ms)/2], ms[0], ms[len(ms)-1], runs, len(posts), len(preflights), runs)
		if len(posts) != runs {
			t.Fatalf("%s: %d POSTs for %d clicks; want one each", c.name, len(posts), runs)
		}
	}
}

// TestStackStorefront: the storefront the stack serves itself (make dev's,
// on a free port here) tells the page the gateway's URL and a token the
// gateway accepts, and the banner warns that its origin is not in the
// stack's AllowedOrigins (the defaults and the test's site are).
func TestStackStorefront(t *testing.T) {
	site := checkout.StorefrontURL()
	if site == "" {
		t.Fatal("the stack serves no storefront")
	}
	resp, err := client.Get(site + "/config.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var cfg devstack.StorefrontConfig
	if err := json.NewDecoder(resp.Body).Decode(&cfg); err != nil || cfg.API != checkout.URL() || cfg.Token == "" {
		t.Fatalf("config.json: %+v, %v; want the gateway %s and a token", cfg, err, checkout.URL())
	}
	r := post(t, checkout, "/orders", cfg.Token, newKey(t), `{"currency":"INR","items":[{"sku":"SKU-1","quantity":1,"unit_price":100}]}`)
	if r.status != http.StatusCreated {
		t.Fatalf("an order with the storefront's token: %d %s", r.status, r.body)
	}
	if !strings.Contains(checkoutLog.String(), "does not allow the storefront's origin "+site) {
		t.Fatalf("no warning about the storefront's origin in the banner:\n%s", checkoutLog.String())
	}
}
