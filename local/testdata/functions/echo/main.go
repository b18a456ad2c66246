// Command echo is a test fixture Lambda: it answers with the event it
// received, so tests can check the API Gateway event shapes. Headers switch
// it into failure modes: x-crash exits the process, x-panic panics,
// x-error returns an error, x-simple returns a non-envelope JSON object,
// x-cookies returns cookies, multi-value headers and a base64 body, and
// x-cors returns CORS headers of its own (which a gateway with a
// CorsConfiguration replaces).
package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"strings"

	"github.com/aws/aws-lambda-go/lambda"
)

func header(ev map[string]any, name string) string {
	h, _ := ev["headers"].(map[string]any)
	for k, v := range h {
		if strings.EqualFold(k, name) {
			s, _ := v.(string)
			return s
		}
	}
	return ""
}

func handle(_ context.Context, raw json.RawMessage) (any, error) {
	var ev map[string]any
	if err := json.Unmarshal(raw, &ev); err != nil {
		return nil, err
	}
	switch {
	case header(ev, "x-crash") != "":
		os.Exit(1)
	case header(ev, "x-panic") != "":
		panic("fixture panic")
	case header(ev, "x-error") != "":
		return nil, errors.New("fixture error")
	case header(ev, "x-simple") != "":
		return map[string]any{"hello": "world"}, nil
	case header(ev, "x-cookies") != "":
		return map[string]any{
			"statusCode":        201,
			"headers":           map[string]string{"content-type": "application/octet-stream", "Idempotent-Replayed": "true"},
			"multiValueHeaders": map[string][]string{"x-multi": {"a", "b"}},
			"cookies":           []string{"a=1; Path=/", "b=2"},
			"isBase64Encoded":   true,
			"body":              base64.StdEncoding.EncodeToString([]byte{0, 1, 2, 255}),
		}, nil
	case header(ev, "x-cors") != "":
		return map[string]any{
			"statusCode": 200,
			"headers": map[string]string{"access-control-allow-origin": "*", "Access-Control-Allow-Credentials": "true",
				"Access-Control-Expose-Headers": "X-Secret", "x-function-name": os.Getenv("AWS_LAMBDA_FUNCTION_NAME")},
			"body": "cors",
		}, nil
	}
	return map[string]any{
		"statusCode": 200,
		"headers":    map[string]string{"content-type": "application/json", "x-function-name": os.Getenv("AWS_LAMBDA_FUNCTION_NAME")},
		"body":       string(raw),
	}, nil
}

func main() { lambda.Start(handle) }
