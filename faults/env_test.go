package faults

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pushgate/pushgate/edge"
	"github.com/pushgate/pushgate/internal/stompclient"
	"github.com/pushgate/pushgate/internal/testbroker"
	"github.com/pushgate/pushgate/internal/testenv"
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

// env is testenv's set of edges and pushsvc, configured for the fault
// tests (production backoff, 1 s registry interval, logs discarded unless
// asked for), with REST helpers for the push API.
type env struct {
	*testenv.Env
	apiToken string
}

func startEnv(t *testing.T, o envOptions) *env {
	t.Helper()
	if o.logger == nil {
		o.logger = discard
	}
	reconnectMax := relay.DefaultReconnectMax
	if o.fastReconnect {
		reconnectMax = 500 * time.Millisecond
	}
	return &env{
		Env: testenv.Start(t, testenv.Options{
			Broker:           o.broker,
			Edges:            o.edges,
			APIToken:         o.apiToken,
			Edge:             o.edge,
			Settle:           o.settle,
			RegistryInterval: time.Second,
			ShutdownTimeout:  o.shutdownTimeout,
			ReconnectMax:     reconnectMax,
			Logger:           o.logger,
		}),
		apiToken: o.apiToken,
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
	return e.post("/v1/users/"+url.PathEscape(user)+"/messages", map[string]any{"destination": dest, "text": text}, e.apiToken)
}

func (e *env) broadcast(dest, text string) (int, string) {
	return e.post("/v1/broadcasts", map[string]any{"destination": dest, "text": text}, e.apiToken)
}

func (e *env) post(path string, body any, token string) (int, string) {
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest(http.MethodPost, "http://"+e.Pushsvc.HTTPAddr+path, bytes.NewReader(b))
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

func connect(t *testing.T, p *testenv.Edge, user string) *stompclient.Client {
	t.Helper()
	return connectAt(t, "ws://"+p.Addr, user)
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
