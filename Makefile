# Two commands a newcomer needs: `make dev` (local stack) and `make test`.
GO ?= go
PKGS ?= ./...

.PHONY: test prereqs vet lint build dev deploy bench

prereqs:
	@./local/check-prereqs.sh

vet:
	$(GO) vet $(PKGS)

## test: vet, then every test against local engines each package starts itself
test: prereqs vet
	$(GO) test -count=1 -timeout 20m $(PKGS)

## bench: library cost per wrapped call on a stubbed in-process transport
bench:
	$(GO) test -run '^$$' -bench . -benchmem ./pkg/idemddb/
