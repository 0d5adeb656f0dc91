package gateway

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// designExample is the example of DESIGN.md "Gateway configuration", verbatim.
const designExample = `server: {port: 7000}
routes:
  - id: web-socket
    uri: lb:ws://web-socket
    predicates: [Path=/web-socket/**]
    filters: ["RewritePath=/web-socket/(?<path>.*), /${path}"]
  - id: api
    uri: lb://pushsvc
    predicates: [Path=/api/**]
    filters: [StripPrefix=1]
discovery:
  web-socket: {static: ["http://127.0.0.1:8080", "http://127.0.0.1:8081"]}
  pushsvc: {static: ["http://127.0.0.1:9091"]}
`

// seedRoutes is the seed's route block (SEED.md), unchanged, under pushgate's routes: key.
const seedRoutes = `routes:
      - id: web-socket
        uri: lb://web-socket
        predicates:
        - Path=/web-socket/**
        filters:
        - RewritePath=/web-socket/(?<path>.*), /$\{path}
          # SockJS route
      - id: websocket_sockjs_route
        uri: lb://web-socket
        predicates:
          - Path=/web-socket/info/**
        # Normwal Websocket route
      - id: websocket_route
        uri: lb:ws://web-socket
        predicates:
          - Path=/web-socket/**
discovery:
  web-socket: {static: ["http://127.0.0.1:8080", "http://127.0.0.1:8081"]}
`

// seedApplicationYML is the seed gateway's whole application.yml, plus the discovery the
// Eureka server gave it.
const seedApplicationYML = `spring.application.name: gateway

server:
  port: 7000
  compression:
    enabled: true
    mime-types: text/html,text/css,application/javascript,application/json

spring:
  cloud:
    gateway:
      routes:
      - id: web-socket
        uri: lb://web-socket
        predicates:
        - Path=/web-socket/**
        filters:
        - RewritePath=/web-socket/(?<path>.*), /$\{path}
          # SockJS route
      - id: websocket_sockjs_route
        uri: lb://web-socket
        predicates:
          - Path=/web-socket/info/**
        # Normwal Websocket route
      - id: websocket_route
        uri: lb:ws://web-socket
        predicates:
          - Path=/web-socket/**
discovery:
  web-socket: {static: ["http://127.0.0.1:8080", "http://127.0.0.1:8081"]}
`

func TestParseConfigGood(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		yaml        string
		wantPort    int
		wantRoutes  []string
		wantSpring  bool
		wantIgnored []string
	}{
		{name: "design example", yaml: designExample, wantPort: 7000, wantRoutes: []string{"web-socket", "api"}},
		{name: "seed route block", yaml: seedRoutes, wantPort: 7000, wantRoutes: []string{"web-socket", "websocket_sockjs_route", "websocket_route"}},
		{
			name: "spring application.yml", yaml: seedApplicationYML, wantPort: 7000, wantSpring: true,
			wantRoutes:  []string{"web-socket", "websocket_sockjs_route", "websocket_route"},
			wantIgnored: []string{"test.yaml:1: spring.application.name", "test.yaml:5: server.compression"},
		},
		{
			name: "full form, order, all predicates and filters",
			yaml: `server: {address: 127.0.0.1, port: 7100, max_body_bytes: 2048, read_header_timeout: 1s, compression: false}
health: {path: /ready, interval: 1s, timeout: 500ms, healthy_threshold: 2, unhealthy_threshold: 3}
routes:
  - id: full
    uri: http://127.0.0.1:9000
    order: -1
    predicates:
      - name: Path
        args: {patterns: "/x/{id}/**"}
      - Method=GET,POST
      - Header=X-Request-Id, \d{1,3}
      - Query=green
      - Host=**.example.org, {sub}.example.com
    filters:
      - SetRequestHeader=X-Id, {id}
      - AddRequestHeader=X-Tag, a, b
      - RemoveRequestHeader=Cookie
      - PreserveHostHeader
      - StripPrefix=2
  - uri: lb://svc
    predicates: [Path=/**]
discovery:
  svc: {dns: svc.default.svc.cluster.local, port: 8080, interval: 2s, health: {enabled: false}}
`,
			wantPort: 7100, wantRoutes: []string{"full", "route-2"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg, err := ParseConfig("test.yaml", []byte(tt.yaml))
			if err != nil {
				t.Fatalf("ParseConfig: %v", err)
			}
			if cfg.Server.Port != tt.wantPort {
				t.Errorf("port = %d, want %d", cfg.Server.Port, tt.wantPort)
			}
			var ids []string
			for _, r := range cfg.Routes {
				ids = append(ids, r.ID)
			}
			if d := cmp.Diff(tt.wantRoutes, ids); d != "" {
				t.Errorf("route ids (-want +got):\n%s", d)
			}
			if cfg.Spring != tt.wantSpring {
				t.Errorf("Spring = %v, want %v", cfg.Spring, tt.wantSpring)
			}
			if d := cmp.Diff(tt.wantIgnored, cfg.Ignored); d != "" {
				t.Errorf("ignored (-want +got):\n%s", d)
			}
			if _, err := New(cfg, Options{Handlers: nil}); err != nil {
				t.Errorf("New: %v", err)
			}
		})
	}
}

func TestParseConfigDetails(t *testing.T) {
	t.Parallel()
	cfg, err := ParseConfig("test.yaml", []byte(`server: {address: 127.0.0.1, port: 7100, idle_timeout: 3s}
health: {interval: 1s}
routes:
  - {id: a, uri: lb://s, predicates: [Path=/a]}
discovery:
  s: {static: [127.0.0.1:1, "ws://127.0.0.1:2"], health: {path: /h, unhealthy_threshold: 5}}
`))
	if err != nil {
		t.Fatal(err)
	}
	want := Server{Address: "127.0.0.1", Port: 7100, MaxBodyBytes: DefaultMaxBodyBytes, MaxHeaderBytes: DefaultMaxHeaderBytes,
		ReadHeaderTimeout: DefaultReadHeaderTimeout, IdleTimeout: 3 * time.Second, ShutdownTimeout: DefaultShutdownTimeout, DialTimeout: DefaultDialTimeout, ResponseHeaderTimeout: DefaultResponseHeaderTimeout, BodyReadTimeout: DefaultBodyReadTimeout}
	if d := cmp.Diff(want, cfg.Server); d != "" {
		t.Errorf("server (-want +got):\n%s", d)
	}
	g, err := New(cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := g.Addr(); got != "127.0.0.1:7100" {
		t.Errorf("Addr = %q", got)
	}
	h := g.services[0].health
	if h.Path != "/h" || h.Interval != time.Second || h.UnhealthyThreshold != 5 || h.Timeout != DefaultHealthTimeout || h.HealthyThreshold != 1 {
		t.Errorf("service health = %+v", h)
	}
	var keys []string
	for _, in := range g.services[0].instances() {
		keys = append(keys, in.key)
	}
	if d := cmp.Diff([]string{"http://127.0.0.1:1", "http://127.0.0.1:2"}, keys); d != "" {
		t.Errorf("instances (-want +got):\n%s", d)
	}
}

func TestParseConfigErrors(t *testing.T) {
	t.Parallel()
	const disc = "discovery:\n  s: {static: [\"http://127.0.0.1:1\"]}\n"
	tests := []struct {
		name string
		yaml string
		want string // "file:line: ..." substring
	}{
		{"unknown top-level key", "routes: [{id: a, uri: lb://s}]\nlisten: 1\n" + disc, "test.yaml:2: unknown key \"listen\""},
		{"unknown server key", "server:\n  port: 1\n  prot: 2\nroutes: [{id: a, uri: lb://s}]\n" + disc, "test.yaml:3: unknown key \"server.prot\""},
		{"unknown route key", "routes:\n  - id: a\n    uri: lb://s\n    metadata: {}\n" + disc, "test.yaml:4: unknown key \"metadata\" in route"},
		{"bad regex", "routes:\n  - id: a\n    uri: lb://s\n    filters:\n      - RewritePath=/a/(?<p>.*, /${p}\n" + disc, "test.yaml:5: route \"a\": bad regex"},
		{"bad header regex", "routes:\n  - id: a\n    uri: lb://s\n    predicates: [\"Header=X-A, [\"]\n" + disc, "test.yaml:4: route \"a\": bad regex"},
		{"lookbehind", "routes:\n  - id: a\n    uri: lb://s\n    predicates: [Path=/a]\n    filters: [\"RewritePath=(?<=a)b, c\"]\n" + disc, "test.yaml:5: route \"a\": bad regex"},
		{"unknown predicate", "routes:\n  - id: a\n    uri: lb://s\n    predicates:\n      - After=2017-01-20T17:42:47.789-07:00\n" + disc, "test.yaml:5: route \"a\": unknown predicate \"After\""},
		{"unknown filter", "routes:\n  - id: a\n    uri: lb://s\n    filters:\n      - PrefixPath=/x\n" + disc, "test.yaml:5: route \"a\": unknown filter \"PrefixPath\""},
		{"bad uri scheme", "routes:\n  - id: a\n    uri: ftp://x\n" + disc, "test.yaml:3: route \"a\": bad uri"},
		{"bad lb uri", "routes:\n  - id: a\n    uri: lb://\n" + disc, "test.yaml:3: route \"a\": bad uri"},
		{"missing uri", "routes:\n  - id: a\n    predicates: [Path=/a]\n" + disc, "test.yaml:2: route \"a\" has no uri"},
		{"bad path pattern", "routes:\n  - id: a\n    uri: lb://s\n    predicates: [\"Path=/a/{x\"]\n" + disc, "test.yaml:4: route \"a\": path pattern"},
		{"bad strip prefix", "routes:\n  - id: a\n    uri: lb://s\n    filters: [StripPrefix=x]\n" + disc, "test.yaml:4: route \"a\": filter StripPrefix"},
		{"bad replacement", "routes:\n  - id: a\n    uri: lb://s\n    filters: [\"RewritePath=/a, /$x\"]\n" + disc, "test.yaml:4: route \"a\": bad replacement"},
		{"duplicate id", "routes:\n  - {id: a, uri: lb://s}\n  - {id: a, uri: lb://s}\n" + disc, "test.yaml:3: route id \"a\" already used"},
		{"bad port", "server: {port: 70000}\nroutes: [{id: a, uri: lb://s}]\n" + disc, "test.yaml:1: 70000 is out of range"},
		{"bad trusted proxy", "server:\n  trusted_proxies: [10.0.0.0/8, nope]\nroutes: [{id: a, uri: lb://s}]\n" + disc, "test.yaml:2: want a CIDR or an IP address, got \"nope\""},
		{"bad duration", "server: {idle_timeout: soon}\nroutes: [{id: a, uri: lb://s}]\n" + disc, "test.yaml:1: want a duration"},
		{"bad instance url", "routes: [{id: a, uri: lb://s}]\ndiscovery:\n  s:\n    static:\n      - ftp://x\n", "test.yaml:5: service \"s\": bad instance url"},
		{"static and dns", "routes: [{id: a, uri: lb://s}]\ndiscovery:\n  s: {static: [\"http://a:1\"], dns: a}\n", "test.yaml:3: service \"s\": set exactly one"},
		{"dns without port", "routes: [{id: a, uri: lb://s}]\ndiscovery:\n  s: {dns: a}\n", "test.yaml:3: service \"s\": dns discovery needs a port"},
		{"unknown health key", "health: {intervall: 1s}\nroutes: [{id: a, uri: lb://s}]\n" + disc, "test.yaml:1: unknown key \"intervall\" in health"},
		{"duplicate key", "routes: [{id: a, uri: lb://s}]\nroutes: []\n" + disc, "test.yaml:2: duplicate key \"routes\""},
		{"yaml syntax", "routes: [\n", "test.yaml:1: did not find expected node content"},
		{"no routes", "server: {port: 1}\n", "test.yaml:1: no routes"},
		{"empty", "", "test.yaml: empty configuration"},
		{"not a mapping", "- a\n", "test.yaml:1: configuration must be a mapping"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := ParseConfig("test.yaml", []byte(tt.yaml))
			if err == nil {
				t.Fatalf("ParseConfig succeeded, want error %q", tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error = %q, want it to contain %q", err, tt.want)
			}
			var ce *ConfigError
			if !errors.As(err, &ce) {
				t.Errorf("error %T is not a *ConfigError", err)
			}
		})
	}
}

// TestNewErrors covers what only New can check: services and handlers that come from Options.
func TestNewErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		yaml string
		opts Options
		want string
	}{
		{"undeclared lb service", "routes:\n  - id: a\n    uri: lb://nope\n", Options{}, "test.yaml:3: route \"a\": lb service \"nope\" is not declared"},
		{"missing internal handler", "routes:\n  - id: demo\n    uri: internal://demo\n", Options{}, "test.yaml:3: route \"demo\": no internal handler \"demo\""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg, err := ParseConfig("test.yaml", []byte(tt.yaml))
			if err != nil {
				t.Fatalf("ParseConfig: %v", err)
			}
			_, err = New(cfg, tt.opts)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("New error = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

// TestSpringWithDiscoveryOption loads a Spring file without discovery: the services come from
// Options.Discovery (--discovery FILE), which also wins over the file on conflicts.
func TestSpringWithDiscoveryOption(t *testing.T) {
	t.Parallel()
	yml := strings.Split(seedApplicationYML, "discovery:")[0]
	cfg, err := ParseConfig("application.yml", []byte(yml))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := New(cfg, Options{}); err == nil {
		t.Fatal("New without discovery succeeded")
	}
	d, err := ParseDiscovery("disc.yaml", []byte("discovery:\n  web-socket: {static: [\"http://127.0.0.1:8080\"]}\n"))
	if err != nil {
		t.Fatal(err)
	}
	g, err := New(cfg, Options{Discovery: d})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(g.services[0].instances()); n != 1 {
		t.Errorf("instances = %d, want 1", n)
	}
}

func TestDevConfig(t *testing.T) {
	t.Parallel()
	cfg, err := DevConfig("", []string{"http://127.0.0.1:8080", "127.0.0.1:8081"}, "http://127.0.0.1:9091")
	if err != nil {
		t.Fatal(err)
	}
	g, err := New(cfg, Options{Handlers: map[string]http.Handler{"demo": http.NotFoundHandler()}})
	if err != nil {
		t.Fatal(err)
	}
	if got := g.Addr(); got != "127.0.0.1:7000" {
		t.Errorf("Addr = %q", got)
	}
	cases := map[string]string{
		"/web-socket/ws/info":                "web-socket /ws/info",
		"/web-socket/ws/1/abc/xhr":           "web-socket /ws/1/abc/xhr",
		"/api/v1/users/alice%2Fbob/messages": "api /v1/users/alice%2Fbob/messages",
		"/":                                  "demo /",
		"/app.js":                            "demo /app.js",
	}
	for path, want := range cases {
		if got := routeOf(t, g, "GET", path); got != want {
			t.Errorf("%s routes to %q, want %q", path, got, want)
		}
	}
	if _, err := DevConfig("nope", []string{"x"}, "y"); err == nil {
		t.Error("DevConfig with a bad address succeeded")
	}
	cfg, err = DevConfig(":7001", []string{"http://127.0.0.1:8080"}, "http://127.0.0.1:9091")
	if err != nil || cfg.Server.Address != "" || cfg.Server.Port != 7001 {
		t.Errorf("DevConfig(:7001) = %+v, %v", cfg, err)
	}
}

// TestExampleConfig keeps testdata/example.yaml, the annotated reference of every key, valid.
func TestExampleConfig(t *testing.T) {
	t.Parallel()
	cfg, err := LoadConfig("testdata/example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	want := Server{Port: 7000, MaxBodyBytes: 1 << 20, MaxHeaderBytes: 32 << 10, ReadHeaderTimeout: 10 * time.Second,
		BodyReadTimeout: 30 * time.Second, IdleTimeout: 120 * time.Second, ShutdownTimeout: 10 * time.Second, DialTimeout: 5 * time.Second, ResponseHeaderTimeout: 60 * time.Second}
	if d := cmp.Diff(want, cfg.Server); d != "" {
		t.Errorf("server (-want +got):\n%s", d)
	}
	if _, err := New(cfg, Options{}); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadConfig("testdata/missing.yaml"); err == nil {
		t.Error("LoadConfig of a missing file succeeded")
	}
}
