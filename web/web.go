// Package web serves pushgate's demo page, embedded in the binary.
//
// The page's sources are index.html, style.css and src/app.js; `make web`
// (cd web && npm ci && npm run build) bundles them with the pinned npm
// packages (@stomp/stompjs, sockjs-client) into dist/, which go:embed picks up
// on the next `go build`. dist/ is not committed except for
// dist/README.placeholder, which keeps the embed pattern matching on a fresh
// clone; a binary built without the bundle serves a page at / that says how
// to build it.
package web

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"time"
)

//go:embed dist
var dist embed.FS

// placeholderName is the one committed file in dist/; it is not served.
const placeholderName = "README.placeholder"

// bundleName is the file whose presence means `make web` has run.
const bundleName = "app.js"

// Handler returns an http.Handler that serves the demo page at / and its
// assets (app.js, style.css, sockjs.min.js, …) at /NAME. It expects to be
// mounted at the root of the gateway; use http.StripPrefix to mount it
// elsewhere. Only GET and HEAD are allowed.
func Handler() http.Handler {
	return newHandler(embedded())
}

// Built reports whether the demo page bundle was built into this binary. When
// it was not, Handler serves a page saying how to build it.
func Built() bool {
	_, err := fs.Stat(embedded(), bundleName)
	return err == nil
}

func embedded() fs.FS {
	sub, err := fs.Sub(dist, "dist")
	if err != nil {
		// fs.Sub fails only on an invalid path name, and "dist" is valid.
		panic(fmt.Sprintf("web: %v", err))
	}
	return sub
}

// asset is one file, ready to serve.
type asset struct {
	body        []byte
	contentType string
	etag        string
}

type handler struct {
	assets map[string]asset // by path without the leading slash
}

// contentTypes pins the types of what the bundle contains, rather than
// asking mime.TypeByExtension, whose answers depend on the host's
// /etc/mime.types.
var contentTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".map":  "application/json; charset=utf-8",
	".txt":  "text/plain; charset=utf-8",
	".json": "application/json; charset=utf-8",
	".svg":  "image/svg+xml",
	".png":  "image/png",
	".ico":  "image/x-icon",
}

// newHandler reads every file of fsys once; the embedded files never change,
// so their ETags are computed up front.
func newHandler(fsys fs.FS) http.Handler {
	h := &handler{assets: make(map[string]asset)}
	_ = fs.WalkDir(fsys, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || name == placeholderName {
			return nil
		}
		body, err := fs.ReadFile(fsys, name)
		if err != nil {
			return nil
		}
		h.add(name, body)
		return nil
	})
	if _, ok := h.assets[bundleName]; !ok {
		// Without the bundle, index.html (if any) would load a script that
		// is not there: serve the build instructions instead.
		h.assets = map[string]asset{}
		h.add("index.html", []byte(placeholderPage))
	}
	return h
}

func (h *handler) add(name string, body []byte) {
	ct, ok := contentTypes[path.Ext(name)]
	if !ok {
		ct = http.DetectContentType(body)
	}
	sum := sha256.Sum256(body)
	h.assets[name] = asset{
		body:        body,
		contentType: ct,
		etag:        `"` + hex.EncodeToString(sum[:16]) + `"`,
	}
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	name := strings.TrimPrefix(r.URL.Path, "/")
	if name == "" {
		name = "index.html"
	}
	a, ok := h.assets[name]
	if !ok {
		http.NotFound(w, r)
		return
	}
	hdr := w.Header()
	hdr.Set("Content-Type", a.contentType)
	hdr.Set("ETag", a.etag)
	// The file names carry no content hash, so a browser must revalidate
	// every time (cheap: a 304 by ETag) or it could run an old app.js
	// against a new server after an upgrade.
	hdr.Set("Cache-Control", "no-cache")
	hdr.Set("X-Content-Type-Options", "nosniff")
	if strings.HasSuffix(name, ".html") {
		// Everything the page needs is same-origin: its script, SockJS's
		// HTTP transports and iframes, WebSockets to the same host, /api.
		hdr.Set("Content-Security-Policy",
			"default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data:; "+
				"base-uri 'none'; form-action 'self'; frame-ancestors 'self'")
		hdr.Set("Referrer-Policy", "no-referrer")
	}
	// ServeContent answers If-None-Match, Range and HEAD.
	http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(a.body))
}

const placeholderPage = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>pushgate: demo page not built</title>
<style>
body { font: 16px/1.5 system-ui, sans-serif; max-width: 40rem; margin: 3rem auto; padding: 0 1rem; }
code, pre { font-family: ui-monospace, monospace; }
pre { background: #f1f3f5; color: #1d2329; padding: .75rem 1rem; border-radius: 6px; }
</style>
</head>
<body>
<h1>pushgate is running</h1>
<p>This binary was built without the demo page bundle.
Run <code>make web</code> to build the demo page bundle, then rebuild pushgate:</p>
<pre>make web          # cd web &amp;&amp; npm ci &amp;&amp; npm run build (needs Node.js and npm)
go build ./cmd/pushgate</pre>
<p><code>make run</code> does both and starts <code>pushgate dev</code>.</p>
</body>
</html>
`
