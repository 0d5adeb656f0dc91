# mk/faults.mk — the fault suite (faults/) and bounded fuzzing, included by
# the top-level Makefile; .ci/run calls `make test-faults`.
#
#   1. every test of faults/ with -race, one at a time (-p 1), including the
#      TestSerial* ones that stop and restart the shared RabbitMQ
#      (PUSHGATE_SERIAL=1; they restart it in t.Cleanup even on failure);
#   2. the connection flood without -race (the race detector caps a process
#      at 8128 goroutines);
#   3. every Fuzz target of the module for FAULTS_FUZZTIME each. A crasher
#      is written to the package's testdata/fuzz/<Target>/ and stays there:
#      commit it, and plain `go test` replays it from then on.
#
# It prints the numbers the tests measured (the lines with "FAULTS") and
# ends with a summary; the full output is in $(FAULTS_LOG).

FAULTS_FUZZTIME ?= 10s
FAULTS_LOG      ?= $(or $(TMPDIR),/tmp)/pushgate-test-faults.log
FAULTS_TIMEOUT  ?= 15m

.PHONY: test-faults test-faults-go test-faults-fuzz

## test-faults: broker outage, edge deploy, gateway faults, slow and hostile clients, fuzzing
test-faults: rabbitmq
	@start=$$(date +%s); rc=0; \
	$(MAKE) --no-print-directory test-faults-go || rc=1; \
	$(MAKE) --no-print-directory test-faults-fuzz || rc=1; \
	echo "== test-faults: $$(( $$(date +%s) - start ))s, $$([ $$rc = 0 ] && echo ok || echo FAILED)"; \
	exit $$rc

test-faults-go:
	@: > $(FAULTS_LOG); rc=0; \
	echo "== faults (-race, -p 1, serial broker tests included)"; \
	PUSHGATE_SERIAL=1 $(GO) test -race -count=1 -p 1 -timeout $(FAULTS_TIMEOUT) -v ./faults/ >> $(FAULTS_LOG) 2>&1 || rc=1; \
	echo "== faults: connection flood (without -race)"; \
	$(GO) test -count=1 -timeout 5m -v -run '^TestConnectionFlood$$' ./faults/ >> $(FAULTS_LOG) 2>&1 || rc=1; \
	grep -E 'FAULTS |KNOWN GAP|^(--- |ok |FAIL|panic)|^    --- (FAIL|SKIP)' $(FAULTS_LOG) | grep -v -- '--- SKIP: TestConnectionFlood' || true; \
	if [ $$rc != 0 ]; then echo "== faults FAILED; full output:"; cat $(FAULTS_LOG); fi; \
	exit $$rc

test-faults-fuzz:
	@rc=0; \
	for dir in $$(grep -rl --include='*_test.go' '^func Fuzz' . | grep -v -e node_modules -e '^./gen/' | xargs -n1 dirname | sort -u); do \
		for target in $$($(GO) test -list '^Fuzz' $$dir | grep '^Fuzz'); do \
			echo "== fuzz $$dir $$target ($(FAULTS_FUZZTIME))"; \
			if ! $(GO) test -run '^$$' -fuzz "^$$target$$" -fuzztime $(FAULTS_FUZZTIME) $$dir > $(FAULTS_LOG).fuzz 2>&1; then \
				cat $(FAULTS_LOG).fuzz; rc=1; \
				echo "!! $$target found a failing input; it is kept in $$dir/testdata/fuzz/$$target/ (commit it)"; \
			else \
				grep -E '^fuzz: elapsed' $(FAULTS_LOG).fuzz | tail -1; \
			fi; \
		done; \
	done; \
	exit $$rc
