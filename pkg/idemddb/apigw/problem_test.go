package apigw_test

import (
	"encoding/json"
	"fmt"
	"reflect"
	"testing"

	"github.com/acme/idemcheckout/pkg/idemddb/apigw"
)

func TestProblemJSON(t *testing.T) {
	p := apigw.Problem{
		Type: apigw.DefaultProblemBase + "order-already-paid", Title: "Order already paid", Status: 409,
		Detail: "the order has already been paid", RetryAfter: 3,
		Extensions: map[string]any{
			"payment_id": "pay_1",
			"order_id":   "ord_1",
			"errors":     []map[string]string{{"field": "amount", "detail": "differs"}},
			// Standard members cannot be replaced through Extensions.
			"status": 200, "type": "x", "title": "x", "detail": "x",
		},
	}
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"type":"https://docs.acme.dev/problems/order-already-paid","title":"Order already paid","status":409,` +
		`"detail":"the order has already been paid","errors":[{"detail":"differs","field":"amount"}],"order_id":"ord_1","payment_id":"pay_1"}`
	if string(b) != want {
		t.Fatalf("JSON\n%s\nwant\n%s", b, want)
	}

	var back apigw.Problem
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	wantBack := apigw.Problem{Type: p.Type, Title: p.Title, Status: 409, Detail: p.Detail, Extensions: map[string]any{
		"payment_id": "pay_1", "order_id": "ord_1",
		"errors": []any{map[string]any{"field": "amount", "detail": "differs"}},
	}}
	if !reflect.DeepEqual(back, wantBack) {
		t.Fatalf("round trip %+v, want %+v", back, wantBack)
	}

	// Without extensions: exactly the four members (detail omitted when empty).
	if b, _ := json.Marshal(apigw.Problem{Type: "t", Title: "T", Status: 400}); string(b) != `{"type":"t","title":"T","status":400}` {
		t.Fatalf("plain problem %s", b)
	}
	if err := json.Unmarshal([]byte(`{"type":"t","title":"T","status":"400"}`), &back); err == nil {
		t.Fatal("a string status was accepted")
	}
}

func TestProblemResponses(t *testing.T) {
	p := apigw.Problem{Type: "urn:x:busy", Title: "Busy", Status: 409, RetryAfter: 7, Extensions: map[string]any{"order_id": "ord_1"}}
	v2, v1 := p.ResponseV2(), p.ResponseV1()
	wantHeaders := map[string]string{"Content-Type": apigw.ProblemContentType, "Cache-Control": "no-store", "Retry-After": "7"}
	wantBody := `{"type":"urn:x:busy","title":"Busy","status":409,"order_id":"ord_1"}`
	if v2.StatusCode != 409 || v2.Body != wantBody || !reflect.DeepEqual(v2.Headers, wantHeaders) {
		t.Fatalf("v2 %+v", v2)
	}
	if v1.StatusCode != 409 || v1.Body != wantBody || !reflect.DeepEqual(v1.Headers, wantHeaders) {
		t.Fatalf("v1 %+v", v1)
	}
	if h := (apigw.Problem{Status: 500}).ResponseV2().Headers; h["Retry-After"] != "" {
		t.Fatalf("Retry-After without RetryAfter: %v", h)
	}

	// An extension that cannot be encoded is dropped, not the whole answer.
	bad := apigw.Problem{Type: "t", Title: "T", Status: 500, Extensions: map[string]any{"ch": make(chan int)}}
	if _, err := json.Marshal(bad); err == nil {
		t.Fatal("marshalling a channel succeeded")
	}
	if r := bad.ResponseV2(); r.StatusCode != 500 || r.Body != `{"type":"t","title":"T","status":500}` {
		t.Fatalf("unencodable extension: %d %s", r.StatusCode, r.Body)
	}
}

// A handler answers with the wrapper's problem type, extension members
// included, so the API has one problem format.
func ExampleProblem_ResponseV2() {
	p := apigw.Problem{
		Type:       apigw.DefaultProblemBase + "payment-in-progress",
		Title:      "Payment in progress",
		Status:     409,
		RetryAfter: 2,
		Extensions: map[string]any{"order_id": "ord_42"},
	}
	r := p.ResponseV2()
	fmt.Println(r.StatusCode, r.Headers["Content-Type"], r.Headers["Retry-After"])
	fmt.Println(r.Body)
	// Output:
	// 409 application/problem+json 2
	// {"type":"https://docs.acme.dev/problems/payment-in-progress","title":"Payment in progress","status":409,"order_id":"ord_42"}
}
