# pushgate's build. The two commands a newcomer needs:
#   make run    start everything in one process (embedded broker), demo page at http://localhost:7000/
#   make test   every test, with -race, against the embedded broker and the local RabbitMQ
GO ?= go
GOFLAGS_TEST ?= -race -count=1 -timeout 15m
STATICCHECK_VERSION ?= v0.8.2

include mk/*.mk

.PHONY: run build test test-go test-node rabbitmq lint fuzz ci

## run: build the demo page and start `pushgate dev`
run: web
	$(GO) run ./cmd/pushgate dev

## build: build the pushgate binary into ./bin
build: web
	$(GO) build -o bin/pushgate ./cmd/pushgate

## rabbitmq: make sure RabbitMQ with the STOMP plugin listens on 127.0.0.1:61613
rabbitmq:
	bash scripts/rabbitmq.sh

## test: every test suite (Go with -race, Node clients, the browser test)
test: rabbitmq web test-go test-node test-browser

## test-go: Go unit and integration tests, with the race detector; then the
## tests that restart or count the shared RabbitMQ, one at a time; then the
## connect storm without -race (the race detector caps goroutines at 8128)
test-go: rabbitmq
	$(GO) test $(GOFLAGS_TEST) ./...
	PUSHGATE_SERIAL=1 $(GO) test $(GOFLAGS_TEST) -p 1 -run 'TestSerial' ./integration/
	PUSHGATE_SERIAL=1 $(GO) test -count=1 -run 'TestSerialConnectStorm' ./integration/

## lint: gofmt, go vet and staticcheck
lint:
	@out="$$(gofmt -l $$(git ls-files '*.go' | grep -v '^gen/'))"; \
	if [ -n "$$out" ]; then echo "gofmt would change:" >&2; echo "$$out" >&2; exit 1; fi
	$(GO) vet ./...
	GOBIN=$(CURDIR)/bin $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)
	bin/staticcheck ./...

## fuzz: run every fuzz target for a bounded time (FUZZTIME each)
FUZZTIME ?= 20s
fuzz:
	@for pkg in $$($(GO) list ./...); do \
		for target in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
			echo "== $$pkg $$target"; \
			$(GO) test -run '^$$' -fuzz "^$$target$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
		done; \
	done

## ci: what .ci/run does
ci: check-generate lint test
