# mk/web.mk — the demo page (web/) and its browser test (test/browser/),
# included by the top-level Makefile.
#
# The page's JS dependencies are pinned in web/package-lock.json and bundled
# by esbuild into web/dist/, which go:embed puts into the binary (web/web.go):
# build the bundle before `go build` for a binary that serves the real page.

WEB_DIR       := web
WEB_NPM_STAMP := $(WEB_DIR)/node_modules/.pushgate-npm-ci
WEB_SOURCES   := $(WEB_DIR)/index.html $(WEB_DIR)/style.css $(WEB_DIR)/build.mjs \
                 $(wildcard $(WEB_DIR)/src/*.js)
WEB_BUNDLE    := $(WEB_DIR)/dist/app.js

NPM ?= npm

.PHONY: web web-clean test-browser

## web: build the demo page bundle into web/dist/ (npm ci only when the lockfile changed)
web: $(WEB_BUNDLE)

# npm ci empties node_modules, stamp included, so the stamp is touched after
# it: node_modules is current exactly when the stamp is newer than the lockfile.
$(WEB_NPM_STAMP): $(WEB_DIR)/package.json $(WEB_DIR)/package-lock.json
	@command -v $(NPM) >/dev/null 2>&1 || { \
		echo "make web needs Node.js 20+ and npm (Debian: apt-get install -y nodejs npm)" >&2; exit 1; }
	cd $(WEB_DIR) && $(NPM) ci --no-audit --no-fund
	@touch $@

$(WEB_BUNDLE): $(WEB_NPM_STAMP) $(WEB_SOURCES)
	cd $(WEB_DIR) && $(NPM) run build

## web-clean: remove the built bundle and web/node_modules (keeps the committed placeholder)
web-clean:
	find $(WEB_DIR)/dist -mindepth 1 ! -name README.placeholder -delete
	rm -rf $(WEB_DIR)/node_modules

## test-browser: drive the demo page in chromium against a fresh `pushgate dev`
test-browser: web
	test/browser/run.sh
