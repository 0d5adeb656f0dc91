# test/dev-server.sh — sourced by test/node/run.sh and test/browser/run.sh:
# builds this tree's pushgate, runs `pushgate dev` for the tests, stops it
# when the script exits. The sourcing script defines $root and log().

# answers URL: does anything answer there?
answers() { node -e 'fetch(process.argv[1]).then(() => process.exit(0), () => process.exit(1))' "$1"; }

# ready BASE...: does every BASE answer 200 on /readyz?
ready() {
	local base
	for base in "$@"; do
		node -e 'fetch(process.argv[1]).then(r => process.exit(r.ok ? 0 : 1), () => process.exit(1))' "$base/readyz" || return 1
	done
}

# start_dev BIN LOG "BASE..." [DEV_FLAGS...]: builds BIN, starts `BIN dev
# DEV_FLAGS` logging to LOG, stops it when the script exits, and waits up to
# 30 s until every BASE is ready; fails with the server log otherwise.
start_dev() {
	local bin=$1 log_file=$2 bases=$3
	shift 3
	log "building $bin"
	(cd "$root" && go build -o "$bin" ./cmd/pushgate)
	log "starting pushgate dev (log: $log_file)"
	"$bin" dev "$@" >"$log_file" 2>&1 &
	dev_server=$!
	trap stop_dev EXIT
	# shellcheck disable=SC2086 # bases is a space-separated list
	for _ in $(seq 1 60); do
		ready $bases && return 0
		if ! kill -0 "$dev_server" 2>/dev/null; then
			log "FAIL: pushgate dev exited early:"
			tail -n 40 "$log_file" >&2
			exit 1
		fi
		sleep 0.5
	done
	log "FAIL: $bases not ready after 30 s:"
	tail -n 40 "$log_file" >&2
	exit 1
}

# stop_dev ends the server: a graceful shutdown gets 10 s, a hung one does
# not hang the build.
stop_dev() {
	kill "$dev_server" 2>/dev/null || return 0
	for _ in $(seq 1 20); do
		kill -0 "$dev_server" 2>/dev/null || break
		sleep 0.5
	done
	kill -9 "$dev_server" 2>/dev/null || true
	wait "$dev_server" 2>/dev/null || true
}
