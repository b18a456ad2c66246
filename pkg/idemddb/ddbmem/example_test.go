package ddbmem_test

import (
	"context"
	"fmt"

	"github.com/acme/idemcheckout/pkg/idemddb"
	"github.com/acme/idemcheckout/pkg/idemddb/ddbmem"
)

// A Store on the in-memory engine: the second call with the same key
// replays the first result without running the work.
func Example() {
	db := ddbmem.New()
	if err := db.CreateIdempotencyTable("idempotency"); err != nil {
		fmt.Println(err)
		return
	}
	store, err := idemddb.New(db, idemddb.Config{Table: "idempotency"})
	if err != nil {
		fmt.Println(err)
		return
	}
	runs := 0
	work := func(ctx context.Context, c *idemddb.Claim) ([]byte, error) {
		runs++
		return []byte(`{"order":"o-1"}`), nil
	}
	req := idemddb.Request{Key: "order:42", Fingerprint: []byte("POST /orders {...}")}
	for range 2 {
		res, err := store.Run(context.Background(), req, work)
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Printf("%s replayed=%v\n", res.Data, res.Replayed)
	}
	fmt.Println("runs:", runs)
	// Output:
	// {"order":"o-1"} replayed=false
	// {"order":"o-1"} replayed=true
	// runs: 1
}
