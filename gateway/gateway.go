package gateway

import (
	"context"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Options carries what is not in the YAML file.
type Options struct {
	// Logger receives structured logs; nil means slog.Default().
	Logger *slog.Logger
	// Registerer receives the gateway's metrics; nil means a private registry. /metrics serves
	// Gatherer, or the Registerer when it is also a Gatherer (as *prometheus.Registry is), or the
	// default gatherer when Registerer is prometheus.DefaultRegisterer.
	Registerer prometheus.Registerer
	// Gatherer is what /metrics serves when Registerer is not itself a Gatherer.
	Gatherer prometheus.Gatherer
	// Handlers serves routes whose uri is internal://NAME in-process (the binary registers
	// "demo", the embedded demo page).
	Handlers map[string]http.Handler
	// Discovery adds lb:// services (from --discovery FILE). On a name that the YAML also
	// declares, this entry wins, as command-line flags override a configuration file; the
	// override is logged.
	Discovery map[string]Discovery
	// Resolver looks up DNS and SRV discovery names; nil means net.DefaultResolver.
	Resolver Resolver
}

// Gateway is the L7 gateway: it matches routes, balances lb:// services over their healthy
// instances, proxies HTTP and WebSocket upgrades, and serves /healthz, /readyz and /metrics
// itself, before route matching.
type Gateway struct {
	cfg      *Config
	log      *slog.Logger
	met      *metrics
	gatherer prometheus.Gatherer
	router   router
	services []*service // sorted by name
	resolver Resolver

	transport *http.Transport
	health    *http.Client
	rp        *httputil.ReverseProxy
	tracker   *tracker
	metricsH  http.Handler
	running   atomic.Bool
}

// New checks cfg against opts (every lb:// service must be declared in the YAML's discovery or
// in Options.Discovery, every internal:// handler in Options.Handlers) and builds the gateway.
// It starts nothing: Run does.
func New(cfg *Config, opts Options) (*Gateway, error) {
	if cfg == nil {
		return nil, errors.New("gateway: nil config")
	}
	g := &Gateway{cfg: cfg, log: opts.Logger, tracker: newTracker(), resolver: opts.Resolver}
	if g.log == nil {
		g.log = slog.Default()
	}
	if g.resolver == nil {
		g.resolver = net.DefaultResolver
	}
	if err := cfg.fillDefaults(); err != nil {
		return nil, err
	}
	reg, gat := opts.Registerer, opts.Gatherer
	if reg == nil {
		r := prometheus.NewRegistry()
		reg, gat = r, r
	}
	if gat == nil {
		if rg, ok := reg.(prometheus.Gatherer); ok {
			gat = rg
		} else {
			gat = prometheus.DefaultGatherer
		}
	}
	met, err := newMetrics(reg)
	if err != nil {
		return nil, fmt.Errorf("gateway: metrics: %w", err)
	}
	g.met, g.gatherer = met, gat
	g.metricsH = promhttp.HandlerFor(gat, promhttp.HandlerOpts{})

	disc := make(map[string]Discovery, len(cfg.Discovery)+len(opts.Discovery))
	for k, v := range cfg.Discovery {
		disc[k] = v
	}
	for k, v := range opts.Discovery {
		if _, ok := disc[k]; ok {
			g.log.Info("gateway: discovery from options overrides the configuration file", "service", k)
		}
		disc[k] = v
	}
	for _, ig := range cfg.Ignored {
		g.log.Info("gateway: ignored configuration key (not used by pushgate)", "key", ig)
	}

	var errs []error
	var routes []*route
	svcs := map[string]*service{}
	for i := range cfg.Routes {
		r := &cfg.Routes[i]
		rt, err := compileRoute(cfg.Name, r, i)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		line := rt.uriLn
		if line == 0 {
			line = rt.line
		}
		switch rt.target.kind {
		case targetLB:
			name := rt.target.name
			svc, ok := svcs[name]
			if !ok {
				d, declared := disc[name]
				if !declared {
					errs = append(errs, &ConfigError{File: cfg.Name, Line: line, Err: fmt.Errorf("route %q: lb service %q is not declared in discovery", rt.id, name)})
					continue
				}
				h := cfg.Health.withDefaults(Health{})
				if d.Health != nil {
					h = d.Health.withDefaults(h)
				}
				svc = newService(name, d, h, g.log, met)
				if !d.dynamic() {
					urls, err := d.staticURLs()
					if err != nil {
						errs = append(errs, &ConfigError{File: cfg.Name, Line: d.Line, Err: fmt.Errorf("service %q: %w", name, err)})
						continue
					}
					if len(urls) == 0 {
						errs = append(errs, &ConfigError{File: cfg.Name, Line: d.Line, Err: fmt.Errorf("service %q has no instances", name)})
						continue
					}
					svc.setInstances(urls, true)
				}
				svcs[name] = svc
			}
			rt.svc = svc
		case targetInternal:
			h, ok := opts.Handlers[rt.target.name]
			if !ok || h == nil {
				errs = append(errs, &ConfigError{File: cfg.Name, Line: line, Err: fmt.Errorf("route %q: no internal handler %q", rt.id, rt.target.name)})
				continue
			}
			rt.handler = h
		}
		routes = append(routes, rt)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	for name := range disc {
		if _, used := svcs[name]; !used {
			g.log.Info("gateway: discovery entry not used by any route", "service", name)
		}
	}
	for _, s := range svcs {
		g.services = append(g.services, s)
	}
	sort.Slice(g.services, func(i, j int) bool { return g.services[i].name < g.services[j].name })
	g.router = newRouter(routes)
	g.transport = newTransport(cfg.Server.DialTimeout, cfg.Server.ResponseHeaderTimeout)
	g.health = &http.Client{
		Transport: newTransport(cfg.Server.DialTimeout, 0), // checks carry their own timeout
		// A redirect is an answer; following it could probe another host.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	g.rp = g.newReverseProxy()
	return g, nil
}

// Addr returns the configured listen address "host:port" from server.address and server.port
// (all interfaces when address is empty; port 7000 by default).
func (g *Gateway) Addr() string {
	return net.JoinHostPort(g.cfg.Server.Address, strconv.Itoa(g.cfg.Server.Port))
}

// Run serves on ln until ctx is done, running discovery re-resolution and active health checks
// meanwhile, then shuts down gracefully: it stops accepting, closes upgraded (WebSocket)
// connections and cancels streaming requests at once, lets other in-flight requests finish
// within Server.ShutdownTimeout, and returns when every goroutine it started has ended. Run may
// be called once; it returns nil after a shutdown asked for by ctx.
func (g *Gateway) Run(ctx context.Context, ln net.Listener) error {
	if ln == nil {
		return errors.New("gateway: nil listener")
	}
	if !g.running.CompareAndSwap(false, true) {
		return errors.New("gateway: Run called twice")
	}
	s := g.cfg.Server
	srv := &http.Server{
		Handler: g,
		// No ReadTimeout or WriteTimeout: they would cut idle WebSockets and long polls. Slow
		// header senders are bounded by ReadHeaderTimeout, stalled bodies by BodyReadTimeout.
		ReadHeaderTimeout: s.ReadHeaderTimeout,
		IdleTimeout:       s.IdleTimeout,
		MaxHeaderBytes:    s.MaxHeaderBytes,
		ErrorLog:          slogLogger(g.log),
	}
	bg, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for _, svc := range g.services {
		if svc.disc.dynamic() {
			wg.Go(func() { svc.runDiscovery(bg, g.resolver) })
		}
		wg.Go(func() { svc.runHealth(bg, g.health) })
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	g.log.Info("gateway: serving", "addr", ln.Addr().String(), "routes", len(g.router), "services", len(g.services))

	var err error
	served := false
	select {
	case <-ctx.Done():
	case err = <-errc:
		served = true
	}
	g.tracker.closeAll()
	sctx, cancel := context.WithTimeout(context.Background(), s.ShutdownTimeout)
	if serr := srv.Shutdown(sctx); serr != nil {
		g.log.Warn("gateway: graceful shutdown timed out, closing connections", "err", serr)
		_ = srv.Close()
	}
	if werr := g.tracker.waitHijacked(sctx); werr != nil {
		g.log.Warn("gateway: upgraded connections still closing at shutdown timeout", "err", werr)
	}
	cancel()
	if !served {
		err = <-errc
	}
	stop()
	wg.Wait()
	g.transport.CloseIdleConnections()
	if t, ok := g.health.Transport.(*http.Transport); ok {
		t.CloseIdleConnections()
	}
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	if err != nil {
		return fmt.Errorf("gateway: serve: %w", err)
	}
	g.log.Info("gateway: stopped")
	return nil
}

// ServeHTTP serves /healthz, /readyz and /metrics, then the first matching route. It works
// without Run too (then only passive health checks and static discovery apply). Paths with
// "." or ".." segments (also percent-encoded) are refused with 400, before and after the
// route's rewrite; a request without a matching route gets 404; a body over
// Server.MaxBodyBytes gets 413.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/healthz":
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
		return
	case "/readyz":
		g.serveReady(w)
		return
	case "/metrics":
		g.metricsH.ServeHTTP(w, r)
		return
	}
	esc := r.URL.EscapedPath()
	if !strings.HasPrefix(esc, "/") || unsafePath(esc) {
		http.Error(w, "bad path", http.StatusBadRequest)
		return
	}
	rt, m, err := g.router.match(r)
	if err != nil {
		http.Error(w, "bad path", http.StatusBadRequest)
		return
	}
	if rt == nil {
		http.NotFound(w, r)
		return
	}
	limit := g.cfg.Server.MaxBodyBytes
	if r.ContentLength > limit {
		w.Header().Set("Connection", "close")
		http.Error(w, http.StatusText(http.StatusRequestEntityTooLarge), http.StatusRequestEntityTooLarge)
		return
	}
	var body *limitedBody
	if r.Body != nil && r.Body != http.NoBody {
		body = newLimitedBody(w, r.Body, limit, g.cfg.Server.BodyReadTimeout)
		r.Body = body
	}
	up := rt.upstreamPath(esc)
	if unsafePath(up) {
		http.Error(w, "bad path", http.StatusBadRequest)
		return
	}
	if _, err := url.PathUnescape(up); err != nil {
		http.Error(w, "bad path", http.StatusBadRequest)
		return
	}
	if rt.target.kind == targetInternal {
		g.serveInternal(w, r, rt, m, up)
		return
	}
	g.serveProxy(w, r, rt, m, up, body)
}

// serveReady answers 200 when every lb:// service has at least one instance in rotation, and
// 503 naming the services that have none.
func (g *Gateway) serveReady(w http.ResponseWriter) {
	var down []string
	for _, s := range g.services {
		if s.healthyCount() == 0 {
			down = append(down, s.name)
		}
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if len(down) > 0 {
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = fmt.Fprintf(w, "no healthy instance: %s\n", strings.Join(down, ", "))
		return
	}
	_, _ = w.Write([]byte("ok\n"))
}

// serveInternal runs an internal:// handler with the filtered path and headers.
func (g *Gateway) serveInternal(w http.ResponseWriter, r *http.Request, rt *route, m *matchState, up string) {
	r2 := r.WithContext(r.Context())
	u := *r.URL
	u.Path, _ = url.PathUnescape(up)
	u.RawPath = up
	r2.URL = &u
	r2.RequestURI = u.RequestURI()
	if len(rt.filt.headers) > 0 {
		r2.Header = r.Header.Clone()
		for _, f := range rt.filt.headers {
			f.edit(r2.Header, m.vars)
		}
	}
	sw := &statusWriter{ResponseWriter: w}
	var out http.ResponseWriter = sw
	var gz *gzipWriter
	if !g.cfg.Server.DisableCompression && acceptsGzip(r) {
		gz = &gzipWriter{ResponseWriter: sw, head: r.Method == http.MethodHead}
		out = gz
	}
	defer func() {
		if gz != nil {
			gz.finish()
		}
		code := sw.code
		if code == 0 {
			code = http.StatusOK
		}
		g.met.requests.WithLabelValues(rt.id, "internal", strconv.Itoa(code)).Inc()
	}()
	rt.handler.ServeHTTP(out, r2)
}

// statusWriter remembers the status code an internal handler answered.
type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.code == 0 && code >= 200 {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the server's writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// slogLogger adapts the net/http and ReverseProxy error logs (TLS handshake noise, client
// resets) to slog at debug level.
func slogLogger(l *slog.Logger) *log.Logger {
	return slog.NewLogLogger(l.Handler(), slog.LevelDebug)
}
