package batch

import (
	"github.com/acme/idemcheckout/pkg/idemddb"
	"github.com/aws/aws-lambda-go/events"
)

// SQSRequest is the store request WrapSQS makes for m under consumer with
// key k and opts, so a test can claim it elsewhere (Store.Begin).
func SQSRequest(consumer string, k Key, m events.SQSMessage, opts ...Option) idemddb.Request {
	w := &wrapper{consumer: consumer, source: "sqs"}
	v, err := k.sqs(&m)
	if err != nil {
		panic(err)
	}
	return idemddb.Request{Key: w.scopedKey("", v), Fingerprint: sqsFingerprint(&m, newConfig(k, append(opts, WithKey(k))))}
}

// StreamFingerprint is the fingerprint WrapStream gives r.
func StreamFingerprint(r events.DynamoDBEventRecord) []byte { return streamFingerprint(&r) }
