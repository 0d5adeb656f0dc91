package edge

// The checks of the SockJS 0.3.3 protocol suite (sockjs/sockjs-protocol,
// sockjs-protocol-0.3.3.py), class by class, against newSockJSHandler with
// the suite's test services: /echo, /close, /disabled_websocket_echo and
// /cookie_needed_echo, with the suite's 4096-byte streaming limit. Where
// pushgate deliberately differs from 0.3.3 the test says so and why. Then
// pushgate's own checks: hostile input, limits, back-pressure, close codes,
// shutdown and Origin.

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// sjEcho is the suite's echo service: it writes back every message.
func sjEcho(t Transport, _ *http.Request, recv func() ([]byte, error)) {
	for {
		m, err := recv()
		if err != nil {
			return
		}
		if err := t.Write(m); err != nil {
			return
		}
	}
}

// sjCloser is the suite's close service: it closes at once with 3000.
func sjCloser(t Transport, _ *http.Request, _ func() ([]byte, error)) {
	_ = t.Close(3000, "Go away!")
}

// sjServer serves the suite's services on 127.0.0.1.
type sjServer struct {
	URL      string
	srv      *httptest.Server
	client   *http.Client
	handlers map[string]*sockjsHandler
}

// sjTestConfig is the suite's server configuration.
func sjTestConfig(prefix string) SockJSConfig {
	return SockJSConfig{
		Prefix:          prefix,
		ResponseLimit:   4096,
		DisconnectDelay: time.Second,
		AllowedOrigins:  []string{"*"},
	}
}

// newSJServer starts the four suite services; mod may adjust each config.
func newSJServer(t *testing.T, mod func(*SockJSConfig)) *sjServer {
	t.Helper()
	s := &sjServer{handlers: make(map[string]*sockjsHandler)}
	// Dispatch on the first path segment, not with http.ServeMux, which
	// would redirect the suite's "//" paths to cleaned ones.
	mux := sjMux{}
	add := func(prefix string, svc func(Transport, *http.Request, func() ([]byte, error)), adjust func(*SockJSConfig)) {
		cfg := sjTestConfig(prefix)
		if adjust != nil {
			adjust(&cfg)
		}
		if mod != nil {
			mod(&cfg)
		}
		h, err := newSockJSHandler(cfg, svc)
		if err != nil {
			t.Fatalf("newSockJSHandler(%s): %v", prefix, err)
		}
		s.handlers[prefix] = h.(*sockjsHandler)
		mux[prefix] = h
	}
	add("/echo", sjEcho, nil)
	add("/close", sjCloser, nil)
	add("/disabled_websocket_echo", sjEcho, func(c *SockJSConfig) { c.DisableWebSocket = true })
	add("/cookie_needed_echo", sjEcho, func(c *SockJSConfig) { c.JSessionID = true })
	s.srv = httptest.NewServer(mux)
	s.URL = s.srv.URL
	s.client = sjClient()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		for p, h := range s.handlers {
			if err := h.shutdown(ctx, CloseServerShutdown, "test over"); err != nil {
				t.Errorf("shutdown %s: %v", p, err)
			}
		}
		s.srv.CloseClientConnections()
		s.srv.Close()
		s.client.CloseIdleConnections()
		// sockjs-go keeps closed HTTP-transport sessions (a goroutine each)
		// for a disconnect delay; let them go before goleak looks.
		for _, h := range s.handlers {
			sjAwaitForgotten(t, h)
		}
	})
	return s
}

// sjServe serves one handler made by newSockJSHandler; the test's cleanup
// shuts it down.
func sjServe(t *testing.T, h http.Handler) *sjServer {
	t.Helper()
	sh := h.(*sockjsHandler)
	srv := httptest.NewServer(h)
	s := &sjServer{URL: srv.URL, srv: srv, client: sjClient(), handlers: map[string]*sockjsHandler{sh.cfg.Prefix: sh}}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := sh.shutdown(ctx, CloseServerShutdown, "test over"); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		srv.CloseClientConnections()
		srv.Close()
		s.client.CloseIdleConnections()
		sjAwaitForgotten(t, sh)
	})
	return s
}

// sjClient is an HTTP client of its own: httptest.Server.Close closes the
// idle connections of http.DefaultTransport, which would break the requests
// of tests running in parallel.
func sjClient() *http.Client {
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{}}
}

// sjAwaitForgotten waits until h has forgotten every session, a disconnect
// delay after the last one ended.
func sjAwaitForgotten(t *testing.T, h *sockjsHandler) {
	t.Helper()
	sjWaitFor(t, 3*h.cfg.DisconnectDelay+5*time.Second, "the sessions to be forgotten", func() bool {
		h.mu.Lock()
		defer h.mu.Unlock()
		return h.open == 0 && len(h.sessions) == 0
	})
}

// sjMux routes by the first path segment.
type sjMux map[string]http.Handler

func (m sjMux) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	first, _, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
	if h, ok := m["/"+first]; ok {
		h.ServeHTTP(w, r)
		return
	}
	http.NotFound(w, r)
}

// sjResp is a finished response.
type sjResp struct {
	status int
	header http.Header
	body   string
}

// do sends one request and reads the whole response.
func (s *sjServer) do(t *testing.T, method, path, body string, hdr map[string]string) sjResp {
	t.Helper()
	req, err := http.NewRequest(method, s.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, path, err)
	}
	return sjResp{status: resp.StatusCode, header: resp.Header, body: string(b)}
}

func (s *sjServer) get(t *testing.T, path string) sjResp { return s.do(t, "GET", path, "", nil) }
func (s *sjServer) post(t *testing.T, path, body string) sjResp {
	return s.do(t, "POST", path, body, nil)
}

// postAsync POSTs path and sends the body it got, or "" on error, when the
// response ends (streaming responses: when ctx ends, with what had come).
func (s *sjServer) postAsync(ctx context.Context, path string) <-chan string {
	ch := make(chan string, 1)
	go func() {
		req, err := http.NewRequestWithContext(ctx, "POST", s.URL+path, nil)
		if err != nil {
			ch <- ""
			return
		}
		resp, err := s.client.Do(req)
		if err != nil {
			ch <- ""
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		ch <- string(b)
	}()
	return ch
}

// settle waits until the echo service has handed n bytes to the session at
// u: xhr_send returns once the service has read the message, and its echo
// follows on the service's goroutine, so a poll right after could come
// first.
func (s *sjServer) settle(t *testing.T, u string, n int) {
	t.Helper()
	service, rest, _ := strings.Cut(strings.TrimPrefix(u, "/"), "/")
	id := rest[strings.LastIndex(rest, "/")+1:]
	h := s.handlers["/"+service]
	sjWaitFor(t, 5*time.Second, fmt.Sprintf("%d bytes echoed on %s", n, u), func() bool {
		h.mu.Lock()
		e := h.sessions[id]
		h.mu.Unlock()
		if e == nil {
			return false
		}
		e.pending.mu.Lock()
		defer e.pending.mu.Unlock()
		return e.pending.bytes == n
	})
}

// sjStream is a streaming response read frame by frame.
type sjStream struct {
	resp *http.Response
	br   *bufio.Reader
}

// stream starts a streaming request.
func (s *sjServer) stream(t *testing.T, method, path string, hdr map[string]string) *sjStream {
	t.Helper()
	req, err := http.NewRequest(method, s.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	st := &sjStream{resp: resp, br: bufio.NewReader(resp.Body)}
	t.Cleanup(func() { resp.Body.Close() })
	return st
}

// read reads up to and including delim; at the end of the response it
// returns "" (the suite's "r.read() is None").
func (st *sjStream) read(t *testing.T, delim string) string {
	t.Helper()
	var sb strings.Builder
	for !strings.HasSuffix(sb.String(), delim) {
		b, err := st.br.ReadByte()
		if err == io.EOF && sb.Len() == 0 {
			return ""
		}
		if err != nil {
			t.Fatalf("read stream: %v (have %q)", err, sb.String())
		}
		sb.WriteByte(b)
	}
	return sb.String()
}

func (st *sjStream) close() { st.resp.Body.Close() }

// sjSessionSeq numbers the sessions of the tests.
var sjSessionSeq atomic.Int64

// sjSession is a fresh session's base URL under a service.
func sjSession(service string) string {
	return fmt.Sprintf("%s/000/s%d_%d", service, time.Now().UnixNano(), sjSessionSeq.Add(1))
}

// dial opens a WebSocket to path.
func (s *sjServer) dial(t *testing.T, path string, hdr http.Header) (*websocket.Conn, *http.Response) {
	t.Helper()
	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second}
	c, resp, err := d.Dial("ws"+strings.TrimPrefix(s.URL, "http")+path, hdr)
	if err != nil {
		t.Fatalf("dial %s: %v (response %v)", path, err, resp)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	return c, resp
}

func sjWSRead(t *testing.T, c *websocket.Conn) string {
	t.Helper()
	_, b, err := c.ReadMessage()
	if err != nil {
		t.Fatalf("websocket read: %v", err)
	}
	return string(b)
}

func sjWSSend(t *testing.T, c *websocket.Conn, s string) {
	t.Helper()
	if err := c.WriteMessage(websocket.TextMessage, []byte(s)); err != nil {
		t.Fatalf("websocket write: %v", err)
	}
}

// sjWSClosed asserts the server ends the connection; it returns the close
// error, if the server sent a close frame.
func sjWSClosed(t *testing.T, c *websocket.Conn) error {
	t.Helper()
	for {
		_, m, err := c.ReadMessage()
		if err != nil {
			return err
		}
		if string(m) != "h" {
			t.Fatalf("got message %q, want the connection closed", m)
		}
	}
}

// sjWaitFor polls cond until it holds or the timeout passes.
func sjWaitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Checks shared by the suite's classes.

func sjVerify404(t *testing.T, r sjResp, what string) {
	t.Helper()
	if r.status != 404 {
		t.Errorf("%s: status %d, want 404", what, r.status)
	}
}

func sjVerifyContentType(t *testing.T, r sjResp, want string) {
	t.Helper()
	if got := strings.ReplaceAll(r.header.Get("Content-Type"), " ", ""); got != want {
		t.Errorf("Content-Type %q, want %q", got, want)
	}
}

func sjVerifyNoCookie(t *testing.T, h http.Header) {
	t.Helper()
	if c := h.Get("Set-Cookie"); c != "" {
		t.Errorf("Set-Cookie %q, want none", c)
	}
}

func sjVerifyCORS(t *testing.T, h http.Header, origin string) {
	t.Helper()
	want := origin
	if origin == "" || origin == "null" {
		want = "*"
	}
	if got := h.Get("Access-Control-Allow-Origin"); got != want {
		t.Errorf("Access-Control-Allow-Origin %q, want %q", got, want)
	}
	if got := h.Get("Access-Control-Allow-Credentials"); got != "true" {
		t.Errorf("Access-Control-Allow-Credentials %q, want true", got)
	}
}

func sjVerifyNotCached(t *testing.T, h http.Header) {
	t.Helper()
	if got, want := h.Get("Cache-Control"), "no-store, no-cache, must-revalidate, max-age=0"; got != want {
		t.Errorf("Cache-Control %q, want %q", got, want)
	}
	if h.Get("Expires") != "" || h.Get("Last-Modified") != "" {
		t.Errorf("Expires %q, Last-Modified %q: want neither", h.Get("Expires"), h.Get("Last-Modified"))
	}
}

var sjLongMaxAge = regexp.MustCompile(`max-age=[1-9][0-9]{6}`)

func sjVerifyOptions(t *testing.T, s *sjServer, path, methods string) {
	t.Helper()
	for _, origin := range []string{"", "test", "null"} {
		hdr := map[string]string{}
		if origin != "" {
			hdr["Origin"] = origin
		}
		r := s.do(t, "OPTIONS", path, "", hdr)
		if r.status != 204 {
			t.Errorf("OPTIONS %s (Origin %q): status %d, want 204", path, origin, r.status)
		}
		cc := r.header.Get("Cache-Control")
		if !strings.Contains(cc, "public") || !sjLongMaxAge.MatchString(cc) {
			t.Errorf("OPTIONS %s: Cache-Control %q, want public and a year", path, cc)
		}
		if r.header.Get("Expires") == "" {
			t.Errorf("OPTIONS %s: no Expires", path)
		}
		if age, _ := strconv.Atoi(r.header.Get("Access-Control-Max-Age")); age <= 1000000 {
			t.Errorf("OPTIONS %s: Access-Control-Max-Age %d, want > 1000000", path, age)
		}
		if got := r.header.Get("Access-Control-Allow-Methods"); got != methods {
			t.Errorf("OPTIONS %s: Access-Control-Allow-Methods %q, want %q", path, got, methods)
		}
		if r.body != "" {
			t.Errorf("OPTIONS %s: body %q, want none", path, r.body)
		}
		sjVerifyCORS(t, r.header, origin)
	}
}

// BaseUrlGreeting

func TestSockJSGreeting(t *testing.T) {
	t.Parallel()
	s := newSJServer(t, nil)
	for _, p := range []string{"/echo", "/echo/"} {
		r := s.get(t, p)
		if r.status != 200 || r.body != "Welcome to SockJS!\n" {
			t.Errorf("GET %s: %d %q, want 200 greeting", p, r.status, r.body)
		}
		sjVerifyContentType(t, r, "text/plain;charset=UTF-8")
		sjVerifyNoCookie(t, r.header)
	}
	for _, suffix := range []string{"/a", "/a.html", "//", "///", "/a/a", "/a/a/", "/a/"} {
		sjVerify404(t, s.get(t, "/echo"+suffix), "GET /echo"+suffix)
	}
}

// IframePage

var sjIframeBody = regexp.MustCompile(`^<!DOCTYPE html>
<html>
<head>
  <meta http-equiv="X-UA-Compatible" content="IE=edge" />
  <meta http-equiv="Content-Type" content="text/html; charset=UTF-8" />
  <script>
    document.domain = document.domain;
    _sockjs_onload = function\(\){SockJS.bootstrap_iframe\(\);};
  </script>
  <script src="(?P<sockjs_url>[^"]*)"></script>
</head>
<body>
  <h2>Don't panic!</h2>
  <p>This is a SockJS hidden iframe. It's used for cross domain magic.</p>
</body>
</html>$`)

func TestSockJSIframe(t *testing.T) {
	t.Parallel()
	s := newSJServer(t, nil)
	verify := func(path string) sjResp {
		t.Helper()
		r := s.get(t, path)
		if r.status != 200 {
			t.Fatalf("GET %s: status %d", path, r.status)
		}
		sjVerifyContentType(t, r, "text/html;charset=UTF-8")
		cc := r.header.Get("Cache-Control")
		if !strings.Contains(cc, "public") || !sjLongMaxAge.MatchString(cc) {
			t.Errorf("GET %s: Cache-Control %q", path, cc)
		}
		if r.header.Get("Expires") == "" || r.header.Get("ETag") == "" || r.header.Get("Last-Modified") != "" {
			t.Errorf("GET %s: Expires %q ETag %q Last-Modified %q", path, r.header.Get("Expires"), r.header.Get("ETag"), r.header.Get("Last-Modified"))
		}
		m := sjIframeBody.FindStringSubmatch(strings.TrimSpace(r.body))
		if m == nil {
			t.Fatalf("GET %s: body does not match the protocol's iframe page:\n%s", path, r.body)
		}
		// pushgate: the page loads sockjs-client from the gateway's demo
		// route by default, never from a CDN.
		if m[1] != "/sockjs.min.js" {
			t.Errorf("GET %s: sockjs_url %q, want /sockjs.min.js", path, m[1])
		}
		sjVerifyNoCookie(t, r.header)
		return r
	}
	verify("/echo/iframe.html")
	for _, suffix := range []string{"/iframe-a.html", "/iframe-.html", "/iframe-0.1.2.html", "/iframe-0.1.2abc-dirty.2144.html",
		"/iframe-a.html?t=1234", "/iframe-0.1.2.html?t=123414", "/iframe-0.1.2abc-dirty.2144.html?t=qweqweq123"} {
		verify("/echo" + suffix)
	}
	for _, suffix := range []string{"/iframe.htm", "/iframe", "/IFRAME.HTML", "/IFRAME", "/iframe.HTML", "/iframe.xml", "/iframe-/.html"} {
		sjVerify404(t, s.get(t, "/echo"+suffix), "GET /echo"+suffix)
	}

	// Cacheability.
	r1, r2 := verify("/echo/iframe.html"), verify("/echo/iframe.html")
	etag := r1.header.Get("ETag")
	if etag == "" || etag != r2.header.Get("ETag") {
		t.Fatalf("ETags %q and %q, want equal and set", etag, r2.header.Get("ETag"))
	}
	r := s.do(t, "GET", "/echo/iframe.html", "", map[string]string{"If-None-Match": etag})
	if r.status != 304 || r.header.Get("Content-Type") != "" || r.body != "" {
		t.Errorf("If-None-Match: %d, Content-Type %q, body %q; want 304 with neither", r.status, r.header.Get("Content-Type"), r.body)
	}
	r = s.do(t, "GET", "/echo/iframe.html", "", map[string]string{"If-None-Match": `"other"`})
	if r.status != 200 {
		t.Errorf("If-None-Match with another ETag: status %d, want 200", r.status)
	}

	// pushgate: the ETag follows the page, so a new ClientURL is not hidden
	// behind a year of caching.
	h2, err := newSockJSHandler(SockJSConfig{Prefix: "/echo", ClientURL: "/static/sockjs.min.js"}, sjEcho)
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	h2.ServeHTTP(rec, httptest.NewRequest("GET", "/echo/iframe.html", nil))
	if got := rec.Header().Get("ETag"); got == etag || !strings.Contains(rec.Body.String(), `src="/static/sockjs.min.js"`) {
		t.Errorf("other ClientURL: ETag %q (default page's %q), body %q", got, etag, rec.Body.String())
	}
	if _, err := newSockJSHandler(SockJSConfig{ClientURL: `x"><script>`}, sjEcho); err == nil {
		t.Errorf("a ClientURL with quotes was accepted")
	}
}

// InfoTest

func TestSockJSInfo(t *testing.T) {
	t.Parallel()
	s := newSJServer(t, nil)
	r := s.get(t, "/echo/info")
	if r.status != 200 {
		t.Fatalf("status %d", r.status)
	}
	sjVerifyContentType(t, r, "application/json;charset=UTF-8")
	sjVerifyNoCookie(t, r.header)
	sjVerifyNotCached(t, r.header)
	sjVerifyCORS(t, r.header, "")
	var info struct {
		Websocket    *bool           `json:"websocket"`
		CookieNeeded *bool           `json:"cookie_needed"`
		Origins      []string        `json:"origins"`
		Entropy      json.RawMessage `json:"entropy"`
	}
	if err := json.Unmarshal([]byte(r.body), &info); err != nil {
		t.Fatalf("info %q: %v", r.body, err)
	}
	if info.Websocket == nil || !*info.Websocket || info.CookieNeeded == nil || *info.CookieNeeded ||
		len(info.Origins) != 1 || info.Origins[0] != "*:*" {
		t.Errorf("info %s: want websocket true, cookie_needed false, origins [*:*]", r.body)
	}
	entropy := func(body string) uint64 {
		var v struct {
			Entropy json.Number `json:"entropy"`
		}
		if err := json.Unmarshal([]byte(body), &v); err != nil {
			t.Fatalf("info %q: %v", body, err)
		}
		n, err := strconv.ParseUint(string(v.Entropy), 10, 32)
		if err != nil {
			t.Fatalf("entropy %q is not an integer in [0, 2^32): %v", v.Entropy, err)
		}
		return n
	}
	e1 := entropy(s.get(t, "/echo/info").body)
	e2 := entropy(s.get(t, "/echo/info").body)
	if e1 == e2 {
		t.Errorf("two /info answers carry the same entropy %d", e1)
	}
	sjVerifyOptions(t, s, "/echo/info", "OPTIONS, GET")

	// Origin null: the 0.3.3 suite wants "*", since echoing "null" would
	// be read by browsers as a refusal. pushgate follows it.
	r = s.do(t, "OPTIONS", "/echo/info", "", map[string]string{"Origin": "null"})
	if r.status != 204 || r.body != "" || r.header.Get("Access-Control-Allow-Origin") != "*" {
		t.Errorf("OPTIONS with Origin null: %d %q ACAO %q", r.status, r.body, r.header.Get("Access-Control-Allow-Origin"))
	}

	r = s.get(t, "/disabled_websocket_echo/info")
	if r.status != 200 || !strings.Contains(r.body, `"websocket":false`) {
		t.Errorf("disabled websocket info: %d %s", r.status, r.body)
	}
}

// SessionURLs

func TestSockJSSessionURLs(t *testing.T) {
	t.Parallel()
	s := newSJServer(t, nil)
	for _, part := range []string{"/a/a", "/_/_", "/1/1", "/abcdefgh_i-j%20/abcdefg_i-j%20"} {
		if r := s.post(t, "/echo"+part+"/xhr", ""); r.status != 200 || r.body != "o\n" {
			t.Errorf("POST /echo%s/xhr: %d %q, want 200 o", part, r.status, r.body)
		}
	}
	for _, suffix := range []string{"//", "/a./a", "/a/a.", "/./.", "/", "///"} {
		sjVerify404(t, s.get(t, "/echo"+suffix+"/xhr"), "GET "+suffix)
		sjVerify404(t, s.post(t, "/echo"+suffix+"/xhr", ""), "POST "+suffix)
	}
	// The server id is ignored.
	id := fmt.Sprintf("ignore%d", time.Now().UnixNano())
	if r := s.post(t, "/echo/000/"+id+"/xhr", ""); r.body != "o\n" {
		t.Fatalf("open: %q", r.body)
	}
	if r := s.post(t, "/echo/000/"+id+"/xhr_send", `["a"]`); r.status != 204 || r.body != "" {
		t.Fatalf("send: %d %q", r.status, r.body)
	}
	s.settle(t, "/echo/000/"+id, 1)
	if r := s.post(t, "/echo/999/"+id+"/xhr", ""); r.status != 200 || r.body != "a[\"a\"]\n" {
		t.Errorf("poll on another server id: %d %q", r.status, r.body)
	}
}

// Protocol

func TestSockJSProtocol(t *testing.T) {
	t.Parallel()
	s := newSJServer(t, nil)
	t.Run("simpleSession", func(t *testing.T) {
		u := sjSession("/echo")
		if r := s.post(t, u+"/xhr", ""); r.status != 200 || r.body != "o\n" {
			t.Fatalf("open: %d %q", r.status, r.body)
		}
		if r := s.post(t, u+"/xhr_send", `["a"]`); r.status != 204 || r.body != "" {
			t.Fatalf("send: %d %q", r.status, r.body)
		}
		s.settle(t, u, 1)
		if r := s.post(t, u+"/xhr", ""); r.status != 200 || r.body != "a[\"a\"]\n" {
			t.Fatalf("poll: %d %q", r.status, r.body)
		}
		sjVerify404(t, s.post(t, "/echo/000/bad_session/xhr_send", `["a"]`), "send to an unknown session")

		// Two receiving requests: one of them gets 2010, whichever came
		// second; the other waits for messages.
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		a, b := s.postAsync(ctx, u+"/xhr"), s.postAsync(ctx, u+"/xhr")
		var first string
		select {
		case first = <-a:
		case first = <-b:
		case <-time.After(5 * time.Second):
			t.Fatalf("neither poll was refused")
		}
		if first != "c[2010,\"Another connection still open\"]\n" {
			t.Errorf("second poll got %q", first)
		}
		cancel()
	})
	t.Run("closeSession", func(t *testing.T) {
		u := sjSession("/close")
		if r := s.post(t, u+"/xhr", ""); r.body != "o\n" {
			t.Fatalf("open: %q", r.body)
		}
		for range 2 {
			if r := s.post(t, u+"/xhr", ""); r.status != 200 || r.body != "c[3000,\"Go away!\"]\n" {
				t.Fatalf("poll after close: %d %q", r.status, r.body)
			}
		}
	})
}

// WebsocketHttpErrors

func TestSockJSWebsocketHTTPErrors(t *testing.T) {
	t.Parallel()
	s := newSJServer(t, nil)
	r := s.get(t, "/echo/0/0/websocket")
	if r.status != 400 || !strings.Contains(r.body, `Can "Upgrade" only to "WebSocket".`) {
		t.Errorf("plain GET: %d %q", r.status, r.body)
	}
	r = s.do(t, "GET", "/echo/0/0/websocket", "", map[string]string{"Upgrade": "WebSocket", "Connection": "close"})
	if r.status != 400 || !strings.Contains(r.body, `"Connection" must be "Upgrade".`) {
		t.Errorf("Connection: close: %d %q", r.status, r.body)
	}
	for _, hdr := range []map[string]string{{"Upgrade": "WebSocket", "Connection": "Upgrade"}, {}} {
		r := s.do(t, "POST", "/echo/0/0/websocket", "", hdr)
		if r.status != 405 || r.header.Get("Content-Type") != "" || r.header.Get("Allow") == "" || r.body != "" {
			t.Errorf("POST %v: %d Content-Type %q Allow %q body %q", hdr, r.status, r.header.Get("Content-Type"), r.header.Get("Allow"), r.body)
		}
	}
}

// Websocket (the suite's WebsocketHybi10; see the deviations below)

func TestSockJSWebsocket(t *testing.T) {
	t.Parallel()
	s := newSJServer(t, nil)
	t.Run("transport", func(t *testing.T) {
		c, resp := s.dial(t, sjSession("/echo")+"/websocket", nil)
		if p := resp.Header.Get("Sec-WebSocket-Protocol"); p != "" {
			t.Errorf("subprotocol %q negotiated without one offered", p)
		}
		if m := sjWSRead(t, c); m != "o" {
			t.Fatalf("open frame %q", m)
		}
		sjWSSend(t, c, "") // empty messages are ignored
		sjWSSend(t, c, `["a"]`)
		if m := sjWSRead(t, c); m != `a["a"]` {
			t.Fatalf("echo %q", m)
		}
		sjWSSend(t, c, `"b"`) // a single string, as sockjs-node accepts
		if m := sjWSRead(t, c); m != `a["b"]` {
			t.Fatalf("echo %q", m)
		}
	})
	t.Run("close", func(t *testing.T) {
		c, _ := s.dial(t, sjSession("/close")+"/websocket", nil)
		if m := sjWSRead(t, c); m != "o" {
			t.Fatalf("open frame %q", m)
		}
		if m := sjWSRead(t, c); m != `c[3000,"Go away!"]` {
			t.Fatalf("close frame %q", m)
		}
		err := sjWSClosed(t, c)
		if !websocket.IsCloseError(err, 3000) {
			t.Errorf("close: %v, want a WebSocket close 3000", err)
		}
	})
	t.Run("reuseSessionId", func(t *testing.T) {
		u := sjSession("/echo") + "/websocket"
		c1, _ := s.dial(t, u, nil)
		c2, _ := s.dial(t, u, nil)
		sjWSRead(t, c1)
		sjWSRead(t, c2)
		sjWSSend(t, c1, `["a"]`)
		sjWSSend(t, c2, `["b"]`)
		if m1, m2 := sjWSRead(t, c1), sjWSRead(t, c2); m1 != `a["a"]` || m2 != `a["b"]` {
			t.Fatalf("echo %q %q", m1, m2)
		}
		c1.Close()
		c2.Close()
		c3, _ := s.dial(t, u, nil)
		sjWSRead(t, c3)
		sjWSSend(t, c3, `["a"]`)
		if m := sjWSRead(t, c3); m != `a["a"]` {
			t.Fatalf("echo after reuse %q", m)
		}
	})
	t.Run("brokenJSON", func(t *testing.T) {
		c, _ := s.dial(t, sjSession("/echo")+"/websocket", nil)
		sjWSRead(t, c)
		sjWSSend(t, c, `["a`)
		if err := sjWSClosed(t, c); websocket.IsCloseError(err, websocket.CloseNormalClosure) {
			t.Errorf("broken JSON: clean close %v, want the connection dropped", err)
		}
	})
	t.Run("headersSanity", func(t *testing.T) {
		// Deliberate deviation: only RFC 6455 (version 13). The suite also
		// tries hybi-07/08 and hixie-76, which no browser pushgate supports
		// speaks and gorilla/websocket does not implement.
		for _, v := range []struct {
			version string
			status  int
		}{{"13", 101}, {"8", 400}, {"7", 400}} {
			for _, conn := range []string{"Upgrade", "keep-alive, Upgrade"} {
				raw, err := net.Dial("tcp", s.srv.Listener.Addr().String())
				if err != nil {
					t.Fatal(err)
				}
				fmt.Fprintf(raw, "GET %s HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: %s\r\nSec-WebSocket-Version: %s\r\nSec-WebSocket-Origin: http://asd\r\nSec-WebSocket-Key: x3JJHMbDL1EzLkh9GBhXDw==\r\n\r\n",
					sjSession("/echo")+"/websocket", conn, v.version)
				resp, err := http.ReadResponse(bufio.NewReader(raw), nil)
				if err != nil {
					t.Fatal(err)
				}
				if resp.StatusCode != v.status {
					t.Errorf("version %s, Connection %q: status %d, want %d", v.version, conn, resp.StatusCode, v.status)
				}
				if v.status == 101 {
					if got := resp.Header.Get("Sec-WebSocket-Accept"); got != "HSmrc0sMlYUkAGmm5OPpG2HaGWk=" {
						t.Errorf("Sec-WebSocket-Accept %q", got)
					}
					if !strings.EqualFold(resp.Header.Get("Connection"), "upgrade") || !strings.EqualFold(resp.Header.Get("Upgrade"), "websocket") || resp.Header.Get("Content-Length") != "" {
						t.Errorf("101 headers %v", resp.Header)
					}
				}
				raw.Close()
			}
		}
	})
	t.Run("stompSubprotocol", func(t *testing.T) {
		c, resp := s.dial(t, "/echo/websocket", http.Header{"Sec-WebSocket-Protocol": {"v12.stomp, v11.stomp, v10.stomp"}})
		if p := resp.Header.Get("Sec-WebSocket-Protocol"); p != "v12.stomp" {
			t.Errorf("negotiated %q, want v12.stomp", p)
		}
		c.Close()
		c, resp = s.dial(t, sjSession("/echo")+"/websocket", http.Header{"Sec-WebSocket-Protocol": {"v10.stomp"}})
		if p := resp.Header.Get("Sec-WebSocket-Protocol"); p != "v10.stomp" {
			t.Errorf("negotiated %q, want v10.stomp", p)
		}
		c.Close()
	})
	t.Run("disabled", func(t *testing.T) {
		sjVerify404(t, s.get(t, sjSession("/disabled_websocket_echo")+"/websocket"), "websocket on the disabled service")
		sjVerify404(t, s.get(t, "/disabled_websocket_echo/websocket"), "raw websocket on the disabled service")
	})
}

// XhrPolling

func TestSockJSXhrPolling(t *testing.T) {
	t.Parallel()
	s := newSJServer(t, nil)
	for _, suffix := range []string{"/xhr", "/xhr_send"} {
		sjVerifyOptions(t, s, "/echo/abc/abc"+suffix, "OPTIONS, POST")
	}
	t.Run("transport", func(t *testing.T) {
		u := sjSession("/echo")
		r := s.post(t, u+"/xhr", "")
		if r.status != 200 || r.body != "o\n" {
			t.Fatalf("open: %d %q", r.status, r.body)
		}
		sjVerifyContentType(t, r, "application/javascript;charset=UTF-8")
		sjVerifyCORS(t, r.header, "")
		sjVerifyNotCached(t, r.header)
		r = s.post(t, u+"/xhr_send", `["x"]`)
		if r.status != 204 || r.body != "" {
			t.Fatalf("send: %d %q", r.status, r.body)
		}
		sjVerifyContentType(t, r, "text/plain;charset=UTF-8")
		sjVerifyCORS(t, r.header, "")
		sjVerifyNotCached(t, r.header)
		s.settle(t, u, 1)
		if r := s.post(t, u+"/xhr", ""); r.status != 200 || r.body != "a[\"x\"]\n" {
			t.Fatalf("poll: %d %q", r.status, r.body)
		}
	})
	t.Run("invalidSession", func(t *testing.T) {
		sjVerify404(t, s.post(t, sjSession("/echo")+"/xhr_send", `["x"]`), "send to an unknown session")
	})
	t.Run("invalidJSON", func(t *testing.T) {
		u := sjSession("/echo")
		s.post(t, u+"/xhr", "")
		if r := s.post(t, u+"/xhr_send", `["x`); r.status != 500 || !strings.Contains(r.body, "Broken JSON encoding.") {
			t.Errorf("broken JSON: %d %q", r.status, r.body)
		}
		if r := s.post(t, u+"/xhr_send", ""); r.status != 500 || !strings.Contains(r.body, "Payload expected.") {
			t.Errorf("empty payload: %d %q", r.status, r.body)
		}
		// pushgate: JSON that is not an array of strings is broken too
		// (sockjs-go would let some of it through).
		for _, body := range []string{`{"a":1}`, `[1]`, `["a"] x`, `"a"`} {
			if r := s.post(t, u+"/xhr_send", body); r.status != 500 || !strings.Contains(r.body, "Broken JSON encoding.") {
				t.Errorf("payload %q: %d %q", body, r.status, r.body)
			}
		}
		if r := s.post(t, u+"/xhr_send", `["a"]`); r.status != 204 {
			t.Errorf("good send: %d %q", r.status, r.body)
		}
		s.settle(t, u, 1)
		if r := s.post(t, u+"/xhr", ""); r.body != "a[\"a\"]\n" {
			t.Errorf("poll: %q", r.body)
		}
	})
	t.Run("contentTypes", func(t *testing.T) {
		u := sjSession("/echo")
		s.post(t, u+"/xhr", "")
		ctypes := []string{"text/plain", "T", "application/json", "application/xml", "", "application/json; charset=utf-8", "text/xml; charset=utf-8", "text/xml"}
		for _, ct := range ctypes {
			if r := s.do(t, "POST", u+"/xhr_send", `["a"]`, map[string]string{"Content-Type": ct}); r.status != 204 || r.body != "" {
				t.Errorf("Content-Type %q: %d %q", ct, r.status, r.body)
			}
		}
		want := "a[" + strings.TrimSuffix(strings.Repeat(`"a",`, len(ctypes)), ",") + "]\n"
		s.settle(t, u, len(ctypes))
		if r := s.post(t, u+"/xhr", ""); r.body != want {
			t.Errorf("poll %q, want %q", r.body, want)
		}
	})
	t.Run("requestHeadersCORS", func(t *testing.T) {
		r := s.do(t, "POST", sjSession("/echo")+"/xhr", "", map[string]string{"Access-Control-Request-Headers": "a, b, c"})
		sjVerifyCORS(t, r.header, "")
		if got := r.header.Get("Access-Control-Allow-Headers"); got != "a, b, c" {
			t.Errorf("Access-Control-Allow-Headers %q", got)
		}
		for _, hdr := range []map[string]string{{"Access-Control-Request-Headers": ""}, nil} {
			r := s.do(t, "POST", sjSession("/echo")+"/xhr", "", hdr)
			sjVerifyCORS(t, r.header, "")
			if got := r.header.Get("Access-Control-Allow-Headers"); got != "" {
				t.Errorf("Access-Control-Allow-Headers %q, want none", got)
			}
		}
		r = s.do(t, "POST", sjSession("/echo")+"/xhr", "", map[string]string{"Origin": "https://app.example"})
		sjVerifyCORS(t, r.header, "https://app.example")
	})
}

// XhrStreaming

func TestSockJSXhrStreaming(t *testing.T) {
	t.Parallel()
	s := newSJServer(t, nil)
	sjVerifyOptions(t, s, "/echo/abc/abc/xhr_streaming", "OPTIONS, POST")
	t.Run("transport", func(t *testing.T) {
		u := sjSession("/echo")
		st := s.stream(t, "POST", u+"/xhr_streaming", nil)
		r := sjResp{status: st.resp.StatusCode, header: st.resp.Header}
		if r.status != 200 {
			t.Fatalf("status %d", r.status)
		}
		sjVerifyContentType(t, r, "application/javascript;charset=UTF-8")
		sjVerifyCORS(t, r.header, "")
		sjVerifyNotCached(t, r.header)
		if got := st.read(t, "\n"); got != strings.Repeat("h", 2048)+"\n" {
			t.Fatalf("prelude %q", got)
		}
		if got := st.read(t, "\n"); got != "o\n" {
			t.Fatalf("open %q", got)
		}
		if r := s.post(t, u+"/xhr_send", `["x"]`); r.status != 204 {
			t.Fatalf("send: %d", r.status)
		}
		if got := st.read(t, "\n"); got != "a[\"x\"]\n" {
			t.Fatalf("message %q", got)
		}
	})
	t.Run("responseLimit", func(t *testing.T) {
		u := sjSession("/echo")
		st := s.stream(t, "POST", u+"/xhr_streaming", nil)
		st.read(t, "\n")
		if got := st.read(t, "\n"); got != "o\n" {
			t.Fatalf("open %q", got)
		}
		msg := `"` + strings.Repeat("x", 128) + `"`
		for range 31 {
			if r := s.post(t, u+"/xhr_send", "["+msg+"]"); r.status != 204 {
				t.Fatalf("send: %d", r.status)
			}
			if got := st.read(t, "\n"); got != "a["+msg+"]\n" {
				t.Fatalf("message %q", got)
			}
		}
		if got := st.read(t, "\n"); got != "" {
			t.Fatalf("after 4096 bytes: %q, want the response ended", got)
		}
	})
}

// EventSource

func TestSockJSEventSource(t *testing.T) {
	t.Parallel()
	s := newSJServer(t, nil)
	t.Run("transport", func(t *testing.T) {
		u := sjSession("/echo")
		st := s.stream(t, "GET", u+"/eventsource", nil)
		r := sjResp{status: st.resp.StatusCode, header: st.resp.Header}
		if r.status != 200 {
			t.Fatalf("status %d", r.status)
		}
		sjVerifyContentType(t, r, "text/event-stream;charset=UTF-8")
		sjVerifyNotCached(t, r.header)
		if got := st.read(t, "\r\n"); got != "\r\n" {
			t.Fatalf("prelude %q", got)
		}
		if got := st.read(t, "\r\n\r\n"); got != "data: o\r\n\r\n" {
			t.Fatalf("open %q", got)
		}
		s.post(t, u+"/xhr_send", `["x"]`)
		if got := st.read(t, "\r\n\r\n"); got != "data: a[\"x\"]\r\n\r\n" {
			t.Fatalf("message %q", got)
		}
		s.post(t, u+"/xhr_send", `["  \u0000\n\r "]`)
		if got := st.read(t, "\r\n\r\n"); got != `data: a["  \u0000\n\r "]`+"\r\n\r\n" {
			t.Fatalf("escaped message %q", got)
		}
		// sockjs-go also %-escapes "%" (sockjs-client decodeURIs the data);
		// the 0.3.3 suite sends none.
		s.post(t, u+"/xhr_send", `["100%"]`)
		if got := st.read(t, "\r\n\r\n"); got != `data: a["100%25"]`+"\r\n\r\n" {
			t.Fatalf("percent %q", got)
		}
	})
	t.Run("responseLimit", func(t *testing.T) {
		u := sjSession("/echo")
		st := s.stream(t, "GET", u+"/eventsource", nil)
		st.read(t, "\r\n")
		st.read(t, "\r\n\r\n")
		msg := `"` + strings.Repeat("x", 4096) + `"`
		s.post(t, u+"/xhr_send", "["+msg+"]")
		if got := st.read(t, "\r\n\r\n"); got != "data: a["+msg+"]\r\n\r\n" {
			t.Fatalf("message of %d bytes", len(got))
		}
		if got := st.read(t, "\n"); got != "" {
			t.Fatalf("after 4096 bytes: %q, want the response ended", got)
		}
	})
}

// HtmlFile

const sjHtmlfileHead = `<!doctype html>
<html><head>
  <meta http-equiv="X-UA-Compatible" content="IE=edge" />
  <meta http-equiv="Content-Type" content="text/html; charset=UTF-8" />
</head><body><h2>Don't panic!</h2>
  <script>
    document.domain = document.domain;
    var c = parent.%s;
    c.start();
    function p(d) {c.message(d);};
    window.onload = function() {c.stop();};
  </script>`

func TestSockJSHtmlFile(t *testing.T) {
	t.Parallel()
	s := newSJServer(t, nil)
	t.Run("transport", func(t *testing.T) {
		u := sjSession("/echo")
		st := s.stream(t, "GET", u+"/htmlfile?c=%63allback", nil)
		r := sjResp{status: st.resp.StatusCode, header: st.resp.Header}
		if r.status != 200 {
			t.Fatalf("status %d", r.status)
		}
		sjVerifyContentType(t, r, "text/html;charset=UTF-8")
		sjVerifyNotCached(t, r.header)
		head := st.read(t, "\r\n\r\n")
		if strings.TrimSpace(head) != fmt.Sprintf(sjHtmlfileHead, "callback") || len(head) <= 1024 {
			t.Fatalf("head (%d bytes) %q", len(head), head)
		}
		if got := st.read(t, "\r\n"); got != "<script>\np(\"o\");\n</script>\r\n" {
			t.Fatalf("open %q", got)
		}
		s.post(t, u+"/xhr_send", `["x"]`)
		if got := st.read(t, "\r\n"); got != "<script>\np(\"a[\\\"x\\\"]\");\n</script>\r\n" {
			t.Fatalf("message %q", got)
		}
	})
	t.Run("noCallback", func(t *testing.T) {
		if r := s.get(t, "/echo/a/a/htmlfile"); r.status != 500 || !strings.Contains(r.body, `"callback" parameter required`) {
			t.Errorf("%d %q", r.status, r.body)
		}
	})
	t.Run("invalidCallback", func(t *testing.T) {
		// pushgate also refuses "-", which 0.3.3 allows: sockjs-go, which
		// writes the response, refuses it, and sockjs-client never uses it.
		for _, cb := range []string{"%20", "a-b", "alert(1)", "x%3Bdocument.cookie", "%C3%A9"} {
			if r := s.get(t, sjSession("/echo")+"/htmlfile?c="+cb); r.status != 500 || !strings.Contains(r.body, `invalid "callback" parameter`) {
				t.Errorf("callback %q: %d %q", cb, r.status, r.body)
			}
		}
	})
	t.Run("responseLimit", func(t *testing.T) {
		u := sjSession("/echo")
		st := s.stream(t, "GET", u+"/htmlfile?c=callback", nil)
		st.read(t, "\r\n\r\n")
		if got := st.read(t, "\r\n"); got != "<script>\np(\"o\");\n</script>\r\n" {
			t.Fatalf("open %q", got)
		}
		msg := strings.Repeat("x", 4096)
		s.post(t, u+"/xhr_send", `["`+msg+`"]`)
		if got := st.read(t, "\r\n"); got != "<script>\np(\"a[\\\""+msg+"\\\"]\");\n</script>\r\n" {
			t.Fatalf("message of %d bytes", len(got))
		}
		if got := st.read(t, "\n"); got != "" {
			t.Fatalf("after 4096 bytes: %q, want the response ended", got)
		}
	})
}

// JsonPolling

func TestSockJSJsonp(t *testing.T) {
	t.Parallel()
	s := newSJServer(t, nil)
	form := map[string]string{"Content-Type": "application/x-www-form-urlencoded"}
	t.Run("transport", func(t *testing.T) {
		u := sjSession("/echo")
		r := s.get(t, u+"/jsonp?c=%63allback")
		if r.status != 200 || r.body != "callback(\"o\");\r\n" {
			t.Fatalf("open: %d %q", r.status, r.body)
		}
		sjVerifyContentType(t, r, "application/javascript;charset=UTF-8")
		sjVerifyNotCached(t, r.header)
		r = s.do(t, "POST", u+"/jsonp_send", "d=%5B%22x%22%5D", form)
		if r.status != 200 || r.body != "ok" {
			t.Fatalf("send: %d %q", r.status, r.body)
		}
		sjVerifyContentType(t, r, "text/plain;charset=UTF-8")
		sjVerifyNotCached(t, r.header)
		s.settle(t, u, 1)
		if r := s.get(t, u+"/jsonp?c=%63allback"); r.body != "callback(\"a[\\\"x\\\"]\");\r\n" {
			t.Fatalf("poll %q", r.body)
		}
	})
	t.Run("noCallback", func(t *testing.T) {
		if r := s.get(t, "/echo/a/a/jsonp"); r.status != 500 || !strings.Contains(r.body, `"callback" parameter required`) {
			t.Errorf("%d %q", r.status, r.body)
		}
		if r := s.get(t, "/echo/a/a/jsonp?c=%20"); r.status != 500 || !strings.Contains(r.body, `invalid "callback" parameter`) {
			t.Errorf("%d %q", r.status, r.body)
		}
	})
	t.Run("invalidJSON", func(t *testing.T) {
		u := sjSession("/echo")
		if r := s.get(t, u+"/jsonp?c=x"); r.body != "x(\"o\");\r\n" {
			t.Fatalf("open %q", r.body)
		}
		if r := s.do(t, "POST", u+"/jsonp_send", "d=%5B%22x", form); r.status != 500 || !strings.Contains(r.body, "Broken JSON encoding.") {
			t.Errorf("broken: %d %q", r.status, r.body)
		}
		for _, data := range []string{"", "d=", "p=p"} {
			if r := s.do(t, "POST", u+"/jsonp_send", data, form); r.status != 500 || !strings.Contains(r.body, "Payload expected.") {
				t.Errorf("payload %q: %d %q", data, r.status, r.body)
			}
		}
		if r := s.do(t, "POST", u+"/jsonp_send", "d=%5B%22b%22%5D", form); r.body != "ok" {
			t.Errorf("send %q", r.body)
		}
		s.settle(t, u, 1)
		if r := s.get(t, u+"/jsonp?c=x"); r.body != "x(\"a[\\\"b\\\"]\");\r\n" {
			t.Errorf("poll %q", r.body)
		}
	})
	t.Run("contentTypes", func(t *testing.T) {
		u := sjSession("/echo")
		s.get(t, u+"/jsonp?c=x")
		if r := s.do(t, "POST", u+"/jsonp_send", "d=%5B%22abc%22%5D", form); r.body != "ok" {
			t.Errorf("form send %q", r.body)
		}
		if r := s.do(t, "POST", u+"/jsonp_send", `["%61bc"]`, map[string]string{"Content-Type": "text/plain"}); r.body != "ok" {
			t.Errorf("plain send %q", r.body)
		}
		s.settle(t, u, 8)
		if r := s.get(t, u+"/jsonp?c=x"); r.body != "x(\"a[\\\"abc\\\",\\\"%61bc\\\"]\");\r\n" {
			t.Errorf("poll %q", r.body)
		}
	})
	t.Run("close", func(t *testing.T) {
		u := sjSession("/close")
		if r := s.get(t, u+"/jsonp?c=x"); r.body != "x(\"o\");\r\n" {
			t.Fatalf("open %q", r.body)
		}
		for range 2 {
			if r := s.get(t, u+"/jsonp?c=x"); r.body != "x(\"c[3000,\\\"Go away!\\\"]\");\r\n" {
				t.Fatalf("poll after close %q", r.body)
			}
		}
	})
}

// JsessionidCookie

func TestSockJSJsessionID(t *testing.T) {
	t.Parallel()
	s := newSJServer(t, nil)
	r := s.get(t, "/cookie_needed_echo/info")
	if r.status != 200 || !strings.Contains(r.body, `"cookie_needed":true`) {
		t.Fatalf("info: %d %s", r.status, r.body)
	}
	sjVerifyNoCookie(t, r.header) // pushgate strips the cookie sockjs-go sets on /info
	verify := func(h http.Header, want string) {
		t.Helper()
		parts := strings.Split(h.Get("Set-Cookie"), ";")
		if len(parts) < 2 || strings.TrimSpace(parts[0]) != "JSESSIONID="+want || strings.ToLower(strings.TrimSpace(parts[1])) != "path=/" {
			t.Errorf("Set-Cookie %q, want JSESSIONID=%s; path=/", h.Get("Set-Cookie"), want)
		}
	}
	r = s.post(t, sjSession("/cookie_needed_echo")+"/xhr", "")
	if r.body != "o\n" {
		t.Fatalf("xhr %q", r.body)
	}
	verify(r.header, "dummy")
	r = s.do(t, "POST", sjSession("/cookie_needed_echo")+"/xhr", "", map[string]string{"Cookie": "JSESSIONID=abcdef"})
	verify(r.header, "abcdef")
	st := s.stream(t, "POST", sjSession("/cookie_needed_echo")+"/xhr_streaming", nil)
	verify(st.resp.Header, "dummy")
	st = s.stream(t, "GET", sjSession("/cookie_needed_echo")+"/eventsource", nil)
	verify(st.resp.Header, "dummy")
	st = s.stream(t, "GET", sjSession("/cookie_needed_echo")+"/htmlfile?c=%63allback", nil)
	verify(st.resp.Header, "dummy")
	u := sjSession("/cookie_needed_echo")
	r = s.get(t, u+"/jsonp?c=%63allback")
	if r.body != "callback(\"o\");\r\n" {
		t.Fatalf("jsonp %q", r.body)
	}
	verify(r.header, "dummy")
	r = s.do(t, "POST", u+"/jsonp_send", "d=%5B%22x%22%5D", map[string]string{"Content-Type": "application/x-www-form-urlencoded"})
	if r.status != 200 || r.body != "ok" {
		t.Fatalf("jsonp_send %d %q", r.status, r.body)
	}
	verify(r.header, "dummy")
	// Off by default.
	sjVerifyNoCookie(t, s.post(t, sjSession("/echo")+"/xhr", "").header)
}

// RawWebsocket

func TestSockJSRawWebsocket(t *testing.T) {
	t.Parallel()
	s := newSJServer(t, nil)
	c, _ := s.dial(t, "/echo/websocket", nil)
	sjWSSend(t, c, "Hello world!\uffff")
	if m := sjWSRead(t, c); m != "Hello world!\uffff" {
		t.Errorf("echo %q", m)
	}
	c, _ = s.dial(t, "/close/websocket", nil)
	if err := sjWSClosed(t, c); !websocket.IsCloseError(err, 3000) {
		t.Errorf("close service: %v, want close 3000", err)
	}
}

// JSONEncoding

// sjServerKillerString is the suite's server_killer_string: every character
// from U+00FF up that the server must escape, as the escapes it must send.
func sjServerKillerString() (raw, escaped string) {
	var r, e strings.Builder
	for c := rune(255); c < 65536; c++ {
		if c >= 0xd800 && c <= 0xdfff {
			continue // surrogates: not characters, and not in the server's set
		}
		if sockjsMustEscape(c) {
			r.WriteRune(c)
			fmt.Fprintf(&e, `\u%04x`, c)
		}
	}
	return r.String(), e.String()
}

func TestSockJSJSONEncoding(t *testing.T) {
	t.Parallel()
	s := newSJServer(t, nil)
	raw, escaped := sjServerKillerString()
	if !strings.Contains(escaped, `\u200c`) || !strings.Contains(escaped, `\uffff`) || !strings.Contains(escaped, `\u2028`) {
		t.Fatalf("killer string %q lacks the protocol's ranges", escaped)
	}
	t.Run("xhrServerEncodes", func(t *testing.T) {
		u := sjSession("/echo")
		s.post(t, u+"/xhr", "")
		if r := s.post(t, u+"/xhr_send", `["`+raw+`"]`); r.status != 204 {
			t.Fatalf("send: %d %q", r.status, r.body)
		}
		s.settle(t, u, len(raw))
		r := s.post(t, u+"/xhr", "")
		body := strings.TrimSpace(r.body)
		if len(body) < 5 || body[3:len(body)-2] != escaped {
			t.Errorf("server sent %q, want %q", body, `a["`+escaped+`"]`)
		}
	})
	t.Run("otherTransportsEncode", func(t *testing.T) {
		u := sjSession("/echo")
		st := s.stream(t, "GET", u+"/eventsource", nil)
		st.read(t, "\r\n")
		st.read(t, "\r\n\r\n")
		s.post(t, u+"/xhr_send", `["`+raw+`"]`)
		if got := st.read(t, "\r\n\r\n"); got != `data: a["`+escaped+`"]`+"\r\n\r\n" {
			t.Errorf("eventsource sent %q", got)
		}
		c, _ := s.dial(t, sjSession("/echo")+"/websocket", nil)
		sjWSRead(t, c)
		q, _ := json.Marshal([]string{raw})
		sjWSSend(t, c, string(q))
		if got := sjWSRead(t, c); got != `a["`+escaped+`"]` {
			t.Errorf("websocket sent %q", got)
		}
	})
	t.Run("xhrServerDecodes", func(t *testing.T) {
		// A sample of the suite's escapable_by_client ranges, sent escaped.
		var sb strings.Builder
		for _, rg := range [][2]rune{{0, 0x1f}, {'"', '"'}, {'\\', '\\'}, {0x7f, 0x9f}, {0xad, 0xad}, {0x300, 0x333}, {0x600, 0x604},
			{0x70f, 0x70f}, {0x17b4, 0x17b5}, {0x2000, 0x20ff}, {0xfeff, 0xfeff}, {0xf900, 0xfa0d}, {0xfb1d, 0xfb1d}, {0xfff0, 0xffff}} {
			for c := rg[0]; c <= rg[1]; c++ {
				fmt.Fprintf(&sb, `\u%04x`, c)
			}
		}
		esc := `"` + sb.String() + `"`
		u := sjSession("/echo")
		s.post(t, u+"/xhr", "")
		if r := s.post(t, u+"/xhr_send", "["+esc+"]"); r.status != 204 {
			t.Fatalf("send: %d %q", r.status, r.body)
		}
		var got, want string
		_ = json.Unmarshal([]byte(esc), &want)
		s.settle(t, u, len(want))
		body := strings.TrimSpace(s.post(t, u+"/xhr", "").body)
		if err := json.Unmarshal([]byte(body[2:len(body)-1]), &got); err != nil {
			t.Fatalf("echo %q: %v", body, err)
		}
		if got != want {
			t.Errorf("echo decodes to %q, want %q", got, want)
		}
	})
}

// HandlingClose

func TestSockJSHandlingClose(t *testing.T) {
	t.Parallel()
	s := newSJServer(t, nil)
	t.Run("closeFrame", func(t *testing.T) {
		u := sjSession("/close")
		r1 := s.stream(t, "POST", u+"/xhr_streaming", nil)
		r1.read(t, "\n")
		if got := r1.read(t, "\n"); got != "o\n" {
			t.Fatalf("open %q", got)
		}
		if got := r1.read(t, "\n"); got != "c[3000,\"Go away!\"]\n" {
			t.Fatalf("close %q", got)
		}
		r2 := s.stream(t, "POST", u+"/xhr_streaming", nil)
		r2.read(t, "\n")
		if got := r2.read(t, "\n"); got != "c[3000,\"Go away!\"]\n" {
			t.Fatalf("second request %q", got)
		}
		if a, b := r1.read(t, "\n"), r2.read(t, "\n"); a != "" || b != "" {
			t.Errorf("after close: %q %q, want both ended", a, b)
		}
	})
	t.Run("closeRequest", func(t *testing.T) {
		u := sjSession("/echo")
		r1 := s.stream(t, "POST", u+"/xhr_streaming", nil)
		r1.read(t, "\n")
		if got := r1.read(t, "\n"); got != "o\n" {
			t.Fatalf("open %q", got)
		}
		r2 := s.stream(t, "POST", u+"/xhr_streaming", nil)
		r2.read(t, "\n")
		if got := r2.read(t, "\n"); got != "c[2010,\"Another connection still open\"]\n" {
			t.Fatalf("second request %q", got)
		}
		if got := r2.read(t, "\n"); got != "" {
			t.Errorf("second request went on: %q", got)
		}
	})
	// After a receiving request is aborted by the network, the next one
	// opens a new session or gets 1002.
	afterAbort := func(t *testing.T, h *sockjsHandler, u, transport string) {
		t.Helper()
		sjWaitFor(t, 5*time.Second, "the aborted session to close", func() bool { return h.openSessions() == 0 })
		// sockjs-go forgets a closed session an instant after it closes; a
		// request in that instant would wait for a heartbeat, hence the
		// short timeout and the retry.
		sjWaitFor(t, 10*time.Second, "a new session or 1002", func() bool {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			body := strings.TrimPrefix(<-s.postAsync(ctx, u+"/"+transport), strings.Repeat("h", 2048)+"\n")
			switch {
			case strings.HasPrefix(body, "o\n"), strings.HasPrefix(body, "c[1002,\"Connection interrupted\"]\n"):
				return true
			case body == "" || strings.HasPrefix(body, "c[2010,"):
				return false
			}
			t.Fatalf("after abort: %q", body)
			return false
		})
	}
	t.Run("abortXhrStreaming", func(t *testing.T) {
		u := sjSession("/echo")
		r1 := s.stream(t, "POST", u+"/xhr_streaming", nil)
		r1.read(t, "\n")
		if got := r1.read(t, "\n"); got != "o\n" {
			t.Fatalf("open %q", got)
		}
		r2 := s.stream(t, "POST", u+"/xhr_streaming", nil)
		r2.read(t, "\n")
		if got := r2.read(t, "\n"); got != "c[2010,\"Another connection still open\"]\n" {
			t.Fatalf("second request %q", got)
		}
		if got := r2.read(t, "\n"); got != "" {
			t.Fatalf("second request went on: %q", got)
		}
		r1.close()
		afterAbort(t, s.handlers["/echo"], u, "xhr_streaming")
	})
	t.Run("abortXhrPolling", func(t *testing.T) {
		u := sjSession("/echo")
		if r := s.post(t, u+"/xhr", ""); r.body != "o\n" {
			t.Fatalf("open %q", r.body)
		}
		ctx, cancel := context.WithCancel(context.Background())
		a, b := s.postAsync(ctx, u+"/xhr"), s.postAsync(ctx, u+"/xhr")
		var first string
		select {
		case first = <-a:
		case first = <-b:
		case <-time.After(5 * time.Second):
			t.Fatalf("neither poll was refused")
		}
		if first != "c[2010,\"Another connection still open\"]\n" {
			t.Fatalf("second poll got %q", first)
		}
		cancel() // aborts the waiting poll
		afterAbort(t, s.handlers["/echo"], u, "xhr")
	})
}

// Http10 and Http11

// sjRaw sends one raw request on a new connection and returns the reader.
func sjRaw(t *testing.T, s *sjServer, req string) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.Dial("tcp", s.srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	return c, bufio.NewReader(c)
}

func TestSockJSHTTP10(t *testing.T) {
	t.Parallel()
	s := newSJServer(t, nil)
	t.Run("synchronous", func(t *testing.T) {
		_, br := sjRaw(t, s, "GET /echo HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n")
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != 200 || len(resp.TransferEncoding) != 0 {
			t.Fatalf("status %d, Transfer-Encoding %v", resp.StatusCode, resp.TransferEncoding)
		}
		if resp.ContentLength != 19 && !strings.EqualFold(resp.Header.Get("Connection"), "close") {
			t.Errorf("neither Content-Length 19 (%d) nor Connection: close", resp.ContentLength)
		}
		if b, _ := io.ReadAll(resp.Body); string(b) != "Welcome to SockJS!\n" {
			t.Errorf("body %q", b)
		}
	})
	t.Run("streaming", func(t *testing.T) {
		u := sjSession("/close")
		_, br := sjRaw(t, s, "POST "+u+"/xhr_streaming HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n")
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != 200 || len(resp.TransferEncoding) != 0 || resp.Header.Get("Content-Length") != "" {
			t.Fatalf("status %d, Transfer-Encoding %v, Content-Length %q", resp.StatusCode, resp.TransferEncoding, resp.Header.Get("Content-Length"))
		}
		b, err := io.ReadAll(resp.Body) // ends only when the server closes
		if err != nil {
			t.Fatal(err)
		}
		if want := strings.Repeat("h", 2048) + "\no\nc[3000,\"Go away!\"]\n"; string(b) != want {
			t.Errorf("body %q", b)
		}
	})
}

func TestSockJSHTTP11(t *testing.T) {
	t.Parallel()
	s := newSJServer(t, nil)
	t.Run("synchronous", func(t *testing.T) {
		c, br := sjRaw(t, s, "GET /echo HTTP/1.1\r\nHost: x\r\nConnection: Keep-Alive\r\n\r\n")
		for i := range 2 {
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatal(err)
			}
			conn := strings.ToLower(resp.Header.Get("Connection"))
			if resp.StatusCode != 200 || (conn != "" && conn != "keep-alive") {
				t.Fatalf("status %d, Connection %q", resp.StatusCode, conn)
			}
			if resp.ContentLength != 19 && (len(resp.TransferEncoding) == 0 || resp.TransferEncoding[0] != "chunked") {
				t.Errorf("neither Content-Length 19 nor chunked")
			}
			if b, _ := io.ReadAll(resp.Body); string(b) != "Welcome to SockJS!\n" {
				t.Errorf("body %q", b)
			}
			resp.Body.Close()
			if i == 0 { // the same connection serves another request
				io.WriteString(c, "GET /echo HTTP/1.1\r\nHost: x\r\nConnection: Keep-Alive\r\n\r\n")
			}
		}
	})
	t.Run("streaming", func(t *testing.T) {
		u := sjSession("/close")
		_, br := sjRaw(t, s, "POST "+u+"/xhr_streaming HTTP/1.1\r\nHost: x\r\nConnection: Keep-Alive\r\n\r\n")
		line, _ := br.ReadString('\n')
		hdr := map[string]string{}
		for {
			l, err := br.ReadString('\n')
			if err != nil {
				t.Fatal(err)
			}
			if l == "\r\n" {
				break
			}
			k, v, _ := strings.Cut(strings.TrimSpace(l), ":")
			hdr[strings.ToLower(k)] = strings.TrimSpace(v)
		}
		if !strings.Contains(line, "200") || hdr["transfer-encoding"] != "chunked" || hdr["content-length"] != "" {
			t.Fatalf("%q %v", line, hdr)
		}
		chunk := func() string {
			size, err := br.ReadString('\n')
			if err != nil {
				t.Fatal(err)
			}
			n, err := strconv.ParseInt(strings.TrimSpace(size), 16, 64)
			if err != nil {
				t.Fatalf("chunk size %q", size)
			}
			b := make([]byte, n+2)
			if _, err := io.ReadFull(br, b); err != nil {
				t.Fatal(err)
			}
			return string(b[:n])
		}
		if c := chunk(); c[0] != 'h' {
			t.Errorf("prelude chunk %q", c)
		}
		if c := chunk(); c != "o\n" {
			t.Errorf("open chunk %q", c)
		}
		if c := chunk(); c != "c[3000,\"Go away!\"]\n" {
			t.Errorf("close chunk %q", c)
		}
		if c := chunk(); c != "" {
			t.Errorf("last chunk %q", c)
		}
	})
}

// pushgate's own checks.

func TestSockJSTransportNames(t *testing.T) {
	t.Parallel()
	names := make(chan string, 16)
	h, err := newSockJSHandler(SockJSConfig{Prefix: "/ws", DisconnectDelay: 200 * time.Millisecond}, func(tr Transport, r *http.Request, recv func() ([]byte, error)) {
		names <- tr.Name()
		sjEcho(tr, r, recv)
	})
	if err != nil {
		t.Fatal(err)
	}
	s := sjServe(t, h)
	check := func(want string) {
		t.Helper()
		select {
		case got := <-names:
			if got != want {
				t.Errorf("Name() = %q, want %q", got, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("no session for %s", want)
		}
	}
	s.post(t, sjSession("/ws")+"/xhr", "")
	check("sockjs-xhr-polling")
	st := s.stream(t, "POST", sjSession("/ws")+"/xhr_streaming", nil)
	check("sockjs-xhr-streaming")
	st.close()
	st = s.stream(t, "GET", sjSession("/ws")+"/eventsource", nil)
	check("sockjs-eventsource")
	st.close()
	st = s.stream(t, "GET", sjSession("/ws")+"/htmlfile?c=x", nil)
	check("sockjs-htmlfile")
	st.close()
	s.get(t, sjSession("/ws")+"/jsonp?c=x")
	check("sockjs-jsonp-polling")
	c, _ := s.dial(t, sjSession("/ws")+"/websocket", nil)
	check("sockjs-websocket")
	c.Close()
	c, _ = s.dial(t, "/ws/websocket", nil)
	check("sockjs-rawwebsocket")
	c.Close()
}

func TestSockJSCloseCodes(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		code       int
		reason     string
		wantCode   int
		wantReason string
	}{
		{CloseNormal, "", 1000, "Normal closure"},
		{CloseGoingAway, "Server shutting down", 3000, "Server shutting down"},
		{CloseProtocolError, "ERROR sent", 3002, "ERROR sent"},
		{1008, "", 3008, "Go away!"},
		{1009, "too big", 3009, "too big"},
		{1011, "oops", 3011, "oops"},
		{CloseServerShutdown, "Go away!", 3000, "Go away!"},
		{4321, "app", 4321, "app"},
		{2010, "not ours", 3000, "not ours"},
		{0, "", 3000, "Go away!"},
		{5000, "x", 3000, "x"},
	} {
		code, reason := sockjsCloseCode(tc.code, tc.reason)
		if code != tc.wantCode || reason != tc.wantReason {
			t.Errorf("sockjsCloseCode(%d, %q) = %d, %q; want %d, %q", tc.code, tc.reason, code, reason, tc.wantCode, tc.wantReason)
		}
	}

	// Over the wire: after a STOMP ERROR the session layer closes with 1002.
	closer := func(tr Transport, _ *http.Request, recv func() ([]byte, error)) {
		if _, err := recv(); err != nil {
			return
		}
		_ = tr.Write([]byte("ERROR\nmessage:bad\n\n\x00"))
		_ = tr.Close(CloseProtocolError, "bad frame")
	}
	h, err := newSockJSHandler(SockJSConfig{Prefix: "/ws", DisconnectDelay: 200 * time.Millisecond}, closer)
	if err != nil {
		t.Fatal(err)
	}
	s := sjServe(t, h)
	u := sjSession("/ws")
	s.post(t, u+"/xhr", "")
	s.post(t, u+"/xhr_send", `["x"]`)
	sjWaitFor(t, 5*time.Second, "the close frame", func() bool {
		r := s.post(t, u+"/xhr", "")
		return strings.Contains(r.body, `c[3002,"bad frame"]`)
	})
	c, _ := s.dial(t, sjSession("/ws")+"/websocket", nil)
	sjWSRead(t, c)
	sjWSSend(t, c, `["x"]`)
	if m := sjWSRead(t, c); m != `a["ERROR\nmessage:bad\n\n\u0000"]` {
		t.Errorf("error frame %q", m)
	}
	if m := sjWSRead(t, c); m != `c[3002,"bad frame"]` {
		t.Errorf("close frame %q", m)
	}
	c, _ = s.dial(t, "/ws/websocket", nil)
	sjWSSend(t, c, "x")
	sjWSRead(t, c)
	if err := sjWSClosed(t, c); !websocket.IsCloseError(err, 1002) {
		t.Errorf("raw websocket close %v, want 1002 as given", err)
	}
}

func TestSockJSHostileInput(t *testing.T) {
	t.Parallel()
	s := newSJServer(t, func(c *SockJSConfig) { c.MaxMessageBytes = 1024 })
	u := sjSession("/echo")
	s.post(t, u+"/xhr", "")
	big := `["` + strings.Repeat("x", 2000) + `"]`
	if r := s.post(t, u+"/xhr_send", big); r.status != 413 {
		t.Errorf("oversized xhr_send: %d %q", r.status, r.body)
	}
	if r := s.do(t, "POST", u+"/jsonp_send", "d="+big, map[string]string{"Content-Type": "application/x-www-form-urlencoded"}); r.status != 413 {
		t.Errorf("oversized jsonp_send: %d %q", r.status, r.body)
	}
	if r := s.post(t, u+"/xhr_send", `["`+strings.Repeat("x", 1000)+`"]`); r.status != 204 {
		t.Errorf("send under the limit: %d %q", r.status, r.body)
	}
	if r := s.post(t, u+"/xhr_send", "[\"a\""); r.status != 500 || !strings.Contains(r.body, "Broken JSON encoding.") {
		t.Errorf("broken JSON: %d %q", r.status, r.body)
	}
	if r := s.post(t, u+"/xhr_send", ""); r.status != 500 || !strings.Contains(r.body, "Payload expected.") {
		t.Errorf("empty payload: %d %q", r.status, r.body)
	}
	if r := s.get(t, sjSession("/echo")+"/jsonp?c=a%22)alert(1)//"); r.status != 500 || !strings.Contains(r.body, `invalid "callback" parameter`) {
		t.Errorf("script in callback: %d %q", r.status, r.body)
	}
	// An oversized WebSocket message closes the connection with 1009.
	c, _ := s.dial(t, sjSession("/echo")+"/websocket", nil)
	sjWSRead(t, c)
	sjWSSend(t, c, big)
	if err := sjWSClosed(t, c); !websocket.IsCloseError(err, websocket.CloseMessageTooBig) {
		t.Errorf("oversized websocket message: %v, want close 1009", err)
	}
}

// TestSockJSAbandonedSessions is not parallel: it measures the heap, which
// other tests would disturb (parallel tests wait until it is done).
func TestSockJSAbandonedSessions(t *testing.T) {
	const (
		n     = 10000
		delay = 2 * time.Second
	)
	h, err := newSockJSHandler(SockJSConfig{Prefix: "/ws", DisconnectDelay: delay, MaxSessions: n}, sjEcho)
	if err != nil {
		t.Fatal(err)
	}
	sh := h.(*sockjsHandler)
	defer func() { _ = sh.shutdown(context.Background(), CloseServerShutdown, "test over") }()

	heap := func() uint64 {
		runtime.GC()
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	// open opens sessions [from, to) with an xhr poll each and abandons
	// them. The requests go straight to the handler, so that all of them
	// are open at once within the disconnect delay.
	var retries atomic.Int64
	open := func(from, to int) {
		var wg sync.WaitGroup
		var failed atomic.Int64
		next := atomic.Int64{}
		next.Store(int64(from))
		for range 16 {
			wg.Go(func() {
				for {
					i := next.Add(1) - 1
					if i >= int64(to) {
						return
					}
					// A machine stalled for longer than the disconnect delay
					// can fail an open (sockjs-go's timer runs from the
					// session's creation, see release); like a client, retry
					// with a new id, and count it.
					ok := false
					for attempt := 0; attempt < 3 && !ok; attempt++ {
						rec := httptest.NewRecorder()
						h.ServeHTTP(rec, httptest.NewRequest("POST", fmt.Sprintf("/ws/000/abandoned%d_%d/xhr", i, attempt), nil))
						if ok = rec.Body.String() == "o\n"; !ok {
							t.Logf("session %d, attempt %d: %d %q", i, attempt, rec.Code, rec.Body.String())
							retries.Add(1)
						}
					}
					if !ok {
						failed.Add(1)
					}
				}
			})
		}
		wg.Wait()
		if f := failed.Load(); f > 0 {
			t.Fatalf("%d of %d session opens failed", f, to-from)
		}
		if r := retries.Load(); r > n/100 {
			t.Fatalf("%d session opens needed a retry", r)
		}
	}
	gone := func() bool {
		sh.mu.Lock()
		defer sh.mu.Unlock()
		// pushgate keeps an entry a disconnect delay after a session ends
		// (see release).
		return sh.open == 0 && len(sh.sessions) == 0
	}
	// A first round, so that the baseline includes what the runtime keeps
	// for good once n sessions' goroutines have existed (it never frees a
	// goroutine's descriptor, it reuses it), and the maps' grown tables.
	open(n, 2*n)
	sjWaitFor(t, 4*delay+20*time.Second, "the first round to expire", gone)
	before := heap()

	start := time.Now()
	open(200, n)
	opened, elapsed := sh.openSessions(), time.Since(start)
	peak := heap()
	if elapsed < delay && opened != n-200 {
		t.Errorf("openSessions() = %d right after opening %d in %v", opened, n-200, elapsed)
	}
	sjWaitFor(t, 4*delay+20*time.Second, "every abandoned session to expire", func() bool { return sh.openSessions() == 0 })
	sjWaitFor(t, 4*delay, "the session entries to go", gone)
	var after uint64
	deadline := time.Now().Add(10 * time.Second)
	for after = heap(); after >= before+4<<20; after = heap() {
		if time.Now().After(deadline) {
			t.Fatalf("heap before %d KiB, with the sessions %d KiB, after %d KiB; %d goroutines", before>>10, peak>>10, after>>10, runtime.NumGoroutine())
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("%d sessions opened in %v (%d open at the end); heap before %d KiB, with them %d KiB, after %d KiB",
		n-200, elapsed, opened, before>>10, peak>>10, after>>10)
}

func TestSockJSMaxSessions(t *testing.T) {
	t.Parallel()
	s := newSJServer(t, func(c *SockJSConfig) { c.MaxSessions = 3; c.DisconnectDelay = 2 * time.Second })
	h := s.handlers["/echo"]
	ids := []string{sjSession("/echo"), sjSession("/echo")}
	for _, u := range ids {
		if r := s.post(t, u+"/xhr", ""); r.body != "o\n" {
			t.Fatalf("open %q", r.body)
		}
	}
	c, _ := s.dial(t, sjSession("/echo")+"/websocket", nil)
	sjWSRead(t, c)
	sjWaitFor(t, 5*time.Second, "three open sessions", func() bool { return h.openSessions() == 3 })
	if r := s.post(t, sjSession("/echo")+"/xhr", ""); r.status != 503 {
		t.Errorf("fourth session over xhr: %d %q, want 503", r.status, r.body)
	}
	d := websocket.Dialer{}
	_, resp, err := d.Dial("ws"+strings.TrimPrefix(s.URL, "http")+sjSession("/echo")+"/websocket", nil)
	if err == nil || resp == nil || resp.StatusCode != 503 {
		t.Errorf("fourth session over websocket: %v %v, want 503", err, resp)
	}
	// Existing sessions go on.
	if r := s.post(t, ids[0]+"/xhr_send", `["a"]`); r.status != 204 {
		t.Errorf("send on an open session: %d", r.status)
	}
	s.settle(t, ids[0], 1)
	if r := s.post(t, ids[0]+"/xhr", ""); r.body != "a[\"a\"]\n" {
		t.Errorf("poll on an open session: %q", r.body)
	}
	// A closed WebSocket frees its slot at once.
	c.Close()
	sjWaitFor(t, 5*time.Second, "the websocket slot to free", func() bool { return h.openSessions() == 2 })
	if r := s.post(t, sjSession("/echo")+"/xhr", ""); r.body != "o\n" {
		t.Errorf("session after a slot freed: %d %q", r.status, r.body)
	}
}

func TestSockJSBackPressure(t *testing.T) {
	t.Parallel()
	const size = 100 << 10 // three of these pass sockjsPendingLimit
	var written atomic.Int64
	writeErr := make(chan error, 1)
	svc := func(tr Transport, _ *http.Request, recv func() ([]byte, error)) {
		for i := range 3 {
			if err := tr.Write([]byte(strings.Repeat(strconv.Itoa(i), size))); err != nil {
				writeErr <- err
				return
			}
			written.Add(1)
		}
		// A fourth write blocks until the session closes, then fails.
		writeErr <- tr.Write([]byte(strings.Repeat("3", sockjsPendingLimit)))
		_, _ = recv()
	}
	h, err := newSockJSHandler(SockJSConfig{Prefix: "/ws", DisconnectDelay: 300 * time.Millisecond}, svc)
	if err != nil {
		t.Fatal(err)
	}
	s := sjServe(t, h)
	u := sjSession("/ws")
	if r := s.post(t, u+"/xhr", ""); r.body != "o\n" {
		t.Fatalf("open %q", r.body)
	}
	// No request is receiving: two messages fit under the bound, the third
	// waits for a response to carry them.
	sjWaitFor(t, 5*time.Second, "two writes", func() bool { return written.Load() == 2 })
	if w := written.Load(); w != 2 {
		t.Fatalf("%d writes went through with no receiving request, want 2", w)
	}
	r := s.post(t, u+"/xhr", "")
	if !strings.HasPrefix(r.body, `a["00`) || !strings.Contains(r.body, `","11`) || len(r.body) != 2*size+9 {
		t.Fatalf("poll carried %d bytes, want both messages", len(r.body))
	}
	sjWaitFor(t, 5*time.Second, "the third write", func() bool { return written.Load() == 3 })
	// Nobody polls again: the session expires and the blocked write fails
	// instead of waiting for ever.
	select {
	case err := <-writeErr:
		if err == nil {
			t.Errorf("write on an expired session succeeded")
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("write blocked past the session's end")
	}
}

func TestSockJSShutdown(t *testing.T) {
	t.Parallel()
	h, err := newSockJSHandler(SockJSConfig{Prefix: "/ws", DisconnectDelay: 200 * time.Millisecond}, sjEcho)
	if err != nil {
		t.Fatal(err)
	}
	sh := h.(*sockjsHandler)
	s := sjServe(t, h)
	u := sjSession("/ws")
	st := s.stream(t, "POST", u+"/xhr_streaming", nil)
	st.read(t, "\n")
	st.read(t, "\n")
	c, _ := s.dial(t, sjSession("/ws")+"/websocket", nil)
	sjWSRead(t, c)
	raw, _ := s.dial(t, "/ws/websocket", nil)
	sjWaitFor(t, 5*time.Second, "three sessions", func() bool { return sh.openSessions() == 3 })

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := sh.shutdown(ctx, CloseServerShutdown, "Server shutting down"); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	if got := st.read(t, "\n"); got != "c[3000,\"Server shutting down\"]\n" {
		t.Errorf("xhr_streaming got %q", got)
	}
	if m := sjWSRead(t, c); m != `c[3000,"Server shutting down"]` {
		t.Errorf("websocket got %q", m)
	}
	if err := sjWSClosed(t, raw); !websocket.IsCloseError(err, 3000) {
		t.Errorf("raw websocket: %v", err)
	}
	if n := sh.openSessions(); n != 0 {
		t.Errorf("openSessions() = %d after shutdown", n)
	}
	if r := s.post(t, sjSession("/ws")+"/xhr", ""); r.status != 503 {
		t.Errorf("new session after shutdown: %d %q, want 503", r.status, r.body)
	}
}

func TestSockJSOrigin(t *testing.T) {
	t.Parallel()
	// Default: the same host only.
	h, err := newSockJSHandler(SockJSConfig{Prefix: "/ws", DisconnectDelay: 200 * time.Millisecond}, sjEcho)
	if err != nil {
		t.Fatal(err)
	}
	s := sjServe(t, h)
	evil := map[string]string{"Origin": "https://evil.example"}
	same := map[string]string{"Origin": s.URL}
	for _, tc := range []struct{ method, path string }{
		{"GET", "/ws/info"}, {"OPTIONS", "/ws/info"}, {"POST", sjSession("/ws") + "/xhr"}, {"POST", sjSession("/ws") + "/xhr_streaming"},
		{"OPTIONS", sjSession("/ws") + "/xhr"}, {"POST", sjSession("/ws") + "/xhr_send"}, {"GET", sjSession("/ws") + "/eventsource"},
		{"GET", sjSession("/ws") + "/jsonp?c=x"}, {"GET", sjSession("/ws") + "/htmlfile?c=x"}, {"POST", sjSession("/ws") + "/jsonp_send"},
	} {
		if r := s.do(t, tc.method, tc.path, "", evil); r.status != 403 {
			t.Errorf("%s %s from another origin: %d, want 403", tc.method, tc.path, r.status)
		}
	}
	if r := s.do(t, "POST", sjSession("/ws")+"/xhr", "", same); r.status != 200 || r.body != "o\n" {
		t.Errorf("same origin: %d %q", r.status, r.body)
	}
	if r := s.post(t, sjSession("/ws")+"/xhr", ""); r.status != 200 {
		t.Errorf("no origin: %d", r.status)
	}
	d := websocket.Dialer{}
	for _, path := range []string{sjSession("/ws") + "/websocket", "/ws/websocket"} {
		_, resp, err := d.Dial("ws"+strings.TrimPrefix(s.URL, "http")+path, http.Header{"Origin": {"https://evil.example"}})
		if err == nil || resp == nil || resp.StatusCode != 403 {
			t.Errorf("websocket %s from another origin: %v %v, want 403", path, err, resp)
		}
		c, _ := s.dial(t, path, http.Header{"Origin": {s.URL}})
		c.Close()
	}
}

func TestSockJSConfigDefaults(t *testing.T) {
	t.Parallel()
	cfg, err := SockJSConfig{}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Prefix != "/ws" || cfg.Heartbeat != 25*time.Second || cfg.DisconnectDelay != 5*time.Second ||
		cfg.ResponseLimit != 128<<10 || cfg.MaxSessions != 10000 || cfg.MaxMessageBytes != 128<<10 ||
		cfg.ClientURL != "/sockjs.min.js" || cfg.WriteTimeout != 10*time.Second || cfg.JSessionID {
		t.Errorf("defaults %+v", cfg)
	}
	for _, bad := range []SockJSConfig{{Prefix: "ws"}, {Prefix: "/ws/"}, {MaxSessions: -1}, {Heartbeat: -time.Second}} {
		if _, err := newSockJSHandler(bad, sjEcho); err == nil {
			t.Errorf("config %+v accepted", bad)
		}
	}
	if _, err := newSockJSHandler(SockJSConfig{}, nil); err == nil {
		t.Errorf("nil onSession accepted")
	}
}

func TestSockJSEncoding(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want string }{
		{"", ""},
		{"plain ascii\n\x00", "plain ascii\n\x00"},
		{"a\u200cb", `a\u200cb`},
		{"\u2028\u202f\u2060\u206f\ufff0\uffff\ufffd", `\u2028\u202f\u2060\u206f\ufff0\uffff\ufffd`},
		{"é€😀\u200b\u2030", "é€😀\u200b\u2030"},
	} {
		if got := string(escapeSockJSUnicode([]byte(tc.in))); got != tc.want {
			t.Errorf("escapeSockJSUnicode(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	for _, tc := range []struct {
		in   string
		want error
	}{
		{"", errSockJSPayloadExpected}, {" \n", errSockJSPayloadExpected}, {"[]", nil}, {`["a","b"]`, nil},
		{`["a`, errSockJSBrokenJSON}, {`[1]`, errSockJSBrokenJSON}, {`{}`, errSockJSBrokenJSON}, {`["a"]]`, errSockJSBrokenJSON},
	} {
		if _, err := decodeSockJSPayload([]byte(tc.in)); err != tc.want {
			t.Errorf("decodeSockJSPayload(%q) = %v, want %v", tc.in, err, tc.want)
		}
	}
	for _, tc := range []struct {
		cb   string
		want error
	}{{"", errSockJSNoCallback}, {"cb", nil}, {"_jp.a1b2c3", nil}, {"a-b", errSockJSBadCallback}, {"a b", errSockJSBadCallback}, {"a(", errSockJSBadCallback}} {
		if err := checkSockJSCallback(tc.cb); err != tc.want {
			t.Errorf("checkSockJSCallback(%q) = %v, want %v", tc.cb, err, tc.want)
		}
	}
	if got := string(sockjsCloseFrame(3000, "Go \u2028away!\"")); got != `c[3000,"Go \u2028away!\""]` {
		t.Errorf("close frame %q", got)
	}
}
