package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/acme/idemcheckout/ddblocal/ddbtest"
	"github.com/acme/idemcheckout/local/devstack"
	"github.com/acme/idemcheckout/pkg/idemddb"
)

// conflictProxy stands between a stack's functions and its engine and,
// while armed, answers TransactWriteItems itself the way DynamoDB does when
// another request touched one of the transaction's items while it ran: 400
// TransactionCanceledException with reason TransactionConflict on the last
// item (the idempotency record: the store commits it last) and None on the
// others. Nothing reaches the engine for those requests. Only transactions
// whose body holds the armed marker are cancelled: the stack's other
// functions (the stream consumer making receipts) write transactions too.
type conflictProxy struct {
	mu      sync.Mutex
	armed   int    // how many more transactions to cancel
	marker  string // what their body holds
	refused atomic.Int32
}

// arm makes the next n transactions whose body holds marker cancelled.
func (p *conflictProxy) arm(n int, marker string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.armed, p.marker = n, marker
}

// take uses up one armed cancellation for body, if any is left.
func (p *conflictProxy) take(body []byte) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.armed <= 0 || !bytes.Contains(body, []byte(p.marker)) {
		return false
	}
	p.armed--
	return true
}

func (p *conflictProxy) handler(engine *url.URL) http.Handler {
	fwd := httputil.NewSingleHostReverseProxy(engine)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Amz-Target") != "DynamoDB_20120810.TransactWriteItems" {
			fwd.ServeHTTP(w, r)
			return
		}
		body, _ := io.ReadAll(r.Body)
		if !p.take(body) {
			r.Body = io.NopCloser(bytes.NewReader(body))
			fwd.ServeHTTP(w, r)
			return
		}
		var in struct{ TransactItems []json.RawMessage }
		_ = json.Unmarshal(body, &in)
		reasons := make([]map[string]string, len(in.TransactItems))
		for i := range reasons {
			reasons[i] = map[string]string{"Code": "None"}
		}
		reasons[len(reasons)-1] = map[string]string{"Code": "TransactionConflict", "Message": "Transaction is ongoing for the item"}
		p.refused.Add(1)
		w.Header().Set("Content-Type", "application/x-amz-json-1.0")
		w.WriteHeader(http.StatusBadRequest)
		_ = json.NewEncoder(w).Encode(map[string]any{
			"__type":              "com.amazonaws.dynamodb.v20120810#TransactionCanceledException",
			"message":             "Transaction cancelled, please refer cancellation reasons for specific reasons [TransactionConflict]",
			"CancellationReasons": reasons,
		})
	})
}

// TestTransactionConflictThroughStack: through `make dev`'s stack, the
// completion transaction of POST /orders and of POST /payments is
// cancelled once with TransactionConflict. The first answer is 201 (the
// store sent the transaction again), a retry replays it, one order is
// created and one charge made. When every attempt conflicts, the answer is
// 503 with Retry-After for the rest of the lease, and the key really stays
// claimed: an immediate retry gets 409 with Retry-After, not a second run.
func TestTransactionConflictThroughStack(t *testing.T) {
	if testing.Short() {
		t.Skip("starts its own stack")
	}
	engine, err := ddbtest.StartMoto()
	if err != nil {
		t.Fatal(err)
	}
	defer engine.Stop()
	target, err := url.Parse(engine.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	proxy := &conflictProxy{}
	ps := httptest.NewServer(proxy.handler(target))
	defer ps.Close()

	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var out io.Writer = io.Discard
	if testing.Verbose() {
		out = os.Stderr
	}
	s, err := devstack.Start(ctx, devstack.Config{
		Root: root, Template: filepath.Join(root, "template.yaml"), Instances: 2, StateDir: t.TempDir(),
		EngineEndpoint: ps.URL,
		Logger:         log.New(out, "devstack: ", log.Lmicroseconds), FunctionOutput: out,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	sub := "conflict-" + newKey(t)
	tok := token(sub)
	// A SKU of this test's own marks its orders' transactions.
	sku := "SKU-" + newKey(t)
	orderBody := `{"currency":"INR","items":[{"sku":"` + sku + `","quantity":2,"unit_price":250000}]}`

	// POST /orders, its completion cancelled once.
	proxy.arm(1, sku)
	key := newKey(t) + "-order"
	first := post(t, s, "/orders", tok, key, orderBody)
	if first.status != http.StatusCreated || proxy.refused.Load() != 1 {
		t.Fatalf("order with one conflict: %d %s (conflicts injected %d); want 201", first.status, first.body, proxy.refused.Load())
	}
	again := post(t, s, "/orders", tok, key, orderBody)
	if again.status != http.StatusCreated || again.header.Get("Idempotent-Replayed") != "true" || !bytes.Equal(again.body, first.body) {
		t.Fatalf("retry: %d %s %v; want the 201 replayed", again.status, again.body, again.header)
	}
	if n := countOrders(t, s, sub); n != 1 {
		t.Fatalf("%d orders for one key, want 1", n)
	}

	// POST /payments, its completion (with the order and payment writes)
	// cancelled once: one capture.
	order := first.json(t)
	proxy.arm(1, order["order_id"].(string))
	payKey := newKey(t) + "-pay"
	pay := post(t, s, "/payments", tok, payKey, paymentBody(order, 500000))
	if pay.status != http.StatusCreated || proxy.refused.Load() != 2 {
		t.Fatalf("payment with one conflict: %d %s (conflicts injected %d); want 201", pay.status, pay.body, proxy.refused.Load())
	}
	if r := post(t, s, "/payments", tok, payKey, paymentBody(order, 500000)); r.status != http.StatusCreated || !bytes.Equal(r.body, pay.body) {
		t.Fatalf("payment retry: %d %s", r.status, r.body)
	}
	wantOneChargeOn(t, s, order["order_id"].(string))

	// Every attempt conflicts: 503 for the rest of the lease, key kept.
	proxy.arm(1+idemddb.ConflictRetries, sku)
	key = newKey(t) + "-bound"
	r := post(t, s, "/orders", tok, key, orderBody)
	if r.status != http.StatusServiceUnavailable || r.problemType() != "idempotency-store-unavailable" {
		t.Fatalf("every attempt conflicting: %d %s; want 503", r.status, r.body)
	}
	if ra := r.header.Get("Retry-After"); ra == "" || ra == "1" {
		t.Fatalf("Retry-After %q, want the rest of the lease", ra)
	}
	proxy.arm(0, "")
	r = post(t, s, "/orders", tok, key, orderBody)
	if r.status != http.StatusConflict || r.header.Get("Retry-After") == "" || r.problemType() != "idempotency-key-in-use" {
		t.Fatalf("retry while the key stays claimed: %d %s %v; want 409 with Retry-After", r.status, r.body, r.header)
	}
	if n := countOrders(t, s, sub); n != 1 {
		t.Fatalf("%d orders after a refused completion and its retry, want still 1", n)
	}
}

// countOrders counts sub's orders in stack s.
func countOrders(t *testing.T, s *devstack.Stack, sub string) int {
	t.Helper()
	n := 0
	for _, it := range scanStack(t, s, "OrdersTable") {
		if it["customer_id"] == sub {
			n++
		}
	}
	return n
}
