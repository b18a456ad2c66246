package idemddb_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/acme/idemcheckout/ddblocal/ddbtest"
	"github.com/acme/idemcheckout/pkg/idemddb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
)

// conflictAt is a refusal of a completion transaction with reason
// TransactionConflict on item i (the record is the last item).
func conflictAt(i int) func(any) error {
	return func(in any) error {
		if i < 0 {
			i += len(in.(*dynamodb.TransactWriteItemsInput).TransactItems)
		}
		return ddbtest.Cancellation(in, map[int]string{i: "TransactionConflict"})
	}
}

// counted is work that adds one business write and counts its runs.
func counted(biz *bizTable, runs *atomic.Int32) func(context.Context, *idemddb.Claim) ([]byte, error) {
	return func(_ context.Context, c *idemddb.Claim) ([]byte, error) {
		runs.Add(1)
		c.AddWrites(biz.put("order-" + c.ResourceID))
		return []byte("order-" + c.ResourceID), nil
	}
}

// TestCompletionConflictRetried: DynamoDB cancels the completion
// transaction with reason TransactionConflict (on the record, as a
// duplicate's claim does, or on the business write). Nothing was applied
// and the lease is still ours, so the store sends the transaction again:
// the first answer is the result, the work ran once, and the business
// write and the record committed once.
func TestCompletionConflictRetried(t *testing.T) {
	for _, tc := range []struct {
		name  string
		item  int // the conflicting item: 0 the business write, -1 the record
		times int
	}{
		{"record", -1, 1},
		{"business write", 0, 1},
		{"record, every retry but the last", -1, idemddb.ConflictRetries},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			e := newEnv(t, moto)
			biz := newBizTable(t, e)
			s := e.store(t, idemddb.Config{})
			e.client.Refuse("TransactWriteItems", tc.times, conflictAt(tc.item))
			var runs atomic.Int32
			req := idemddb.Request{Key: "conflict", Fingerprint: []byte("p")}
			res, err := s.Run(ctx, req, counted(biz, &runs))
			if err != nil || res.Replayed {
				t.Fatalf("first answer: %+v %v; want the fresh result", res, err)
			}
			if got := e.client.Reset(); !sameCounts(got, map[string]int{"PutItem": 1, "TransactWriteItems": tc.times + 1}) {
				t.Fatalf("requests %v: want the claim and %d transactions (no release)", got, tc.times+1)
			}
			if biz.get(t, string(res.Data)) == nil {
				t.Fatal("business write not committed")
			}
			if st := attrS(e.getItem(t, "conflict"), "status"); st != idemddb.StatusCompleted {
				t.Fatalf("record status %q, want COMPLETED", st)
			}
			again, err := s.Run(ctx, req, counted(biz, &runs))
			if err != nil || !again.Replayed || string(again.Data) != string(res.Data) {
				t.Fatalf("retry: %+v %v; want the stored result replayed", again, err)
			}
			if n := runs.Load(); n != 1 {
				t.Fatalf("work ran %d times, want 1", n)
			}
		})
	}
}

// TestCompletionConflictPastBound: when every attempt meets a conflict the
// caller gets an error that says the key stays claimed, and it does: the
// record is still the caller's IN_PROGRESS claim, nothing committed, and a
// retry with the key is told to wait instead of running the work again.
func TestCompletionConflictPastBound(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, moto)
	biz := newBizTable(t, e)
	s := e.store(t, idemddb.Config{})
	e.client.Refuse("TransactWriteItems", 100, conflictAt(-1))
	var runs atomic.Int32
	req := idemddb.Request{Key: "conflict-bound", Fingerprint: []byte("p")}
	var id string
	_, err := s.Run(ctx, req, func(ctx context.Context, c *idemddb.Claim) ([]byte, error) {
		id = "order-" + c.ResourceID
		return counted(biz, &runs)(ctx, c)
	})
	var se *idemddb.StoreError
	if !errors.As(err, &se) || !errors.Is(err, idemddb.ErrUnavailable) || !strings.Contains(err.Error(), "stays claimed") {
		t.Fatalf("err = %v, want a *StoreError saying the key stays claimed", err)
	}
	if got := e.client.Reset(); !sameCounts(got, map[string]int{"PutItem": 1, "TransactWriteItems": 1 + idemddb.ConflictRetries}) {
		t.Fatalf("requests %v: want the claim and 1+ConflictRetries transactions, no release", got)
	}
	rec := e.getItem(t, "conflict-bound")
	if attrS(rec, "status") != idemddb.StatusInProgress {
		t.Fatalf("record %v: want the claim kept IN_PROGRESS", rec)
	}
	if biz.get(t, id) != nil {
		t.Fatal("business write committed by a cancelled transaction")
	}
	e.client.Refuse("TransactWriteItems", 0, nil)
	_, err = s.Run(ctx, req, counted(biz, &runs))
	if !errors.Is(err, idemddb.ErrInProgress) {
		t.Fatalf("retry: %v, want ErrInProgress until the lease ends", err)
	}
	if n := runs.Load(); n != 1 {
		t.Fatalf("work ran %d times, want 1", n)
	}
}

// TestCompletionConditionKeepsMeaning: a cancellation with
// ConditionalCheckFailed on the caller's write (even beside a
// TransactionConflict on the record) is not transient: the key is released
// and the error names the write, as before.
func TestCompletionConditionKeepsMeaning(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, moto)
	biz := newBizTable(t, e)
	s := e.store(t, idemddb.Config{})
	e.client.Refuse("TransactWriteItems", 1, func(in any) error {
		return ddbtest.Cancellation(in, map[int]string{0: "ConditionalCheckFailed", 1: "TransactionConflict"})
	})
	var runs atomic.Int32
	_, err := s.Run(ctx, idemddb.Request{Key: "cond", Fingerprint: []byte("p")}, counted(biz, &runs))
	var tce *idemddb.TransactionCanceledError
	if !errors.As(err, &tce) || tce.Index != 0 || tce.Reasons[0].Code != "ConditionalCheckFailed" {
		t.Fatalf("err = %v, want *TransactionCanceledError naming write 0", err)
	}
	if got := e.client.Count("TransactWriteItems"); got != 1 {
		t.Fatalf("%d transactions, want 1 (a failed condition is not retried)", got)
	}
	if e.getItem(t, "cond") != nil {
		t.Fatal("key not released after the caller's condition failed")
	}
}

// TestSingleWriteConflictRetried: the completion UpdateItem, the claim
// PutItem and the release DeleteItem answered once with
// TransactionConflictException are sent again; the work runs once.
func TestSingleWriteConflictRetried(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, moto)
	s := e.store(t, idemddb.Config{})
	var runs atomic.Int32
	work := func(context.Context, *idemddb.Claim) ([]byte, error) { runs.Add(1); return []byte("done"), nil }

	e.client.Refuse("UpdateItem", 1, ddbtest.Conflict)
	res, err := s.Run(ctx, idemddb.Request{Key: "upd", Fingerprint: []byte("p")}, work)
	if err != nil || string(res.Data) != "done" {
		t.Fatalf("completion after a conflict: %+v %v", res, err)
	}
	if got := e.client.Reset(); !sameCounts(got, map[string]int{"PutItem": 1, "UpdateItem": 2}) {
		t.Fatalf("requests %v", got)
	}

	e.client.Refuse("PutItem", 1, ddbtest.Conflict)
	res, err = s.Run(ctx, idemddb.Request{Key: "upd", Fingerprint: []byte("p")}, work)
	if err != nil || !res.Replayed {
		t.Fatalf("claim after a conflict: %+v %v; want the replay", res, err)
	}
	if got := e.client.Reset(); !sameCounts(got, map[string]int{"PutItem": 2}) {
		t.Fatalf("requests %v", got)
	}

	e.client.Refuse("DeleteItem", 1, ddbtest.Conflict)
	_, err = s.Run(ctx, idemddb.Request{Key: "rel", Fingerprint: []byte("p")}, func(context.Context, *idemddb.Claim) ([]byte, error) {
		return nil, errWork
	})
	if !errors.Is(err, errWork) || e.client.Count("DeleteItem") != 2 {
		t.Fatalf("release after a conflict: %v, %d deletes", err, e.client.Count("DeleteItem"))
	}
	if e.getItem(t, "rel") != nil {
		t.Fatal("key not released")
	}
	if n := runs.Load(); n != 1 {
		t.Fatalf("work ran %d times, want 1", n)
	}
}

// TestClaimConflictPastBound: a claim refused by conflicts on every resend
// gets a retryable ErrUnavailable and claims nothing.
func TestClaimConflictPastBound(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, moto)
	s := e.store(t, idemddb.Config{})
	e.client.Refuse("PutItem", 100, ddbtest.Conflict)
	_, err := s.Run(ctx, idemddb.Request{Key: "claim-bound", Fingerprint: []byte("p")}, ok)
	if !errors.Is(err, idemddb.ErrUnavailable) {
		t.Fatalf("err = %v, want ErrUnavailable", err)
	}
	if got := e.client.Count("PutItem"); got != 1+idemddb.ConflictRetries {
		t.Fatalf("%d puts, want 1+ConflictRetries", got)
	}
	if e.getItem(t, "claim-bound") != nil {
		t.Fatal("a refused claim left a record")
	}
}

// TestDuplicatesDuringConflictedCompletion is the "Pay Now" clicked many
// times: parallel duplicates of one key while the owner's completion
// transaction is cancelled by conflicts (what their claims cause on real
// DynamoDB). The work runs once, every duplicate gets the result or "in
// progress", and the result commits once.
func TestDuplicatesDuringConflictedCompletion(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, moto)
	biz := newBizTable(t, e)
	s := e.store(t, idemddb.Config{})
	e.client.Refuse("TransactWriteItems", 2, conflictAt(-1))
	var runs atomic.Int32
	req := idemddb.Request{Key: "pay-now", Fingerprint: []byte("p")}
	const callers = 20
	var wg sync.WaitGroup
	results := make([]string, callers)
	for i := range callers {
		wg.Go(func() {
			res, err := s.Run(ctx, req, counted(biz, &runs))
			switch {
			case errors.Is(err, idemddb.ErrInProgress):
				results[i] = "in progress"
			case err != nil:
				results[i] = "error: " + err.Error()
			default:
				results[i] = string(res.Data)
			}
		})
	}
	wg.Wait()
	if n := runs.Load(); n != 1 {
		t.Fatalf("work ran %d times, want 1; results %q", n, results)
	}
	var data string
	for _, r := range results {
		if strings.HasPrefix(r, "error") {
			t.Fatalf("a caller got %s; results %q", r, results)
		}
		if r != "in progress" {
			if data != "" && r != data {
				t.Fatalf("two results %q and %q", data, r)
			}
			data = r
		}
	}
	final, err := s.Run(ctx, req, counted(biz, &runs))
	if err != nil || !final.Replayed || (data != "" && string(final.Data) != data) {
		t.Fatalf("after the burst: %+v %v", final, err)
	}
	if biz.get(t, string(final.Data)) == nil {
		t.Fatal("business write missing")
	}
}
