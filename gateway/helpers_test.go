package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// upstream is a fake edge: /readyz (switchable), WebSocket echo on any upgrade (it first sends
// its name), /sse (one event, then holds the stream), /big.json (a static JSON body) and a JSON
// echo of the request on every other path.
type upstream struct {
	t     *testing.T
	name  string
	addr  string
	ready atomic.Bool
	hits  atomic.Int64

	mu    sync.Mutex
	srv   *http.Server
	done  chan struct{}
	conns map[*websocket.Conn]struct{}
	wg    sync.WaitGroup
}

// echoed is what the upstream answers on an ordinary request.
type echoed struct {
	Instance   string
	RequestURI string
	Host       string
	XFF, XFH   string
	XFP        string
	Headers    http.Header
	BodyLen    int
}

func newUpstream(t *testing.T, name string) *upstream {
	t.Helper()
	u := &upstream{t: t, name: name, conns: map[*websocket.Conn]struct{}{}}
	u.ready.Store(true)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u.addr = ln.Addr().String()
	u.serve(ln)
	t.Cleanup(u.kill)
	return u
}

func (u *upstream) url() string { return "http://" + u.addr }

func (u *upstream) serve(ln net.Listener) {
	srv := &http.Server{Handler: u, ReadHeaderTimeout: 5 * time.Second}
	done := make(chan struct{})
	u.mu.Lock()
	u.srv, u.done = srv, done
	u.mu.Unlock()
	go func() {
		defer close(done)
		_ = srv.Serve(ln)
	}()
}

// kill stops the upstream like a crash: the listener and every connection close.
func (u *upstream) kill() {
	u.mu.Lock()
	srv, done := u.srv, u.done
	u.srv = nil
	conns := make([]*websocket.Conn, 0, len(u.conns))
	for c := range u.conns {
		conns = append(conns, c)
	}
	u.mu.Unlock()
	if srv == nil {
		return
	}
	_ = srv.Close()
	for _, c := range conns {
		_ = c.Close()
	}
	<-done
	u.wg.Wait()
}

// restart serves again on the same address.
func (u *upstream) restart() {
	u.t.Helper()
	var ln net.Listener
	var err error
	waitFor(u.t, 5*time.Second, "relisten on "+u.addr, func() bool {
		ln, err = net.Listen("tcp", u.addr)
		return err == nil
	})
	u.serve(ln)
}

func (u *upstream) wsCount() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return len(u.conns)
}

var upgrader = websocket.Upgrader{
	Subprotocols: []string{"v12.stomp", "v11.stomp", "v10.stomp"},
	CheckOrigin:  func(*http.Request) bool { return true },
}

func (u *upstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/readyz" {
		if !u.ready.Load() {
			http.Error(w, "not ready", http.StatusServiceUnavailable)
			return
		}
		_, _ = io.WriteString(w, "ok")
		return
	}
	u.hits.Add(1)
	switch {
	case websocket.IsWebSocketUpgrade(r):
		u.serveWS(w, r)
	case r.URL.Path == "/sse":
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = io.WriteString(w, "data: first\n\n")
		http.NewResponseController(w).Flush()
		select {
		case <-r.Context().Done():
		case <-time.After(10 * time.Second):
		}
	case strings.HasPrefix(r.URL.Path, "/hold/"):
		// A long poll: no answer until the request is cancelled.
		select {
		case <-r.Context().Done():
		case <-time.After(10 * time.Second):
		}
	case r.URL.Path == "/big.json":
		body := `{"items":[` + strings.Repeat(`"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",`, 200) + `"end"]}`
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", fmt.Sprint(len(body)))
		_, _ = io.WriteString(w, body)
	default:
		n, _ := io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Instance", u.name)
		_ = json.NewEncoder(w).Encode(echoed{
			Instance: u.name, RequestURI: r.RequestURI, Host: r.Host,
			XFF: r.Header.Get("X-Forwarded-For"), XFH: r.Header.Get("X-Forwarded-Host"), XFP: r.Header.Get("X-Forwarded-Proto"),
			Headers: r.Header, BodyLen: int(n),
		})
	}
}

func (u *upstream) serveWS(w http.ResponseWriter, r *http.Request) {
	c, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	u.mu.Lock()
	if u.srv == nil {
		u.mu.Unlock()
		_ = c.Close()
		return
	}
	u.conns[c] = struct{}{}
	u.wg.Add(1)
	u.mu.Unlock()
	defer func() {
		u.mu.Lock()
		delete(u.conns, c)
		u.mu.Unlock()
		_ = c.Close()
		u.wg.Done()
	}()
	if err := c.WriteMessage(websocket.TextMessage, []byte(u.name)); err != nil {
		return
	}
	for {
		mt, msg, err := c.ReadMessage()
		if err != nil {
			return
		}
		if err := c.WriteMessage(mt, msg); err != nil {
			return
		}
	}
}

// waitFor polls cond until it holds or the timeout passes.
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

// running is a gateway served on an ephemeral port for one test.
type running struct {
	g    *Gateway
	base string // http://127.0.0.1:port
	addr string
	stop func() // cancels Run and waits for it
}

func startGateway(t *testing.T, yaml string, opts Options) *running {
	t.Helper()
	cfg, err := ParseConfig("test.yaml", []byte(yaml))
	if err != nil {
		t.Fatalf("ParseConfig: %v", err)
	}
	g, err := New(cfg, opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- g.Run(ctx, ln) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run: %v", err)
				}
			case <-time.After(15 * time.Second):
				t.Errorf("Run did not return after cancel")
			}
		})
	}
	t.Cleanup(stop)
	return &running{g: g, base: "http://" + ln.Addr().String(), addr: ln.Addr().String(), stop: stop}
}

// client is an HTTP client that closes its connections with the test.
func client(t *testing.T) *http.Client {
	tr := &http.Transport{DisableCompression: true}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

func getEcho(t *testing.T, c *http.Client, target string) echoed {
	t.Helper()
	resp, err := c.Get(target)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET %s: %s %s", target, resp.Status, b)
	}
	var e echoed
	if err := json.NewDecoder(resp.Body).Decode(&e); err != nil {
		t.Fatal(err)
	}
	return e
}

// dialWS opens a WebSocket through the gateway and returns it with the instance name the
// upstream greeted with.
func dialWS(t *testing.T, wsURL string, subprotocols ...string) (*websocket.Conn, string, *http.Response) {
	t.Helper()
	d := websocket.Dialer{Subprotocols: subprotocols, HandshakeTimeout: 5 * time.Second}
	c, resp, err := d.Dial(wsURL, nil)
	if err != nil {
		status := ""
		if resp != nil {
			status = resp.Status
		}
		t.Fatalf("dial %s: %v %s", wsURL, err, status)
	}
	t.Cleanup(func() { _ = c.Close() })
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, name, err := c.ReadMessage()
	if err != nil {
		t.Fatalf("read greeting: %v", err)
	}
	_ = c.SetReadDeadline(time.Time{})
	return c, string(name), resp
}
