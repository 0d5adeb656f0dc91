# mk/generate.mk — code generation for the push API (included by the top-level Makefile).
#
# Every generator is pinned and installed into a project-local bin/ (gitignored),
# so `make generate` needs nothing but Go and a module proxy, and never talks to
# the Buf Schema Registry (buf.gen.yaml uses local plugins only).

BUF_VERSION                ?= v1.75.0
PROTOC_GEN_GO_VERSION      ?= v1.36.12
PROTOC_GEN_GO_GRPC_VERSION ?= v1.6.2
GRPC_GATEWAY_VERSION       ?= v2.33.0

TOOLS_BIN := $(CURDIR)/bin
# buf finds its local plugins (protoc-gen-*) on PATH: put the pinned ones first.
BUF := PATH="$(TOOLS_BIN):$$PATH" $(TOOLS_BIN)/buf

# One stamp per tool and version, so bumping a version reinstalls exactly that tool.
TOOL_STAMPS := \
	$(TOOLS_BIN)/.buf-$(BUF_VERSION) \
	$(TOOLS_BIN)/.protoc-gen-go-$(PROTOC_GEN_GO_VERSION) \
	$(TOOLS_BIN)/.protoc-gen-go-grpc-$(PROTOC_GEN_GO_GRPC_VERSION) \
	$(TOOLS_BIN)/.protoc-gen-grpc-gateway-$(GRPC_GATEWAY_VERSION) \
	$(TOOLS_BIN)/.protoc-gen-openapiv2-$(GRPC_GATEWAY_VERSION)

.PHONY: tools generate check-generate

## tools: install the pinned code generators into ./bin
tools: $(TOOL_STAMPS)

# Each tool is its own `go install`: go refuses to install packages from
# different modules in one command.
$(TOOLS_BIN)/.buf-$(BUF_VERSION):
	GOBIN=$(TOOLS_BIN) go install github.com/bufbuild/buf/cmd/buf@$(BUF_VERSION)
	@touch $@
$(TOOLS_BIN)/.protoc-gen-go-$(PROTOC_GEN_GO_VERSION):
	GOBIN=$(TOOLS_BIN) go install google.golang.org/protobuf/cmd/protoc-gen-go@$(PROTOC_GEN_GO_VERSION)
	@touch $@
$(TOOLS_BIN)/.protoc-gen-go-grpc-$(PROTOC_GEN_GO_GRPC_VERSION):
	GOBIN=$(TOOLS_BIN) go install google.golang.org/grpc/cmd/protoc-gen-go-grpc@$(PROTOC_GEN_GO_GRPC_VERSION)
	@touch $@
$(TOOLS_BIN)/.protoc-gen-grpc-gateway-$(GRPC_GATEWAY_VERSION):
	GOBIN=$(TOOLS_BIN) go install github.com/grpc-ecosystem/grpc-gateway/v2/protoc-gen-grpc-gateway@$(GRPC_GATEWAY_VERSION)
	@touch $@
$(TOOLS_BIN)/.protoc-gen-openapiv2-$(GRPC_GATEWAY_VERSION):
	GOBIN=$(TOOLS_BIN) go install github.com/grpc-ecosystem/grpc-gateway/v2/protoc-gen-openapiv2@$(GRPC_GATEWAY_VERSION)
	@touch $@

## generate: lint the protos and regenerate gen/ (Go, gRPC, grpc-gateway, OpenAPI)
generate: tools
	$(BUF) lint
	rm -rf gen/pushgate gen/openapiv2
	$(BUF) generate

## check-generate: fail if gen/ is not exactly what `make generate` produces
check-generate: generate
	@git diff --exit-code -- gen/ || { \
		echo "gen/ is out of date: run 'make generate' and commit the result" >&2; exit 1; }
	@untracked="$$(git ls-files --others --exclude-standard -- gen/)"; \
	if [ -n "$$untracked" ]; then \
		echo "gen/ has files that are not committed:" >&2; echo "$$untracked" >&2; \
		echo "run 'make generate' and commit the result" >&2; exit 1; fi
