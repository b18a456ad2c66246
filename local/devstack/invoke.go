package devstack

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"time"
)

// InvokeOnce runs one event through one function, like `sam local invoke
// -e` (make invoke): through the Lambda endpoint of the stack running with
// cfg's state dir when there is one (its engine and data), else in a stack
// of that function alone (one emulator, no gateway, its own engine, or the
// persistent journal with cfg.Persist) that stops afterwards. The function's
// own failure is a *FunctionError carrying Lambda's error document.
func InvokeOnce(ctx context.Context, cfg Config, fn string, payload []byte) ([]byte, error) {
	cfg, err := withDefaults(cfg)
	if err != nil {
		return nil, err
	}
	if url := RunningLambdaEndpoint(cfg.StateDir); url != "" {
		cfg.Logger.Printf("invoking %s through the running stack's Lambda endpoint %s", fn, url)
		return invokeEndpoint(ctx, url, fn, payload)
	}
	cfg.Functions, cfg.Instances = []string{fn}, 1
	cfg.Port, cfg.LambdaPort, cfg.ScheduleEvery, cfg.EventPollInterval, cfg.Watch = -1, -1, -1, -1, false
	s, err := Start(ctx, cfg)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	return s.invoke(ctx, fn, payload)
}

// invokeEndpoint calls a Lambda Invoke API endpoint.
func invokeEndpoint(ctx context.Context, url, fn string, payload []byte) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url+"/2015-03-31/functions/"+fn+"/invocations", bytes.NewReader(payload))
	if err != nil {
		return nil, err
	}
	c := &http.Client{Timeout: 16 * time.Minute}
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	switch {
	case resp.StatusCode != http.StatusOK:
		return nil, fmt.Errorf("lambda endpoint answered %s: %s", resp.Status, bytes.TrimSpace(out))
	case resp.Header.Get("X-Amz-Function-Error") != "":
		msg, _ := functionError(out)
		return nil, &FunctionError{Payload: out, Msg: msg, kind: errFunctionCrashed}
	}
	return out, nil
}
