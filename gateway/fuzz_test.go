package gateway

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

// FuzzParseConfig feeds arbitrary YAML to ParseConfig and New: they may refuse it, never panic.
// The seed corpus is in testdata/fuzz/FuzzParseConfig.
func FuzzParseConfig(f *testing.F) {
	for _, s := range []string{designExample, seedRoutes, seedApplicationYML} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := ParseConfig("fuzz.yaml", data)
		if err != nil {
			if cfg != nil {
				t.Fatal("config returned with an error")
			}
			return
		}
		handlers := map[string]http.Handler{}
		for _, r := range cfg.Routes {
			if tg, err := parseTarget(r.URI); err == nil && tg.kind == targetInternal {
				handlers[tg.name] = http.NotFoundHandler()
			}
		}
		if _, err := New(cfg, Options{Handlers: handlers}); err != nil {
			return
		}
	})
}

// FuzzMatch matches arbitrary paths against arbitrary Path patterns, and checks that a path the
// gateway accepts cannot be turned into an escaping one by the prefix-stripping filters.
func FuzzMatch(f *testing.F) {
	f.Add("/web-socket/**", "/web-socket/ws/123/abc/xhr_send")
	f.Add("/api/{*rest}", "/api/v1/users/alice%2Fbob/messages")
	f.Add("/m/**/x/**/{id:\\d+}", "/m/a/b/x/c/42")
	f.Add("/s/*.js", "/s/%2e%2e")
	f.Fuzz(func(t *testing.T, pattern, path string) {
		pred, err := compilePredicate(parseShorthand("Path="+pattern, 1))
		if err != nil {
			return
		}
		u, err := url.ParseRequestURI(path)
		if err != nil || u.Path == "" || len(path) > 4096 {
			return
		}
		r := httptest.NewRequest("GET", "/", nil)
		r.URL = u
		m, err := newMatchState(r)
		if err != nil {
			return
		}
		pred.match(r, m)
		_, _, _ = sockjsSession(u.EscapedPath())

		esc := u.EscapedPath()
		if !strings.HasPrefix(esc, "/") || unsafePath(esc) {
			return
		}
		rw, err := newRewritePath(parseShorthand("RewritePath=/[^/]*/(?<path>.*), /${path}", 1))
		if err != nil {
			t.Fatal(err)
		}
		for _, pf := range []pathFilter{stripPrefix(1), stripPrefix(3), rw} {
			if out := pf.rewrite(esc); unsafePath(out) {
				t.Errorf("safe %q became unsafe %q", esc, out)
			}
		}
	})
}
