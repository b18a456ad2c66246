// Command devstack serves a SAM template locally without Docker, like
// `sam local start-api` and `sam local start-lambda` together: `make dev`
// runs it. See local/devstack.
//
//	devstack [serve] [-template template.yaml] [-root .] [-port 3000]
//	    [-lambda-port 3001] [-storefront-port 4000] [-engine-port 8000] [-persist] [-watch=true]
//	    [-instances 4] [-parameter-overrides "K=V K2=V2"] [-state-dir .dev]
//	    [-engine http://127.0.0.1:8000] [-schedule-every 0] [-event-poll 250ms]
//	devstack invoke -fn LogicalId [-event file.json|-]   (make invoke)
//	devstack event -type http|schedule|sqs|dynamodb [-fn LogicalId] [-body JSON]   (make event)
//
// Environment: PORT, DEV_LAMBDA_PORT, DEV_STOREFRONT_PORT, DEV_ENGINE_PORT, DEV_PERSIST,
// DEV_WATCH, DEV_INSTANCES, DEV_PARAMETER_OVERRIDES, DEV_STATE_DIR,
// DEV_SCHEDULE_EVERY, DEV_EVENT_POLL, AWS_ENDPOINT_URL_DYNAMODB (use that
// engine instead of starting moto).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/acme/idemcheckout/local/devstack"
	"github.com/acme/idemcheckout/local/devstack/lambda"
	"github.com/acme/idemcheckout/local/devstack/template"
)

func main() {
	args := os.Args[1:]
	cmd := "serve"
	if len(args) > 0 && (args[0] == "serve" || args[0] == "invoke" || args[0] == "event") {
		cmd, args = args[0], args[1:]
	}
	logger := log.New(os.Stderr, "devstack: ", log.Ltime|log.Lmicroseconds)
	var code int
	switch cmd {
	case "invoke":
		code = invoke(logger, args)
	case "event":
		code = event(logger, args)
	default:
		code = serve(logger, args)
	}
	os.Exit(code)
}

func envInt(name string, def int) int {
	if v := os.Getenv(name); v != "" {
		if n, err := strconv.Atoi(v); err == nil {
			return n
		}
		fmt.Fprintf(os.Stderr, "devstack: ignoring %s=%q (not a number)\n", name, v)
	}
	return def
}

func envBool(name string, def bool) bool {
	if v := os.Getenv(name); v != "" {
		if b, err := strconv.ParseBool(v); err == nil {
			return b
		}
		fmt.Fprintf(os.Stderr, "devstack: ignoring %s=%q (not true/false/1/0)\n", name, v)
	}
	return def
}

func envDuration(name string) time.Duration {
	if v := os.Getenv(name); v != "" {
		if d, err := time.ParseDuration(v); err == nil {
			return d
		}
		fmt.Fprintf(os.Stderr, "devstack: ignoring %s=%q (not a duration such as 10s)\n", name, v)
	}
	return 0
}

// commonFlags are the flags every subcommand shares: what to load, and
// where the state is.
type commonFlags struct {
	root, tmpl, params, stateDir, engine, region *string
	enginePort                                   *int
	persist                                      *bool
}

func addCommon(fs *flag.FlagSet) commonFlags {
	return commonFlags{
		root:       fs.String("root", ".", "project root (go.mod, CodeUri directories)"),
		tmpl:       fs.String("template", "", "SAM template (default ROOT/template.yaml)"),
		params:     fs.String("parameter-overrides", os.Getenv("DEV_PARAMETER_OVERRIDES"), "template parameter overrides, \"K=V K2=V2\" or \"ParameterKey=K,ParameterValue=V ...\" (env DEV_PARAMETER_OVERRIDES)"),
		stateDir:   fs.String("state-dir", os.Getenv("DEV_STATE_DIR"), "state dir for the lock, builds and journal (default ROOT/.dev; env DEV_STATE_DIR)"),
		engine:     fs.String("engine", "", "existing DynamoDB endpoint (default: AWS_ENDPOINT_URL_DYNAMODB, else start local/motoserver.py)"),
		region:     fs.String("region", "us-east-1", "AWS region the functions see"),
		enginePort: fs.Int("engine-port", envInt("DEV_ENGINE_PORT", 8000), "port of the moto engine the stack starts, 0 for a free one (env DEV_ENGINE_PORT)"),
		persist:    fs.Bool("persist", envBool("DEV_PERSIST", false), "keep the engine's data across restarts (journal in STATE_DIR/engine; env DEV_PERSIST=1)"),
	}
}

func (c commonFlags) config(logger *log.Logger) (devstack.Config, error) {
	overrides, err := template.ParseOverrides(*c.params)
	if err != nil {
		return devstack.Config{}, err
	}
	return devstack.Config{
		Root: *c.root, Template: *c.tmpl, ParameterOverrides: overrides, StateDir: *c.stateDir,
		EngineEndpoint: *c.engine, EnginePort: *c.enginePort, Persist: *c.persist,
		Region: *c.region, Logger: logger,
	}, nil
}

func serve(logger *log.Logger, args []string) int {
	fs := flag.NewFlagSet("devstack", flag.ExitOnError)
	common := addCommon(fs)
	host := fs.String("host", "127.0.0.1", "listen address")
	port := fs.Int("port", envInt("PORT", 3000), "gateway port (env PORT)")
	lambdaPort := fs.Int("lambda-port", envInt("DEV_LAMBDA_PORT", 3001), "Lambda Invoke API port, -1 for none (env DEV_LAMBDA_PORT)")
	storefrontPort := fs.Int("storefront-port", envInt("DEV_STOREFRONT_PORT", 4000), "storefront port (web/, a page calling the gateway cross-origin), -1 for none (env DEV_STOREFRONT_PORT)")
	instances := fs.Int("instances", envInt("DEV_INSTANCES", 4), "Lambda emulator instances per function (env DEV_INSTANCES)")
	watch := fs.Bool("watch", envBool("DEV_WATCH", true), "rebuild and swap a function when its sources change (env DEV_WATCH)")
	every := fs.Duration("schedule-every", envDuration("DEV_SCHEDULE_EVERY"), "run every Schedule/ScheduleV2 event at this period instead of its rate, e.g. 10s; negative: none (env DEV_SCHEDULE_EVERY)")
	poll := fs.Duration("event-poll", envDuration("DEV_EVENT_POLL"), "how often the DynamoDB and SQS event source mappings poll (default 250ms); negative: none run (env DEV_EVENT_POLL)")
	_ = fs.Parse(args)
	cfg, err := common.config(logger)
	if err != nil {
		logger.Printf("%v", err)
		return 2
	}
	cfg.Host, cfg.Port, cfg.LambdaPort, cfg.Instances, cfg.Watch, cfg.ScheduleEvery = *host, *port, *lambdaPort, *instances, *watch, *every
	cfg.EventPollInterval = *poll
	cfg.StorefrontPort = *storefrontPort
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	s, err := devstack.Start(ctx, cfg)
	if err != nil {
		report(logger, "start", err)
		return 1
	}
	logger.Printf("press Ctrl-C to stop")
	<-ctx.Done()
	stop()
	logger.Printf("stopping ...")
	if err := s.Close(); err != nil {
		logger.Printf("close: %v", err)
	}
	logger.Printf("stopped")
	return 0
}

// report prints why what did not happen ("start", "invoke X"): a clear
// message, and the compiler's output for a build error.
func report(logger *log.Logger, what string, err error) {
	switch {
	case errors.Is(err, context.Canceled):
		logger.Printf("interrupted: could not %s", what)
	case errors.Is(err, devstack.ErrPrerequisite), errors.Is(err, devstack.ErrAlreadyRunning):
		logger.Printf("%v", err)
	default:
		logger.Printf("cannot %s: %v", what, err)
	}
}

// invoke is `make invoke FN=... EVENT=...`: the result on stdout, logs on
// stderr, exit 1 when the function failed (like sam local invoke).
func invoke(logger *log.Logger, args []string) int {
	fs := flag.NewFlagSet("devstack invoke", flag.ExitOnError)
	common := addCommon(fs)
	fn := fs.String("fn", "", "logical id of the function to invoke (required)")
	eventPath := fs.String("event", "", "event JSON file; - reads stdin; empty sends {}")
	_ = fs.Parse(args)
	if *fn == "" {
		logger.Printf("invoke: -fn (make invoke FN=LogicalId) is required")
		return 2
	}
	payload := []byte("{}")
	var err error
	switch *eventPath {
	case "":
	case "-":
		payload, err = io.ReadAll(os.Stdin)
	default:
		payload, err = os.ReadFile(*eventPath)
	}
	if err != nil {
		logger.Printf("invoke: read the event: %v", err)
		return 2
	}
	cfg, err := common.config(logger)
	if err != nil {
		logger.Printf("%v", err)
		return 2
	}
	cfg.EnginePort = envInt("DEV_INVOKE_ENGINE_PORT", 0) // never the dev stack's port
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	out, err := devstack.InvokeOnce(ctx, cfg, *fn, payload)
	var fe *lambda.FunctionError
	switch {
	case errors.As(err, &fe):
		fmt.Println(string(fe.Payload))
		logger.Printf("invoke: %s failed: %s", *fn, fe.Msg)
		return 1
	case err != nil:
		report(logger, "invoke "+*fn, err)
		return 1
	}
	fmt.Println(string(out))
	return 0
}

// event is `make event TYPE=...`: a sample event on stdout.
func event(logger *log.Logger, args []string) int {
	fs := flag.NewFlagSet("devstack event", flag.ExitOnError)
	common := addCommon(fs)
	typ := fs.String("type", devstack.SampleHTTP, "http, schedule, sqs or dynamodb")
	fn := fs.String("fn", "", "function whose event to sample (default: the first that has one)")
	body := fs.String("body", "", "JSON body (http) or message body (sqs)")
	_ = fs.Parse(args)
	cfg, err := common.config(logger)
	if err != nil {
		logger.Printf("%v", err)
		return 2
	}
	if cfg.Template == "" {
		cfg.Template = *common.root + "/template.yaml"
	}
	tm, err := template.Load(cfg.Template, cfg.ParameterOverrides, cfg.Region)
	if err != nil {
		logger.Printf("%v", err)
		return 1
	}
	out, err := devstack.SampleEvent(tm, *typ, *fn, *body, time.Now())
	if err != nil {
		logger.Printf("event: %v", err)
		return 1
	}
	fmt.Println(string(out))
	return 0
}
