// Package testenv starts pushgate's components in-process on ephemeral
// loopback ports, wired to a real broker, for integration tests and
// benchmarks.
package testenv

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/pushgate/pushgate/edge"
	"github.com/pushgate/pushgate/gateway"
	"github.com/pushgate/pushgate/pushsvc"
	"github.com/pushgate/pushgate/relay"
)

// quiet logs only warnings: the components' info logs drown test output.
var quiet = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))

// Secret signs the test tokens.
var Secret = []byte("pushgate-test-secret")

// Options configure an Env.
type Options struct {
	// Broker is the broker URL (embedded or RabbitMQ).
	Broker string
	// Edges is the number of edges (default 2).
	Edges int
	// APIToken protects the push API when set.
	APIToken string
	// Edge adjusts each edge's configuration.
	Edge func(*edge.Config)
	// Settle is pushsvc's registry settle time (default 300ms).
	Settle time.Duration
	// RegistryInterval is the edges' snapshot interval (default 200ms).
	RegistryInterval time.Duration
	// ShutdownTimeout bounds an edge's drain (default 5s).
	ShutdownTimeout time.Duration
	// ReconnectMax caps the broker pools' reconnect backoff (default 500ms;
	// relay.DefaultReconnectMax for production behaviour).
	ReconnectMax time.Duration
	// Logger receives every component's logs (default: warnings to stderr).
	Logger *slog.Logger
}

// Env is a running set of edges and one pushsvc.
type Env struct {
	t       testing.TB
	Opts    Options
	Edges   []*Edge
	Pushsvc *Pushsvc
}

// Edge is one running edge.
type Edge struct {
	Server *edge.Server
	Pool   *relay.Pool
	// Metrics holds the edge's and its pool's metrics.
	Metrics *prometheus.Registry
	Addr    string // host:port

	cancel    context.CancelFunc
	done      chan error
	drainOnce sync.Once
	poolOnce  sync.Once
	err       error
}

// URL returns the edge's ws:// URL for path.
func (e *Edge) URL(path string) string { return "ws://" + e.Addr + path }

// Pushsvc is the running push service.
type Pushsvc struct {
	Router   *pushsvc.BrokerRouter
	Pool     *relay.Pool
	GRPCAddr string
	HTTPAddr string
	cancel   context.CancelFunc
	done     chan error
	once     sync.Once
}

// Start starts the environment; everything stops when the test ends.
func Start(t testing.TB, o Options) *Env {
	t.Helper()
	if o.Edges == 0 {
		o.Edges = 2
	}
	if o.Settle == 0 {
		o.Settle = 300 * time.Millisecond
	}
	if o.RegistryInterval == 0 {
		o.RegistryInterval = 200 * time.Millisecond
	}
	if o.ShutdownTimeout == 0 {
		o.ShutdownTimeout = 5 * time.Second
	}
	if o.ReconnectMax == 0 {
		o.ReconnectMax = 500 * time.Millisecond
	}
	if o.Logger == nil {
		o.Logger = quiet
	}
	env := &Env{t: t, Opts: o}
	for i := 0; i < o.Edges; i++ {
		env.Edges = append(env.Edges, env.StartEdge())
	}
	env.Pushsvc = env.StartPushsvc()
	env.WaitReady()
	return env
}

func (env *Env) pool(name string, reg prometheus.Registerer) *relay.Pool {
	brokers, err := relay.ParseBrokers(env.Opts.Broker)
	if err != nil {
		env.t.Fatal(err)
	}
	p, err := relay.New(relay.Config{Brokers: brokers, Name: name, ReconnectMax: env.Opts.ReconnectMax, Logger: env.Opts.Logger, Registerer: reg})
	if err != nil {
		env.t.Fatal(err)
	}
	return p
}

// StartEdge starts one more edge.
func (env *Env) StartEdge() *Edge {
	t := env.t
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	// Unique even when a port is reused within a run: an edge's durable
	// address queue outlives it for relay.QueueExpiry.
	id := fmt.Sprintf("test-edge-%s-%d", port, time.Now().UnixNano()%1e6)
	reg := prometheus.NewRegistry()
	pool := env.pool(id, reg)
	cfg := edge.Config{
		ID:                id,
		Auth:              edge.AuthConfig{HMACSecret: Secret},
		RegistryInterval:  env.Opts.RegistryInterval,
		FirstFrameTimeout: 5 * time.Second,
		Logger:            env.Opts.Logger,
		// A closed SockJS session answers polls for one disconnect delay
		// (the protocol wants it); short, so leak checks see them gone.
		SockJS: edge.SockJSConfig{DisconnectDelay: 200 * time.Millisecond},
	}
	if env.Opts.Edge != nil {
		env.Opts.Edge(&cfg)
	}
	cfg.Registerer = reg
	srv, err := edge.New(cfg, pool, reg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	e := &Edge{Server: srv, Pool: pool, Metrics: reg, Addr: ln.Addr().String(), cancel: cancel, done: make(chan error, 1)}
	go func() { e.done <- srv.Serve(ctx, ln, env.Opts.ShutdownTimeout) }()
	t.Cleanup(func() { e.Stop() })
	return e
}

// Drain is SIGTERM: it cancels Serve's context and waits for Serve to
// return (the edge drains within the shutdown timeout), leaving the broker
// pool open. It returns Serve's error; later calls return the first one.
func (e *Edge) Drain() error {
	e.drainOnce.Do(func() {
		e.cancel()
		e.err = <-e.done
	})
	return e.err
}

// Stop drains the edge and closes its broker pool (idempotent); it returns
// Drain's error.
func (e *Edge) Stop() error {
	err := e.Drain()
	e.poolOnce.Do(func() { e.Pool.Close() })
	return err
}

// Metric sums the samples of the edge's (or its pool's) gauge or counter
// name whose labels include the given name, value pairs.
func (e *Edge) Metric(name string, labels ...string) float64 {
	return Gather(e.Metrics, name, labels...)
}

// Gather sums the samples of g's gauge or counter name whose labels
// include the given name, value pairs; -1 when g fails.
func Gather(g prometheus.Gatherer, name string, labels ...string) float64 {
	mfs, err := g.Gather()
	if err != nil {
		return -1
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metrics:
		for _, m := range mf.GetMetric() {
			for i := 0; i+1 < len(labels); i += 2 {
				if !hasLabel(m, labels[i], labels[i+1]) {
					continue metrics
				}
			}
			switch {
			case m.Gauge != nil:
				sum += m.Gauge.GetValue()
			case m.Counter != nil:
				sum += m.Counter.GetValue()
			}
		}
	}
	return sum
}

func hasLabel(m *dto.Metric, name, value string) bool {
	for _, l := range m.GetLabel() {
		if l.GetName() == name && l.GetValue() == value {
			return true
		}
	}
	return false
}

// StartPushsvc starts a push service.
func (env *Env) StartPushsvc() *Pushsvc {
	t := env.t
	t.Helper()
	pool := env.pool("pushsvc", nil)
	router, err := pushsvc.NewRouter(pushsvc.RouterConfig{Settle: env.Opts.Settle, Timeout: 5 * time.Second, Logger: env.Opts.Logger}, pool)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := pushsvc.NewServer(pushsvc.Config{
		APIToken:           env.Opts.APIToken,
		InsecureNoAPIToken: env.Opts.APIToken == "",
		Ready:              router.Ready,
		Logger:             env.Opts.Logger,
	}, router)
	if err != nil {
		t.Fatal(err)
	}
	gl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &Pushsvc{Router: router, Pool: pool, GRPCAddr: gl.Addr().String(), HTTPAddr: hl.Addr().String(), cancel: cancel, done: make(chan error, 2)}
	go func() { p.done <- srv.ServeGRPC(ctx, gl) }()
	go func() { p.done <- srv.ServeHTTP(ctx, hl) }()
	t.Cleanup(func() { p.Stop() })
	return p
}

// Stop stops the push service (idempotent).
func (p *Pushsvc) Stop() {
	p.once.Do(func() {
		p.cancel()
		<-p.done
		<-p.done
		p.Router.Close()
		p.Pool.Close()
	})
}

// WaitReady waits until every component reports ready on /readyz, then
// for pushsvc's registry to settle, so pushes are resolved, not broadcast.
func (env *Env) WaitReady() {
	env.t.Helper()
	env.WaitReadyNoSettle()
	time.Sleep(env.Opts.Settle)
}

// WaitReadyNoSettle waits until every component reports ready on /readyz.
func (env *Env) WaitReadyNoSettle() {
	env.t.Helper()
	urls := []string{"http://" + env.Pushsvc.HTTPAddr + "/readyz"}
	for _, e := range env.Edges {
		urls = append(urls, "http://"+e.Addr+"/readyz")
	}
	deadline := time.Now().Add(15 * time.Second)
	for _, u := range urls {
		for {
			resp, err := http.Get(u)
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					break
				}
			}
			if time.Now().After(deadline) {
				env.t.Fatalf("%s not ready in time (last: %v)", u, err)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// Token returns a valid token for user.
func Token(t testing.TB, user string) string {
	t.Helper()
	tok, err := edge.IssueToken(Secret, user, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// QueryEscape is url.QueryEscape, re-exported for test brevity.
func QueryEscape(s string) string {
	return strings.NewReplacer("%", "%25", "&", "%26", "+", "%2B", "#", "%23", " ", "%20").Replace(s)
}

// Gateway is a running gateway in front of the env's edges and pushsvc,
// configured as `pushgate dev` configures it.
type Gateway struct {
	Addr string // host:port
}

// StartGateway starts the dev gateway in front of the env's edges and
// pushsvc; it stops when the test ends.
func (env *Env) StartGateway() *Gateway {
	t := env.t
	t.Helper()
	var edges []string
	for _, e := range env.Edges {
		edges = append(edges, "http://"+e.Addr)
	}
	cfg, err := gateway.DevConfig("127.0.0.1:0", edges, "http://"+env.Pushsvc.HTTPAddr)
	if err != nil {
		t.Fatal(err)
	}
	addr, _ := RunGateway(t, cfg, gateway.Options{Logger: env.Opts.Logger, Handlers: map[string]http.Handler{"demo": http.NotFoundHandler()}})
	return &Gateway{Addr: addr}
}

// RunGateway runs a gateway with cfg on an ephemeral loopback port (the
// configured address is ignored) and returns its host:port and a function
// that stops it and waits for it (idempotent; the test's end calls it too).
func RunGateway(t testing.TB, cfg *gateway.Config, opts gateway.Options) (addr string, stop func()) {
	t.Helper()
	g, err := gateway.New(cfg, opts)
	if err != nil {
		t.Fatalf("gateway: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- g.Run(ctx, ln) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("gateway Run: %v", err)
				}
			case <-time.After(15 * time.Second):
				t.Errorf("gateway did not stop within 15s")
			}
		})
	}
	t.Cleanup(stop)
	return ln.Addr().String(), stop
}
