package devstack

import (
	"context"

	"github.com/acme/idemcheckout/local/devstack/lambda"
)

// InvokeOnce runs one event through one function, like `sam local invoke
// -e` (make invoke): through the Lambda endpoint of the stack running with
// cfg's state dir when there is one (its engine and data), else in a stack
// of that function alone (one emulator, no gateway, its own engine, or the
// persistent journal with cfg.Persist) that stops afterwards. Either way
// the function's logs go to cfg.FunctionOutput (through a running stack,
// the last 4 KB, as Lambda's log tail). The function's own failure is a
// *lambda.FunctionError carrying Lambda's error document.
func InvokeOnce(ctx context.Context, cfg Config, fn string, payload []byte) ([]byte, error) {
	cfg, err := withDefaults(cfg)
	if err != nil {
		return nil, err
	}
	if url := RunningLambdaEndpoint(cfg.StateDir); url != "" {
		cfg.Logger.Printf("invoking %s through the running stack's Lambda endpoint %s", fn, url)
		return lambda.InvokeEndpoint(ctx, url, fn, payload, cfg.FunctionOutput)
	}
	cfg.Functions, cfg.Instances = []string{fn}, 1
	cfg.Port, cfg.LambdaPort, cfg.ScheduleEvery, cfg.EventPollInterval, cfg.Watch = -1, -1, -1, -1, false
	s, err := Start(ctx, cfg)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	// With its tail: the call returns once the function's output is
	// complete, before Close stops the emulator.
	out, _, err := s.pools.InvokeWithTail(ctx, fn, payload)
	return out, err
}
