// Command devstack serves a SAM template locally without Docker, like
// `sam local start-api`: `make dev` runs it. See local/devstack.
//
//	go run ./local/cmd/devstack [-template template.yaml] [-root .] [-port 3000]
//	    [-instances 4] [-parameter-overrides "K=V K2=V2"] [-state-dir .dev]
//	    [-engine http://127.0.0.1:8000]
//
// Environment: PORT, DEV_INSTANCES, DEV_PARAMETER_OVERRIDES, DEV_STATE_DIR,
// AWS_ENDPOINT_URL_DYNAMODB (use that engine instead of starting moto).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"strconv"
	"syscall"

	"github.com/acme/idemcheckout/local/devstack"
)

func envInt(name string, def int) int {
	if v := os.Getenv(name); v != "" {
		if n, err := strconv.Atoi(v); err == nil {
			return n
		}
		fmt.Fprintf(os.Stderr, "devstack: ignoring %s=%q (not a number)\n", name, v)
	}
	return def
}

func main() {
	root := flag.String("root", ".", "project root (go.mod, CodeUri directories)")
	tmpl := flag.String("template", "", "SAM template (default ROOT/template.yaml)")
	host := flag.String("host", "127.0.0.1", "listen address")
	port := flag.Int("port", envInt("PORT", 3000), "gateway port (env PORT)")
	instances := flag.Int("instances", envInt("DEV_INSTANCES", 4), "Lambda emulator instances per function (env DEV_INSTANCES)")
	params := flag.String("parameter-overrides", os.Getenv("DEV_PARAMETER_OVERRIDES"), "template parameter overrides, \"K=V K2=V2\" or \"ParameterKey=K,ParameterValue=V ...\" (env DEV_PARAMETER_OVERRIDES)")
	stateDir := flag.String("state-dir", os.Getenv("DEV_STATE_DIR"), "state dir for the lock and builds (default ROOT/.dev; env DEV_STATE_DIR)")
	engine := flag.String("engine", "", "existing DynamoDB endpoint (default: AWS_ENDPOINT_URL_DYNAMODB, else start local/motoserver.py)")
	region := flag.String("region", "us-east-1", "AWS region the functions see")
	flag.Parse()

	logger := log.New(os.Stderr, "devstack: ", log.Ltime|log.Lmicroseconds)
	overrides, err := devstack.ParseParameterOverrides(*params)
	if err != nil {
		logger.Printf("%v", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	s, err := devstack.Start(ctx, devstack.Config{
		Root: *root, Template: *tmpl, Host: *host, Port: *port, EngineEndpoint: *engine,
		Instances: *instances, ParameterOverrides: overrides, StateDir: *stateDir,
		Region: *region, Logger: logger,
	})
	if err != nil {
		switch {
		case errors.Is(err, context.Canceled):
			logger.Printf("interrupted during start-up")
		case errors.Is(err, devstack.ErrPrerequisite), errors.Is(err, devstack.ErrAlreadyRunning):
			logger.Printf("%v", err)
		default:
			logger.Printf("cannot start: %v", err)
		}
		os.Exit(1)
	}
	logger.Printf("press Ctrl-C to stop")
	<-ctx.Done()
	stop()
	logger.Printf("stopping ...")
	if err := s.Close(); err != nil {
		logger.Printf("close: %v", err)
	}
	logger.Printf("stopped")
}
