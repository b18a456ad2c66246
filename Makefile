# Two commands a newcomer needs: `make dev` (local stack) and `make test`.
# `make help` lists every target.
GO ?= go
# The Go modules of this repository: the app and local stack (root), the
# library (pkg/idemddb, a module of its own) and the engine test helpers it
# and the app test with (ddblocal). `./...` stops at a nested go.mod, so
# vet, test, test-race and bench run in each module's directory; PKGS is the
# package pattern used inside each (MODULES=pkg/idemddb PKGS=./apigw/...
# narrows a run to one package).
MODULES ?= . pkg/idemddb ddblocal
PKGS ?= ./...
# in-modules runs a command in each module's directory, stopping at the
# first failure.
in-modules = set -e; for m in $(MODULES); do echo "== module $$m"; (cd $$m && $(1)); done
# staticcheck as pinned by the root go.mod's tool directive, built once so
# it can run inside the nested modules too (their go.mod has no tools).
STATICCHECK = $(CURDIR)/.dev/bin/staticcheck

.PHONY: help test test-web browser-timing test-race prereqs vet lint build dev dev-prereqs deploy bench devload invoke event dev-reset sim

# A failing target exits with GNU make's error status, 2, after the
# command's own message says what went wrong and what to do; make's
# "make: *** [...] Error 1" line comes last.

# The devstack binary behind dev, invoke and event.
DEVSTACK = .dev/bin/devstack
devstack-bin = $(GO) build -o $(DEVSTACK) ./local/cmd/devstack

## help: list the targets
help:
	@sed -n 's/^## \([^:]*\): /\1\t/p' $(MAKEFILE_LIST) | awk -F'\t' '{ printf "  make %-10s %s\n", $$1, $$2 }'

## prereqs: check Go, Python with moto (set up in .dev/venv when missing), Node.js/npm
prereqs:
	@./local/check-prereqs.sh

## vet: go vet, then staticcheck (pinned in go.mod as a tool), in every module
vet:
	$(GO) build -o $(STATICCHECK) honnef.co/go/tools/cmd/staticcheck
	@$(call in-modules,$(GO) vet $(PKGS) && $(STATICCHECK) $(PKGS))

## test: vet, the browser client's unit tests, then every test of every module against local engines each package starts itself
test: prereqs vet test-web
	@command -v stripe-mock >/dev/null 2>&1 || test -x "$$($(GO) env GOPATH)/bin/stripe-mock" || test -n "$$STRIPE_MOCK" || \
		echo "note: stripe-mock not found, so the Stripe request-shape test skips (under CI=true it fails); get it with: $(STRIPE_MOCK_INSTALL)" >&2
	@$(call in-modules,$(GO) test -count=1 -timeout 20m $(PKGS))

# The Stripe request-shape test runs stripe-mock (checkout/stripetest.MockVersion).
STRIPE_MOCK_INSTALL = $(GO) install github.com/stripe/stripe-mock@v0.203.0

## test-web: the storefront's idempotent client (web/), Node's built-in test runner with a fake fetch, storage and clock
test-web:
	@command -v node >/dev/null 2>&1 || { echo "missing: Node.js 20+ (https://nodejs.org/ or apt-get install nodejs), then re-run." >&2; exit 1; }
	node --test web/test/*.test.js

## test-race: the same tests under the race detector (needs cgo: gcc)
test-race: prereqs
	@$(call in-modules,$(GO) test -race -count=1 -timeout 20m $(PKGS))

## sim: SEEDS store schedules and PAY_SEEDS payment schedules under faults (defaults 100000 and 10000; START=first seed): schedules/s, faults by kind, violations
# make test runs 10,000 store and 1,000 payment schedules (internal/sim's
# default budgets). Every schedule runs; the first five with a violation
# are printed with the command that replays each.
sim:
	$(GO) test -count=1 -timeout 0 -run '^TestSim(Payments)?$$' -v ./internal/sim -args -keep-going \
		-schedules='$(or $(SEEDS),100000)' -pay-schedules='$(or $(PAY_SEEDS),10000)' -start='$(or $(START),1)'

## bench: library cost per wrapped call on a stubbed in-process transport
bench:
	cd pkg/idemddb && $(GO) test -run '^$$' -bench . -benchmem ./

## browser-timing: the storefront in headless Chromium, click to success p50 over 20 payments with and without a slow network
browser-timing:
	bash -o pipefail -c "$(GO) test -count=1 -run TestBrowserClickToSuccess -v ./local/e2e/ -args -timing 2>&1 | grep -E 'browser_test|^(---|ok|FAIL)'"

# Lambda functions in template.yaml as LogicalId=CodeUri (the template test
# checks this list against the template).
SAM_FUNCTIONS = CreateOrderFunction=functions/create-order CreatePaymentFunction=functions/create-payment FulfilOrderFunction=functions/fulfil-order ReconcilePaymentsFunction=functions/reconcile-payments StripeWebhookFunction=functions/stripe-webhook CreateSubscriptionFunction=functions/create-subscription

## build: Lambda artifacts under .aws-sam/build/ (sam build, or plain go build without sam)
# With the SAM CLI, `sam build` runs its Go builder (BuildMethod go1.x), which
# sets GOOS/GOARCH itself and inherits CGO_ENABLED and GOFLAGS from here.
# Without it, each function is built the same way into the layout sam build
# writes, .aws-sam/build/<LogicalId>/bootstrap: a static linux/arm64 binary
# named bootstrap (provided.al2023), no RPC shim (lambda.norpc), stripped.
build:
	@if command -v sam >/dev/null 2>&1; then \
		CGO_ENABLED=0 GOFLAGS="$$GOFLAGS -tags=lambda.norpc" sam build; \
	else \
		echo "sam not found: building bootstraps with go build into .aws-sam/build/ (no .aws-sam/build/template.yaml)"; \
		set -e; for f in $(SAM_FUNCTIONS); do \
			id=$${f%%=*}; dir=$${f#*=}; \
			echo "  $$id <- ./$$dir"; \
			CGO_ENABLED=0 GOOS=linux GOARCH=arm64 $(GO) build -tags lambda.norpc -trimpath -ldflags='-s -w' \
				-o .aws-sam/build/$$id/bootstrap ./$$dir; \
		done; \
	fi

## lint: cfn-lint on template.yaml (runs the SAM transform too)
lint:
	@command -v cfn-lint >/dev/null 2>&1 || { echo "missing: cfn-lint — pip install cfn-lint (or apt-get install cfn-lint)" >&2; exit 1; }
	cfn-lint template.yaml

## deploy: sam build, then sam deploy with samconfig.toml (fill in its placeholders first)
deploy:
	@command -v sam >/dev/null 2>&1 || { echo "missing: AWS SAM CLI — install it (see https://docs.aws.amazon.com/serverless-application-model/latest/developerguide/install-sam-cli.html), configure AWS credentials, then re-run make deploy" >&2; exit 1; }
	@$(MAKE) --no-print-directory build
	sam deploy

## dev: serve template.yaml on 127.0.0.1:3000 without Docker (moto + Lambda RIE + API Gateway/JWT emulation), and the storefront on 127.0.0.1:4000
# PARAMS="RetentionSeconds=120 PaymentProviderLatencyMs=200" overrides template
# parameters (or DEV_PARAMETER_OVERRIDES); PORT and DEV_INSTANCES (emulators
# per function, default 4) too. AWS_ENDPOINT_URL_DYNAMODB=... uses that engine.
# PORT (gateway, 3000), DEV_LAMBDA_PORT (Lambda endpoint, 3001),
# DEV_STOREFRONT_PORT (the storefront page, 4000; its origin must be in the
# AllowedOrigins parameter), DEV_ENGINE_PORT (moto, 8000), DEV_PERSIST=1 (keep the data across
# restarts), DEV_WATCH=0 (no hot reload), DEV_SCHEDULE_EVERY=10s,
# DEV_EVENT_POLL=1s (how often the stream and queue mappings poll, 250ms).
dev: dev-prereqs
	@echo "building the local stack (the first run downloads Go modules from the module proxy) ..."
	@$(devstack-bin)
	@$(DEVSTACK) -port $(or $(PORT),3000) $(if $(PARAMS),-parameter-overrides '$(PARAMS)')

dev-prereqs:
	@if [ -z "$$AWS_ENDPOINT_URL_DYNAMODB" ]; then NEED_NODE=0 ./local/check-prereqs.sh; \
	else command -v $(GO) >/dev/null 2>&1 || { echo "missing: Go 1.26+ (https://go.dev/doc/install), then re-run." >&2; exit 1; }; fi

## invoke: run one event through one function, like sam local invoke -e (FN=LogicalId EVENT=file.json [TEMPLATE=...])
invoke: dev-prereqs
	@test -n "$(FN)" || { echo "usage: make invoke FN=<LogicalId> EVENT=<file.json> (make event writes sample events)" >&2; exit 2; }
	@$(devstack-bin)
	@$(DEVSTACK) invoke -fn '$(FN)' $(if $(EVENT),-event '$(EVENT)') $(if $(TEMPLATE),-template '$(TEMPLATE)') $(if $(PARAMS),-parameter-overrides '$(PARAMS)')

## event: print a sample event: TYPE=http|schedule|sqs|dynamodb [FN=LogicalId] [BODY=json] (make event > ev.json)
event:
	@$(devstack-bin)
	@$(DEVSTACK) event -type $(or $(TYPE),http) $(if $(FN),-fn '$(FN)') $(if $(BODY),-body '$(BODY)') $(if $(TEMPLATE),-template '$(TEMPLATE)')

## dev-reset: forget the persistent engine's data (DEV_PERSIST=1) and the builds
dev-reset:
	rm -rf .dev/engine .dev/build

## devload: requests/s through the local stack vs the engine alone, 1000 requests by default (LOADFLAGS="-n 1000 -c 8")
devload:
	$(GO) run ./local/cmd/devload $(LOADFLAGS)
