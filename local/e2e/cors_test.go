package e2e

import (
	"io"
	"net/http"
	"testing"
)

// storefront is the origin `make dev` serves the storefront on, one of
// template.yaml's default AllowedOrigins.
const storefront = "http://localhost:4000"

// TestStorefrontCORS: "Pay Now" from the storefront's origin through the
// stack serving template.yaml. The preflight of POST /payments is answered
// by the gateway (no token, nothing invoked) with the template's
// configuration; the 201, another key's 200 already_paid and the
// authorizer's 401 carry Access-Control-Allow-Origin and the exposed
// headers the client reads; another origin gets no CORS header.
func TestStorefrontCORS(t *testing.T) {
	req, err := http.NewRequest(http.MethodOptions, checkout.URL()+"/payments", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Origin", storefront)
	req.Header.Set("Access-Control-Request-Method", "POST")
	req.Header.Set("Access-Control-Request-Headers", "authorization,content-type,idempotency-key,prefer")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	for k, want := range map[string]string{
		"Access-Control-Allow-Origin":  storefront,
		"Access-Control-Allow-Methods": "GET,POST",
		"Access-Control-Allow-Headers": "Authorization,Content-Type,Idempotency-Key,Prefer",
		"Access-Control-Max-Age":       "600",
	} {
		if got := resp.Header.Get(k); resp.StatusCode != http.StatusNoContent || got != want {
			t.Errorf("preflight: %d, %s = %q, want 204 and %q", resp.StatusCode, k, got, want)
		}
	}
	if resp.Header.Get("Access-Control-Allow-Credentials") != "" {
		t.Error("preflight allows credentials; the API takes bearer tokens only")
	}

	const expose = "Idempotent-Replayed,Retry-After,Location,Preference-Applied"
	fromShop := http.Header{"Origin": {storefront}}
	wantCORS := func(what string, r response) {
		t.Helper()
		if r.header.Get("Access-Control-Allow-Origin") != storefront || r.header.Get("Access-Control-Expose-Headers") != expose {
			t.Errorf("%s: %d %v, want the storefront's CORS headers", what, r.status, r.header)
		}
	}
	order := createOrder(t, "ivan")
	tok, key, body := token("ivan"), newKey(t), paymentBody(order, 500000)
	paid := postWith(t, checkout, "/payments", tok, key, body, fromShop)
	if paid.status != http.StatusCreated {
		t.Fatalf("pay: %d %s", paid.status, paid.body)
	}
	wantCORS("201", paid)
	if again := postWith(t, checkout, "/payments", tok, key, body, fromShop); again.header.Get("Idempotent-Replayed") != "true" {
		t.Errorf("replay: %d %v", again.status, again.header)
	} else {
		wantCORS("replayed 201", again)
	}
	other := postWith(t, checkout, "/payments", tok, newKey(t), body, fromShop)
	if other.alreadyPaid() != paid.paymentOf() {
		t.Errorf("another key: %d %s, want 200 already_paid naming %s", other.status, other.body, paid.paymentOf())
	}
	wantCORS("200 already_paid", other)
	unauthorized := postWith(t, checkout, "/payments", "", key, body, fromShop)
	if unauthorized.status != http.StatusUnauthorized {
		t.Errorf("no token: %d %s", unauthorized.status, unauthorized.body)
	}
	wantCORS("the authorizer's 401", unauthorized)
	evil := postWith(t, checkout, "/payments", tok, key, body, http.Header{"Origin": {"https://evil.example"}})
	if evil.status != http.StatusCreated || evil.header.Get("Access-Control-Allow-Origin") != "" || evil.header.Get("Access-Control-Expose-Headers") != "" {
		t.Errorf("another origin: %d %v, want the replay without CORS headers", evil.status, evil.header)
	}
}
