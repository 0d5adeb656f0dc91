package gateway

import (
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// routeOf returns "routeID upstreamPath" for a request, or "404" / "400".
func routeOf(t *testing.T, g *Gateway, method, target string, headers ...string) string {
	t.Helper()
	r := httptest.NewRequest(method, target, nil)
	for i := 0; i+1 < len(headers); i += 2 {
		if headers[i] == "Host" {
			r.Host = headers[i+1]
			continue
		}
		r.Header.Add(headers[i], headers[i+1])
	}
	esc := r.URL.EscapedPath()
	if unsafePath(esc) {
		return "400"
	}
	rt, _, err := g.router.match(r)
	if err != nil {
		return "400"
	}
	if rt == nil {
		return "404"
	}
	up := rt.upstreamPath(esc)
	if unsafePath(up) {
		return "400"
	}
	return rt.id + " " + up
}

func mustGateway(t *testing.T, yaml string) *Gateway {
	t.Helper()
	cfg, err := ParseConfig("test.yaml", []byte(yaml))
	if err != nil {
		t.Fatalf("ParseConfig: %v", err)
	}
	g, err := New(cfg, Options{})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return g
}

// TestSeedRouting checks that the seed's block routes as Spring routes it: the first
// /web-socket/** route (with its RewritePath) wins for every /web-socket path, including
// /web-socket/info and upgrades, since routes of equal order match in declaration order.
func TestSeedRouting(t *testing.T) {
	t.Parallel()
	g := mustGateway(t, seedRoutes)
	cases := []struct{ method, path, want string }{
		{"GET", "/web-socket/ws/info?t=1", "web-socket /ws/info"},
		{"GET", "/web-socket/info/x", "web-socket /info/x"},
		{"POST", "/web-socket/ws/123/abcdef/xhr_send", "web-socket /ws/123/abcdef/xhr_send"},
		{"GET", "/web-socket/ws/123/abcdef/websocket", "web-socket /ws/123/abcdef/websocket"},
		{"GET", "/web-socket", "web-socket /web-socket"}, // the regex needs the slash; Spring leaves it too
		{"GET", "/web-socket/", "web-socket /"},
		{"GET", "/other", "404"},
	}
	for _, c := range cases {
		if got := routeOf(t, g, c.method, c.path); got != c.want {
			t.Errorf("%s %s: got %q, want %q", c.method, c.path, got, c.want)
		}
	}
}

func TestRouteMatching(t *testing.T) {
	t.Parallel()
	g := mustGateway(t, `routes:
  - id: late
    uri: lb://s
    order: 10
    predicates: [Path=/late/**]
  - id: early
    uri: lb://s
    order: -5
    predicates: [Path=/late/early]
  - id: vars
    uri: lb://s
    predicates: ["Path=/u/{user}/files/{name}.txt"]
    filters: ["SetRequestHeader=X-User, {user}"]
  - id: regexvar
    uri: lb://s
    predicates: ["Path=/n/{id:\\d{3}}"]
  - id: rest
    uri: lb://s
    predicates: ["Path=/r/{*rest}"]
  - id: middle
    uri: lb://s
    predicates: ["Path=/m/**/end"]
  - id: star
    uri: lb://s
    predicates: ["Path=/s/*.js, /s/a?c"]
  - id: method
    uri: lb://s
    predicates: [Path=/x, "Method=POST,PUT"]
  - id: header
    uri: lb://s
    predicates: [Path=/x, "Header=X-Id, \\d+"]
  - id: headerpresent
    uri: lb://s
    predicates: [Path=/x, Header=X-Present]
  - id: query
    uri: lb://s
    predicates: [Path=/x, "Query=color, gree."]
  - id: host
    uri: lb://s
    predicates: [Path=/x, "Host=**.example.org, {sub}.example.com"]
  - id: strip
    uri: lb://s
    predicates: [Path=/api/**]
    filters: [StripPrefix=1]
  - id: rewrite
    uri: lb://s
    predicates: [Path=/rw/**]
    filters: ["RewritePath=/rw/(?<a>[^/]*)/(.*), /$2/${a}"]
discovery:
  s: {static: ["http://127.0.0.1:1"]}
`)
	cases := []struct {
		name, method, path string
		headers            []string
		want               string
	}{
		{"order wins over declaration", "GET", "/late/early", nil, "early /late/early"},
		{"order, other path", "GET", "/late/x", nil, "late /late/x"},
		{"double star matches the prefix itself", "GET", "/late", nil, "late /late"},
		{"vars", "GET", "/u/al%20ice/files/a.txt", nil, "vars /u/al%20ice/files/a.txt"},
		{"var needs text", "GET", "/u//files/a.txt", nil, "404"},
		{"regex var", "GET", "/n/123", nil, "regexvar /n/123"},
		{"regex var mismatch", "GET", "/n/12", nil, "404"},
		{"capture rest", "GET", "/r/a/b/c", nil, "rest /r/a/b/c"},
		{"double star in the middle", "GET", "/m/a/b/end", nil, "middle /m/a/b/end"},
		{"double star in the middle, zero segments", "GET", "/m/end", nil, "middle /m/end"},
		{"star in segment", "GET", "/s/app.js", nil, "star /s/app.js"},
		{"star does not cross segments", "GET", "/s/a/b.js", nil, "404"},
		{"question mark", "GET", "/s/abc", nil, "star /s/abc"},
		{"trailing slash", "GET", "/late/early/", nil, "early /late/early/"},
		{"encoded slash stays in its segment", "GET", "/s/a%2Fb.js", nil, "star /s/a%2Fb.js"},
		{"method", "PUT", "/x", nil, "method /x"},
		{"header regex must match whole", "GET", "/x", []string{"X-Id", "12a"}, "404"},
		{"header regex", "GET", "/x", []string{"X-Id", "123"}, "header /x"},
		{"header present", "GET", "/x", []string{"X-Present", ""}, "headerpresent /x"},
		{"query", "GET", "/x?color=green", nil, "query /x"},
		{"query mismatch", "GET", "/x?color=greenish", nil, "404"},
		{"host double star", "GET", "/x", []string{"Host", "a.b.example.org:7000"}, "host /x"},
		{"host var", "GET", "/x", []string{"Host", "API.Example.com"}, "host /x"},
		{"host var one label", "GET", "/x", []string{"Host", "a.b.example.com"}, "404"},
		{"strip prefix keeps encoding and trailing slash", "GET", "/api/v1/users/alice%2Fbob/messages/", nil, "strip /v1/users/alice%2Fbob/messages/"},
		{"strip prefix of the prefix", "GET", "/api", nil, "strip /"},
		{"rewrite with named and numbered groups", "GET", "/rw/x/y/z", nil, "rewrite /y/z/x"},
		{"dot dot", "GET", "/api/../admin", nil, "400"},
		{"encoded dot dot", "GET", "/api/%2e%2e/admin", nil, "400"},
		{"mixed-case encoded dot dot", "GET", "/api/%2E./admin", nil, "400"},
		{"dot dot inside an encoded segment", "GET", "/api/a%2F..%2Fadmin", nil, "400"},
		{"single dot", "GET", "/api/./admin", nil, "400"},
		{"backslash", "GET", "/api/..%5Cadmin", nil, "400"},
		{"dots in a name are fine", "GET", "/api/a..b/c.d", nil, "strip /a..b/c.d"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := routeOf(t, g, c.method, c.path, c.headers...); got != c.want {
				t.Errorf("%s %s: got %q, want %q", c.method, c.path, got, c.want)
			}
		})
	}
	// The vars captured by Path feed header filters.
	r := httptest.NewRequest("GET", "/u/bob/files/a.txt", nil)
	rt, m, _ := g.router.match(r)
	if rt == nil || rt.id != "vars" {
		t.Fatalf("route = %v", rt)
	}
	if d := cmp.Diff(map[string]string{"user": "bob", "name": "a"}, m.vars); d != "" {
		t.Errorf("vars (-want +got):\n%s", d)
	}
}

func TestJavaReplacement(t *testing.T) {
	t.Parallel()
	cases := []struct{ in, want, err string }{
		{`/$\{path}`, `/${path}`, ""},
		{`/${path}`, `/${path}`, ""},
		{`/$1/$12x`, `/${1}/${12}x`, ""},
		{`/a\$b\\c`, `/a$$b\c`, ""},
		{`/$x`, "", "must name a group"},
		{`/${x`, "", "unclosed"},
		{`/a\`, "", "trailing backslash"},
	}
	for _, c := range cases {
		got, err := javaReplacement(c.in)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("javaReplacement(%q) error = %v, want %q", c.in, err, c.err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("javaReplacement(%q) = %q, %v; want %q", c.in, got, err, c.want)
		}
	}
}

func TestSockJSSession(t *testing.T) {
	t.Parallel()
	cases := []struct {
		path, session, transport string
		ok                       bool
	}{
		{"/ws/123/abc/xhr", "abc", "xhr", true},
		{"/123/abc/xhr_send", "abc", "xhr_send", true},
		{"/web-socket/ws/000/s1/websocket", "s1", "websocket", true},
		{"/ws/123/abc/eventsource/", "abc", "eventsource", true},
		{"/ws/info", "", "", false},
		{"/ws/websocket", "", "", false},
		{"/ws/123/abc/other", "", "", false},
		{"/ws//abc/xhr", "", "", false},
		{"/ws/1.2/abc/xhr", "", "", false},
		{"/abc/xhr", "", "", false},
	}
	for _, c := range cases {
		s, tr, ok := sockjsSession(c.path)
		if s != c.session || tr != c.transport || ok != c.ok {
			t.Errorf("sockjsSession(%q) = %q, %q, %v; want %q, %q, %v", c.path, s, tr, ok, c.session, c.transport, c.ok)
		}
	}
}
