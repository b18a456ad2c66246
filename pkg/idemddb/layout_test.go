package idemddb_test

import (
	"bytes"
	"compress/flate"
	"context"
	"errors"
	"maps"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/acme/idemcheckout/ddblocal/ddbtest"
	"github.com/acme/idemcheckout/pkg/idemddb"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// The workload the size targets are stated for: a 41-byte key and a
// 293-byte response (the size of the checkout's 201 with its headers).
var (
	workloadKey    = "apigw1:" + strings.Repeat("k", 34)
	workloadResult = bytes.Repeat([]byte("r"), 293)
)

func attrNames(item map[string]types.AttributeValue) []string {
	return slices.Sorted(maps.Keys(item))
}

// TestRecordLayout: a record carries only what the protocol needs. A claim
// has six attributes; a completed record five plus its result, and fits
// 460 bytes for the workload; a claim with the longest key stays under
// 1 KB; only a takeover stores the resource id.
func TestRecordLayout(t *testing.T) {
	for _, engine := range engines() {
		t.Run(engine.Name, func(t *testing.T) {
			ctx := context.Background()
			e := newEnv(t, engine)
			clk := newClock()
			s := e.store(t, idemddb.Config{Now: clk.Now, DefaultLease: 10 * time.Second, LeaseMargin: time.Second})
			req := idemddb.Request{Key: workloadKey, Fingerprint: []byte("p")}
			c, _, err := s.Begin(ctx, req)
			if err != nil || c == nil {
				t.Fatal(err)
			}
			claim := e.getItem(t, workloadKey)
			if got, want := attrNames(claim), []string{"expires_at", "fp", "id", "lease_owner", "lease_until", "status"}; !slices.Equal(got, want) {
				t.Fatalf("claim attributes %v, want %v", got, want)
			}
			if _, err := s.Complete(ctx, c, workloadResult); err != nil {
				t.Fatal(err)
			}
			done := e.getItem(t, workloadKey)
			if got, want := attrNames(done), []string{"expires_at", "fp", "id", "lease_owner", "result", "status"}; !slices.Equal(got, want) {
				t.Fatalf("completed attributes %v, want %v", got, want)
			}
			size := ddbtest.ItemSize(done)
			t.Logf("completed record for a %d-byte key and a %d-byte result: %d bytes", len(workloadKey), len(workloadResult), size)
			if size > 460 {
				t.Fatalf("completed record is %d bytes, want <= 460", size)
			}

			long := strings.Repeat("k", idemddb.MaxKeyBytes)
			if _, _, err := s.Begin(ctx, idemddb.Request{Key: long, Fingerprint: []byte("x")}); err != nil {
				t.Fatal(err)
			}
			if size := ddbtest.ItemSize(e.getItem(t, long)); size >= 1024 {
				t.Fatalf("claim item with a %d-byte key is %d bytes, want < 1024", len(long), size)
			} else {
				t.Logf("claim item with a %d-byte key: %d bytes", len(long), size)
			}

			clk.Advance(11 * time.Second)
			first, _, _ := s.Begin(ctx, idemddb.Request{Key: "lapse", Fingerprint: []byte("x")})
			clk.Advance(11 * time.Second)
			again, _, err := s.Begin(ctx, idemddb.Request{Key: "lapse", Fingerprint: []byte("x")})
			if err != nil || again == nil || !again.TakenOver {
				t.Fatalf("takeover: %+v %v", again, err)
			}
			if rid := attrS(e.getItem(t, "lapse"), "rid"); rid != first.ResourceID {
				t.Fatalf("takeover stored rid %q, want %q", rid, first.ResourceID)
			}
		})
	}
}

// layout1 writes a record as the first release wrote it: twelve
// attributes, with created_at, completed_at, enc, size and v = 1.
type layout1 struct {
	status     string
	fp         []byte
	owner, rid string
	leaseUntil time.Time
	expires    time.Time
	result     []byte
	enc        int // 0 raw, 1 deflate, 2 not retained
	size       int
}

func (l layout1) item(key string) map[string]types.AttributeValue {
	num := func(n int64) types.AttributeValue {
		return &types.AttributeValueMemberN{Value: strconv.FormatInt(n, 10)}
	}
	item := map[string]types.AttributeValue{
		"id": s(key), "status": s(l.status), "fp": &types.AttributeValueMemberB{Value: sha(l.fp)},
		"lease_owner": s(l.owner), "lease_until": num(l.leaseUntil.UnixMilli()), "expires_at": num(l.expires.Unix()),
		"rid": s(l.rid), "created_at": num(l.expires.Add(-24 * time.Hour).UnixMilli()), "v": n("1"),
	}
	if l.status == idemddb.StatusCompleted {
		item["lease_until"] = n("0")
		item["completed_at"] = num(l.expires.Add(-24 * time.Hour).UnixMilli())
		item["enc"] = num(int64(l.enc))
		if len(l.result) > 0 {
			item["result"] = &types.AttributeValueMemberB{Value: l.result}
		}
		if l.enc == 2 {
			item["size"] = num(int64(l.size))
		}
	}
	return item
}

func deflate(t *testing.T, b []byte) []byte {
	var buf bytes.Buffer
	w, _ := flate.NewWriter(&buf, flate.BestSpeed)
	if _, err := w.Write(b); err != nil || w.Close() != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestLayout1RecordsStillWork: a table written by the first release keeps
// working after the upgrade. Its completed records replay (raw, deflated,
// not retained), mismatches and live leases are recognised, and a lapsed
// lease is taken over with its resource id kept, the record rewritten in
// the new layout.
func TestLayout1RecordsStillWork(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, moto)
	clk := newClock()
	s := e.store(t, idemddb.Config{Now: clk.Now, DefaultLease: 10 * time.Second, LeaseMargin: time.Second})
	now := clk.Now()
	big := bytes.Repeat([]byte(`{"line":"order item"}`), 200)
	fp := []byte("request")
	records := map[string]layout1{
		"raw":          {status: idemddb.StatusCompleted, fp: fp, owner: "t1", rid: "r1", expires: now.Add(time.Hour), result: []byte(`{"id":1}`)},
		"deflate":      {status: idemddb.StatusCompleted, fp: fp, owner: "t2", rid: "r2", expires: now.Add(time.Hour), result: deflate(t, big), enc: 1},
		"not-retained": {status: idemddb.StatusCompleted, fp: fp, owner: "t3", rid: "r3", expires: now.Add(time.Hour), enc: 2, size: 500000},
		"empty":        {status: idemddb.StatusCompleted, fp: fp, owner: "t4", rid: "r4", expires: now.Add(time.Hour)},
		"live":         {status: idemddb.StatusInProgress, fp: fp, owner: "t5", rid: "r5", leaseUntil: now.Add(5 * time.Second), expires: now.Add(time.Hour)},
		"lapsed":       {status: idemddb.StatusInProgress, fp: fp, owner: "t6", rid: "r6", leaseUntil: now.Add(-time.Second), expires: now.Add(time.Hour)},
	}
	for key, r := range records {
		if _, err := e.raw.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(e.table), Item: r.item(key)}); err != nil {
			t.Fatal(err)
		}
	}
	never := func(context.Context, *idemddb.Claim) ([]byte, error) {
		t.Error("work ran for a completed layout-1 record")
		return nil, nil
	}
	for key, want := range map[string][]byte{"raw": []byte(`{"id":1}`), "deflate": big, "empty": {}} {
		res, err := s.Run(ctx, idemddb.Request{Key: key, Fingerprint: fp}, never)
		if err != nil || !res.Replayed || !bytes.Equal(res.Data, want) {
			t.Fatalf("%s: %+v %v", key, res, err)
		}
	}
	var big2 *idemddb.ResultTooLargeError
	if _, err := s.Run(ctx, idemddb.Request{Key: "not-retained", Fingerprint: fp}, never); !errors.As(err, &big2) || big2.Size != 500000 {
		t.Fatalf("not retained: %v", err)
	}
	if _, err := s.Run(ctx, idemddb.Request{Key: "raw", Fingerprint: []byte("other")}, never); !errors.Is(err, idemddb.ErrMismatch) {
		t.Fatalf("mismatch: %v", err)
	}
	var inpr *idemddb.InProgressError
	if _, err := s.Run(ctx, idemddb.Request{Key: "live", Fingerprint: fp}, never); !errors.As(err, &inpr) || inpr.RetryAfter != 5*time.Second {
		t.Fatalf("live lease: %v", err)
	}
	c, _, err := s.Begin(ctx, idemddb.Request{Key: "lapsed", Fingerprint: fp})
	if err != nil || c == nil || !c.TakenOver || c.ResourceID != "r6" {
		t.Fatalf("takeover of a layout-1 lease: %+v %v", c, err)
	}
	if _, err := s.Complete(ctx, c, []byte("done")); err != nil {
		t.Fatal(err)
	}
	item := e.getItem(t, "lapsed")
	if got, want := attrNames(item), []string{"expires_at", "fp", "id", "lease_owner", "result", "rid", "status"}; !slices.Equal(got, want) {
		t.Fatalf("rewritten record %v, want %v", got, want)
	}
	res, err := s.Run(ctx, idemddb.Request{Key: "lapsed", Fingerprint: fp}, never)
	if err != nil || !res.Replayed || string(res.Data) != "done" {
		t.Fatalf("replay after takeover: %+v %v", res, err)
	}
}
