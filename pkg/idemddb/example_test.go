package idemddb_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/acme/idemcheckout/pkg/idemddb"
	"github.com/acme/idemcheckout/pkg/idemddb/ddbmem"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// exampleTable gives an example the in-memory engine (ddbmem, for tests)
// with the store's table: partition key "id" (S), TTL on "expires_at". In a
// Lambda, the client is a *dynamodb.Client instead:
// cfg, _ := config.LoadDefaultConfig(ctx); client := dynamodb.NewFromConfig(cfg),
// and the table comes from the template.
func exampleTable() (*ddbmem.Engine, string) {
	db := ddbmem.New()
	if err := db.CreateIdempotencyTable("idempotency"); err != nil {
		log.Fatal(err)
	}
	return db, "idempotency"
}

// "Pay Now" clicked three times: the charge runs once, the other two clicks
// get the stored result.
func Example() {
	ctx := context.Background()
	client, table := exampleTable()
	store, err := idemddb.New(client, idemddb.Config{Table: table})
	if err != nil {
		log.Fatal(err)
	}
	charge := func(ctx context.Context, c *idemddb.Claim) ([]byte, error) {
		fmt.Println("charging the card")
		return []byte(`{"status":"CAPTURED","amount":500000}`), nil
	}
	req := idemddb.Request{Key: "customer-42/pay-now-7f3c", Fingerprint: []byte(`{"amount":500000}`)}
	for click := 1; click <= 3; click++ {
		res, err := store.Run(ctx, req, charge)
		fmt.Printf("click %d: %s replayed=%v err=%v\n", click, res.Data, res.Replayed, err)
	}

	// The same key with another payload is refused, without running the work.
	_, err = store.Run(ctx, idemddb.Request{Key: req.Key, Fingerprint: []byte(`{"amount":1}`)}, charge)
	fmt.Println(errors.Is(err, idemddb.ErrMismatch))
	// Output:
	// charging the card
	// click 1: {"status":"CAPTURED","amount":500000} replayed=false err=<nil>
	// click 2: {"status":"CAPTURED","amount":500000} replayed=true err=<nil>
	// click 3: {"status":"CAPTURED","amount":500000} replayed=true err=<nil>
	// true
}

// Do stores a typed result as JSON. An SQS consumer would use the message's
// deduplication id (or a business key) as the key.
func ExampleDo() {
	ctx := context.Background()
	client, table := exampleTable()
	store, err := idemddb.New(client, idemddb.Config{Table: table})
	if err != nil {
		log.Fatal(err)
	}
	type shipment struct {
		ID string `json:"id"`
	}
	ship := func(ctx context.Context, c *idemddb.Claim) (shipment, error) {
		// c.ResourceID is fixed at the first claim: ids derived from it
		// survive a crash and a retry.
		return shipment{ID: "shp_1"}, nil
	}
	for range 2 {
		s, replayed, err := idemddb.Do(ctx, store, "msg-0001", []byte("order-9"), ship)
		fmt.Println(s.ID, replayed, err)
	}
	// Output:
	// shp_1 false <nil>
	// shp_1 true <nil>
}

// New with the options a payments service usually sets: a retention inside
// the 24–72 h window disputes need, an in-process cache for hot replays and
// the function's logger.
func ExampleNew() {
	client, table := exampleTable() // in a Lambda: dynamodb.NewFromConfig(cfg)
	store, err := idemddb.New(client, idemddb.Config{
		Table:     table,                         // partition key "id" (S), TTL on "expires_at"
		Retention: 48 * time.Hour,                // default 24 h
		Cache:     idemddb.NewCache(1024, 0),     // replays from memory cost no request
		Logger:    slog.New(slog.DiscardHandler), // default slog.Default()
	})
	fmt.Println(store.Retention(), err)
	// Output:
	// 48h0m0s <nil>
}

// Begin and Complete for work that is not one function call: claim, do
// the work in steps, then store its result (or Release the key on failure,
// so a retry runs it again).
func ExampleStore_Begin() {
	ctx := context.Background()
	client, table := exampleTable()
	store, err := idemddb.New(client, idemddb.Config{Table: table})
	if err != nil {
		log.Fatal(err)
	}
	req := idemddb.Request{Key: "webhook/evt_1Nv0", Fingerprint: []byte(`{"type":"charge.refunded"}`)}
	for delivery := 1; delivery <= 2; delivery++ {
		claim, replay, err := store.Begin(ctx, req)
		switch {
		case err != nil:
			log.Fatal(err)
		case replay != nil:
			fmt.Printf("delivery %d: already handled: %s\n", delivery, replay.Data)
			continue
		}
		// ... step 1, step 2: the claim holds the key meanwhile ...
		res, err := store.Complete(ctx, claim, []byte("refund recorded"))
		fmt.Printf("delivery %d: handled: %s %v\n", delivery, res.Data, err)
	}
	// Output:
	// delivery 1: handled: refund recorded <nil>
	// delivery 2: already handled: refund recorded
}

// AddWrites commits the business write in the same transaction as the
// record: the order exists if and only if the request is recorded as done,
// so a crash between the two cannot create a second order on retry.
func ExampleClaim_AddWrites() {
	ctx := context.Background()
	client, table := exampleTable()
	const orders = "orders" // partition key "order_id" (S)
	if _, err := client.CreateTable(ctx, &dynamodb.CreateTableInput{
		TableName:            aws.String(orders),
		AttributeDefinitions: []types.AttributeDefinition{{AttributeName: aws.String("order_id"), AttributeType: types.ScalarAttributeTypeS}},
		KeySchema:            []types.KeySchemaElement{{AttributeName: aws.String("order_id"), KeyType: types.KeyTypeHash}},
		BillingMode:          types.BillingModePayPerRequest,
	}); err != nil {
		log.Fatal(err)
	}
	store, err := idemddb.New(client, idemddb.Config{Table: table})
	if err != nil {
		log.Fatal(err)
	}
	create := func(ctx context.Context, c *idemddb.Claim) ([]byte, error) {
		id := "ord_" + c.ResourceID // the same id after a crash and takeover
		c.AddWrites(types.TransactWriteItem{Put: &types.Put{
			TableName:           aws.String(orders),
			Item:                map[string]types.AttributeValue{"order_id": &types.AttributeValueMemberS{Value: id}},
			ConditionExpression: aws.String("attribute_not_exists(order_id)"),
		}})
		return []byte("created"), nil
	}
	for range 2 {
		res, err := store.Run(ctx, idemddb.Request{Key: "checkout/cart-77"}, create)
		fmt.Println(string(res.Data), res.Replayed, err)
	}
	out, err := client.Scan(ctx, &dynamodb.ScanInput{TableName: aws.String(orders)})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("orders:", out.Count)
	// Output:
	// created false <nil>
	// created true <nil>
	// orders: 1
}

// NewCache: a replay served from the process's cache makes no DynamoDB
// request at all (a Lambda execution environment keeps it between
// invocations).
func ExampleNewCache() {
	ctx := context.Background()
	var requests atomic.Int64 // the engine's hook counts the requests
	client := ddbmem.New(ddbmem.WithHook(func(context.Context, string, any) error {
		requests.Add(1)
		return nil
	}))
	if err := client.CreateIdempotencyTable("idempotency"); err != nil {
		log.Fatal(err)
	}
	store, err := idemddb.New(client, idemddb.Config{Table: "idempotency", Cache: idemddb.NewCache(1024, 64<<10)})
	if err != nil {
		log.Fatal(err)
	}
	work := func(context.Context, *idemddb.Claim) ([]byte, error) { return []byte("ok"), nil }
	req := idemddb.Request{Key: "cached"}
	if _, err := store.Run(ctx, req, work); err != nil {
		log.Fatal(err)
	}
	requests.Store(0)
	res, err := store.Run(ctx, req, work)
	fmt.Println(string(res.Data), res.Replayed, err, "requests:", requests.Load())
	// Output:
	// ok true <nil> requests: 0
}

// Request.Wait: a duplicate that arrives while the first call runs waits
// for its result instead of getting ErrInProgress.
func ExampleRequest_wait() {
	ctx := context.Background()
	client, table := exampleTable()
	store, err := idemddb.New(client, idemddb.Config{Table: table})
	if err != nil {
		log.Fatal(err)
	}
	req := idemddb.Request{Key: "pay-now", Fingerprint: []byte("order-9"), Wait: 5 * time.Second}
	first, _, err := store.Begin(ctx, req) // the first click, still charging
	if err != nil {
		log.Fatal(err)
	}
	done := make(chan idemddb.Result)
	go func() {
		res, err := store.Run(ctx, req, nil) // the second click waits
		if err != nil {
			log.Fatal(err)
		}
		done <- res
	}()
	if _, err := store.Complete(ctx, first, []byte("charged once")); err != nil {
		log.Fatal(err)
	}
	res := <-done
	fmt.Println(string(res.Data), res.Replayed, res.WaitReads <= idemddb.MaxWaitReads(req.Wait))
	// Output:
	// charged once true true
}
