# Two commands a newcomer needs: `make dev` (local stack) and `make test`.
GO ?= go
PKGS ?= ./...

.PHONY: test test-race prereqs vet lint build dev deploy bench devload

prereqs:
	@./local/check-prereqs.sh

## vet: go vet, then staticcheck (pinned in go.mod as a tool: go tool staticcheck)
vet:
	$(GO) vet $(PKGS)
	$(GO) tool staticcheck $(PKGS)

## test: vet, then every test against local engines each package starts itself
test: prereqs vet
	$(GO) test -count=1 -timeout 20m $(PKGS)

## test-race: the same tests under the race detector (needs cgo: gcc)
test-race: prereqs
	$(GO) test -race -count=1 -timeout 20m $(PKGS)

## bench: library cost per wrapped call on a stubbed in-process transport
bench:
	$(GO) test -run '^$$' -bench . -benchmem ./pkg/idemddb/

# Lambda functions in template.yaml as LogicalId=CodeUri (the template test
# checks this list against the template).
SAM_FUNCTIONS = CreateOrderFunction=functions/create-order CreatePaymentFunction=functions/create-payment ReconcilePaymentsFunction=functions/reconcile-payments

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
	@command -v cfn-lint >/dev/null 2>&1 || { echo "missing: cfn-lint — pip install cfn-lint" >&2; exit 1; }
	cfn-lint template.yaml

## deploy: sam build, then sam deploy with samconfig.toml (fill in its placeholders first)
deploy:
	@command -v sam >/dev/null 2>&1 || { echo "missing: AWS SAM CLI — install it (pip install aws-sam-cli, or see https://docs.aws.amazon.com/serverless-application-model/latest/developerguide/install-sam-cli.html), configure AWS credentials, then re-run make deploy" >&2; exit 1; }
	@$(MAKE) --no-print-directory build
	sam deploy

## dev: serve template.yaml on 127.0.0.1:3000 without Docker (moto + Lambda RIE + API Gateway/JWT emulation)
# PARAMS="RetentionSeconds=120 PaymentProviderLatencyMs=200" overrides template
# parameters (or DEV_PARAMETER_OVERRIDES); PORT and DEV_INSTANCES (emulators
# per function, default 4) too. AWS_ENDPOINT_URL_DYNAMODB=... uses that engine.
dev:
	@if [ -z "$$AWS_ENDPOINT_URL_DYNAMODB" ]; then NEED_NODE=0 ./local/check-prereqs.sh; \
	else command -v $(GO) >/dev/null 2>&1 || { echo "missing: Go 1.26+ (https://go.dev/doc/install), then re-run." >&2; exit 1; }; fi
	@$(GO) build -o .dev/bin/devstack ./local/cmd/devstack
	.dev/bin/devstack -port $(or $(PORT),3000) $(if $(PARAMS),-parameter-overrides '$(PARAMS)')

## devload: requests/s through the local stack vs the engine alone for the same DynamoDB calls (LOADFLAGS="-n 1000 -c 8")
devload:
	$(GO) run ./local/cmd/devload $(LOADFLAGS)
