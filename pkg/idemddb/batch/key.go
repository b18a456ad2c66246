package batch

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/acme/idemcheckout/pkg/idemddb/internal/httpcontract"
	"github.com/aws/aws-lambda-go/events"
)

// Key chooses where a record's idempotency key comes from. Make one with
// MessageID, MessageAttribute or BodyField (SQS), or EventID,
// NewImageField or KeysField (DynamoDB Streams). The zero Key is not
// usable.
type Key struct {
	desc   string
	sqs    func(*events.SQSMessage) (string, error)
	stream func(*events.DynamoDBEventRecord) (string, error)
	// content: the value is taken from what the producer sent (a body
	// field, a message attribute), not from the delivery, so two sends of
	// one event share it; WrapSQS then fingerprints no body field by
	// default (see the package documentation, "Fingerprint").
	content bool
}

// String describes the key, for logs: `body field "order.id"`.
func (k Key) String() string { return k.desc }

// keyError says why a record has no usable key. Its text names the field,
// never a value.
type keyError string

func (e keyError) Error() string { return string(e) }

// MessageID keys an SQS message by its message id (the default): a
// redelivery of the same message is a replay. Two sends of the same event
// are two messages; key by a field of the body to catch those.
func MessageID() Key {
	return Key{desc: "message id", sqs: func(m *events.SQSMessage) (string, error) {
		if m.MessageId == "" {
			return "", keyError("the message has no message id")
		}
		return m.MessageId, nil
	}}
}

// MessageAttribute keys an SQS message by the message attribute name, of
// data type String, Number or Binary (and their custom subtypes). A
// message without it, or with an empty value, has no usable key.
func MessageAttribute(name string) Key {
	desc := fmt.Sprintf("message attribute %q", name)
	return Key{desc: desc, content: true, sqs: func(m *events.SQSMessage) (string, error) {
		a, ok := m.MessageAttributes[name]
		if !ok {
			return "", keyError(desc + " is missing")
		}
		switch v := attributeValue(a); {
		case v == "":
			return "", keyError(desc + " is empty or not a String, Number or Binary value")
		default:
			return v, nil
		}
	}}
}

// attributeValue is the value of a scalar message attribute, "" when there
// is none.
func attributeValue(a events.SQSMessageAttribute) string {
	switch {
	case a.StringValue != nil:
		return *a.StringValue
	case a.BinaryValue != nil:
		return string(a.BinaryValue)
	}
	return ""
}

// BodyField keys an SQS message by a field of its JSON body, for example
// an event id that a producer's retries repeat under new message ids.
// path is a dotted path through objects ("detail.order_id"); the field
// must be a non-empty string or a number (taken by its literal text). A
// body that is not a JSON object, or lacks the field, has no usable key.
func BodyField(path string) Key {
	desc := fmt.Sprintf("body field %q", path)
	parts := strings.Split(path, ".")
	return Key{desc: desc, content: true, sqs: func(m *events.SQSMessage) (string, error) {
		v, ok := decodeBody(m.Body)
		if !ok {
			return "", keyError(desc + ": the body is not JSON")
		}
		if v, ok = bodyField(v, parts); !ok {
			return "", keyError(desc + " is missing")
		}
		switch v := v.(type) {
		case string:
			if v != "" {
				return v, nil
			}
		case json.Number:
			return v.String(), nil
		}
		return "", keyError(desc + " is empty or not a string or number")
	}}
}

// decodeBody decodes the first JSON value of a body, numbers as
// json.Number (their literal text); ok is false when it is not JSON.
func decodeBody(body string) (v any, ok bool) {
	dec := json.NewDecoder(strings.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		return nil, false
	}
	return v, true
}

// bodyField follows a dotted path (split at its dots) through the objects
// of a decoded body; ok is false when a step is not an object or lacks
// the member.
func bodyField(v any, parts []string) (any, bool) {
	for _, p := range parts {
		obj, ok := v.(map[string]any)
		if !ok {
			return nil, false
		}
		if v, ok = obj[p]; !ok {
			return nil, false
		}
	}
	return v, true
}

// EventID keys a DynamoDB stream record by its event id (the default for
// streams): a stream re-read after a failure or crash is a replay.
func EventID() Key {
	return Key{desc: "event id", stream: func(r *events.DynamoDBEventRecord) (string, error) {
		if r.EventID == "" {
			return "", keyError("the record has no event id")
		}
		return r.EventID, nil
	}}
}

// NewImageField keys a DynamoDB stream record by an attribute of its new
// image, together with the event name (INSERT, MODIFY, REMOVE): the key
// is "this change of this item", for example an order id on the MODIFY
// that marks it paid. path is a dotted path through map attributes; the
// attribute must be a non-empty String, a Number or a non-empty Binary.
// The stream must carry new images (NEW_IMAGE or NEW_AND_OLD_IMAGES); a
// REMOVE has none, so it has no usable key.
func NewImageField(path string) Key {
	desc := fmt.Sprintf("new image attribute %q", path)
	parts := strings.Split(path, ".")
	return Key{desc: desc, stream: func(r *events.DynamoDBEventRecord) (string, error) {
		return imageField(r.Change.NewImage, parts, desc)
	}}
}

// KeysField keys a DynamoDB stream record by an attribute of the item's
// primary key (the record's Keys, present in every view type), together
// with the event name. Use it when each item sees each event name once
// (an INSERT-only table, say); an item modified twice has two MODIFY
// records with one key, and the second is a mismatch.
func KeysField(name string) Key {
	desc := fmt.Sprintf("key attribute %q", name)
	return Key{desc: desc, stream: func(r *events.DynamoDBEventRecord) (string, error) {
		return imageField(r.Change.Keys, []string{name}, desc)
	}}
}

// imageField finds the scalar attribute at path in an image.
func imageField(img map[string]events.DynamoDBAttributeValue, path []string, desc string) (string, error) {
	if len(img) == 0 {
		return "", keyError(desc + " is missing: the record has no such image")
	}
	var av events.DynamoDBAttributeValue
	for i, p := range path {
		v, ok := img[p]
		if !ok {
			return "", keyError(desc + " is missing")
		}
		av = v
		if i < len(path)-1 {
			if v.DataType() != events.DataTypeMap {
				return "", keyError(desc + " is missing: no map attribute on its path")
			}
			img = v.Map()
		}
	}
	switch av.DataType() {
	case events.DataTypeString:
		if s := av.String(); s != "" {
			return s, nil
		}
	case events.DataTypeNumber:
		return canonicalNumber(av.Number()), nil
	case events.DataTypeBinary:
		if b, ok := binaryOf(av); ok && len(b) > 0 {
			return string(b), nil
		}
	}
	return "", keyError(desc + " is empty or not a String, Number or Binary")
}

// canonicalNumber is the exact decimal value of a DynamoDB number, so
// "1.50" and "1.5" are one key; text that is not a JSON number is kept.
func canonicalNumber(n string) string {
	if c, err := httpcontract.CanonicalJSON([]byte(n)); err == nil && !bytes.ContainsAny(c, `"{[`) {
		return string(c)
	}
	return n
}

// binaryOf returns a Binary attribute's bytes. A zero DynamoDBAttributeValue
// claims to be Binary but holds nothing, and its accessor panics; that is
// reported as not ok.
func binaryOf(av events.DynamoDBAttributeValue) (b []byte, ok bool) {
	defer func() {
		if recover() != nil {
			b, ok = nil, false
		}
	}()
	return av.Binary(), true
}
