package idemhttp_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/acme/idemcheckout/pkg/idemddb"
	"github.com/acme/idemcheckout/pkg/idemddb/apigw"
	"github.com/acme/idemcheckout/pkg/idemddb/ddbmem"
	"github.com/acme/idemcheckout/pkg/idemddb/idemhttp"
	"github.com/aws/aws-lambda-go/events"
)

// A net/http service whose POST /subscriptions runs once per key and
// caller. Nothing here is specific to this repository: copy it. On Lambda
// with aws-lambda-go-api-proxy, serve mux with
// lambda.Start(httpadapter.NewV2(mux).ProxyWithContext) and pass
// core.GetAPIGatewayV2ContextFromContext as the getter; in a container,
// http.ListenAndServe and a PrincipalFunc of your own authentication.
func ExampleMiddleware() {
	// The in-memory engine (for tests) with the store's table: partition
	// key "id" (S), TTL on "expires_at". In a Lambda: cfg, _ :=
	// config.LoadDefaultConfig(ctx), dynamodb.NewFromConfig(cfg), and the
	// table's name from the environment (os.Getenv("IDEMPOTENCY_TABLE")).
	client := ddbmem.New()
	if err := client.CreateIdempotencyTable("idempotency"); err != nil {
		log.Fatal(err)
	}
	store, err := idemddb.New(client, idemddb.Config{Table: "idempotency"})
	if err != nil {
		log.Fatal(err)
	}
	// On Lambda: core.GetAPIGatewayV2ContextFromContext, which reads the
	// request context the proxy put in the request's context. Here, every
	// request comes from the JWT subject user-1.
	getRequestContext := func(context.Context) (events.APIGatewayV2HTTPRequestContext, bool) {
		return events.APIGatewayV2HTTPRequestContext{
			Authorizer: &events.APIGatewayV2HTTPRequestContextAuthorizerDescription{
				JWT: &events.APIGatewayV2HTTPRequestContextAuthorizerJWTDescription{Claims: map[string]string{"sub": "user-1"}},
			},
		}, true
	}
	// Logs and metrics go to stdout by default; this example discards them.
	mw := idemhttp.Middleware(store,
		idemhttp.WithPrincipal(idemhttp.APIGatewayV2Principal(getRequestContext)),
		apigw.WithPrincipalRequired(),
		apigw.WithLogger(slog.New(slog.DiscardHandler)), apigw.WithMetrics(nil))

	runs := 0
	mux := http.NewServeMux()
	mux.Handle("POST /subscriptions", mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		runs++
		claim, _ := idemddb.ClaimFromContext(r.Context())
		// claim.ResourceID is a stable id for the subscription (the same
		// after a crash and a retry); claim.AddWrites(...) commits the
		// subscription with the response.
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		fmt.Fprintf(w, `{"subscription_id":%q}`, "sub_"+claim.ResourceID)
	})))

	post := func(key, body string) *http.Response {
		r := httptest.NewRequest("POST", "/subscriptions", strings.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		r.Header.Set("Idempotency-Key", key)
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, r)
		return w.Result()
	}
	first := post("signup-5d1e", `{"email":"ada@example.com"}`)
	again := post("signup-5d1e", `{"email":"ada@example.com"}`) // the client retries
	firstBody, _ := io.ReadAll(first.Body)
	againBody, _ := io.ReadAll(again.Body)
	fmt.Printf("%d replayed=%q\n", first.StatusCode, first.Header.Get("Idempotent-Replayed"))
	fmt.Printf("%d replayed=%q same body: %v\n", again.StatusCode, again.Header.Get("Idempotent-Replayed"), string(againBody) == string(firstBody))
	other := post("signup-5d1e", `{"email":"bob@example.com"}`) // same key, another request
	fmt.Println(other.StatusCode, other.Header.Get("Content-Type"))
	fmt.Println("runs:", runs)
	// Output:
	// 201 replayed=""
	// 201 replayed="true" same body: true
	// 422 application/problem+json
	// runs: 1
}
