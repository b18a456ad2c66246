package batch

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"slices"
	"sort"
	"strings"

	"github.com/acme/idemcheckout/pkg/idemddb/internal/httpcontract"
	"github.com/aws/aws-lambda-go/events"
)

// The fingerprint is a canonical byte string (the store keeps its
// SHA-256): a sequence of length-prefixed fields, so field boundaries are
// unambiguous.

func appendField(b []byte, s string) []byte { return appendBytes(b, []byte(s)) }

func appendBytes(b, v []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(v)))
	return append(b, v...)
}

// sqsFingerprint: by c's mode, the whole body (canonical JSON when it is
// valid JSON, else its bytes) or the chosen fields of it, then the chosen
// message attributes, by name. The whole-body encoding is the one of
// before WithFingerprintFields (v1), so records stored then still match.
func sqsFingerprint(m *events.SQSMessage, c *config) []byte {
	var b []byte
	if c.sqsFingerprintMode() == fpBody {
		b = appendField(nil, "idemddb/batch sqs fingerprint v1")
		b = appendBody(b, m.Body)
	} else {
		b = appendField(nil, "idemddb/batch sqs fingerprint v2 fields")
		b = binary.AppendUvarint(b, uint64(len(c.fpFields)))
		if len(c.fpFields) > 0 {
			b = appendFields(b, m.Body, c.fpFields)
		}
	}
	for _, name := range c.fpAttrs {
		b = appendField(b, name)
		a, ok := m.MessageAttributes[name]
		if !ok {
			b = appendField(b, "absent")
			continue
		}
		b = appendField(b, a.DataType)
		b = appendField(b, attributeValue(a))
		b = binary.AppendUvarint(b, uint64(len(a.StringListValues)))
		for _, s := range a.StringListValues {
			b = appendField(b, s)
		}
		b = binary.AppendUvarint(b, uint64(len(a.BinaryListValues)))
		for _, v := range a.BinaryListValues {
			b = appendBytes(b, v)
		}
	}
	return b
}

// appendBody writes a body: canonical JSON when it is valid JSON, else
// its bytes.
func appendBody(b []byte, body string) []byte {
	if c, err := httpcontract.CanonicalJSON([]byte(body)); err == nil {
		return appendBytes(appendField(b, "json"), c)
	}
	return appendField(appendField(b, "raw"), body)
}

// appendFields writes each field at paths of a JSON body, canonical, or
// "absent"; a body that is not JSON is written whole, by its bytes.
func appendFields(b []byte, body string, paths [][]string) []byte {
	v, ok := decodeBody(body)
	if !ok {
		return appendField(appendField(b, "raw"), body)
	}
	b = appendField(b, "fields")
	for _, p := range paths {
		b = appendField(b, strings.Join(p, "."))
		f, ok := bodyField(v, p)
		if !ok {
			b = appendField(b, "absent")
			continue
		}
		raw, err := json.Marshal(f) // json.Number keeps its literal
		if err == nil {
			raw, err = httpcontract.CanonicalJSON(raw)
		}
		if err != nil { // not reached: a decoded value re-encodes
			return appendField(appendField(b, "raw"), body)
		}
		b = appendBytes(appendField(b, "json"), raw)
	}
	return b
}

// streamFingerprint: the event name, the item's keys and its new image,
// canonical: map attributes in name order, set members sorted, numbers by
// exact value. Two records with the same content fingerprint equal
// whatever order their attributes were delivered in.
func streamFingerprint(r *events.DynamoDBEventRecord) []byte {
	b := appendField(nil, "idemddb/batch stream fingerprint v1")
	b = appendField(b, r.EventName)
	b = appendImage(b, r.Change.Keys)
	return appendImage(b, r.Change.NewImage)
}

// itemIdentity is the canonical encoding of a record's keys: the item it
// changed.
func itemIdentity(r *events.DynamoDBEventRecord) string {
	if len(r.Change.Keys) == 0 {
		return ""
	}
	return string(appendImage(nil, r.Change.Keys))
}

func appendImage(b []byte, img map[string]events.DynamoDBAttributeValue) []byte {
	names := make([]string, 0, len(img))
	for n := range img {
		names = append(names, n)
	}
	sort.Strings(names)
	b = binary.AppendUvarint(b, uint64(len(names)))
	for _, n := range names {
		b = appendField(b, n)
		b = appendValue(b, img[n])
	}
	return b
}

// appendValue writes a type tag and the value.
func appendValue(b []byte, av events.DynamoDBAttributeValue) []byte {
	switch av.DataType() {
	case events.DataTypeString:
		return appendField(append(b, 'S'), av.String())
	case events.DataTypeNumber:
		return appendField(append(b, 'N'), canonicalNumber(av.Number()))
	case events.DataTypeBoolean:
		if av.Boolean() {
			return append(b, 'T')
		}
		return append(b, 'F')
	case events.DataTypeNull:
		return append(b, '0')
	case events.DataTypeMap:
		return appendImage(append(b, 'M'), av.Map())
	case events.DataTypeList:
		l := av.List()
		b = binary.AppendUvarint(append(b, 'L'), uint64(len(l)))
		for _, v := range l {
			b = appendValue(b, v)
		}
		return b
	case events.DataTypeStringSet:
		return appendSet(append(b, 's'), av.StringSet(), func(s string) []byte { return []byte(s) })
	case events.DataTypeNumberSet:
		return appendSet(append(b, 'n'), av.NumberSet(), func(s string) []byte { return []byte(canonicalNumber(s)) })
	case events.DataTypeBinarySet:
		return appendSet(append(b, 'b'), av.BinarySet(), func(v []byte) []byte { return v })
	default: // Binary, or a zero value
		v, ok := binaryOf(av)
		if !ok {
			return append(b, '?')
		}
		return appendBytes(append(b, 'B'), v)
	}
}

// appendSet writes a set's members in sorted order: a set has none.
func appendSet[T any](b []byte, set []T, enc func(T) []byte) []byte {
	members := make([][]byte, len(set))
	for i, v := range set {
		members[i] = enc(v)
	}
	slices.SortFunc(members, bytes.Compare)
	b = binary.AppendUvarint(b, uint64(len(members)))
	for _, m := range members {
		b = appendBytes(b, m)
	}
	return b
}
