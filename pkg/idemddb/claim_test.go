package idemddb_test

import (
	"bytes"
	"context"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/acme/idemcheckout/pkg/idemddb"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// getItem reads a record straight from the table (strongly consistent).
func (e *env) getItem(t *testing.T, key string) map[string]types.AttributeValue {
	t.Helper()
	out, err := e.raw.GetItem(context.Background(), &dynamodb.GetItemInput{
		TableName: aws.String(e.table), ConsistentRead: aws.Bool(true),
		Key: map[string]types.AttributeValue{"id": &types.AttributeValueMemberS{Value: key}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return out.Item
}

func attrS(item map[string]types.AttributeValue, name string) string {
	if v, ok := item[name].(*types.AttributeValueMemberS); ok {
		return v.Value
	}
	return ""
}

func attrN(item map[string]types.AttributeValue, name string) int64 {
	if v, ok := item[name].(*types.AttributeValueMemberN); ok {
		n, _ := strconv.ParseInt(v.Value, 10, 64)
		return n
	}
	return -1
}

// replayRequests is what a replay, conflict or mismatch costs on an engine:
// one PutItem, plus one GetItem where the engine ignores
// ReturnValuesOnConditionCheckFailure (dynalite).
func replayRequests(e *env) map[string]int {
	if e.engine.Name == "dynalite" {
		return map[string]int{"PutItem": 1, "GetItem": 1}
	}
	return map[string]int{"PutItem": 1}
}

func sameCounts(got, want map[string]int) bool {
	if len(got) != len(want) {
		return false
	}
	for k, v := range want {
		if got[k] != v {
			return false
		}
	}
	return true
}

// TestClaimConditionBranches covers every branch of the claim condition on
// both engines.
func TestClaimConditionBranches(t *testing.T) {
	for _, engine := range engines() {
		t.Run(engine.Name, func(t *testing.T) {
			ctx := context.Background()
			e := newEnv(t, engine)
			clk := newClock()
			s := e.store(t, idemddb.Config{Now: clk.Now, DefaultLease: 10 * time.Second, LeaseMargin: time.Second})
			fp := []byte("payload-1")

			t.Run("absent", func(t *testing.T) {
				e.client.Reset()
				runs := 0
				res, err := s.Run(ctx, idemddb.Request{Key: "absent", Fingerprint: fp}, func(ctx context.Context, c *idemddb.Claim) ([]byte, error) {
					runs++
					return []byte("r1"), nil
				})
				if err != nil || res.Replayed || string(res.Data) != "r1" || runs != 1 {
					t.Fatalf("first run: res=%+v err=%v runs=%d", res, err, runs)
				}
				if got := e.client.Reset(); !sameCounts(got, map[string]int{"PutItem": 1, "UpdateItem": 1}) {
					t.Fatalf("requests = %v, want claim + completion", got)
				}
				item := e.getItem(t, "absent")
				if attrS(item, "status") != idemddb.StatusCompleted {
					t.Fatalf("record status %q", attrS(item, "status"))
				}
				if exp := attrN(item, idemddb.TTLAttribute); exp != clk.Now().Add(idemddb.DefaultRetention).Unix() {
					t.Fatalf("ttl %d, want now+24h", exp)
				}
			})

			t.Run("completed", func(t *testing.T) {
				e.client.Reset()
				res, err := s.Run(ctx, idemddb.Request{Key: "absent", Fingerprint: fp}, func(ctx context.Context, c *idemddb.Claim) ([]byte, error) {
					t.Error("work ran on a completed key")
					return nil, nil
				})
				if err != nil || !res.Replayed || string(res.Data) != "r1" {
					t.Fatalf("replay: res=%+v err=%v", res, err)
				}
				if got := e.client.Reset(); !sameCounts(got, replayRequests(e)) {
					t.Fatalf("replay requests = %v, want %v", got, replayRequests(e))
				}
			})

			t.Run("fingerprint mismatch", func(t *testing.T) {
				e.client.Reset()
				_, err := s.Run(ctx, idemddb.Request{Key: "absent", Fingerprint: []byte("payload-2")}, func(ctx context.Context, c *idemddb.Claim) ([]byte, error) {
					t.Error("work ran on a mismatch")
					return nil, nil
				})
				var me *idemddb.MismatchError
				if !errors.As(err, &me) || !errors.Is(err, idemddb.ErrMismatch) || me.Key != "absent" {
					t.Fatalf("err = %v, want MismatchError", err)
				}
				if got := e.client.Reset(); !sameCounts(got, replayRequests(e)) {
					t.Fatalf("mismatch requests = %v", got)
				}
			})

			t.Run("live lease", func(t *testing.T) {
				c, replay, err := s.Begin(ctx, idemddb.Request{Key: "live", Fingerprint: fp})
				if err != nil || c == nil || replay != nil {
					t.Fatalf("begin: %v %v %v", c, replay, err)
				}
				clk.Advance(4 * time.Second)
				e.client.Reset()
				_, err = s.Run(ctx, idemddb.Request{Key: "live", Fingerprint: fp}, func(ctx context.Context, c *idemddb.Claim) ([]byte, error) {
					t.Error("work ran while another caller holds the lease")
					return nil, nil
				})
				var ip *idemddb.InProgressError
				if !errors.As(err, &ip) || !errors.Is(err, idemddb.ErrInProgress) {
					t.Fatalf("err = %v, want InProgressError", err)
				}
				// Lease = now + DefaultLease (no deadline); 4s have passed.
				if ip.RetryAfter != 6*time.Second || !ip.LeaseUntil.Equal(c.LeaseUntil) {
					t.Fatalf("RetryAfter = %v LeaseUntil = %v, want 6s and %v", ip.RetryAfter, ip.LeaseUntil, c.LeaseUntil)
				}
				if got := e.client.Reset(); !sameCounts(got, replayRequests(e)) {
					t.Fatalf("conflict requests = %v", got)
				}
				// A different payload on a live key is a mismatch, not a conflict.
				if _, _, err := s.Begin(ctx, idemddb.Request{Key: "live", Fingerprint: []byte("other")}); !errors.Is(err, idemddb.ErrMismatch) {
					t.Fatalf("mismatch on live lease: %v", err)
				}
			})

			t.Run("expired lease", func(t *testing.T) {
				a, _, err := s.Begin(ctx, idemddb.Request{Key: "lapsed", Fingerprint: fp})
				if err != nil || a == nil {
					t.Fatal(err)
				}
				clk.Advance(11 * time.Second)
				// Another payload may not take over the lapsed lease.
				if _, _, err := s.Begin(ctx, idemddb.Request{Key: "lapsed", Fingerprint: []byte("other")}); !errors.Is(err, idemddb.ErrMismatch) {
					t.Fatalf("takeover with another payload: %v, want mismatch", err)
				}
				b, _, err := s.Begin(ctx, idemddb.Request{Key: "lapsed", Fingerprint: fp})
				if err != nil || b == nil {
					t.Fatalf("takeover: %v", err)
				}
				if !b.TakenOver || b.Token == a.Token || b.ResourceID != a.ResourceID {
					t.Fatalf("takeover claim %+v, first %+v: want TakenOver, new token, same ResourceID", b, a)
				}
				// A second takeover still keeps the first resource id.
				clk.Advance(11 * time.Second)
				c, _, err := s.Begin(ctx, idemddb.Request{Key: "lapsed", Fingerprint: fp})
				if err != nil || c == nil || c.ResourceID != a.ResourceID {
					t.Fatalf("second takeover: %+v %v", c, err)
				}
				if _, err := s.Complete(ctx, c, []byte("done")); err != nil {
					t.Fatal(err)
				}
			})

			t.Run("expired record", func(t *testing.T) {
				clk.Advance(idemddb.DefaultRetention + time.Second)
				runs := 0
				// After retention the key is new again, whatever the payload.
				res, err := s.Run(ctx, idemddb.Request{Key: "absent", Fingerprint: []byte("payload-3")}, func(ctx context.Context, c *idemddb.Claim) ([]byte, error) {
					runs++
					return []byte("r3"), nil
				})
				if err != nil || res.Replayed || runs != 1 || string(res.Data) != "r3" {
					t.Fatalf("after expiry: %+v %v runs=%d", res, err, runs)
				}
			})
		})
	}
}

// TestExpiredButNotDeletedIsNeverReplayed: TTL deletes lazily, so a record
// past its expiry that is still in the table must not be replayed.
func TestExpiredButNotDeletedIsNeverReplayed(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, moto)
	clk := newClock()
	s := e.store(t, idemddb.Config{Now: clk.Now})
	if _, err := s.Run(ctx, idemddb.Request{Key: "k", Fingerprint: []byte("a")}, ok); err != nil {
		t.Fatal(err)
	}
	clk.Advance(idemddb.DefaultRetention)
	if e.getItem(t, "k") == nil {
		t.Fatal("moto deleted the item; this test needs it present")
	}
	runs := 0
	res, err := s.Run(ctx, idemddb.Request{Key: "k", Fingerprint: []byte("a")}, func(ctx context.Context, c *idemddb.Claim) ([]byte, error) {
		runs++
		return []byte("fresh"), nil
	})
	if err != nil || res.Replayed || runs != 1 {
		t.Fatalf("expired record replayed: %+v %v", res, err)
	}
}

func TestInvalidKey(t *testing.T) {
	e := newEnv(t, moto)
	s := e.store(t, idemddb.Config{})
	for _, key := range []string{"", string(bytes.Repeat([]byte("k"), idemddb.MaxKeyBytes+1))} {
		_, err := s.Run(context.Background(), idemddb.Request{Key: key}, func(ctx context.Context, c *idemddb.Claim) ([]byte, error) {
			t.Error("work ran with an invalid key")
			return nil, nil
		})
		if !errors.Is(err, idemddb.ErrInvalidRequest) {
			t.Fatalf("key of %d bytes: err = %v", len(key), err)
		}
	}
	if n := e.client.Total(); n != 0 {
		t.Fatalf("invalid keys made %d requests", n)
	}
}

func TestNewValidatesConfig(t *testing.T) {
	e := newEnv(t, moto)
	cases := []idemddb.Config{
		{},
		{Table: e.table, Retention: -time.Second},
		{Table: e.table, Retention: time.Minute, MaxLease: time.Hour},
	}
	for i, cfg := range cases {
		if _, err := idemddb.New(e.client, cfg); err == nil {
			t.Errorf("case %d: New accepted %+v", i, cfg)
		}
	}
	if _, err := idemddb.New(nil, idemddb.Config{Table: "x"}); err == nil {
		t.Error("New accepted a nil client")
	}
}
