#!/usr/bin/env bash
# pushgate's benchmark runner: builds the binaries, starts every system as
# separate processes, runs bench/cmd/loadgen against each in turn, and prints
# one table with the issue's goals as ratios measured in this run.
#
#   bench/run.sh quick   # make bench: the reduced set, under 10 minutes
#   bench/run.sh full    # make bench-full
#
# Environment:
#   SYSTEMS   which systems to run (default: all of them; centrifugo in the quick set only
#             with CENTRIFUGO_BIN)
#             pushgate-embedded  edges + pushsvc + the embedded go-stomp broker, each its own process
#             pushgate-rabbitmq  edges + pushsvc on RabbitMQ's STOMP plugin
#             webstomp           RabbitMQ's web-stomp alone (the baseline)
#             rabbitmq-stomp     RabbitMQ STOMP, one publisher -> one subscriber (the push baseline)
#             sockjs             the push scenario over SockJS websocket and xhr-streaming (embedded broker)
#             centrifugo         Centrifugo v6.9.1 (memory engine), the optional peer: go-installed into a
#                                temporary GOBIN (never the repo) unless CENTRIFUGO_BIN names a binary
#   RABBITMQ  private (default): a private RabbitMQ node started by bench/rabbitmq-private.sh
#             (STOMP 61623, web-stomp 15684, fd limit raised), so nothing else shares the broker;
#             shared: the local node on 61613 / 15674 (rabbitmq-plugins enable rabbitmq_web_stomp)
#   BASE_REF  also run the pushgate systems with a binary built from this git ref
#             (labels base-pushgate-*): before/after figures from one run
#   BASE_BIN  the same with a pushgate binary built elsewhere
#   SCENARIOS which pushgate scenarios to run (default: "conns fanout push")
#   GOMAXPROCS_PUSHGATE  GOMAXPROCS of each pushgate process (edges, pushsvc); default 1, see RESULTS.md
#   GOMAXPROCS_CENTRIFUGO  the same for Centrifugo (default: Go's, all CPUs)
#   PPROF=1   start edges and pushsvc with --pprof-listen and save CPU profiles
#             of the unthrottled modes under the run's directory
#   OUT       results directory (default bench/results/<time>)
set -euo pipefail
cd "$(dirname "$0")/.."

SET=${1:-quick}
case "$SET" in quick | full) ;; *) echo "usage: $0 quick|full" >&2; exit 2 ;; esac
# Centrifugo is in the quick set only when CENTRIFUGO_BIN names a binary:
# installing it takes minutes on a cold Go cache.
DEFAULT_SYSTEMS="pushgate-embedded pushgate-rabbitmq webstomp rabbitmq-stomp sockjs"
if [ "$SET" = full ] || [ -n "${CENTRIFUGO_BIN:-}" ]; then DEFAULT_SYSTEMS+=" centrifugo"; fi
SYSTEMS=${SYSTEMS:-$DEFAULT_SYSTEMS}
SCENARIOS=" ${SCENARIOS:-conns fanout push} "
want() { [[ $SCENARIOS == *" $1 "* ]]; }
# Each pushgate role runs as if in a container limited to one CPU (Go reads
# the cgroup limit): four processes with two Ps each on two shared CPUs hand
# goroutines between Ps and spin looking for work. Empty: Go's default.
GOMAXPROCS_PUSHGATE=${GOMAXPROCS_PUSHGATE-1}
RABBITMQ=${RABBITMQ:-private}
OUT=${OUT:-bench/results/$(date -u +%Y%m%d-%H%M%S)-$SET}
BIN=bench/results/bin
mkdir -p "$OUT" "$BIN"

# Every session is a file descriptor on both sides: raise the soft limit to
# the hard one (50,000 sessions need a hard limit above 50,000).
ulimit -Hn 200000 2>/dev/null || true
ulimit -n "$(ulimit -Hn)"
echo "bench: $SET set, results in $OUT, open files limit $(ulimit -n)" >&2

# ---- sizes of the two sets ----------------------------------------------
# Each may be set in the environment; 50,000 sessions: CONNS_N="10000 50000"
# (needs a hard ulimit -n above 50,000 for each process).
# Fan-out is sized in deliveries: the fixed mode offers FAN_RATE deliveries/s
# (messages/s = FAN_RATE / subscribers), the unthrottled mode publishes
# FAN_DELIVERIES / subscribers messages (web-stomp: WS_DELIVERIES, it is slow).
if [ "$SET" = quick ]; then
	: "${CONNS_N:=10000}" "${FANOUT_N:=1000}" "${PUSH_N:=1000}" "${SOCKJS_N:=1000}"
	: "${DUR:=5s}" "${FAN_RATE:=100000}" "${FAN_DELIVERIES:=2000000}" "${WS_DELIVERIES:=300000}" "${PUSH_COUNT:=100000}"
else
	: "${CONNS_N:=1000 10000}" "${FANOUT_N:=1000 10000}" "${PUSH_N:=1000 10000}" "${SOCKJS_N:=1000}"
	: "${DUR:=10s}" "${FAN_RATE:=100000}" "${FAN_DELIVERIES:=3000000}" "${WS_DELIVERIES:=400000}" "${PUSH_COUNT:=300000}"
fi
fanout_args() { # subscribers: the loadgen flags of both fan-out modes
	echo -rate $(($FAN_RATE / $1)) -duration "$DUR" -count $(($FAN_DELIVERIES / $1)) -workers 16
}

# ---- build ---------------------------------------------------------------
go build -o "$BIN/pushgate" ./cmd/pushgate
go build -o "$BIN/loadgen" ./bench/cmd/loadgen
go build -o "$BIN/stompbroker" ./bench/cmd/stompbroker
BINS=("pushgate:$BIN/pushgate")
if [ -n "${BASE_REF:-}" ]; then
	src=$(mktemp -d)
	git archive "$BASE_REF" | tar -x -C "$src"
	(cd "$src" && go build -o "$OLDPWD/$BIN/pushgate-base" ./cmd/pushgate)
	rm -rf "$src"
	BINS+=("base-pushgate:$BIN/pushgate-base")
elif [ -n "${BASE_BIN:-}" ]; then
	BINS+=("base-pushgate:$BASE_BIN")
fi
LOADGEN=$BIN/loadgen

# ---- brokers -------------------------------------------------------------
if [ "$RABBITMQ" = private ]; then
	bench/rabbitmq-private.sh start
	RMQ_STOMP=127.0.0.1:61623; RMQ_WS=ws://127.0.0.1:15684/ws
	RMQ_PID=$(bench/rabbitmq-private.sh pid)
	RMQ_NODE=bench@localhost
else
	rabbitmq-plugins -q enable rabbitmq_stomp rabbitmq_web_stomp >/dev/null
	RMQ_STOMP=127.0.0.1:61613; RMQ_WS=ws://127.0.0.1:15674/ws
	RMQ_PID=$(pgrep -u rabbitmq -x beam.smp | head -n 1)
	RMQ_NODE=rabbit@localhost
fi
# The broker's queue count, reported at each conns checkpoint.
QUEUES_CMD="su rabbitmq -s /bin/sh -c 'HOME=/var/lib/rabbitmq rabbitmqctl -n $RMQ_NODE -q list_queues name' | grep -vc '^name\$'"
EMB_PORT=61700

PIDS=()
cleanup() {
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
	PIDS=()
}
trap cleanup EXIT

wait_ready() { # url seconds
	local deadline=$((SECONDS + $2))
	until curl -fs -o /dev/null "$1"; do
		if ((SECONDS > deadline)); then echo "bench: $1 not ready" >&2; return 1; fi
		sleep 0.2
	done
}

# start_stack BINARY embedded|rabbitmq: broker (embedded), two edges,
# pushsvc; sets PROCS (loadgen -proc flags) and BROKER_PORT.
start_stack() {
	local bin=$1 broker=$2 url pprof=()
	if [ "$broker" = embedded ]; then
		"$BIN/stompbroker" -listen 127.0.0.1:$EMB_PORT 2>>"$OUT/servers.log" &
		PIDS+=($!); local bpid=$!
		url=stomp://127.0.0.1:$EMB_PORT/; BROKER_PORT=$EMB_PORT
		sleep 0.3
	else
		url=stomp://guest:guest@$RMQ_STOMP/; BROKER_PORT=${RMQ_STOMP##*:}
		local bpid=$RMQ_PID
	fi
	PROCS=(-proc "broker=$bpid" -broker-port "$BROKER_PORT")
	local i
	for i in 1 2; do
		[ "${PPROF:-}" = 1 ] && pprof=(--pprof-listen 127.0.0.1:1706$i)
		env ${GOMAXPROCS_PUSHGATE:+GOMAXPROCS=$GOMAXPROCS_PUSHGATE} "$bin" edge --listen 127.0.0.1:1808$i --edge-id bench-e$i --broker "$url" --jwt-secret bench-secret \
			--max-sessions 200000 --log-level warn "${pprof[@]}" 2>>"$OUT/servers.log" &
		PIDS+=($!)
		PROCS+=(-proc "edge$i=$!@http://127.0.0.1:1808$i/metrics")
	done
	[ "${PPROF:-}" = 1 ] && pprof=(--pprof-listen 127.0.0.1:17069)
	env ${GOMAXPROCS_PUSHGATE:+GOMAXPROCS=$GOMAXPROCS_PUSHGATE} "$bin" pushsvc --grpc 127.0.0.1:19090 --http 127.0.0.1:19091 --broker "$url" --api-token bench-token \
		--log-level warn "${pprof[@]}" 2>>"$OUT/servers.log" &
	PIDS+=($!)
	PROCS+=(-proc "pushsvc=$!@http://127.0.0.1:19091/metrics")
	wait_ready http://127.0.0.1:18081/readyz 30
	wait_ready http://127.0.0.1:18082/readyz 30
	wait_ready http://127.0.0.1:19091/readyz 30
}

# profile NAME SECONDS: CPU profiles of the edges and pushsvc, in the background.
profile() {
	[ "${PPROF:-}" = 1 ] || return 0
	local p
	for p in 17061 17062 17069; do
		curl -fs -o "$OUT/$1-$p.pprof" "http://127.0.0.1:$p/debug/pprof/profile?seconds=$2" &
	done
}

run() { # label scenario args...
	local label=$1 scenario=$2
	shift 2
	echo "bench: $label $scenario $*" >&2
	"$LOADGEN" run -label "$label" -scenario "$scenario" -out "$OUT/$label-$scenario-$(date +%H%M%S).json" "$@" \
		>>"$OUT/loadgen.log" 2>&1 || echo "bench: $label $scenario failed (see $OUT/loadgen.log)" >&2
}

PG_URLS=ws://127.0.0.1:18081/stomp,ws://127.0.0.1:18082/stomp
for sys in $SYSTEMS; do
	case "$sys" in
	pushgate-embedded | pushgate-rabbitmq)
		broker=${sys#pushgate-}
		for b in "${BINS[@]}"; do
			prefix=${b%%:*}; bin=${b#*:}
			label=${prefix}-$broker
			for n in $(want conns && echo "$CONNS_N"); do
				start_stack "$bin" "$broker"
				q=()
				[ "$broker" = rabbitmq ] && q=(-queues-cmd "$QUEUES_CMD")
				run "$label" conns -n "$n" -urls "$PG_URLS" "${q[@]}" "${PROCS[@]}"
				cleanup
			done
			for n in $(want fanout && echo "$FANOUT_N"); do
				start_stack "$bin" "$broker"
				profile "$label-fanout-$n" 12
				run "$label" fanout -n "$n" -urls "$PG_URLS" $(fanout_args "$n") "${PROCS[@]}"
				cleanup
			done
			for n in $(want push && echo "$PUSH_N"); do
				start_stack "$bin" "$broker"
				profile "$label-push-$n" 12
				run "$label" push -n "$n" -urls "$PG_URLS" -rate 5000 -duration "$DUR" -count "$PUSH_COUNT" -workers 256 "${PROCS[@]}"
				cleanup
			done
		done
		;;
	webstomp)
		for n in $CONNS_N; do
			[ "$n" -gt 15000 ] && continue # one RabbitMQ process: its fd limit
			run webstomp conns -target webstomp -n "$n" -urls "$RMQ_WS" -connect-concurrency 100 -proc "broker=$RMQ_PID"
		done
		for n in $FANOUT_N; do
			# Unthrottled only: a fixed rate that pushgate and Centrifugo
			# keep up with would queue minutes of backlog in web-stomp.
			run webstomp fanout -target webstomp -n "$n" -urls "$RMQ_WS" -stomp-addr "$RMQ_STOMP" -modes unthrottled \
				-duration "$DUR" -count "$((WS_DELIVERIES / n > 20 ? WS_DELIVERIES / n : 20))" -workers 1 -proc "broker=$RMQ_PID"
		done
		;;
	rabbitmq-stomp)
		run rabbitmq-stomp rawstomp -target stomp -n 1 -stomp-addr "$RMQ_STOMP" -modes unthrottled -count 300000 -duration "$DUR" -workers 1 -proc "broker=$RMQ_PID"
		;;
	sockjs)
		start_stack "$BIN/pushgate" embedded
		if curl -fs http://127.0.0.1:18081/ws/info >/dev/null; then
			for t in sockjs-ws sockjs-xhr-streaming; do
				run "pushgate-embedded-$t" push -transport "$t" -n "$SOCKJS_N" -urls http://127.0.0.1:18081/ws,http://127.0.0.1:18082/ws \
					-rate 2000 -duration "$DUR" -count 50000 -workers 128 "${PROCS[@]}"
			done
		else
			echo "bench: SockJS (/ws/info) does not answer on this build: sockjs skipped" | tee -a "$OUT/loadgen.log" >&2
		fi
		cleanup
		;;
	centrifugo)
		cbin=${CENTRIFUGO_BIN:-}
		if [ -z "$cbin" ]; then
			gobin=$(mktemp -d)
			echo "bench: go install github.com/centrifugal/centrifugo/v6@v6.9.1 into $gobin" >&2
			if GOBIN=$gobin GOFLAGS=-mod=mod go install github.com/centrifugal/centrifugo/v6@v6.9.1 >>"$OUT/servers.log" 2>&1; then
				cbin=$gobin/centrifugo
			else
				echo "bench: could not install Centrifugo: centrifugo skipped" | tee -a "$OUT/loadgen.log" >&2
				continue
			fi
		fi
		CF_URLS=ws://127.0.0.1:18000/connection/websocket
		cf() { # scenario args...: one Centrifugo process per scenario
			env ${GOMAXPROCS_CENTRIFUGO:+GOMAXPROCS=$GOMAXPROCS_CENTRIFUGO} "$cbin" -c bench/centrifugo/config.json >>"$OUT/servers.log" 2>&1 &
			local cpid=$!
			PIDS+=("$cpid")
			wait_ready http://127.0.0.1:18000/metrics 30
			run centrifugo "$@" -target centrifugo -urls "$CF_URLS" -proc "edge1=$cpid@http://127.0.0.1:18000/metrics"
			cleanup
		}
		for n in $CONNS_N; do cf conns -n "$n"; done
		for n in $FANOUT_N; do cf fanout -n "$n" $(fanout_args "$n"); done
		for n in $PUSH_N; do cf push -n "$n" -rate 5000 -duration "$DUR" -count "$PUSH_COUNT" -workers 256 -settle 0s; done
		[ -n "${gobin:-}" ] && rm -rf "$gobin"
		;;
	*) echo "bench: unknown system $sys" >&2 ;;
	esac
done

{
	echo "# pushgate benchmarks: $SET set, $(date -u '+%Y-%m-%d %H:%M UTC')"
	echo
	echo "Machine: $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')), $(free -g | awk '/Mem:/{print $2}') GiB, $(uname -sr); load generator in a separate process on the same machine, loopback."
	echo "Command: bench/run.sh $SET (SYSTEMS=\"$SYSTEMS\" RABBITMQ=$RABBITMQ${BASE_REF:+ BASE_REF=$BASE_REF})"
	"$LOADGEN" report "$OUT"/*.json
} | tee "$OUT/REPORT.md"
echo "bench: report in $OUT/REPORT.md" >&2
