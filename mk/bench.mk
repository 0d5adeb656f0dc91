# mk/bench.mk — benchmarks (included by the top-level Makefile). See bench/RESULTS.md.
#
# Each runs pushgate (two edges and pushsvc as separate processes, with the
# embedded broker and with RabbitMQ), RabbitMQ's web-stomp and RabbitMQ's
# STOMP plugin alone under bench/cmd/loadgen, then prints one table with the
# issue's goals as ratios taken in the same run. Results (JSON, REPORT.md,
# server logs) go to bench/results/<time>-<set>/, which git ignores.
# RabbitMQ: a private node started by bench/rabbitmq-private.sh (needs
# rabbitmq-server installed and root); RABBITMQ=shared uses the local one.
#
#   make bench                         the reduced set, under 10 minutes
#   make bench-full                    every scenario at 1k and 10k sessions
#   make bench BASE_REF=HEAD~3         also measure that commit: before/after in one run
#   make bench SYSTEMS="pushgate-embedded webstomp"   a subset
#   make bench-micro                   the go test -bench micro-benchmarks

.PHONY: bench bench-full bench-micro bench-stop

## bench: the reduced benchmark set (under 10 minutes); report in bench/results/
bench:
	bench/run.sh quick

## bench-full: every benchmark scenario at 1k and 10k sessions
bench-full:
	bench/run.sh full

## bench-micro: STOMP codec, fan-out path and broker-mapping micro-benchmarks
bench-micro:
	$(GO) test -run '^$$' -bench . -benchmem ./edge/ ./relay/

## bench-stop: stop the private RabbitMQ node the benchmarks started
bench-stop:
	bench/rabbitmq-private.sh stop
