package web

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/fstest"
)

// get serves one request through h and returns the recorded response.
func get(t *testing.T, h http.Handler, method, target string, header http.Header) *http.Response {
	t.Helper()
	req := httptest.NewRequest(method, target, nil)
	for k, v := range header {
		req.Header[k] = v
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Result()
}

func body(t *testing.T, res *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("reading body: %v", err)
	}
	return string(b)
}

var builtFS = fstest.MapFS{
	"README.placeholder": {Data: []byte("placeholder\n")},
	"index.html":         {Data: []byte(`<!doctype html><title>pushgate demo</title><script type="module" src="app.js"></script>`)},
	"app.js":             {Data: []byte(`console.log("app");`)},
	"app.js.map":         {Data: []byte(`{"version":3}`)},
	"style.css":          {Data: []byte(`body{}`)},
	"sockjs.min.js":      {Data: []byte(`/* sockjs */`)},
}

func TestHandlerBuilt(t *testing.T) {
	t.Parallel()
	h := newHandler(builtFS)

	tests := []struct {
		path       string
		wantStatus int
		wantType   string
		wantBody   string // a part of it
	}{
		{"/", 200, "text/html; charset=utf-8", "pushgate demo"},
		{"/index.html", 200, "text/html; charset=utf-8", "pushgate demo"},
		{"/app.js", 200, "text/javascript; charset=utf-8", `console.log("app");`},
		{"/app.js.map", 200, "application/json; charset=utf-8", `{"version":3}`},
		{"/style.css", 200, "text/css; charset=utf-8", "body{}"},
		{"/sockjs.min.js", 200, "text/javascript; charset=utf-8", "/* sockjs */"},
		{"/README.placeholder", 404, "", ""},
		{"/nope.js", 404, "", ""},
		{"/../web.go", 404, "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.path, func(t *testing.T) {
			res := get(t, h, http.MethodGet, tc.path, nil)
			if res.StatusCode != tc.wantStatus {
				t.Fatalf("GET %s: status %d, want %d", tc.path, res.StatusCode, tc.wantStatus)
			}
			if tc.wantStatus != 200 {
				return
			}
			if got := res.Header.Get("Content-Type"); got != tc.wantType {
				t.Errorf("GET %s: Content-Type %q, want %q", tc.path, got, tc.wantType)
			}
			if got := res.Header.Get("Cache-Control"); got != "no-cache" {
				t.Errorf("GET %s: Cache-Control %q, want no-cache", tc.path, got)
			}
			if res.Header.Get("ETag") == "" {
				t.Errorf("GET %s: no ETag", tc.path)
			}
			if got := body(t, res); !strings.Contains(got, tc.wantBody) {
				t.Errorf("GET %s: body %q, want it to contain %q", tc.path, got, tc.wantBody)
			}
		})
	}
}

func TestHandlerConditionalAndMethods(t *testing.T) {
	t.Parallel()
	h := newHandler(builtFS)

	first := get(t, h, http.MethodGet, "/app.js", nil)
	etag := first.Header.Get("ETag")
	again := get(t, h, http.MethodGet, "/app.js", http.Header{"If-None-Match": {etag}})
	if again.StatusCode != http.StatusNotModified {
		t.Errorf("GET with If-None-Match %s: status %d, want 304", etag, again.StatusCode)
	}

	head := get(t, h, http.MethodHead, "/", nil)
	if head.StatusCode != 200 || body(t, head) != "" {
		t.Errorf("HEAD /: status %d with a body, want 200 and none", head.StatusCode)
	}
	if head.Header.Get("Content-Security-Policy") == "" {
		t.Error("HEAD /: no Content-Security-Policy on the page")
	}

	post := get(t, h, http.MethodPost, "/", nil)
	if post.StatusCode != http.StatusMethodNotAllowed || post.Header.Get("Allow") != "GET, HEAD" {
		t.Errorf("POST /: status %d Allow %q, want 405 and GET, HEAD", post.StatusCode, post.Header.Get("Allow"))
	}
}

func TestHandlerPlaceholder(t *testing.T) {
	t.Parallel()
	// A fresh clone: only the committed placeholder, or a stale index.html
	// without the bundle it loads.
	for name, fsys := range map[string]fstest.MapFS{
		"fresh clone": {"README.placeholder": {Data: []byte("placeholder\n")}},
		"no bundle":   {"README.placeholder": {}, "index.html": {Data: []byte("<script src=app.js>")}},
	} {
		t.Run(name, func(t *testing.T) {
			h := newHandler(fsys)
			res := get(t, h, http.MethodGet, "/", nil)
			if res.StatusCode != 200 {
				t.Fatalf("GET /: status %d, want 200", res.StatusCode)
			}
			if got := res.Header.Get("Content-Type"); got != "text/html; charset=utf-8" {
				t.Errorf("GET /: Content-Type %q, want text/html", got)
			}
			if b := body(t, res); !strings.Contains(b, "make web") {
				t.Errorf("GET /: page does not say to run make web:\n%s", b)
			}
			for _, p := range []string{"/app.js", "/README.placeholder"} {
				if res := get(t, h, http.MethodGet, p, nil); res.StatusCode != 404 {
					t.Errorf("GET %s: status %d, want 404", p, res.StatusCode)
				}
			}
		})
	}
}

// TestHandlerEmbedded checks the real embedded files, built or not: the page
// is served either way, and Built says which page it is.
func TestHandlerEmbedded(t *testing.T) {
	t.Parallel()
	res := get(t, Handler(), http.MethodGet, "/", nil)
	if res.StatusCode != 200 {
		t.Fatalf("GET /: status %d, want 200", res.StatusCode)
	}
	b := body(t, res)
	placeholder := strings.Contains(b, "make web")
	if Built() == placeholder {
		t.Errorf("Built() = %v, but the page at / is the placeholder: %v", Built(), placeholder)
	}
	if Built() {
		for _, p := range []string{"/app.js", "/style.css", "/sockjs.min.js"} {
			if res := get(t, Handler(), http.MethodGet, p, nil); res.StatusCode != 200 {
				t.Errorf("GET %s: status %d, want 200 in a built binary", p, res.StatusCode)
			}
		}
	}
}
