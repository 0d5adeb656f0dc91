#!/usr/bin/env bash
# Runs the Node client tests (sockjs.test.mjs: stompjs over sockjs-client on
# every SockJS transport Node supports, and over ws) against a fresh
# `pushgate dev` on ports of its own.
#
#   PUSHGATE_EDGE_URL=http://...   test that server instead of starting one
#                                  (then also PUSHGATE_REST_URL, PUSHGATE_TOKEN_URL)
#   NODE_TEST_GATEWAY_PORT, NODE_TEST_EDGE_PORTS (two, comma-separated),
#   NODE_TEST_GRPC_PORT, NODE_TEST_HTTP_PORT    ports of the started server
#
# `make test-node` runs this.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
bin=${PUSHGATE_BIN:-/tmp/pushgate-node-test}
log_file=${NODE_TEST_LOG:-/tmp/pushgate-node-test.log}

log() { printf 'node-test: %s\n' "$*" >&2; }
# shellcheck source=../dev-server.sh
. "$root/test/dev-server.sh"

cd "$here"
if [ -f package-lock.json ]; then
	npm ci --no-audit --no-fund --loglevel=error
else
	npm install --no-audit --no-fund --loglevel=error
fi

if [ -z "${PUSHGATE_EDGE_URL:-}" ]; then
	gateway_port=${NODE_TEST_GATEWAY_PORT:-17000}
	edge_ports=${NODE_TEST_EDGE_PORTS:-18080,18081}
	grpc_port=${NODE_TEST_GRPC_PORT:-19090}
	http_port=${NODE_TEST_HTTP_PORT:-19091}
	edge_listen=$(printf '%s' "$edge_ports" | sed 's/\([0-9][0-9]*\)/127.0.0.1:\1/g')
	export PUSHGATE_EDGE_URL="http://127.0.0.1:${edge_ports%%,*}"
	export PUSHGATE_REST_URL="http://127.0.0.1:$http_port"
	export PUSHGATE_TOKEN_URL="$PUSHGATE_REST_URL/dev/token"

	if answers "$PUSHGATE_EDGE_URL/healthz"; then
		log "FAIL: something already answers at $PUSHGATE_EDGE_URL; stop it, or choose other ports"
		exit 1
	fi
	# --max-payload-bytes: the xhr-streaming test pushes 200 KiB (past the
	# edge's 128 KiB streaming response limit); pushsvc's default is 56 KiB.
	start_dev "$bin" "$log_file" "$PUSHGATE_EDGE_URL $PUSHGATE_REST_URL" \
		--gateway-listen "127.0.0.1:$gateway_port" \
		--edge-listen "$edge_listen" \
		--grpc "127.0.0.1:$grpc_port" \
		--http "127.0.0.1:$http_port" \
		--max-payload-bytes 1048576
fi

log "testing edge $PUSHGATE_EDGE_URL, REST $PUSHGATE_REST_URL"
status=0
node --test --test-reporter=spec --test-force-exit --test-timeout=120000 sockjs.test.mjs || status=$?
if [ "$status" != 0 ] && [ -f "$log_file" ]; then
	log "server log (last 40 lines):"
	tail -n 40 "$log_file" >&2
fi
exit "$status"
