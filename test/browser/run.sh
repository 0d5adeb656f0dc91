#!/usr/bin/env bash
# Runs the demo page's browser test (demo.test.mjs) against a fresh
# `pushgate dev`: chromium from Debian, playwright-core from npm.
#
#   CHROMIUM=/path/to/chromium   the browser (default /usr/bin/chromium)
#   PUSHGATE_URL=http://...      test that server instead of starting one
#   CI=true                      never skip: a missing browser is a failure
#
# `make test-browser` builds the page bundle first and then runs this.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
artifacts="$here/artifacts"
bin=${PUSHGATE_BIN:-/tmp/pushgate-browser}
export CHROMIUM=${CHROMIUM:-/usr/bin/chromium}

log() { printf 'browser-test: %s\n' "$*" >&2; }
# shellcheck source=../dev-server.sh
. "$root/test/dev-server.sh"

# --- the browser: install it where we may, never skip in CI.
if [ ! -x "$CHROMIUM" ]; then
	if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
		log "installing chromium (apt-get)"
		export DEBIAN_FRONTEND=noninteractive
		apt-get install -y chromium >/dev/null ||
			{ apt-get update -qq && apt-get install -y chromium >/dev/null; } ||
			log "apt-get could not install chromium"
	fi
fi
if [ ! -x "$CHROMIUM" ]; then
	if [ "${CI:-}" = true ]; then
		log "FAIL: no browser at $CHROMIUM, and it could not be installed"
		exit 1
	fi
	log "SKIPPED: no browser at $CHROMIUM."
	log "  Install Debian's chromium (sudo apt-get install -y chromium), or set CHROMIUM=/path/to/chrome."
	exit 0
fi

cd "$here"
npm ci --no-audit --no-fund --loglevel=error
mkdir -p "$artifacts"
rm -f "$artifacts"/*.png "$artifacts"/*.log

# --- the server: a fresh `pushgate dev` unless one was named.
if [ -z "${PUSHGATE_URL:-}" ]; then
	export PUSHGATE_URL=http://127.0.0.1:7000
	# Something already on :7000 (a `make run` left open?) would be tested
	# instead of this tree's code.
	if answers "$PUSHGATE_URL/"; then
		log "FAIL: something already answers at $PUSHGATE_URL; stop it, or set PUSHGATE_URL to test it"
		exit 1
	fi
	if [ ! -f "$root/web/dist/app.js" ]; then
		log "building the demo page bundle"
		(cd "$root/web" && npm ci --no-audit --no-fund --loglevel=error && npm run build)
	fi
	start_dev "$bin" "$artifacts/pushgate.log" "$PUSHGATE_URL"
fi

log "testing $PUSHGATE_URL with $CHROMIUM"
status=0
node --test --test-reporter=spec demo.test.mjs || status=$?
if [ "$status" != 0 ] && [ -f "$artifacts/pushgate.log" ]; then
	log "server log (last 40 lines):"
	tail -n 40 "$artifacts/pushgate.log" >&2
fi
log "screenshots and logs: $artifacts"
exit "$status"
