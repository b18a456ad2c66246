package samtemplate

import (
	"bufio"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/acme/idemcheckout/ddblocal/ddbtest"
	"github.com/acme/idemcheckout/pkg/idemddb"
)

// The repository's template and the contract other code relies on.
const (
	idemTable = "IdempotencyTable"
	// idemKey is the idempotency library's default partition key
	// (idemddb.Config.KeyAttribute).
	idemKey = "id"
)

func loadRepoTemplate(t *testing.T) (*Template, Expect) {
	t.Helper()
	root, err := ddbtest.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	tpl, err := ParseFile(filepath.Join(root, "template.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	return tpl, Expect{Root: root, IdempotencyTable: idemTable, KeyAttribute: idemKey, TTLAttribute: idemddb.TTLAttribute}
}

func reportProblems(t *testing.T, ps []Problem) {
	t.Helper()
	for _, p := range ps {
		t.Error(p)
	}
}

func TestFunctionsRunProvidedAL2023OnArm64(t *testing.T) {
	tpl, _ := loadRepoTemplate(t)
	reportProblems(t, CheckFunctions(tpl))
	var ids []string
	for _, f := range tpl.Functions() {
		ids = append(ids, f.ID)
	}
	if want := []string{"CreateOrderFunction", "CreatePaymentFunction", "CreateSubscriptionFunction", "FulfilOrderFunction", "ReconcilePaymentsFunction", "StripeWebhookFunction"}; !slices.Equal(ids, want) {
		t.Errorf("functions are %v, want %v", ids, want)
	}
}

func TestCodeURIsAreGoMainPackages(t *testing.T) {
	tpl, e := loadRepoTemplate(t)
	reportProblems(t, CheckCode(tpl, e.Root))
}

func TestRoutes(t *testing.T) {
	tpl, _ := loadRepoTemplate(t)
	reportProblems(t, CheckRoutes(tpl))
	want := map[string]string{
		"POST /orders":        "CreateOrderFunction",
		"GET /orders/{id}":    "CreateOrderFunction",
		"POST /payments":      "CreatePaymentFunction",
		"GET /payments/{id}":  "CreatePaymentFunction",
		"POST /subscriptions": "CreateSubscriptionFunction",
		// No JWT: Stripe signs (SignedRoutePrefix).
		"POST /webhooks/stripe": "StripeWebhookFunction",
	}
	got := map[string]string{}
	for _, r := range tpl.Routes() {
		if r.API != "CheckoutApi" {
			t.Errorf("%s %s is on API %q, want CheckoutApi", r.Function, r, r.API)
		}
		got[r.String()] = r.Function
	}
	if !maps.Equal(got, want) {
		t.Errorf("routes are %v, want %v", got, want)
	}
}

func TestIdempotencyTableMatchesLibrary(t *testing.T) {
	tpl, e := loadRepoTemplate(t)
	reportProblems(t, CheckIdempotencyTable(tpl, e.IdempotencyTable, e.KeyAttribute, e.TTLAttribute))
}

func TestEnvironmentMatchesPolicies(t *testing.T) {
	tpl, e := loadRepoTemplate(t)
	reportProblems(t, CheckEnvPolicies(tpl, e.IdempotencyTable))
}

func TestLeastPrivilege(t *testing.T) {
	tpl, _ := loadRepoTemplate(t)
	reportProblems(t, CheckLeastPrivilege(tpl))

	// The exact grants, so that widening one is a reviewed change.
	idem := []string{"dynamodb:DeleteItem", "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"}
	table := func(id string) Grant { return Grant{KindTable, id} }
	stripeSecret := Grant{KindSecret, "StripeSecretName"}
	want := map[string]map[Grant][]string{
		"CreateOrderFunction": {
			table("IdempotencyTable"): idem,
			table("OrdersTable"):      {"dynamodb:GetItem", "dynamodb:PutItem"},
			table("ReceiptsTable"):    {"dynamodb:GetItem"},
		},
		"CreatePaymentFunction": {
			table("IdempotencyTable"): idem,
			table("OrdersTable"):      {"dynamodb:GetItem", "dynamodb:UpdateItem"},
			table("PaymentsTable"):    {"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"},
			stripeSecret:              {"secretsmanager:GetSecretValue"},
		},
		"FulfilOrderFunction": {
			table("IdempotencyTable"):            idem,
			table("ReceiptsTable"):               {"dynamodb:PutItem"},
			{KindStream, "OrdersTable"}:          {"dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator"},
			{Kind: KindAll}:                      {"dynamodb:ListStreams"},
			{KindQueue, "FulfilmentDeadLetters"}: {"sqs:SendMessage"},
		},
		"CreateSubscriptionFunction": {
			table("IdempotencyTable"):   idem,
			table("SubscriptionsTable"): {"dynamodb:PutItem"},
		},
		"ReconcilePaymentsFunction": {
			table("IdempotencyTable"): idem,
			table("OrdersTable"):      {"dynamodb:GetItem", "dynamodb:Scan", "dynamodb:UpdateItem"},
			table("PaymentsTable"):    {"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Scan", "dynamodb:UpdateItem"},
			stripeSecret:              {"secretsmanager:GetSecretValue"},
		},
		"StripeWebhookFunction": {
			table("IdempotencyTable"): idem,
			table("OrdersTable"):      {"dynamodb:GetItem", "dynamodb:UpdateItem"},
			stripeSecret:              {"secretsmanager:GetSecretValue"},
		},
	}
	for _, f := range tpl.Functions() {
		for _, st := range statements(f) {
			for _, r := range st.Resources {
				if _, err := targetOf(tpl, r); err != nil {
					t.Errorf("%s %s: %v", f.ID, st.Name, err)
				}
			}
		}
		if got := Grants(tpl, f); !maps.EqualFunc(got, want[f.ID], slices.Equal) {
			t.Errorf("%s grants %v, want %v", f.ID, got, want[f.ID])
		}
	}
}

// TestEventSources: the fulfilment mapping reads the orders stream with
// everything a stream consumer needs, and passes the checks.
func TestEventSources(t *testing.T) {
	tpl, _ := loadRepoTemplate(t)
	reportProblems(t, CheckEventSources(tpl))
	f, _ := tpl.Function("FulfilOrderFunction")
	if len(f.Events) != 1 || f.Events[0].Mapping != "FulfilOrderOnPayment" || f.Events[0].Stream == nil {
		t.Fatalf("FulfilOrderFunction events = %+v, want the FulfilOrderOnPayment mapping", f.Events)
	}
	s := f.Events[0].Stream
	if s.Stream != (Ref{Resource: "OrdersTable", Attribute: "StreamArn"}) || s.StartingPosition != "TRIM_HORIZON" ||
		!s.BisectBatchOnFunctionError || s.OnFailure.Resource != "FulfilmentDeadLetters" || len(s.Filters) != 1 {
		t.Errorf("mapping = %+v", s)
	}
	if tb, _ := tpl.Table("OrdersTable"); tb.StreamViewType != "NEW_AND_OLD_IMAGES" {
		t.Errorf("OrdersTable stream = %q, want NEW_AND_OLD_IMAGES", tb.StreamViewType)
	}
}

// TestTemplateContract pins the names other code and samconfig.toml use.
func TestTemplateContract(t *testing.T) {
	tpl, _ := loadRepoTemplate(t)
	params, _ := tpl.Raw["Parameters"].(map[string]any)
	for name, want := range map[string]map[string]any{
		"JwtIssuer":                {"Type": "String"},
		"JwtAudience":              {"Type": "String", "Default": "checkout-api"},
		"RetentionSeconds":         {"Type": "Number", "Default": 86400, "MinValue": 60, "MaxValue": 604800}, // idemddb.MinRetention; see TestFunctionsAcceptEveryParameterValue
		"PaymentProviderLatencyMs": {"Type": "Number", "Default": 0, "MinValue": 0, "MaxValue": 30000},
		"PaymentProvider":          {"Type": "String", "Default": "ledger"},
		"StripeSecretName":         {"Type": "String", "Default": "idemcheckout/stripe"},
		// lambdaenv.MaxVoidAfter; checkout.DefaultVoidAfter is 10 minutes too.
		"ReconcileVoidAfterMinutes": {"Type": "Number", "Default": 10, "MinValue": 1, "MaxValue": 1440},
		// The storefront `make dev` serves (local/storefront, port 4000).
		"AllowedOrigins": {"Type": "String", "Default": "http://localhost:4000,http://127.0.0.1:4000"},
	} {
		p, _ := params[name].(map[string]any)
		if p == nil {
			t.Errorf("parameter %s is missing", name)
			continue
		}
		for k, v := range want {
			if p[k] != v {
				t.Errorf("parameter %s: %s is %v, want %v", name, k, p[k], v)
			}
		}
	}

	refs := map[string]map[string]string{
		"CreateOrderFunction": {
			"IDEMPOTENCY_TABLE":             "IdempotencyTable",
			"IDEMPOTENCY_RETENTION_SECONDS": "RetentionSeconds",
			"ORDERS_TABLE":                  "OrdersTable",
			"RECEIPTS_TABLE":                "ReceiptsTable",
		},
		"FulfilOrderFunction": {
			"IDEMPOTENCY_TABLE":             "IdempotencyTable",
			"IDEMPOTENCY_RETENTION_SECONDS": "RetentionSeconds",
			"RECEIPTS_TABLE":                "ReceiptsTable",
		},
		"CreatePaymentFunction": {
			"IDEMPOTENCY_TABLE":             "IdempotencyTable",
			"IDEMPOTENCY_RETENTION_SECONDS": "RetentionSeconds",
			"ORDERS_TABLE":                  "OrdersTable",
			"PAYMENTS_TABLE":                "PaymentsTable",
			"PSP_LATENCY_MS":                "PaymentProviderLatencyMs",
			"PAYMENT_PROVIDER":              "PaymentProvider",
			"STRIPE_SECRET_ID":              "StripeSecretName",
		},
		"ReconcilePaymentsFunction": {
			"IDEMPOTENCY_TABLE":             "IdempotencyTable",
			"IDEMPOTENCY_RETENTION_SECONDS": "RetentionSeconds",
			"ORDERS_TABLE":                  "OrdersTable",
			"PAYMENTS_TABLE":                "PaymentsTable",
			"PSP_LATENCY_MS":                "PaymentProviderLatencyMs",
			"RECONCILE_VOID_AFTER_MINUTES":  "ReconcileVoidAfterMinutes",
			"PAYMENT_PROVIDER":              "PaymentProvider",
			"STRIPE_SECRET_ID":              "StripeSecretName",
		},
		"StripeWebhookFunction": {
			"IDEMPOTENCY_TABLE":             "IdempotencyTable",
			"IDEMPOTENCY_RETENTION_SECONDS": "RetentionSeconds",
			"ORDERS_TABLE":                  "OrdersTable",
			"STRIPE_SECRET_ID":              "StripeSecretName",
		},
		"CreateSubscriptionFunction": {
			"IDEMPOTENCY_TABLE":             "IdempotencyTable",
			"IDEMPOTENCY_RETENTION_SECONDS": "RetentionSeconds",
			"SUBSCRIPTIONS_TABLE":           "SubscriptionsTable",
		},
	}
	for _, f := range tpl.Functions() {
		env := f.Env()
		if _, ok := env["LOG_LEVEL"]; !ok {
			t.Errorf("%s: no LOG_LEVEL", f.ID)
		}
		for name, target := range refs[f.ID] {
			if got, ok := RefTarget(env[name]); !ok || got != target {
				t.Errorf("%s: %s is %v, want !Ref %s", f.ID, name, env[name], target)
			}
		}
	}

	for _, id := range []string{"OrdersTable", "PaymentsTable", "ReceiptsTable", "SubscriptionsTable"} {
		r, _ := tpl.Raw["Resources"].(map[string]any)
		res, _ := r[id].(map[string]any)
		if res["DeletionPolicy"] != "Retain" || res["UpdateReplacePolicy"] != "Retain" {
			t.Errorf("%s: DeletionPolicy %v, UpdateReplacePolicy %v, want Retain for both", id, res["DeletionPolicy"], res["UpdateReplacePolicy"])
		}
	}
	keys := map[string]string{"IdempotencyTable": "id", "OrdersTable": "order_id", "PaymentsTable": "pk", "ReceiptsTable": "receipt_id", "SubscriptionsTable": "pk"}
	for id, key := range keys {
		ks, _ := tpl.Resources[id].Properties["KeySchema"].([]any)
		if len(ks) != 1 {
			t.Errorf("%s: KeySchema %v, want only HASH %s", id, ks, key)
			continue
		}
		if k, _ := ks[0].(map[string]any); k["AttributeName"] != key || k["KeyType"] != "HASH" {
			t.Errorf("%s: KeySchema %v, want HASH %s", id, ks, key)
		}
	}

	outs, _ := tpl.Raw["Outputs"].(map[string]any)
	for _, name := range []string{"ApiUrl", "IdempotencyTableName", "OrdersTableName", "PaymentsTableName", "ReceiptsTableName", "SubscriptionsTableName", "FulfilmentDeadLettersUrl"} {
		if outs[name] == nil {
			t.Errorf("output %s is missing", name)
		}
	}
}

// TestMakefileFunctionsMatchTemplate: the Makefile's non-SAM build writes
// .aws-sam/build/<LogicalId>/bootstrap from SAM_FUNCTIONS, which must list
// exactly the template's functions and their CodeUri.
func TestMakefileFunctionsMatchTemplate(t *testing.T) {
	tpl, e := loadRepoTemplate(t)
	f, err := os.Open(filepath.Join(e.Root, "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got := map[string]string{}
	found := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), "=")
		if !ok || strings.TrimSpace(name) != "SAM_FUNCTIONS" {
			continue
		}
		found = true
		for pair := range strings.FieldsSeq(value) {
			id, dir, _ := strings.Cut(pair, "=")
			got[id] = dir
		}
	}
	if !found {
		t.Fatal("Makefile has no SAM_FUNCTIONS line")
	}
	want := map[string]string{}
	for _, fn := range tpl.Functions() {
		uri, _ := fn.Props["CodeUri"].(string)
		want[fn.ID] = strings.TrimSuffix(uri, "/")
	}
	if !maps.Equal(got, want) {
		t.Errorf("Makefile SAM_FUNCTIONS is %v, template has %v", got, want)
	}
}

// TestMakefileModulesListEveryModule: `./...` stops at a nested go.mod, so
// the Makefile's vet/test/test-race run in each directory MODULES names; a
// module missing from it would have its tests silently skipped by make test
// and CI. Every go.mod in the repository (outside node_modules, testdata and
// dot directories) must be listed, and nothing else.
func TestMakefileModulesListEveryModule(t *testing.T) {
	_, e := loadRepoTemplate(t)
	mk, err := os.ReadFile(filepath.Join(e.Root, "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	var listed []string
	for line := range strings.Lines(string(mk)) {
		name, value, ok := strings.Cut(line, "?=")
		if ok && strings.TrimSpace(name) == "MODULES" {
			listed = strings.Fields(value)
		}
	}
	if listed == nil {
		t.Fatal("Makefile has no MODULES ?= line")
	}
	var found []string
	err = filepath.WalkDir(e.Root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && path != e.Root && (d.Name() == "node_modules" || d.Name() == "testdata" || strings.HasPrefix(d.Name(), ".")) {
			return filepath.SkipDir
		}
		if !d.IsDir() && d.Name() == "go.mod" {
			rel, err := filepath.Rel(e.Root, filepath.Dir(path))
			if err != nil {
				return err
			}
			found = append(found, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(listed)
	slices.Sort(found)
	if !slices.Equal(listed, found) {
		t.Errorf("Makefile MODULES is %v, the repository's modules are %v", listed, found)
	}
}

// TestTemplateCORS pins the storefront's CORS contract: the origins come
// from the AllowedOrigins parameter (its Default as written), the headers
// are those the browser client sends and reads, no credentials, and the
// parameter's pattern refuses what would never match a browser's Origin.
func TestTemplateCORS(t *testing.T) {
	tpl, _ := loadRepoTemplate(t)
	reportProblems(t, CheckCORS(tpl))
	api := tpl.API("CheckoutApi")
	if api == nil || api.CORS == nil {
		t.Fatal("CheckoutApi has no CorsConfiguration")
	}
	want := CORSConfiguration{
		AllowOrigins:     []string{"http://localhost:4000", "http://127.0.0.1:4000"},
		AllowHeaders:     []string{"Authorization", "Content-Type", "Idempotency-Key", "Prefer"},
		AllowMethods:     []string{"GET", "POST"},
		ExposeHeaders:    []string{"Idempotent-Replayed", "Retry-After", "Location", "Preference-Applied"},
		MaxAge:           600 * time.Second,
		OriginsParameter: "AllowedOrigins",
	}
	if !reflect.DeepEqual(*api.CORS, want) {
		t.Errorf("CheckoutApi CORS = %+v, want %+v", *api.CORS, want)
	}
	p := parameters(t, tpl)["AllowedOrigins"]
	for v, ok := range map[string]bool{
		"http://localhost:4000":                       true,
		"https://shop.example.com":                    true,
		"https://shop.example.com,https://a.example":  true,
		"https://shop.example.com/":                   false,
		"https://shop.example.com, https://a.example": false,
		"*":                     false,
		"https://*.example.com": false,
		"shop.example.com":      false,
	} {
		if got := paramProblem(p, v) == ""; got != ok {
			t.Errorf("AllowedOrigins=%q accepted = %v, want %v", v, got, ok)
		}
	}
}
