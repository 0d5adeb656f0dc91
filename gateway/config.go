package gateway

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Defaults applied to zero configuration fields.
const (
	// DefaultPort is the gateway's port when server.port is not set, as in the seed stack.
	DefaultPort = 7000
	// DefaultMaxBodyBytes bounds a request body; larger bodies get 413.
	DefaultMaxBodyBytes = 1 << 20
	// DefaultMaxHeaderBytes bounds the request line and headers; net/http answers 431 beyond it
	// (it allows 4 KiB of slack on top).
	DefaultMaxHeaderBytes = 32 << 10
	// DefaultReadHeaderTimeout bounds how long a client may take to send its headers (slowloris).
	DefaultReadHeaderTimeout = 10 * time.Second
	// DefaultIdleTimeout closes keep-alive connections idle between requests. It never applies to
	// upgraded (WebSocket) connections, which heart-beat at the STOMP level.
	DefaultIdleTimeout = 120 * time.Second
	// DefaultShutdownTimeout bounds how long Run waits for in-flight HTTP requests on shutdown.
	DefaultShutdownTimeout = 10 * time.Second
	// DefaultBodyReadTimeout bounds the pause between two reads of a request body.
	DefaultBodyReadTimeout = 30 * time.Second
	// DefaultDialTimeout bounds connecting to an upstream instance.
	DefaultDialTimeout = 5 * time.Second
	// DefaultResponseHeaderTimeout bounds the wait for an upstream's response headers: above
	// the 25 s a SockJS long poll may hold its response, far below "until the client gives up".
	DefaultResponseHeaderTimeout = 60 * time.Second
	// DefaultHealthPath is the path probed by active health checks.
	DefaultHealthPath = "/readyz"
	// DefaultHealthInterval is the time between active health checks.
	DefaultHealthInterval = 5 * time.Second
	// DefaultHealthTimeout bounds one active health check.
	DefaultHealthTimeout = 2 * time.Second
	// DefaultHealthyThreshold is the number of consecutive passed checks that bring an instance back.
	DefaultHealthyThreshold = 1
	// DefaultUnhealthyThreshold is the number of consecutive failed checks that take an instance out.
	DefaultUnhealthyThreshold = 2
	// DefaultDNSInterval is how often a DNS-discovered service is re-resolved.
	DefaultDNSInterval = 10 * time.Second
)

// Config is a parsed gateway configuration. Build it with ParseConfig, LoadConfig or DevConfig:
// they check every route, predicate and filter, so New only has to check what depends on Options
// (lb:// services and internal:// handlers).
type Config struct {
	// Name is the file name used in error messages.
	Name string
	// Server holds the listen address and the server's limits.
	Server Server
	// Routes in declaration order; New sorts them by Order, keeping declaration order for equal Order.
	Routes []Route
	// Discovery maps an lb:// service name to how its instances are found.
	Discovery map[string]Discovery
	// Health is the default active health check of every lb:// service.
	Health Health
	// Spring is true when the file was a Spring application.yml (it has a top-level spring key).
	Spring bool
	// Ignored lists, as "file:line: key", the keys of a Spring file that pushgate does not use.
	// New logs them once.
	Ignored []string
}

// Server configures the gateway's own HTTP server.
type Server struct {
	// Address is the interface to listen on; empty means all interfaces.
	Address string
	// Port is the port to listen on (default 7000).
	Port int
	// MaxBodyBytes bounds a request body (default 1 MiB); larger bodies get 413.
	MaxBodyBytes int64
	// MaxHeaderBytes bounds the request headers (default 32 KiB); larger headers get 431.
	MaxHeaderBytes int
	// ReadHeaderTimeout bounds the time to read request headers (default 10s).
	ReadHeaderTimeout time.Duration
	// IdleTimeout closes idle keep-alive connections (default 120s); upgraded connections are exempt.
	IdleTimeout time.Duration
	// ShutdownTimeout bounds the graceful shutdown of in-flight HTTP requests (default 10s).
	ShutdownTimeout time.Duration
	// DialTimeout bounds connecting to an upstream (default 5s).
	DialTimeout time.Duration
	// ResponseHeaderTimeout bounds the wait for an upstream's response headers once the
	// request is sent (default 60s); beyond it the client gets 504. It must exceed the longest
	// a SockJS long poll holds its response (the edges' --sockjs-heartbeat, 25s).
	ResponseHeaderTimeout time.Duration
	// BodyReadTimeout bounds the pause between two reads of a request body (default 30s); a
	// stalled body gets 408. It never applies to upgraded connections.
	BodyReadTimeout time.Duration
	// DisableCompression turns off gzip of static text responses (YAML: compression: false).
	DisableCompression bool
	// TrustedProxies are the peers (CIDRs or addresses) whose X-Forwarded-For, -Host and -Proto
	// are kept and extended, such as a TLS-terminating load balancer in front of the gateway.
	// From any other peer they are replaced. Default: none.
	TrustedProxies []netip.Prefix
	// UpstreamHost sends the instance's host:port as the Host header, Spring's default. By
	// default the client's Host is kept (X-Forwarded-Host carries it either way), since edges
	// compare a browser's Origin with Host. A route's PreserveHostHeader filter always keeps it.
	UpstreamHost bool
}

// Route is one routes: entry, in Spring Cloud Gateway's shorthand.
type Route struct {
	// ID names the route in logs and metrics; a missing id becomes "route-N".
	ID string
	// URI is http://, https://, ws://, wss://, lb://NAME, lb:ws://NAME or internal://NAME.
	URI string
	// Predicates must all match for the route to apply.
	Predicates []Spec
	// Filters apply in order to the forwarded request.
	Filters []Spec
	// Order sorts routes, lower first; equal orders keep declaration order.
	Order int
	// Line is the line of the route in its file (0 when not parsed from YAML).
	Line int
	// URILine is the line of the uri key (0 when not parsed from YAML).
	URILine int
}

// Spec is one predicate or filter: "Name=arg1, arg2" in shorthand, or {name: Name, args: {...}}.
type Spec struct {
	// Name is the predicate or filter name, such as Path or RewritePath.
	Name string
	// Args are the comma-separated arguments, trimmed.
	Args []string
	// Line is where the spec was written (0 when not parsed from YAML).
	Line int

	// raw is the text after "=" of a shorthand spec, kept because a regex or header value may
	// contain commas that a plain split would break.
	raw       string
	shorthand bool
}

// String returns the spec in shorthand form.
func (s Spec) String() string {
	if len(s.Args) == 0 {
		return s.Name
	}
	return s.Name + "=" + strings.Join(s.Args, ", ")
}

// Discovery says how the instances of one lb:// service are found: exactly one of Static, DNS
// or SRV is set.
type Discovery struct {
	// Static lists instance base URLs (http://host:port).
	Static []string
	// DNS is a name whose A/AAAA records are the instances (a Kubernetes headless service).
	DNS string
	// SRV is a name such as _http._tcp.edge.ns.svc whose SRV records are the instances.
	SRV string
	// Port is the instances' port for DNS discovery.
	Port int
	// Scheme is http (default) or https for DNS and SRV discovery.
	Scheme string
	// Interval is how often DNS and SRV names are re-resolved (default 10s).
	Interval time.Duration
	// Health overrides the top-level health check for this service; nil means the top-level one.
	Health *Health
	// Line is where the service was declared (0 when not from YAML).
	Line int
}

// Health configures active health checks. An instance also leaves rotation at once when a dial
// to it fails (passive check); it comes back after HealthyThreshold passed active checks, or, when
// active checks are disabled, after one Interval.
type Health struct {
	// Disabled turns active checks off (YAML: enabled: false).
	Disabled bool
	// Path is the probed path (default /readyz); a 2xx answer passes.
	Path string
	// Interval is the time between checks (default 5s).
	Interval time.Duration
	// Timeout bounds one check (default 2s).
	Timeout time.Duration
	// HealthyThreshold is the number of consecutive passes that bring an instance back (default 1).
	HealthyThreshold int
	// UnhealthyThreshold is the number of consecutive failures that take it out (default 2).
	UnhealthyThreshold int

	set healthSet
}

// healthSet records which fields a per-service health block set explicitly, so that it can
// inherit the others from the top-level block.
type healthSet struct {
	enabled, path, interval, timeout, healthy, unhealthy bool
}

// ConfigError is a configuration error at a place in a file.
type ConfigError struct {
	// File is the configuration's name.
	File string
	// Line is the 1-based line, or 0 when unknown.
	Line int
	// Err says what is wrong.
	Err error
}

// Error returns "file:line: reason".
func (e *ConfigError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %v", e.File, e.Line, e.Err)
	}
	return fmt.Sprintf("%s: %v", e.File, e.Err)
}

// Unwrap returns the reason.
func (e *ConfigError) Unwrap() error { return e.Err }

// LoadConfig reads a gateway YAML file: pushgate's own format, or a Spring application.yml.
func LoadConfig(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("gateway: read config: %w", err)
	}
	return ParseConfig(path, data)
}

// ParseConfig parses YAML bytes; name is used in error messages ("gateway.yaml:12: ...").
// A document with a top-level spring key is read as a Spring application.yml: its
// spring.cloud.gateway.routes, server.port and server.address are used, pushgate's own keys
// (routes, discovery, health, server limits) may be added to it, and every other key is listed in
// Config.Ignored. In pushgate's own format an unknown key is an error. Every error found is
// returned, joined, each as a *ConfigError. Whether lb:// services are declared and internal://
// handlers exist is checked by New, since --discovery and the binary supply them.
func ParseConfig(name string, data []byte) (*Config, error) {
	p := &parser{name: name}
	cfg := &Config{Name: name, Discovery: map[string]Discovery{}}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, p.yamlError(err)
	}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		return nil, &ConfigError{File: name, Err: errors.New("empty configuration")}
	}
	root := deref(doc.Content[0])
	if root.Kind != yaml.MappingNode {
		return nil, &ConfigError{File: name, Line: root.Line, Err: errors.New("configuration must be a mapping")}
	}
	for i := 0; i+1 < len(root.Content); i += 2 {
		if k := root.Content[i].Value; k == "spring" || strings.HasPrefix(k, "spring.") {
			cfg.Spring = true
		}
	}
	var routesNode *yaml.Node
	targets := map[string]func(k, v *yaml.Node){
		"routes":                      func(k, v *yaml.Node) { routesNode = p.once(routesNode, k, v) },
		"spring.cloud.gateway.routes": func(k, v *yaml.Node) { routesNode = p.once(routesNode, k, v) },
		"spring.cloud.gateway.server.webflux.routes": func(k, v *yaml.Node) { routesNode = p.once(routesNode, k, v) },
		"server.address":                 func(_, v *yaml.Node) { cfg.Server.Address = p.str(v) },
		"server.port":                    func(_, v *yaml.Node) { cfg.Server.Port = p.intRange(v, 0, 65535) },
		"server.max_body_bytes":          func(_, v *yaml.Node) { cfg.Server.MaxBodyBytes = int64(p.intRange(v, 1, 1<<40)) },
		"server.max_header_bytes":        func(_, v *yaml.Node) { cfg.Server.MaxHeaderBytes = p.intRange(v, 1024, 1<<24) },
		"server.read_header_timeout":     func(_, v *yaml.Node) { cfg.Server.ReadHeaderTimeout = p.duration(v) },
		"server.idle_timeout":            func(_, v *yaml.Node) { cfg.Server.IdleTimeout = p.duration(v) },
		"server.shutdown_timeout":        func(_, v *yaml.Node) { cfg.Server.ShutdownTimeout = p.duration(v) },
		"server.dial_timeout":            func(_, v *yaml.Node) { cfg.Server.DialTimeout = p.duration(v) },
		"server.response_header_timeout": func(_, v *yaml.Node) { cfg.Server.ResponseHeaderTimeout = p.duration(v) },
		"server.body_read_timeout":       func(_, v *yaml.Node) { cfg.Server.BodyReadTimeout = p.duration(v) },
		"server.compression":             func(k, v *yaml.Node) { p.compression(cfg, k, v) },
		"server.upstream_host":           func(_, v *yaml.Node) { cfg.Server.UpstreamHost = p.boolean(v) },
		"server.trusted_proxies":         func(_, v *yaml.Node) { cfg.Server.TrustedProxies = p.prefixes(v) },
		"discovery":                      func(_, v *yaml.Node) { p.discovery(cfg, v) },
		"health":                         func(_, v *yaml.Node) { cfg.Health = p.health(v) },
	}
	p.walk(root, "", targets, !cfg.Spring)
	if routesNode != nil {
		cfg.Routes = p.routes(routesNode, cfg.Spring)
	}
	if len(cfg.Routes) == 0 && len(p.errs) == 0 {
		p.errf(root.Line, "no routes")
	}
	cfg.Ignored = p.ignored
	if err := cfg.fillDefaults(); err != nil {
		p.errs = append(p.errs, err)
	}
	// Compile every route now so that bad predicates and filters are reported at parse time.
	for i := range cfg.Routes {
		if _, err := compileRoute(cfg.Name, &cfg.Routes[i], i); err != nil {
			p.errs = append(p.errs, err)
		}
	}
	if len(p.errs) > 0 {
		return nil, errors.Join(p.errs...)
	}
	return cfg, nil
}

// fillDefaults sets zero fields to their defaults and gives ids to routes without one.
func (c *Config) fillDefaults() error {
	s := &c.Server
	if s.Port == 0 {
		s.Port = DefaultPort
	}
	if s.MaxBodyBytes == 0 {
		s.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if s.MaxHeaderBytes == 0 {
		s.MaxHeaderBytes = DefaultMaxHeaderBytes
	}
	if s.ReadHeaderTimeout == 0 {
		s.ReadHeaderTimeout = DefaultReadHeaderTimeout
	}
	if s.IdleTimeout == 0 {
		s.IdleTimeout = DefaultIdleTimeout
	}
	if s.ShutdownTimeout == 0 {
		s.ShutdownTimeout = DefaultShutdownTimeout
	}
	if s.DialTimeout == 0 {
		s.DialTimeout = DefaultDialTimeout
	}
	if s.ResponseHeaderTimeout == 0 {
		s.ResponseHeaderTimeout = DefaultResponseHeaderTimeout
	}
	if s.BodyReadTimeout == 0 {
		s.BodyReadTimeout = DefaultBodyReadTimeout
	}
	c.Health = c.Health.withDefaults(Health{})
	seen := map[string]int{}
	var errs []error
	for i := range c.Routes {
		r := &c.Routes[i]
		if r.ID == "" {
			r.ID = "route-" + strconv.Itoa(i+1)
		}
		if prev, ok := seen[r.ID]; ok {
			errs = append(errs, &ConfigError{File: c.Name, Line: r.Line, Err: fmt.Errorf("route id %q already used by route %d", r.ID, prev+1)})
		}
		seen[r.ID] = i
	}
	return errors.Join(errs...)
}

// withDefaults fills the fields h did not set from parent, then from the package defaults.
func (h Health) withDefaults(parent Health) Health {
	if !h.set.enabled {
		h.Disabled = parent.Disabled
	}
	if h.Path == "" {
		h.Path = parent.Path
	}
	if h.Path == "" {
		h.Path = DefaultHealthPath
	}
	if h.Interval == 0 {
		h.Interval = parent.Interval
	}
	if h.Interval == 0 {
		h.Interval = DefaultHealthInterval
	}
	if h.Timeout == 0 {
		h.Timeout = parent.Timeout
	}
	if h.Timeout == 0 {
		h.Timeout = DefaultHealthTimeout
	}
	if h.HealthyThreshold == 0 {
		h.HealthyThreshold = parent.HealthyThreshold
	}
	if h.HealthyThreshold == 0 {
		h.HealthyThreshold = DefaultHealthyThreshold
	}
	if h.UnhealthyThreshold == 0 {
		h.UnhealthyThreshold = parent.UnhealthyThreshold
	}
	if h.UnhealthyThreshold == 0 {
		h.UnhealthyThreshold = DefaultUnhealthyThreshold
	}
	return h
}

// ParseDiscovery parses a discovery file (for --discovery FILE): either a mapping with a
// top-level discovery: key or the mapping of service name to {static | dns | srv} itself.
func ParseDiscovery(name string, data []byte) (map[string]Discovery, error) {
	p := &parser{name: name}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, p.yamlError(err)
	}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		return nil, &ConfigError{File: name, Err: errors.New("empty discovery file")}
	}
	root := deref(doc.Content[0])
	if root.Kind == yaml.MappingNode && len(root.Content) == 2 && root.Content[0].Value == "discovery" {
		root = deref(root.Content[1])
	}
	cfg := &Config{Discovery: map[string]Discovery{}}
	p.discovery(cfg, root)
	if len(p.errs) > 0 {
		return nil, errors.Join(p.errs...)
	}
	return cfg.Discovery, nil
}

// LoadDiscovery reads a discovery file; see ParseDiscovery.
func LoadDiscovery(path string) (map[string]Discovery, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("gateway: read discovery: %w", err)
	}
	return ParseDiscovery(path, data)
}
