package idemddb_test

import (
	"context"
	"errors"
	"fmt"
	"log"

	"github.com/acme/idemcheckout/internal/ddbtest"
	"github.com/acme/idemcheckout/pkg/idemddb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
)

// exampleTable gives the examples a client and a fresh table on the test
// engine. In a Lambda: cfg, _ := config.LoadDefaultConfig(ctx);
// client := dynamodb.NewFromConfig(cfg).
func exampleTable() (*dynamodb.Client, string) {
	client := moto.Client()
	name := ddbtest.UniqueName("example")
	if err := ddbtest.CreateTable(context.Background(), client, name, "id", ""); err != nil {
		log.Fatal(err)
	}
	return client, name
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
