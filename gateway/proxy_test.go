package gateway

import (
	"bufio"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// edgesConfig routes /web-socket/** to the edges and /api/** to pushsvc, with small limits and
// fast health checks.
func edgesConfig(edges []*upstream, pushsvc *upstream, extra string) string {
	var urls []string
	for _, e := range edges {
		urls = append(urls, strconv.Quote(e.url()))
	}
	return fmt.Sprintf(`server: {read_header_timeout: 300ms, body_read_timeout: 300ms, max_body_bytes: 1024, max_header_bytes: 4096, shutdown_timeout: 3s}
health: {interval: 50ms, timeout: 500ms, unhealthy_threshold: 1}
routes:
  - id: web-socket
    uri: lb:ws://web-socket
    predicates: [Path=/web-socket/**]
    filters: ["RewritePath=/web-socket/(?<path>.*), /${path}"]
  - id: api
    uri: lb://pushsvc
    predicates: [Path=/api/**]
    filters: [StripPrefix=1]
%s
discovery:
  web-socket: {static: [%s]}
  pushsvc: {static: [%q]}
`, extra, strings.Join(urls, ", "), pushsvc.url())
}

func TestProxyHTTP(t *testing.T) {
	t.Parallel()
	a, p := newUpstream(t, "a"), newUpstream(t, "pushsvc")
	gw := startGateway(t, edgesConfig([]*upstream{a}, p, ""), Options{})
	c := client(t)

	// The encoded slash and the query reach the upstream byte for byte.
	e := getEcho(t, c, gw.base+"/api/v1/users/alice%2Fbob/messages?x=1%202&y=%3B;z&&w")
	if want := "/v1/users/alice%2Fbob/messages?x=1%202&y=%3B;z&&w"; e.RequestURI != want {
		t.Errorf("upstream got %q, want %q", e.RequestURI, want)
	}
	if e.Instance != "pushsvc" || e.Host != gw.addr {
		t.Errorf("instance %q host %q, want pushsvc with the client's host %s", e.Instance, e.Host, gw.addr)
	}
	if e.XFF != "127.0.0.1" || e.XFH != gw.addr || e.XFP != "http" {
		t.Errorf("X-Forwarded-For/Host/Proto = %q %q %q", e.XFF, e.XFH, e.XFP)
	}

	// Client-sent X-Forwarded-For is not trusted.
	req, _ := http.NewRequest("POST", gw.base+"/web-socket/post", strings.NewReader("hello"))
	req.Header.Set("X-Forwarded-For", "6.6.6.6")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(b), `"BodyLen":5`) || strings.Contains(string(b), "6.6.6.6") {
		t.Errorf("POST: %s %s", resp.Status, b)
	}

	// Behind a trusted proxy, its forwarding headers are kept and extended.
	gw2 := startGateway(t, strings.Replace(edgesConfig([]*upstream{a}, p, ""), "server: {", "server: {trusted_proxies: [127.0.0.0/8, \"::1\"], ", 1), Options{})
	req, _ = http.NewRequest("GET", gw2.base+"/api/x", nil)
	req.Header.Set("X-Forwarded-For", "6.6.6.6")
	req.Header.Set("X-Forwarded-Proto", "https")
	req.Header.Set("X-Forwarded-Host", "push.example.org")
	resp, err = c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var e2 echoed
	_ = json.NewDecoder(resp.Body).Decode(&e2)
	resp.Body.Close()
	if e2.XFF != "6.6.6.6, 127.0.0.1" || e2.XFP != "https" || e2.XFH != "push.example.org" {
		t.Errorf("trusted proxy: X-Forwarded-For/Proto/Host = %q %q %q", e2.XFF, e2.XFP, e2.XFH)
	}

	if resp, err := c.Get(gw.base + "/nothing"); err != nil || resp.StatusCode != 404 {
		t.Errorf("unrouted path: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
}

// TestUpstreamHost checks Spring's Host behaviour (the instance's host) when configured, and
// that PreserveHostHeader overrides it per route.
func TestUpstreamHost(t *testing.T) {
	t.Parallel()
	a, p := newUpstream(t, "a"), newUpstream(t, "pushsvc")
	yaml := strings.Replace(edgesConfig([]*upstream{a}, p, ""), "server: {", "server: {upstream_host: true, ", 1)
	yaml = strings.Replace(yaml, "filters: [StripPrefix=1]", "filters: [StripPrefix=1, PreserveHostHeader]", 1)
	gw := startGateway(t, yaml, Options{})
	c := client(t)
	if e := getEcho(t, c, gw.base+"/web-socket/x"); e.Host != a.addr || e.XFH != gw.addr {
		t.Errorf("Host %q, X-Forwarded-Host %q; want %s and %s", e.Host, e.XFH, a.addr, gw.addr)
	}
	if e := getEcho(t, c, gw.base+"/api/x"); e.Host != gw.addr {
		t.Errorf("with PreserveHostHeader: Host %q, want %s", e.Host, gw.addr)
	}
}

func TestProxyWebSocket(t *testing.T) {
	t.Parallel()
	a, p := newUpstream(t, "a"), newUpstream(t, "pushsvc")
	gw := startGateway(t, edgesConfig([]*upstream{a}, p, ""), Options{})
	ws := "ws://" + gw.addr + "/web-socket/stomp"

	c, name, resp := dialWS(t, ws, "v12.stomp", "v11.stomp")
	if name != "a" {
		t.Errorf("greeting %q", name)
	}
	if got := resp.Header.Get("Sec-WebSocket-Protocol"); got != "v12.stomp" || c.Subprotocol() != "v12.stomp" {
		t.Errorf("subprotocol header %q, negotiated %q; want v12.stomp", got, c.Subprotocol())
	}
	msg := []byte("CONNECT\naccept-version:1.2\n\n\x00")
	if err := c.WriteMessage(websocket.TextMessage, msg); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, got, err := c.ReadMessage(); err != nil || string(got) != string(msg) {
		t.Errorf("echo = %q, %v", got, err)
	}
	in := gw.g.services[1].instances()[0]
	if in.conns.Load() != 1 {
		t.Errorf("open conns = %d, want 1", in.conns.Load())
	}
	gauge := func() string {
		resp, err := client(t).Get(gw.base + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		prefix := fmt.Sprintf(`pushgate_gateway_websockets_open{instance="%s",route="web-socket"} `, a.url())
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, prefix); ok {
				return v
			}
		}
		return "missing"
	}
	if g := gauge(); g != "1" {
		t.Errorf("websockets_open = %s, want 1", g)
	}
	_ = c.Close()
	waitFor(t, 5*time.Second, "conn count back to 0", func() bool { return in.conns.Load() == 0 })
	waitFor(t, 5*time.Second, "websockets_open back to 0", func() bool { return gauge() == "0" })

	// A direct ws:// route carries upgrades too.
	direct := strings.Replace(edgesConfig([]*upstream{a}, p, fmt.Sprintf("  - {id: direct, uri: %q, predicates: [Path=/direct/**], filters: [StripPrefix=1]}", "ws://"+a.addr)), "discovery:", "discovery:", 1)
	gw2 := startGateway(t, direct, Options{})
	c3, name3, resp3 := dialWS(t, "ws://"+gw2.addr+"/direct/stomp", "v12.stomp")
	if name3 != "a" || resp3.Header.Get("Sec-WebSocket-Protocol") != "v12.stomp" {
		t.Errorf("direct route: greeting %q, subprotocol %q", name3, resp3.Header.Get("Sec-WebSocket-Protocol"))
	}
	_ = c3.Close()

	// A SockJS websocket transport path goes through the same route.
	c2, _, _ := dialWS(t, "ws://"+gw.addr+"/web-socket/ws/000/sess/websocket", "v12.stomp")
	_ = c2.Close()
}

func TestProxyStreamingFlushes(t *testing.T) {
	t.Parallel()
	a, p := newUpstream(t, "a"), newUpstream(t, "pushsvc")
	gw := startGateway(t, edgesConfig([]*upstream{a}, p, ""), Options{})
	req, _ := http.NewRequest("GET", gw.base+"/web-socket/sse", nil)
	req.Header.Set("Accept-Encoding", "gzip")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	resp, err := client(t).Do(req.WithContext(ctx))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ce := resp.Header.Get("Content-Encoding"); ce != "" {
		t.Errorf("event stream compressed: %q", ce)
	}
	// The upstream holds the stream open after the first event: it must arrive before the
	// upstream ends, so the gateway flushed it.
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	if err != nil || line != "data: first\n" {
		t.Errorf("first line %q, %v", line, err)
	}
}

func TestCompression(t *testing.T) {
	t.Parallel()
	a, p := newUpstream(t, "a"), newUpstream(t, "pushsvc")
	gw := startGateway(t, edgesConfig([]*upstream{a}, p, ""), Options{})
	c := client(t)
	req, _ := http.NewRequest("GET", gw.base+"/web-socket/big.json", nil)
	req.Header.Set("Accept-Encoding", "gzip, deflate")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.Header.Get("Content-Encoding") != "gzip" {
		t.Fatalf("Content-Encoding %q, want gzip", resp.Header.Get("Content-Encoding"))
	}
	zr, err := gzip.NewReader(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(zr)
	if err != nil || !strings.HasSuffix(string(body), `"end"]}`) {
		t.Errorf("body %q…, %v", body[:min(len(body), 40)], err)
	}
	// A small answer, or one to a client that does not accept gzip, stays as it is.
	for _, ae := range []string{"", "gzip;q=0"} {
		req, _ := http.NewRequest("GET", gw.base+"/web-socket/big.json", nil)
		if ae != "" {
			req.Header.Set("Accept-Encoding", ae)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.Header.Get("Content-Encoding") != "" {
			t.Errorf("Accept-Encoding %q: compressed", ae)
		}
	}
}

// fakeResolver answers SRV lookups with a list the test changes.
type fakeResolver struct {
	mu    sync.Mutex
	hosts []string
}

func (f *fakeResolver) set(us ...*upstream) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.hosts = nil
	for _, u := range us {
		f.hosts = append(f.hosts, u.addr)
	}
}

func (f *fakeResolver) LookupIPAddr(context.Context, string) ([]net.IPAddr, error) {
	return nil, errors.New("no A records here")
}

func (f *fakeResolver) LookupSRV(_ context.Context, _, _, _ string) (string, []*net.SRV, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []*net.SRV
	for _, h := range f.hosts {
		host, port, _ := net.SplitHostPort(h)
		p, _ := strconv.Atoi(port)
		out = append(out, &net.SRV{Target: host + ".", Port: uint16(p)})
	}
	return "", out, nil
}

func sessionInstance(t *testing.T, c *http.Client, base, method, session, transport string) string {
	t.Helper()
	req, _ := http.NewRequest(method, base+"/web-socket/ws/000/"+session+"/"+transport, nil)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.Header.Get("X-Instance")
}

// TestSockJSStickiness checks that every request of a SockJS session reaches one instance, and
// that adding an instance moves sessions only to the new one.
func TestSockJSStickiness(t *testing.T) {
	t.Parallel()
	a, b, c3, p := newUpstream(t, "a"), newUpstream(t, "b"), newUpstream(t, "c"), newUpstream(t, "pushsvc")
	res := &fakeResolver{}
	res.set(a, b)
	yaml := fmt.Sprintf(`health: {interval: 50ms, timeout: 500ms}
routes:
  - id: web-socket
    uri: lb://web-socket
    predicates: [Path=/web-socket/**]
    filters: ["RewritePath=/web-socket/(?<path>.*), /$\\{path}"]
discovery:
  web-socket: {srv: _http._tcp.edge.test, interval: 50ms}
  unused: {static: [%q]}
`, p.url())
	gw := startGateway(t, yaml, Options{Resolver: res})
	svc := gw.g.services[0]
	waitFor(t, 5*time.Second, "two instances", func() bool { return svc.healthyCount() == 2 })
	c := client(t)

	first := map[string]string{}
	count := map[string]int{}
	for i := range 60 {
		s := fmt.Sprintf("session%d", i)
		got := sessionInstance(t, c, gw.base, "POST", s, "xhr")
		for _, tr := range []string{"xhr_send", "xhr", "xhr_streaming", "eventsource"} {
			method := "GET"
			if strings.HasPrefix(tr, "xhr") {
				method = "POST"
			}
			if again := sessionInstance(t, c, gw.base, method, s, tr); again != got {
				t.Fatalf("session %s: %s on %q, first on %q", s, tr, again, got)
			}
		}
		first[s] = got
		count[got]++
	}
	if count["a"] < 10 || count["b"] < 10 {
		t.Errorf("sessions spread %v, want both instances used", count)
	}

	res.set(a, b, c3)
	waitFor(t, 5*time.Second, "third instance healthy", func() bool { return svc.healthyCount() == 3 })
	moved := 0
	for s, was := range first {
		now := sessionInstance(t, c, gw.base, "POST", s, "xhr_send")
		switch {
		case now == was:
		case now == "c":
			moved++
		default:
			t.Errorf("session %s moved from %s to %s, not to the new instance", s, was, now)
		}
	}
	if moved == 0 || moved > 40 {
		t.Errorf("%d of 60 sessions moved to the new instance, want about 20", moved)
	}
}

func tryWS(wsURL string) (*websocket.Conn, string, error) {
	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second}
	c, _, err := d.Dial(wsURL, nil)
	if err != nil {
		return nil, "", err
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, name, err := c.ReadMessage()
	if err != nil {
		c.Close()
		return nil, "", err
	}
	_ = c.SetReadDeadline(time.Time{})
	return c, string(name), nil
}

func instanceOf(t *testing.T, g *Gateway, u *upstream) *instance {
	t.Helper()
	for _, s := range g.services {
		for _, in := range s.instances() {
			if in.url.Host == u.addr {
				return in
			}
		}
	}
	t.Fatalf("no instance for %s", u.addr)
	return nil
}

// TestLeastConn opens 100 WebSockets while one edge already holds 50: they end up close to even.
func TestLeastConn(t *testing.T) {
	t.Parallel()
	a, b, p := newUpstream(t, "a"), newUpstream(t, "b"), newUpstream(t, "pushsvc")
	b.ready.Store(false)
	gw := startGateway(t, edgesConfig([]*upstream{a, b}, p, ""), Options{})
	ib := instanceOf(t, gw.g, b)
	waitFor(t, 5*time.Second, "b out of rotation", func() bool { return !ib.healthy.Load() })

	ws := "ws://" + gw.addr + "/web-socket/stomp"
	var mu sync.Mutex
	var conns []*websocket.Conn
	t.Cleanup(func() {
		for _, c := range conns {
			c.Close()
		}
	})
	for range 50 {
		c, name, err := tryWS(ws)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		if name != "a" {
			t.Fatalf("with b out of rotation a conn went to %s", name)
		}
	}
	b.ready.Store(true)
	waitFor(t, 5*time.Second, "b back in rotation", func() bool { return ib.healthy.Load() })

	var wg sync.WaitGroup
	errs := make(chan error, 100)
	sem := make(chan struct{}, 10)
	for range 100 {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			c, _, err := tryWS(ws)
			if err != nil {
				errs <- err
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	na, nb := a.wsCount(), b.wsCount()
	if na+nb != 150 || na < 65 || na > 85 {
		t.Errorf("a holds %d, b holds %d; want about 75 each", na, nb)
	}
}

// TestHealthEjectAndReturn kills an edge: it leaves rotation within the health interval, new
// connections succeed on the other edge, and it comes back when it is up again.
func TestHealthEjectAndReturn(t *testing.T) {
	t.Parallel()
	a, b, p := newUpstream(t, "a"), newUpstream(t, "b"), newUpstream(t, "pushsvc")
	gw := startGateway(t, edgesConfig([]*upstream{a, b}, p, ""), Options{})
	ia := instanceOf(t, gw.g, a)
	ws := "ws://" + gw.addr + "/web-socket/stomp"
	c := client(t)

	a.kill()
	killed := time.Now()
	// Requests right after the kill succeed: a failed dial is retried on b.
	for i := range 10 {
		if e := getEcho(t, c, gw.base+"/web-socket/x"); e.Instance != "b" {
			t.Fatalf("request %d went to %s", i, e.Instance)
		}
	}
	waitFor(t, 2*time.Second, "a out of rotation", func() bool { return !ia.healthy.Load() })
	if d := time.Since(killed); d > time.Second {
		t.Errorf("a left rotation after %v", d)
	}
	for range 5 {
		conn, name, err := tryWS(ws)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if name != "b" {
			t.Fatalf("new conn went to %s", name)
		}
	}

	a.restart()
	waitFor(t, 5*time.Second, "a back in rotation", func() bool { return ia.healthy.Load() })
	// b holds 5 conns, a none: least connections picks a.
	conn, name, err := tryWS(ws)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if name != "a" {
		t.Errorf("after a's return, new conn went to %s", name)
	}
}

// rawStatus sends a raw request and returns the status code of the answer (0 if none).
func rawStatus(t *testing.T, addr, request string) int {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(conn, request); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

func TestHostileInput(t *testing.T) {
	t.Parallel()
	a, p := newUpstream(t, "a"), newUpstream(t, "pushsvc")
	dead, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadAddr := dead.Addr().String()
	dead.Close() // nothing listens there any more
	extra := fmt.Sprintf(`  - id: down
    uri: lb:ws://down
    predicates: [Path=/down/**]
discovery-placeholder: %q`, deadAddr)
	yaml := edgesConfig([]*upstream{a}, p, extra)
	yaml = strings.Replace(yaml, fmt.Sprintf("discovery-placeholder: %q\ndiscovery:\n", deadAddr),
		fmt.Sprintf("discovery:\n  down: {static: [%q]}\n", "http://"+deadAddr), 1)
	gw := startGateway(t, yaml, Options{})

	paths := []string{
		"/api/../admin", "/api/%2e%2e/admin", "/api/%2E%2e/admin", "/api/.%2e/admin",
		"/api/a%2F..%2Fadmin", "/api/./x", "/web-socket/..", "/web-socket/%2e%2e%2fadmin",
	}
	for _, path := range paths {
		if got := rawStatus(t, gw.addr, "GET "+path+" HTTP/1.1\r\nHost: x\r\n\r\n"); got != 400 {
			t.Errorf("GET %s: %d, want 400", path, got)
		}
	}
	if n := a.hits.Load() + p.hits.Load(); n != 0 {
		t.Errorf("%d traversal requests reached an upstream", n)
	}

	big := strings.Repeat("a", 9000) // over max_header_bytes (4096) plus net/http's 4 KiB slack
	if got := rawStatus(t, gw.addr, "GET /api/x HTTP/1.1\r\nHost: x\r\nX-Big: "+big+"\r\n\r\n"); got != 431 {
		t.Errorf("oversized headers: %d, want 431", got)
	}
	if got := rawStatus(t, gw.addr, "POST /api/x HTTP/1.1\r\nHost: x\r\nContent-Length: 2048\r\n\r\n"); got != 413 {
		t.Errorf("declared oversized body: %d, want 413", got)
	}
	chunk := strings.Repeat("b", 1000)
	chunked := "POST /api/x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" +
		"3e8\r\n" + chunk + "\r\n3e8\r\n" + chunk + "\r\n0\r\n\r\n"
	if got := rawStatus(t, gw.addr, chunked); got != 413 {
		t.Errorf("chunked oversized body: %d, want 413", got)
	}

	// A body that stops coming gets 408 after body_read_timeout (300ms).
	start := time.Now()
	if got := rawStatus(t, gw.addr, "POST /api/x HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nonly ten.."); got != 408 {
		t.Errorf("stalled body: %d, want 408", got)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("stalled body held for %v", d)
	}

	// Slowloris: headers trickle in; the gateway hangs up after read_header_timeout (300ms).
	conn, err := net.Dial("tcp", gw.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	start = time.Now()
	closed := make(chan struct{})
	go func() {
		defer close(closed)
		_, _ = io.Copy(io.Discard, conn)
	}()
	_, _ = io.WriteString(conn, "GET /api/x HTTP/1.1\r\nHost: x\r\n")
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
trickle:
	for {
		select {
		case <-closed:
			break trickle
		case <-tick.C:
			if _, err := io.WriteString(conn, "X-A: b\r\n"); err != nil {
				break trickle
			}
			if time.Since(start) > 5*time.Second {
				t.Fatal("slowloris connection still open after 5s")
			}
		}
	}
	<-closed
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("slowloris held the connection %v", d)
	}

	// An upgrade to a route whose only upstream is down fails fast, before and after ejection.
	for i := range 2 {
		start := time.Now()
		d := websocket.Dialer{HandshakeTimeout: 5 * time.Second}
		c, resp, err := d.Dial("ws://"+gw.addr+"/down/ws", nil)
		if err == nil {
			c.Close()
			t.Fatal("upgrade to a down upstream succeeded")
		}
		if resp == nil || (resp.StatusCode != 502 && resp.StatusCode != 503) {
			t.Errorf("attempt %d: %v %v, want 502 or 503", i, resp, err)
		}
		if d := time.Since(start); d > time.Second {
			t.Errorf("attempt %d took %v", i, d)
		}
	}
}

func TestBuiltinsAndInternal(t *testing.T) {
	t.Parallel()
	a, p := newUpstream(t, "a"), newUpstream(t, "pushsvc")
	page := "<!doctype html><title>demo</title>" + strings.Repeat("<p>push</p>", 200)
	demo := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Content-Length", strconv.Itoa(len(page)))
		_, _ = io.WriteString(w, page)
	})
	extra := "  - id: demo\n    uri: internal://demo\n    order: 100\n    predicates: [Path=/**]"
	gw := startGateway(t, edgesConfig([]*upstream{a}, p, extra), Options{Handlers: map[string]http.Handler{"demo": demo}})
	c := client(t)
	get := func(path string, hdr ...string) (*http.Response, string) {
		req, _ := http.NewRequest("GET", gw.base+path, nil)
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var r io.Reader = resp.Body
		if resp.Header.Get("Content-Encoding") == "gzip" {
			zr, err := gzip.NewReader(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			r = zr
		}
		b, _ := io.ReadAll(r)
		return resp, string(b)
	}
	if resp, body := get("/healthz"); resp.StatusCode != 200 || body != "ok\n" {
		t.Errorf("/healthz: %d %q", resp.StatusCode, body)
	}
	waitFor(t, 5*time.Second, "/readyz 200", func() bool { resp, _ := get("/readyz"); return resp.StatusCode == 200 })
	if resp, body := get("/", "Accept-Encoding", "gzip"); resp.StatusCode != 200 || body != page || resp.Header.Get("Content-Encoding") != "gzip" {
		t.Errorf("demo page: %d, encoding %q, %d bytes", resp.StatusCode, resp.Header.Get("Content-Encoding"), len(body))
	}
	if resp, _ := get("/missing.js"); resp.StatusCode != 404 {
		t.Errorf("demo 404: %d", resp.StatusCode)
	}
	_ = getEcho(t, c, gw.base+"/api/x")
	_, metrics := get("/metrics")
	for _, want := range []string{
		`pushgate_gateway_requests_total{code="200",instance="internal",route="demo"} 1`,
		fmt.Sprintf(`pushgate_gateway_requests_total{code="200",instance="%s",route="api"} 1`, p.url()),
		fmt.Sprintf(`pushgate_gateway_instance_healthy{instance="%s",service="web-socket"} 1`, a.url()),
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	a.ready.Store(false)
	waitFor(t, 5*time.Second, "/readyz 503", func() bool { resp, _ := get("/readyz"); return resp.StatusCode == 503 })
	if _, body := get("/readyz"); !strings.Contains(body, "web-socket") {
		t.Errorf("/readyz body %q does not name the service", body)
	}
	if resp, _ := get("/web-socket/x"); resp.StatusCode != 503 {
		t.Errorf("request to a service without healthy instance: %d, want 503", resp.StatusCode)
	}
	_, metrics = get("/metrics")
	if want := fmt.Sprintf(`pushgate_gateway_instance_healthy{instance="%s",service="web-socket"} 0`, a.url()); !strings.Contains(metrics, want) {
		t.Errorf("metrics lack %s", want)
	}
}

// TestShutdown cancels Run while a WebSocket and an event stream are open: both are closed and
// Run returns at once rather than after the shutdown timeout.
func TestShutdown(t *testing.T) {
	t.Parallel()
	a, p := newUpstream(t, "a"), newUpstream(t, "pushsvc")
	gw := startGateway(t, edgesConfig([]*upstream{a}, p, ""), Options{})
	conn, _, _ := dialWS(t, "ws://"+gw.addr+"/web-socket/stomp")
	resp, err := client(t).Get(gw.base + "/web-socket/sse")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	if _, err := br.ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	// A SockJS long poll the upstream holds.
	hits := a.hits.Load()
	poll := make(chan int, 1)
	pc := client(t)
	go func() {
		resp, err := pc.Post(gw.base+"/web-socket/hold/000/sess/xhr", "text/plain", nil)
		if err != nil {
			poll <- 0
			return
		}
		resp.Body.Close()
		poll <- resp.StatusCode
	}()
	waitFor(t, 5*time.Second, "long poll at the upstream", func() bool { return a.hits.Load() > hits })
	start := time.Now()
	gw.stop()
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("shutdown took %v", d)
	}
	if code := <-poll; code != http.StatusServiceUnavailable {
		t.Errorf("long poll cut by shutdown got %d, want 503", code)
	}
	_ = conn.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, _, err := conn.ReadMessage(); err == nil || isNetTimeout(err) {
		t.Errorf("WebSocket still open after shutdown: %v", err)
	}
	if _, err := io.ReadAll(br); err == nil {
		// A cut stream may end cleanly (chunked EOF) or with an error; both are fine, a hang is not.
		t.Log("event stream ended cleanly")
	}
	waitFor(t, 5*time.Second, "upstream sees the WebSocket closed", func() bool { return a.wsCount() == 0 })
}

func isNetTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
