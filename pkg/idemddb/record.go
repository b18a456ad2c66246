package idemddb

import (
	"bytes"
	"compress/flate"
	"crypto/sha256"
	"io"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// TTLAttribute is the attribute holding a record's expiry in epoch seconds.
// Enable DynamoDB TTL on it (template.yaml does).
const TTLAttribute = "expires_at"

// Record attribute names (layout 2). A record holds only what the protocol
// needs; see the package documentation for the table of attributes.
const (
	attrStatus      = "status"      // S: IN_PROGRESS | COMPLETED
	attrFingerprint = "fp"          // B: SHA-256 of the request fingerprint
	attrOwner       = "lease_owner" // S: lease token of the current (or completing) owner
	attrLease       = "lease_until" // N: lease end, epoch ms; IN_PROGRESS only
	attrResourceID  = "rid"         // S: resource id, only when it is not lease_owner (after a takeover)
	attrResult      = "result"      // B: encoded result; absent when empty or not retained
	attrEncoding    = "enc"         // N: resultDeflate | resultNotRetained; absent means raw
	attrResultSize  = "size"        // N: encoded size of a result not retained
)

// Layout 1 (the first release) also wrote created_at, completed_at and
// v = 1, which are ignored, and always wrote rid and enc; its records
// decode with the same rules.

// Record status values.
const (
	StatusInProgress = "IN_PROGRESS"
	StatusCompleted  = "COMPLETED"
)

const (
	resultRaw         = 0
	resultDeflate     = 1
	resultNotRetained = 2
)

// record is the decoded form of an item.
type record struct {
	status     string
	fp         []byte
	owner      string
	leaseUntil int64 // ms
	expiresAt  int64 // s
	rid        string
	result     []byte
	enc        int
	size       int
}

func fingerprintDigest(fp []byte) []byte {
	sum := sha256.Sum256(fp)
	return sum[:]
}

func num(n int64) types.AttributeValue {
	return &types.AttributeValueMemberN{Value: strconv.FormatInt(n, 10)}
}

func str(s string) types.AttributeValue { return &types.AttributeValueMemberS{Value: s} }

// decodeRecord reads an item. Unknown or malformed attributes decode as zero
// values, which the callers treat as "not usable" rather than panicking.
func decodeRecord(item map[string]types.AttributeValue) record {
	var r record
	getS := func(name string) string {
		if v, ok := item[name].(*types.AttributeValueMemberS); ok {
			return v.Value
		}
		return ""
	}
	getN := func(name string) int64 {
		if v, ok := item[name].(*types.AttributeValueMemberN); ok {
			n, err := strconv.ParseInt(v.Value, 10, 64)
			if err == nil {
				return n
			}
		}
		return 0
	}
	r.status = getS(attrStatus)
	r.owner = getS(attrOwner)
	r.rid = getS(attrResourceID)
	if r.rid == "" { // layout 2: the first claim's token, which is the owner until a takeover
		r.rid = r.owner
	}
	r.leaseUntil = getN(attrLease)
	r.expiresAt = getN(TTLAttribute)
	r.enc = int(getN(attrEncoding))
	r.size = int(getN(attrResultSize))
	if v, ok := item[attrFingerprint].(*types.AttributeValueMemberB); ok {
		r.fp = v.Value
	}
	if v, ok := item[attrResult].(*types.AttributeValueMemberB); ok {
		r.result = v.Value
	}
	return r
}

// expired reports whether a record expiring at expiresAt (epoch seconds,
// the TTL attribute) has passed its retention at now: the one expiry
// predicate, also behind Record.Expired.
func expired(expiresAt int64, now time.Time) bool {
	return expiresAt <= now.Unix()
}

// encodeResult returns the bytes to store and their encoding: deflated when
// data is at least minCompress long and deflating saves space.
func (s *Store) encodeResult(data []byte) ([]byte, int) {
	if s.cfg.CompressMinBytes < 0 || len(data) < s.cfg.CompressMinBytes {
		return data, resultRaw
	}
	var buf bytes.Buffer
	buf.Grow(len(data) / 2)
	w := s.writers.Get().(*flate.Writer)
	w.Reset(&buf)
	_, err := w.Write(data)
	if err == nil {
		err = w.Close()
	}
	s.writers.Put(w)
	if err != nil || buf.Len() >= len(data) {
		return data, resultRaw
	}
	return buf.Bytes(), resultDeflate
}

// maxDecoded bounds inflation so a corrupt or hostile record cannot exhaust
// memory: 6 MB is Lambda's synchronous response limit.
const maxDecoded = 6 << 20

// decodeResult returns the stored result.
func (s *Store) decodeResult(r *record) ([]byte, error) {
	switch r.enc {
	case resultRaw:
		return r.result, nil
	case resultDeflate:
		fr := flate.NewReader(bytes.NewReader(r.result))
		defer fr.Close()
		out, err := io.ReadAll(io.LimitReader(fr, maxDecoded+1))
		if err != nil {
			return nil, &StoreError{Op: "decode result", Err: err}
		}
		if len(out) > maxDecoded {
			return nil, &ResultTooLargeError{Size: len(out), Limit: maxDecoded}
		}
		return out, nil
	case resultNotRetained:
		return nil, &ResultTooLargeError{Size: r.size, Limit: s.cfg.MaxResultBytes}
	default:
		return nil, &StoreError{Op: "decode result", Err: errUnknownEncoding(r.enc)}
	}
}

type errUnknownEncoding int

func (e errUnknownEncoding) Error() string {
	return "unknown result encoding " + strconv.Itoa(int(e))
}

func msOf(t time.Time) int64 { return t.UnixMilli() }
