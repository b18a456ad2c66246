package checkout_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/acme/idemcheckout/ddblocal/ddbtest"
	"github.com/acme/idemcheckout/internal/checkout"
	"github.com/acme/idemcheckout/pkg/idemddb"
	"github.com/acme/idemcheckout/pkg/idemddb/apigw"
)

// startedProvider closes started when the first authorization begins.
type startedProvider struct {
	checkout.Provider
	once    sync.Once
	started chan struct{}
}

func (p *startedProvider) Authorize(ctx context.Context, req checkout.AuthorizationRequest) (checkout.Authorization, error) {
	p.once.Do(func() { close(p.started) })
	return p.Provider.Authorize(ctx, req)
}

// TestPayNowClickedThreeTimesWaits: "Pay Now" clicked three times, 50 ms
// apart, with "Prefer: wait=10", while the provider takes 1 s. The second
// and third clicks wait for the first instead of getting 409: three 201
// with one body, one charge, the second and third marked replayed. Each
// click has its own store and counting client (as each would run in its
// own Lambda instance), so each waiting click's requests are counted: its
// claim and at most idemddb.MaxWaitReads(10 s) reads.
func TestPayNowClickedThreeTimesWaits(t *testing.T) {
	e := newEnvLease(t, 30*time.Second)
	slow, err := checkout.NewLedger(checkout.LedgerConfig{DB: e.pdb, Table: e.paymentsTb, Now: e.clk.Now, Latency: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	provider := &startedProvider{Provider: slow, started: make(chan struct{})}
	payments, err := checkout.NewPayments(checkout.PaymentsConfig{
		DB: e.db, OrdersTable: e.ordersTable, PaymentsTable: e.paymentsTb, Provider: provider, Now: e.clk.Now, Logger: quietLogger(),
	})
	if err != nil {
		t.Fatal(err)
	}
	createOrder, _ := e.wrapped()
	o := e.wrappedOrder(t, createOrder, alice, "cart-wait")
	ev := event(t, "POST /payments", paymentBody(o.OrderID, orderAmount, "INR", "card"), "pay-now-wait", alice)
	ev.Headers["prefer"] = "wait=10"

	const clicks = 3
	clients := make([]*ddbtest.Client, clicks)
	handlers := make([]handler, clicks)
	for i := range clicks {
		clients[i] = ddbtest.Wrap(e.raw)
		store, err := idemddb.New(clients[i], idemddb.Config{
			Table: e.idemTable, Now: e.clk.Now, DefaultLease: 30 * time.Second, LeaseMargin: testMargin, Logger: quietLogger(),
		})
		if err != nil {
			t.Fatal(err)
		}
		handlers[i] = payments.WrapV2(store, apigw.WithLogger(quietLogger()), apigw.WithMetrics(nil))
	}
	answers := make([]responseV2, clicks)
	var wg sync.WaitGroup
	click := func(i int) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := handlers[i](context.Background(), ev)
			if err != nil {
				t.Errorf("click %d: %v", i+1, err)
			}
			answers[i] = r
		}()
	}
	click(0)
	<-provider.started // the first click is at the provider
	clients[1].Reset()
	clients[2].Reset()
	click(1)
	time.Sleep(50 * time.Millisecond) // the user's third click, 50 ms later (the scenario, not a synchronisation)
	click(2)
	wg.Wait()

	for i, r := range answers {
		if r.StatusCode != 201 || r.Body != answers[0].Body {
			t.Fatalf("click %d: %d %s; want the first click's 201 %s", i+1, r.StatusCode, r.Body, answers[0].Body)
		}
		replayed := r.Headers[apigw.ReplayedHeader] == "true"
		if replayed != (i > 0) || (i > 0 && r.Headers[apigw.PreferenceAppliedHeader] != "wait=10") {
			t.Fatalf("click %d headers %v", i+1, r.Headers)
		}
	}
	auths, pays := e.ledgerItems(t)
	if len(auths) != 1 || auths[0]["status"] != string(checkout.AuthCaptured) || len(pays) != 1 {
		t.Fatalf("ledger: %d authorizations %v, %d payments; want one charge", len(auths), auths, len(pays))
	}
	bound := idemddb.MaxWaitReads(10 * time.Second)
	for i := 1; i < clicks; i++ {
		got := clients[i].Counts()
		t.Logf("click %d: DynamoDB requests %v (bound: 1 PutItem + %d GetItem)", i+1, got, bound)
		if got["PutItem"] != 1 || got["GetItem"] < 1 || got["GetItem"] > bound || len(got) != 2 {
			t.Fatalf("click %d made %v; want its claim and 1..%d reads", i+1, got, bound)
		}
	}
}
