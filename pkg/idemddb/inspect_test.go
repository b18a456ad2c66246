package idemddb_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/acme/idemcheckout/pkg/idemddb"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// Lookup and DecodeRecord show what Run and Begin stored, through the
// public API only: completed (raw and deflated results), not retained,
// in progress, stuck after the lease, expired, and absent.
func TestInspectRecords(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, moto)
	clock := newClock()
	s := e.store(t, idemddb.Config{Now: clock.Now, MaxResultBytes: 2 << 10, Retention: time.Hour})
	big := bytes.Repeat([]byte("deflates well "), 200) // > 1 KiB: deflated, and under the limit once deflated
	for key, data := range map[string][]byte{"small": []byte(`{"ok":true}`), "big": big} {
		if _, err := s.Run(ctx, idemddb.Request{Key: key, Fingerprint: []byte("fp")}, func(context.Context, *idemddb.Claim) ([]byte, error) { return data, nil }); err != nil {
			t.Fatal(err)
		}
		r, err := s.Lookup(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		if r.Key != key || r.Status != idemddb.StatusCompleted || !bytes.Equal(r.Result, data) || r.ResultErr != nil || r.ResourceID == "" ||
			!r.ExpiresAt.Equal(clock.Now().Add(time.Hour).Truncate(time.Second)) || !r.LeaseUntil.IsZero() || r.Stuck(clock.Now()) {
			t.Errorf("%s: %+v", key, r)
		}
	}
	random := make([]byte, 4<<10) // incompressible: over MaxResultBytes even deflated
	_, _ = rand.Read(random)
	if _, err := s.Run(ctx, idemddb.Request{Key: "huge", Fingerprint: []byte("fp")}, func(context.Context, *idemddb.Claim) ([]byte, error) { return random, nil }); err != nil {
		t.Fatal(err)
	}
	var tooBig *idemddb.ResultTooLargeError
	if r, err := s.Lookup(ctx, "huge"); err != nil || r.Result != nil || !errors.As(r.ResultErr, &tooBig) {
		t.Errorf("not retained: %v", err)
		if r != nil {
			t.Errorf("status %s, %d result bytes, result error %v", r.Status, len(r.Result), r.ResultErr)
		}
	}

	claim, _, err := s.Begin(ctx, idemddb.Request{Key: "running", Fingerprint: []byte("fp")})
	if err != nil {
		t.Fatal(err)
	}
	r, err := s.Lookup(ctx, "running")
	if err != nil {
		t.Fatal(err)
	}
	if r.Status != idemddb.StatusInProgress || r.LeaseOwner != claim.Token || !r.LeaseUntil.Equal(claim.LeaseUntil) || r.ResourceID != claim.ResourceID || r.Stuck(clock.Now()) {
		t.Errorf("in progress: %+v (claim %+v)", r, claim)
	}
	if !r.Stuck(claim.LeaseUntil) || r.Stuck(clock.Now().Add(2*time.Hour)) || !r.Expired(clock.Now().Add(2*time.Hour)) {
		t.Errorf("stuck once the lease is over, not once expired: %+v", r)
	}

	if _, err := s.Lookup(ctx, "never"); !errors.Is(err, idemddb.ErrNoRecord) {
		t.Errorf("absent key: %v", err)
	}
	if _, err := s.Lookup(ctx, strings.Repeat("k", idemddb.MaxKeyBytes+1)); !errors.Is(err, idemddb.ErrInvalidRequest) {
		t.Errorf("over-long key: %v", err)
	}

	// A Scan's items decode the same way; other items are an error.
	out, err := e.raw.Scan(ctx, &dynamodb.ScanInput{TableName: aws.String(e.table), ConsistentRead: aws.Bool(true)})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Items) != 4 {
		t.Fatalf("scan found %d items", len(out.Items))
	}
	for _, it := range out.Items {
		if _, err := s.DecodeRecord(it); err != nil {
			t.Error(err)
		}
	}
	if _, err := s.DecodeRecord(map[string]types.AttributeValue{"id": &types.AttributeValueMemberS{Value: "x"}, "other": &types.AttributeValueMemberS{Value: "y"}}); !errors.Is(err, idemddb.ErrInvalidRequest) {
		t.Errorf("a foreign item: %v", err)
	}
}
