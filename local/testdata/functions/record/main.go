// Command record is a test fixture Lambda for the non-HTTP event sources
// (schedules, queues, streams): it prints the event it received on one
// line, "EVENT <json>", and answers {"ok":true}.
package main

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/aws/aws-lambda-go/lambda"
)

func handle(_ context.Context, raw json.RawMessage) (map[string]bool, error) {
	var compact []byte
	compact, _ = json.Marshal(raw)
	fmt.Println("EVENT " + string(compact))
	return map[string]bool{"ok": true}, nil
}

func main() { lambda.Start(handle) }
