package faults

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/pushgate/pushgate/edge"
	"github.com/pushgate/pushgate/internal/stompclient"
	"github.com/pushgate/pushgate/internal/testbroker"
	"github.com/pushgate/pushgate/internal/testenv"
	"github.com/pushgate/pushgate/pushsvc"
	"github.com/pushgate/pushgate/relay"
)

const wait = 5 * time.Second

// serialOnly skips tests that stop or restart the shared RabbitMQ unless
// PUSHGATE_SERIAL=1: `make test-faults` runs them with -p 1.
func serialOnly(t *testing.T) {
	t.Helper()
	if os.Getenv("PUSHGATE_SERIAL") != "1" {
		t.Skip("stops the shared broker: run with PUSHGATE_SERIAL=1 (make test-faults does)")
	}
}

// report prints a measured number: t.Log, so `go test -v` shows it next to
// the test, with a FAULTS prefix that the make target greps into a summary.
func report(t *testing.T, format string, args ...any) {
	t.Helper()
	t.Logf("FAULTS %s: %s", t.Name(), fmt.Sprintf(format, args...))
}

// rabbitStop stops the RabbitMQ application (the node stays up, so
// start_app brings it back quickly). It registers a cleanup that restarts
// the application whatever happens to the test.
func rabbitStop(t *testing.T) {
	t.Helper()
	t.Cleanup(func() { rabbitStart(t) })
	testbroker.Rabbitmqctl(t, "stop_app")
}

// rabbitStart starts the RabbitMQ application and waits for it; calling it
// when it already runs is harmless.
func rabbitStart(t *testing.T) {
	t.Helper()
	for _, args := range [][]string{{"start_app"}, {"await_startup"}} {
		out, err := exec.Command("rabbitmqctl", append([]string{"-q"}, args...)...).CombinedOutput()
		if err != nil {
			t.Errorf("rabbitmqctl %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}

// logSink collects every log line of the components it is given to.
type logSink struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (s *logSink) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.Write(p)
}

func (s *logSink) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String()
}

func (s *logSink) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(s, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// discard is the default logger: the fault tests provoke many warnings.
var discard = slog.New(slog.DiscardHandler)

type envOptions struct {
	broker   string
	edges    int    // default 2
	apiToken string // "" runs pushsvc without one
	edge     func(*edge.Config)
	logger   *slog.Logger  // nil: discard
	settle   time.Duration // pushsvc registry settle (default 300ms)
	// shutdownTimeout is the edges' --shutdown-timeout (default 5s).
	shutdownTimeout time.Duration
	// fastReconnect uses a 500ms reconnect backoff cap for the relay
	// pools; by default they use the relay's production defaults.
	fastReconnect bool
}

// env is a running set of edges and one pushsvc, like testenv's, with each
// component's metrics and logs reachable.
type env struct {
	t     *testing.T
	o     envOptions
	edges []*edgeProc
	push  *pushProc
}

type edgeProc struct {
	srv      *edge.Server
	pool     *relay.Pool
	reg      *prometheus.Registry // the edge's and its pool's metrics
	addr     string
	cancel   context.CancelFunc
	done     chan error
	once     sync.Once
	poolOnce sync.Once
	err      error
}

type pushProc struct {
	router   *pushsvc.BrokerRouter
	pool     *relay.Pool
	grpcAddr string
	httpAddr string
	cancel   context.CancelFunc
	done     chan error
	once     sync.Once
}

func startEnv(t *testing.T, o envOptions) *env {
	t.Helper()
	if o.edges == 0 {
		o.edges = 2
	}
	if o.settle == 0 {
		o.settle = 300 * time.Millisecond
	}
	if o.logger == nil {
		o.logger = discard
	}
	if o.shutdownTimeout == 0 {
		o.shutdownTimeout = 5 * time.Second
	}
	e := &env{t: t, o: o}
	for i := 0; i < o.edges; i++ {
		e.edges = append(e.edges, e.startEdge())
	}
	e.push = e.startPushsvc()
	e.waitReady(15 * time.Second)
	time.Sleep(o.settle)
	return e
}

func (e *env) pool(name string, reg prometheus.Registerer) *relay.Pool {
	brokers, err := relay.ParseBrokers(e.o.broker)
	if err != nil {
		e.t.Fatal(err)
	}
	cfg := relay.Config{Brokers: brokers, Name: name, Logger: e.o.logger, Registerer: reg}
	if e.o.fastReconnect {
		cfg.ReconnectMax = 500 * time.Millisecond
	}
	p, err := relay.New(cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	return p
}

func (e *env) startEdge() *edgeProc {
	t := e.t
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	id := "faults-edge-" + port
	reg := prometheus.NewRegistry()
	pool := e.pool(id, reg)
	cfg := edge.Config{
		ID:                id,
		Auth:              edge.AuthConfig{HMACSecret: testenv.Secret},
		RegistryInterval:  time.Second,
		FirstFrameTimeout: 5 * time.Second,
		Logger:            e.o.logger,
		Registerer:        reg,
	}
	if e.o.edge != nil {
		e.o.edge(&cfg)
	}
	srv, err := edge.New(cfg, pool, reg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &edgeProc{srv: srv, pool: pool, reg: reg, addr: ln.Addr().String(), cancel: cancel, done: make(chan error, 1)}
	go func() { p.done <- srv.Serve(ctx, ln, e.o.shutdownTimeout) }()
	t.Cleanup(func() { p.stop() })
	return p
}

func (p *edgeProc) url(path string) string { return "ws://" + p.addr + path }

// stop is SIGTERM: it cancels Serve's context and waits for Serve to
// return (it drains within the shutdown timeout), then closes the pool.
// It returns Serve's error; later calls return the first one.
func (p *edgeProc) stop() error {
	err := p.sigterm()
	p.poolOnce.Do(func() { p.pool.Close() })
	return err
}

// sigterm cancels Serve's context and waits for Serve to return, leaving
// the broker pool open.
func (p *edgeProc) sigterm() error {
	p.once.Do(func() {
		p.cancel()
		p.err = <-p.done
	})
	return p.err
}

// metric sums the samples of a gauge or counter of the edge (and its
// pool) whose labels include the given name=value pairs.
func (p *edgeProc) metric(name string, labels ...string) float64 {
	return gather(p.reg, name, labels...)
}

func gather(g prometheus.Gatherer, name string, labels ...string) float64 {
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

func (e *env) startPushsvc() *pushProc {
	t := e.t
	t.Helper()
	pool := e.pool("pushsvc", nil)
	router, err := pushsvc.NewRouter(pushsvc.RouterConfig{Settle: e.o.settle, Timeout: 5 * time.Second, Logger: e.o.logger}, pool)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := pushsvc.NewServer(pushsvc.Config{
		APIToken:           e.o.apiToken,
		InsecureNoAPIToken: e.o.apiToken == "",
		Ready:              router.Ready,
		Logger:             e.o.logger,
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
	p := &pushProc{router: router, pool: pool, grpcAddr: gl.Addr().String(), httpAddr: hl.Addr().String(), cancel: cancel, done: make(chan error, 2)}
	go func() { p.done <- srv.ServeGRPC(ctx, gl) }()
	go func() { p.done <- srv.ServeHTTP(ctx, hl) }()
	t.Cleanup(func() { p.stop() })
	return p
}

func (p *pushProc) stop() {
	p.once.Do(func() {
		p.cancel()
		<-p.done
		<-p.done
		p.router.Close()
		p.pool.Close()
	})
}

// readyURLs are the /readyz of every running component.
func (e *env) readyURLs() []string {
	urls := []string{"http://" + e.push.httpAddr + "/readyz"}
	for _, p := range e.edges {
		urls = append(urls, "http://"+p.addr+"/readyz")
	}
	return urls
}

// waitReady waits until every component answers 200 on /readyz.
func (e *env) waitReady(timeout time.Duration) {
	e.t.Helper()
	deadline := time.Now().Add(timeout)
	for _, u := range e.readyURLs() {
		for httpStatus(u) != http.StatusOK {
			if time.Now().After(deadline) {
				e.t.Fatalf("%s not ready within %v", u, timeout)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// httpStatus GETs u and returns the status, 0 when the request failed.
func httpStatus(u string) int {
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get(u)
	if err != nil {
		return 0
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// pushClient is one HTTP client for the push API, with its own
// connections so that pushes do not queue behind other tests' calls.
var pushClient = &http.Client{
	Timeout:   15 * time.Second,
	Transport: &http.Transport{MaxIdleConnsPerHost: 64},
}

// sendToUser pushes text to user's dest over REST and returns the status
// (0 when the request failed) and the answer's body.
func (e *env) sendToUser(user, dest, text string) (int, string) {
	return e.post("/v1/users/"+url.PathEscape(user)+"/messages", map[string]any{"destination": dest, "text": text}, e.o.apiToken)
}

func (e *env) broadcast(dest, text string) (int, string) {
	return e.post("/v1/broadcasts", map[string]any{"destination": dest, "text": text}, e.o.apiToken)
}

func (e *env) post(path string, body any, token string) (int, string) {
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest(http.MethodPost, "http://"+e.push.httpAddr+path, bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := pushClient.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(out)
}

// dial opens a STOMP WebSocket to wsURL (closed when the test ends).
func dial(t *testing.T, wsURL string, header http.Header) (*stompclient.Client, *http.Response, error) {
	t.Helper()
	c, resp, err := stompclient.Dial(context.Background(), wsURL, header)
	if err == nil {
		t.Cleanup(func() { c.Close() })
	}
	return c, resp, err
}

// connectAt opens a connected STOMP session for user at wsBase (ws://host
// plus any path prefix before /stomp).
func connectAt(t *testing.T, wsBase, user string) *stompclient.Client {
	t.Helper()
	c, _, err := dial(t, wsBase+"/stomp?access_token="+url.QueryEscape(testenv.Token(t, user)), nil)
	if err != nil {
		t.Fatalf("dial %s as %q: %v", wsBase, user, err)
	}
	if _, err := c.Connect(wait); err != nil {
		t.Fatalf("connect as %q: %v", user, err)
	}
	return c
}

func connect(t *testing.T, p *edgeProc, user string) *stompclient.Client {
	t.Helper()
	return connectAt(t, "ws://"+p.addr, user)
}

func subscribe(t *testing.T, c *stompclient.Client, id, dest string) {
	t.Helper()
	if err := c.Subscribe(id, dest, wait); err != nil {
		t.Fatalf("subscribe %s: %v", dest, err)
	}
}

// expectError waits for an ERROR frame whose message contains want, and
// returns it.
func expectError(t *testing.T, c *stompclient.Client, want string, timeout time.Duration) string {
	t.Helper()
	f, err := c.Expect("ERROR", timeout)
	if err != nil {
		t.Fatalf("want ERROR containing %q: %v", want, err)
	}
	msg := f.Header.Get("message")
	if !strings.Contains(msg, want) {
		t.Fatalf("ERROR message %q, want it to contain %q", msg, want)
	}
	return msg
}

// expectClosed waits until the connection ends, skipping frames.
func expectClosed(t *testing.T, c *stompclient.Client, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		left := time.Until(deadline)
		if left <= 0 {
			t.Fatalf("connection still open after %v", timeout)
		}
		if _, err := c.Next(left); err != nil {
			if strings.Contains(err.Error(), "closed") {
				return
			}
			t.Fatalf("connection still open after %v", timeout)
		}
	}
}

// waitFor polls cond until it holds or timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
