package idemddb

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// Inspection: reading records for tools and support staff (idemctl), never
// on the request path. Items are decoded by the same code the store uses
// (decodeRecord, decodeResult), so the view cannot drift from what Run
// sees.

// ErrNoRecord: the key has no record (never claimed, released, or deleted
// by TTL).
var ErrNoRecord = errors.New("idemddb: no record for the key")

// Record is one idempotency record, decoded.
type Record struct {
	// Key is the record's key (the partition key value).
	Key string
	// Status is StatusInProgress or StatusCompleted.
	Status string
	// LeaseOwner is the token of the claim that holds, or completed, the
	// record.
	LeaseOwner string
	// LeaseUntil is when the lease of an IN_PROGRESS record ends (zero for
	// a completed one).
	LeaseUntil time.Time
	// ExpiresAt is the end of retention (the TTL attribute). TTL deletes
	// lazily: a record past it may still be there, and counts as absent.
	ExpiresAt time.Time
	// ResourceID is fixed at the first claim (see Claim.ResourceID).
	ResourceID string
	// Result is the stored result, inflated; nil for an IN_PROGRESS record,
	// an empty result, or one that cannot be read (ResultErr).
	Result []byte
	// ResultErr says why a completed record's result cannot be read: a
	// *ResultTooLargeError when it was not retained, a *StoreError when it
	// is corrupt.
	ResultErr error
}

// Expired reports whether the record's retention has passed at now.
func (r *Record) Expired(now time.Time) bool { return expired(r.ExpiresAt.Unix(), now) }

// Stuck reports whether the record is IN_PROGRESS with its lease over at
// now (and not expired): the work that claimed it died or timed out before
// completing, and a retry with the same request will take it over.
func (r *Record) Stuck(now time.Time) bool {
	return r.Status == StatusInProgress && !r.LeaseUntil.After(now) && !r.Expired(now)
}

// DecodeRecord decodes one item of the store's table (from a Scan, say).
// An item that is not an idempotency record is an error wrapping
// ErrInvalidRequest.
func (s *Store) DecodeRecord(item map[string]types.AttributeValue) (*Record, error) {
	key, _ := item[s.cfg.KeyAttribute].(*types.AttributeValueMemberS)
	r := decodeRecord(item)
	if key == nil || (r.status != StatusInProgress && r.status != StatusCompleted) {
		return nil, fmt.Errorf("%w: the item is not an idempotency record (no string key %q or no known status)", ErrInvalidRequest, s.cfg.KeyAttribute)
	}
	out := &Record{Key: key.Value, Status: r.status, LeaseOwner: r.owner, ExpiresAt: time.Unix(r.expiresAt, 0), ResourceID: r.rid}
	if r.status == StatusInProgress {
		out.LeaseUntil = time.UnixMilli(r.leaseUntil)
		return out, nil
	}
	out.Result, out.ResultErr = s.decodeResult(&r)
	return out, nil
}

// Lookup reads key's record with one strongly consistent GetItem. A key
// without a record is ErrNoRecord; a record past its retention is returned
// (Expired says so), because support staff want to see it.
func (s *Store) Lookup(ctx context.Context, key string) (*Record, error) {
	if err := checkKey(key); err != nil {
		return nil, err
	}
	item, err := s.readRecord(ctx, key)
	if err != nil {
		return nil, err
	}
	if item == nil {
		return nil, ErrNoRecord
	}
	return s.DecodeRecord(item)
}

// KeyAttribute returns the name of the table's partition key.
func (s *Store) KeyAttribute() string { return s.cfg.KeyAttribute }
