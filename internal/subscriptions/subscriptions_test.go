package subscriptions_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/acme/idemcheckout/internal/subscriptions"
	"github.com/acme/idemcheckout/pkg/idemddb"
	"github.com/acme/idemcheckout/pkg/idemddb/apigw"
	"github.com/acme/idemcheckout/pkg/idemddb/ddbmem"
	"github.com/acme/idemcheckout/pkg/idemddb/idemhttp"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// service is the handler on an in-memory DynamoDB with both tables, the
// requests it makes counted.
type service struct {
	db       *ddbmem.Engine
	h        http.Handler
	requests atomic.Int64
}

func newService(t *testing.T) *service {
	t.Helper()
	s := &service{}
	s.db = ddbmem.New(ddbmem.WithHook(func(context.Context, string, any) error {
		s.requests.Add(1)
		return nil
	}))
	if err := s.db.CreateIdempotencyTable("idempotency"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.db.CreateTable(context.Background(), &dynamodb.CreateTableInput{
		TableName:            aws.String("subscriptions"),
		AttributeDefinitions: []types.AttributeDefinition{{AttributeName: aws.String(subscriptions.KeyAttribute), AttributeType: types.ScalarAttributeTypeS}},
		KeySchema:            []types.KeySchemaElement{{AttributeName: aws.String(subscriptions.KeyAttribute), KeyType: types.KeyTypeHash}},
		BillingMode:          types.BillingModePayPerRequest,
	}); err != nil {
		t.Fatal(err)
	}
	store, err := idemddb.New(s.db, idemddb.Config{Table: "idempotency"})
	if err != nil {
		t.Fatal(err)
	}
	s.h, err = subscriptions.NewHandler(store, "subscriptions",
		idemhttp.WithPrincipal(func(r *http.Request) (string, error) { return r.Header.Get("X-Test-User"), nil }),
		apigw.WithPrincipalRequired(),
		apigw.WithLogger(slog.New(slog.DiscardHandler)), apigw.WithMetrics(nil))
	if err != nil {
		t.Fatal(err)
	}
	s.requests.Store(0)
	return s
}

type answer struct {
	status int
	header http.Header
	body   string
}

func (s *service) post(key, body string) answer {
	r := httptest.NewRequest("POST", "/subscriptions", strings.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("X-Test-User", "user-1")
	if key != "" {
		r.Header.Set("Idempotency-Key", key)
	}
	w := httptest.NewRecorder()
	s.h.ServeHTTP(w, r)
	b, _ := io.ReadAll(w.Result().Body)
	return answer{w.Code, w.Result().Header, string(b)}
}

func (s *service) items(t *testing.T) []map[string]types.AttributeValue {
	t.Helper()
	items, err := s.db.Items("subscriptions")
	if err != nil {
		t.Fatal(err)
	}
	return items
}

func problemType(t *testing.T, a answer) string {
	t.Helper()
	if ct := a.header.Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("%d answer with Content-Type %q: %s", a.status, ct, a.body)
	}
	var p struct{ Type string }
	if err := json.Unmarshal([]byte(a.body), &p); err != nil {
		t.Fatal(err)
	}
	return p.Type[strings.LastIndex(p.Type, "/")+1:]
}

// TestCreateThenReplay: the first request creates the subscription (one
// item, two DynamoDB requests: the claim and the transaction with the
// email item); the retry replays status, headers and body byte for byte
// with Idempotent-Replayed at one request, and writes nothing.
func TestCreateThenReplay(t *testing.T) {
	s := newService(t)
	body := `{"email":"Ada@Example.com","plan":"pro"}`
	first := s.post("signup-1", body)
	if first.status != 201 || first.header.Get("Idempotent-Replayed") != "" {
		t.Fatalf("first: %d %v %s", first.status, first.header, first.body)
	}
	var sub subscriptions.Subscription
	if err := json.Unmarshal([]byte(first.body), &sub); err != nil || !strings.HasPrefix(sub.ID, "sub_") ||
		sub.Email != "Ada@Example.com" || sub.Plan != "pro" || sub.Status != "ACTIVE" {
		t.Fatalf("first body %s (%v)", first.body, err)
	}
	if loc := first.header.Get("Location"); loc != "/subscriptions/"+sub.ID {
		t.Fatalf("Location %q", loc)
	}
	if n := s.requests.Load(); n != 2 {
		t.Fatalf("first request made %d DynamoDB requests, want 2", n)
	}
	s.requests.Store(0)
	again := s.post("signup-1", body)
	if again.status != 201 || again.body != first.body || again.header.Get("Location") != first.header.Get("Location") ||
		again.header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("replay: %d %v %s; want the first answer, replayed", again.status, again.header, again.body)
	}
	if n := s.requests.Load(); n != 1 {
		t.Fatalf("replay made %d DynamoDB requests, want 1", n)
	}
	items := s.items(t)
	if len(items) != 1 || items[0][subscriptions.KeyAttribute].(*types.AttributeValueMemberS).Value != "email#ada@example.com" ||
		items[0]["subscription_id"].(*types.AttributeValueMemberS).Value != sub.ID {
		t.Fatalf("items %v; want one, for ada@example.com, %s", items, sub.ID)
	}
}

// TestOneSubscriptionPerEmail: a second key for the same address (spelled
// with other capitals) answers 422 subscription-email-taken, writes
// nothing, and answers the same on its retry (the key was released); the
// same key then works for another address.
func TestOneSubscriptionPerEmail(t *testing.T) {
	s := newService(t)
	if a := s.post("signup-1", `{"email":"ada@example.com","plan":"basic"}`); a.status != 201 {
		t.Fatalf("first: %d %s", a.status, a.body)
	}
	for range 2 {
		a := s.post("signup-2", `{"email":"ADA@example.com","plan":"pro"}`)
		if a.status != 422 || problemType(t, a) != subscriptions.ProblemEmailTaken || a.header.Get("Idempotent-Replayed") != "" {
			t.Fatalf("second key: %d %s; want 422 %s", a.status, a.body, subscriptions.ProblemEmailTaken)
		}
	}
	if n := len(s.items(t)); n != 1 {
		t.Fatalf("%d subscriptions, want 1", n)
	}
	if a := s.post("signup-2", `{"email":"bob@example.com","plan":"pro"}`); a.status != 201 {
		t.Fatalf("released key, another address: %d %s; want 201", a.status, a.body)
	}
}

// TestKeyReusedWithAnotherBody: the same key with another body is 422
// idempotency-key-reused; nothing runs.
func TestKeyReusedWithAnotherBody(t *testing.T) {
	s := newService(t)
	if a := s.post("signup-1", `{"email":"ada@example.com","plan":"basic"}`); a.status != 201 {
		t.Fatalf("first: %d %s", a.status, a.body)
	}
	a := s.post("signup-1", `{"email":"ada@example.com","plan":"pro"}`)
	if a.status != 422 || problemType(t, a) != "idempotency-key-reused" {
		t.Fatalf("reused key: %d %s; want 422", a.status, a.body)
	}
}

// TestInvalidRequests: a body that is not a valid signup gets 400
// subscription-invalid naming every bad field, a missing key 400 from the
// middleware, and none writes a subscription.
func TestInvalidRequests(t *testing.T) {
	s := newService(t)
	for _, c := range []struct{ key, body, problem, fields string }{
		{"k1", `{"email":"","plan":"gold"}`, subscriptions.ProblemInvalid, "email,plan"},
		{"k2", `{"email":"Ada <ada@example.com>","plan":"pro"}`, subscriptions.ProblemInvalid, "email"},
		{"k3", `{"email":"not-an-address","plan":"pro"}`, subscriptions.ProblemInvalid, "email"},
		{"k4", `[1,2]`, subscriptions.ProblemInvalid, ""},
		{"k5", `{"email":"ada@example.com","plan":"pro","admin":true}`, subscriptions.ProblemInvalid, ""},
		{"", `{"email":"ada@example.com","plan":"pro"}`, "idempotency-key-missing", "-"},
	} {
		a := s.post(c.key, c.body)
		if a.status != 400 || problemType(t, a) != c.problem {
			t.Fatalf("%s: %d %s; want 400 %s", c.body, a.status, a.body, c.problem)
		}
		if c.fields == "-" {
			continue
		}
		var p struct{ Errors []struct{ Field string } }
		if err := json.Unmarshal([]byte(a.body), &p); err != nil {
			t.Fatal(err)
		}
		var fields []string
		for _, e := range p.Errors {
			fields = append(fields, e.Field)
		}
		if got := strings.Join(fields, ","); got != c.fields {
			t.Fatalf("%s: errors on %q, want %q", c.body, got, c.fields)
		}
	}
	if n := len(s.items(t)); n != 0 {
		t.Fatalf("%d subscriptions, want 0", n)
	}
}

// TestRacingKeysForOneEmail: 8 keys sign the same address up at once:
// exactly one gets 201, the others 422 subscription-email-taken, and there
// is one subscription. (ddbmem applies one transaction at a time; DynamoDB
// may also cancel one with TransactionConflict for another in flight,
// which the store sends again, so the answers are the same; the
// end-to-end test runs on moto.)
func TestRacingKeysForOneEmail(t *testing.T) {
	s := newService(t)
	const n = 8
	answers := make([]answer, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			answers[i] = s.post(fmt.Sprintf("race-%d", i), `{"email":"ada@example.com","plan":"pro"}`)
		})
	}
	close(start)
	wg.Wait()
	created := 0
	for _, a := range answers {
		switch {
		case a.status == 201:
			created++
		case a.status == 422 && problemType(t, a) == subscriptions.ProblemEmailTaken:
		default:
			t.Fatalf("answer %d %s", a.status, a.body)
		}
	}
	if created != 1 || len(s.items(t)) != 1 {
		t.Fatalf("%d created, %d subscriptions; want 1 and 1", created, len(s.items(t)))
	}
}

// TestNewHandlerRefusesMissingConfig: no table or no store is an error,
// not a handler that fails later.
func TestNewHandlerRefusesMissingConfig(t *testing.T) {
	if _, err := subscriptions.NewHandler(nil, "subscriptions"); err == nil {
		t.Error("no store: no error")
	}
	store, _ := idemddb.New(ddbmem.New(), idemddb.Config{Table: "idempotency"})
	if _, err := subscriptions.NewHandler(store, ""); !errors.Is(err, subscriptions.ErrNoTable) {
		t.Errorf("no table: %v, want ErrNoTable", err)
	}
}
