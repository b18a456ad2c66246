// Command consumer is a test fixture Lambda for stream and queue event
// source mappings. It prints the event it received on one line, "EVENT
// <json>", then acts on each record's "action" (a stream record's new
// image attribute, or a field of an SQS message's JSON body): "fail"
// reports the record in the partial batch response, "crash" exits the
// process (the whole invocation fails), anything else succeeds.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
)

type failure struct {
	ID string `json:"itemIdentifier"`
}

func handle(_ context.Context, raw json.RawMessage) (map[string][]failure, error) {
	compact, _ := json.Marshal(raw)
	fmt.Println("EVENT " + string(compact))
	var probe struct {
		Records []struct {
			Source string `json:"eventSource"`
		}
	}
	if err := json.Unmarshal(raw, &probe); err != nil || len(probe.Records) == 0 {
		return nil, fmt.Errorf("not a batch: %v", err)
	}
	var ids, actions []string
	if probe.Records[0].Source == "aws:sqs" {
		var ev events.SQSEvent
		if err := json.Unmarshal(raw, &ev); err != nil {
			return nil, err
		}
		for _, m := range ev.Records {
			var body struct{ Action string }
			_ = json.Unmarshal([]byte(m.Body), &body)
			ids, actions = append(ids, m.MessageId), append(actions, body.Action)
		}
	} else {
		var ev events.DynamoDBEvent
		if err := json.Unmarshal(raw, &ev); err != nil {
			return nil, err
		}
		for _, r := range ev.Records {
			a := ""
			if v, ok := r.Change.NewImage["action"]; ok && v.DataType() == events.DataTypeString {
				a = v.String()
			}
			ids, actions = append(ids, r.Change.SequenceNumber), append(actions, a)
		}
	}
	failures := []failure{}
	for i, a := range actions {
		switch a {
		case "crash":
			os.Exit(3)
		case "fail":
			failures = append(failures, failure{ids[i]})
		}
	}
	return map[string][]failure{"batchItemFailures": failures}, nil
}

func main() { lambda.Start(handle) }
