package edge_test

// The edge's browser-facing protocol, tested over real WebSockets against a
// real edge, pushsvc and the embedded broker (DESIGN.md "Browser-facing
// protocol" and "Details that tests rely on").

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-stomp/stomp/v3/frame"
	"github.com/golang-jwt/jwt/v5"
	"github.com/gorilla/websocket"

	"github.com/pushgate/pushgate/edge"
	"github.com/pushgate/pushgate/internal/stompclient"
	"github.com/pushgate/pushgate/internal/testbroker"
	"github.com/pushgate/pushgate/internal/testenv"
	"github.com/pushgate/pushgate/relay"
)

// wait bounds every wait for something that should happen.
const wait = 5 * time.Second

// httpClient keeps no idle connections, so none outlive a test (goleak).
var httpClient = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 10 * time.Second}

// start runs one edge and pushsvc against an embedded broker; configure
// adjusts the edge's Config (nil: testenv's defaults).
func start(t *testing.T, configure func(*edge.Config)) (*testenv.Env, *testenv.Edge) {
	t.Helper()
	b := testbroker.Embedded(t)
	env := testenv.Start(t, testenv.Options{Broker: b.URL(), Edges: 1, Edge: configure})
	return env, env.Edges[0]
}

// stompURL is the edge's /stomp URL, with user's token in the query when
// user is not empty.
func stompURL(t *testing.T, e *testenv.Edge, user string) string {
	t.Helper()
	if user == "" {
		return e.URL("/stomp")
	}
	return e.URL("/stomp?access_token=" + url.QueryEscape(testenv.Token(t, user)))
}

// dial opens a WebSocket to u and fails the test if the handshake fails.
func dial(t *testing.T, u string, header http.Header) *stompclient.Client {
	t.Helper()
	c, resp, err := stompclient.Dial(context.Background(), u, header)
	if err != nil {
		t.Fatalf("dial %s: %v (HTTP %s)", u, err, status(resp))
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// connect opens a STOMP 1.2 session for user, token in the handshake query.
func connect(t *testing.T, e *testenv.Edge, user string) *stompclient.Client {
	t.Helper()
	c := dial(t, stompURL(t, e, user), nil)
	if _, err := c.Connect(wait); err != nil {
		t.Fatalf("connect as %q: %v", user, err)
	}
	return c
}

func status(resp *http.Response) string {
	if resp == nil {
		return "none"
	}
	return resp.Status
}

func send(t *testing.T, c *stompclient.Client, p []byte) {
	t.Helper()
	if err := c.SendRaw(p); err != nil {
		t.Fatalf("send %q: %v", trim(p), err)
	}
}

func trim(p []byte) string {
	if len(p) > 120 {
		return string(p[:120]) + "..."
	}
	return string(p)
}

// expect returns the next frame and fails unless it is a command frame.
func expect(t *testing.T, c *stompclient.Client, command string) *frame.Frame {
	t.Helper()
	f, err := c.Expect(command, wait)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func expectReceipt(t *testing.T, c *stompclient.Client, id string) {
	t.Helper()
	f := expect(t, c, "RECEIPT")
	if got := f.Header.Get("receipt-id"); got != id {
		t.Fatalf("RECEIPT receipt-id: got %q, want %q", got, id)
	}
}

// expectError waits for an ERROR whose message contains every want string,
// then for the connection to close with no further frame.
func expectError(t *testing.T, c *stompclient.Client, want ...string) *frame.Frame {
	t.Helper()
	f := expect(t, c, "ERROR")
	msg := f.Header.Get("message")
	for _, w := range want {
		if !strings.Contains(msg, w) {
			t.Errorf("ERROR message: got %q, want it to contain %q", msg, w)
		}
	}
	expectClosed(t, c)
	return f
}

// expectClosed waits for the server to close the connection and fails on
// any frame before that.
func expectClosed(t *testing.T, c *stompclient.Client) {
	t.Helper()
	f, err := c.Next(wait)
	switch {
	case err == nil:
		t.Fatalf("got %s frame (headers %v, body %q), want the connection closed", f.Command, f.Header, f.Body)
	case !strings.Contains(err.Error(), "connection closed"):
		t.Fatalf("got %v, want the connection closed", err)
	}
}

func expectMessage(t *testing.T, c *stompclient.Client, dest, body string) *frame.Frame {
	t.Helper()
	f := expect(t, c, "MESSAGE")
	if got := f.Header.Get("destination"); got != dest {
		t.Errorf("MESSAGE destination: got %q, want %q", got, dest)
	}
	if string(f.Body) != body {
		t.Errorf("MESSAGE body: got %q, want %q", f.Body, body)
	}
	return f
}

// restPost posts JSON to pushsvc's REST API.
func restPost(t *testing.T, env *testenv.Env, path string, body any) (int, string) {
	t.Helper()
	b, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := httpClient.Post("http://"+env.Pushsvc.HTTPAddr+path, "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(out)
}

// sendToUser pushes text to user's dest (a /topic/... or /queue/...).
func sendToUser(t *testing.T, env *testenv.Env, user, dest, text string, headers map[string]string) {
	t.Helper()
	req := map[string]any{"destination": dest, "text": text}
	if headers != nil {
		req["headers"] = headers
	}
	code, body := restPost(t, env, "/v1/users/"+url.PathEscape(user)+"/messages", req)
	if code != http.StatusOK {
		t.Fatalf("SendToUser(%q, %s): got HTTP %d %s, want 200", user, dest, code, body)
	}
}

// userSeq makes user names unique within the test binary.
var userSeq atomic.Int64

func newUser(prefix string) string { return fmt.Sprintf("%s-%d", prefix, userSeq.Add(1)) }

// checkServes proves the edge still serves sessions: a new session
// connects, subscribes and receives a push.
func checkServes(t *testing.T, env *testenv.Env, e *testenv.Edge) {
	t.Helper()
	user := newUser("fresh")
	c := connect(t, e, user)
	if err := c.Subscribe("s", "/user/topic/check", wait); err != nil {
		t.Fatalf("fresh session: subscribe: %v", err)
	}
	sendToUser(t, env, user, "/topic/check", "still serving", nil)
	expectMessage(t, c, "/user/topic/check", "still serving")
	c.Close()
}

func get(t *testing.T, u string) int {
	t.Helper()
	resp, err := httpClient.Get(u)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// waitFor polls cond every 10ms until it holds or timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, timeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// rawDial opens a WebSocket with gorilla directly, for tests that read the
// bytes the edge writes or that must not read at all.
func rawDial(t *testing.T, u string, header http.Header, subprotocols ...string) (*websocket.Conn, *http.Response, error) {
	t.Helper()
	d := websocket.Dialer{Subprotocols: subprotocols, HandshakeTimeout: wait}
	ws, resp, err := d.Dial(u, header)
	if err == nil {
		t.Cleanup(func() { ws.Close() })
	}
	return ws, resp, err
}

func rawSend(t *testing.T, ws *websocket.Conn, p []byte) {
	t.Helper()
	if err := ws.WriteMessage(websocket.TextMessage, p); err != nil {
		t.Fatalf("send %q: %v", trim(p), err)
	}
}

// rawReadUntil reads messages, appending them to acc, until acc contains
// want; it returns acc and the read error if the connection ended first.
func rawReadUntil(ws *websocket.Conn, acc []byte, want string, timeout time.Duration) ([]byte, error) {
	_ = ws.SetReadDeadline(time.Now().Add(timeout))
	defer ws.SetReadDeadline(time.Time{})
	for !bytes.Contains(acc, []byte(want)) {
		_, p, err := ws.ReadMessage()
		if err != nil {
			return acc, err
		}
		acc = append(acc, p...)
	}
	return acc, nil
}

// metric reads one sample from the edge's /metrics, for example
// `pushgate_edge_sessions_closed_total{reason="slow"}`; 0 when absent.
// It reports failures with Error, not Fatal: helper goroutines call it too.
func metric(t *testing.T, e *testenv.Edge, sample string) float64 {
	t.Helper()
	resp, err := httpClient.Get("http://" + e.Addr + "/metrics")
	if err != nil {
		t.Error(err)
		return 0
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Errorf("GET /metrics: HTTP %d, %v", resp.StatusCode, err)
		return 0
	}
	for line := range strings.Lines(string(body)) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), sample+" "); ok {
			var f float64
			if _, err := fmt.Sscan(v, &f); err != nil {
				t.Errorf("metric %s: value %q: %v", sample, v, err)
			}
			return f
		}
	}
	return 0
}

// 1. Version negotiation, CONNECTED headers, subprotocols.

func TestVersionNegotiation(t *testing.T) {
	_, e := start(t, nil)
	tests := []struct {
		name    string
		command string
		headers []string // besides the token
		want    string   // negotiated version; "" means ERROR
	}{
		{"all three", "CONNECT", []string{"accept-version", "1.2,1.1,1.0"}, "1.2"},
		{"ascending list", "CONNECT", []string{"accept-version", "1.0,1.1,1.2"}, "1.2"},
		{"1.1 only", "CONNECT", []string{"accept-version", "1.1"}, "1.1"},
		{"1.0 and 1.1", "CONNECT", []string{"accept-version", "1.0,1.1"}, "1.1"},
		{"absent means 1.0", "CONNECT", nil, "1.0"},
		{"STOMP command", "STOMP", []string{"accept-version", "1.2", "host", "pushgate"}, "1.2"},
		{"STOMP command 1.1", "STOMP", []string{"accept-version", "1.1"}, "1.1"},
		{"unsupported 2.0", "CONNECT", []string{"accept-version", "2.0"}, ""},
		{"STOMP unsupported 2.0", "STOMP", []string{"accept-version", "2.0"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			user := newUser("ver")
			c := dial(t, stompURL(t, e, user), nil)
			send(t, c, stompclient.Encode(tt.command, nil, tt.headers...))
			if tt.want == "" {
				f := expectError(t, c, "version")
				if got, want := f.Header.Get("version"), "1.0,1.1,1.2"; got != want {
					t.Errorf("ERROR version header: got %q, want %q", got, want)
				}
				return
			}
			f := expect(t, c, "CONNECTED")
			want := map[string]string{
				"version":    tt.want,
				"server":     "pushgate-edge/" + e.Server.ID(),
				"heart-beat": "10000,10000",
				"user-name":  user,
			}
			for h, w := range want {
				if got := f.Header.Get(h); got != w {
					t.Errorf("CONNECTED %s: got %q, want %q", h, got, w)
				}
			}
			if f.Header.Get("session") == "" {
				t.Errorf("CONNECTED has no session header")
			}
			// The negotiated version is used: a 1.0 SUBSCRIBE may omit id.
			sub := []string{"destination", "/user/topic/v", "receipt", "r1"}
			if tt.want != "1.0" {
				sub = append(sub, "id", "s1")
			}
			send(t, c, stompclient.Encode("SUBSCRIBE", nil, sub...))
			expectReceipt(t, c, "r1")
		})
	}
}

func TestSubprotocolEchoed(t *testing.T) {
	_, e := start(t, nil)
	tests := []struct {
		offer []string
		want  string // "" means none
	}{
		{[]string{"v10.stomp"}, "v10.stomp"},
		{[]string{"v11.stomp"}, "v11.stomp"},
		{[]string{"v12.stomp"}, "v12.stomp"},
		{[]string{"v12.stomp", "v11.stomp", "v10.stomp"}, "v12.stomp"}, // stomp.js
		{[]string{"v10.stomp", "v11.stomp"}, "v11.stomp"},              // the newest offered
		{[]string{"mqtt", "v10.stomp"}, "v10.stomp"},
		{nil, ""},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.offer), func(t *testing.T) {
			ws, resp, err := rawDial(t, stompURL(t, e, newUser("sp")), nil, tt.offer...)
			if err != nil {
				t.Fatalf("dial offering %v: %v (HTTP %s)", tt.offer, err, status(resp))
			}
			if got := ws.Subprotocol(); got != tt.want {
				t.Errorf("subprotocol offering %v: got %q, want %q", tt.offer, got, tt.want)
			}
			// The session works whatever was negotiated.
			rawSend(t, ws, stompclient.Encode("CONNECT", nil, "accept-version", "1.2,1.1,1.0"))
			if acc, err := rawReadUntil(ws, nil, "CONNECTED\n", wait); err != nil {
				t.Fatalf("waiting for CONNECTED: %v (got %q)", err, acc)
			}
		})
	}
}

// 2. Authentication.

func signedToken(t *testing.T, method jwt.SigningMethod, key any, claims jwt.RegisteredClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(method, claims).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestAuthentication(t *testing.T) {
	env, e := start(t, nil)

	// A bystander, to prove that refused clients affect no one else.
	bystander := newUser("bystander")
	by := connect(t, e, bystander)
	if err := by.Subscribe("s", "/user/topic/b", wait); err != nil {
		t.Fatal(err)
	}

	t.Run("no token anywhere", func(t *testing.T) {
		c := dial(t, e.URL("/stomp"), nil)
		send(t, c, stompclient.Encode("CONNECT", nil, "accept-version", "1.2", "host", "x"))
		expectError(t, c, "authentication")
	})

	accepted := []struct {
		name    string
		url     func(tok string) string
		header  func(tok string) http.Header
		connect func(tok string) []string
	}{
		{"CONNECT passcode", nil, nil, func(tok string) []string { return []string{"login", "ignored", "passcode", tok} }},
		{"CONNECT Authorization Bearer", nil, nil, func(tok string) []string { return []string{"Authorization", "Bearer " + tok} }},
		{"CONNECT Authorization bare", nil, nil, func(tok string) []string { return []string{"Authorization", tok} }},
		{"handshake access_token", func(tok string) string { return e.URL("/stomp?access_token=" + url.QueryEscape(tok)) }, nil, nil},
		{"handshake Authorization Bearer", nil, func(tok string) http.Header { return http.Header{"Authorization": {"Bearer " + tok}} }, nil},
	}
	for _, tt := range accepted {
		t.Run(tt.name, func(t *testing.T) {
			user := newUser("auth")
			tok := testenv.Token(t, user)
			u, h, extra := e.URL("/stomp"), http.Header(nil), []string(nil)
			if tt.url != nil {
				u = tt.url(tok)
			}
			if tt.header != nil {
				h = tt.header(tok)
			}
			if tt.connect != nil {
				extra = tt.connect(tok)
			}
			c := dial(t, u, h)
			f, err := c.Connect(wait, extra...)
			if err != nil {
				t.Fatalf("connect: %v", err)
			}
			if got := f.Header.Get("user-name"); got != user {
				t.Errorf("user-name: got %q, want %q", got, user)
			}
			if err := c.Subscribe("s", "/user/topic/a", wait); err != nil {
				t.Fatal(err)
			}
			sendToUser(t, env, user, "/topic/a", "authed", nil)
			expectMessage(t, c, "/user/topic/a", "authed")
		})
	}

	now := time.Now()
	bad := []struct{ name, token string }{
		{"wrong signature", func() string {
			tok, err := edge.IssueToken([]byte("some-other-secret"), "mallory", time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			return tok
		}()},
		{"expired", signedToken(t, jwt.SigningMethodHS256, testenv.Secret, jwt.RegisteredClaims{
			Subject: "mallory", ExpiresAt: jwt.NewNumericDate(now.Add(-time.Hour)), IssuedAt: jwt.NewNumericDate(now.Add(-2 * time.Hour)),
		})},
		{"not yet valid", signedToken(t, jwt.SigningMethodHS256, testenv.Secret, jwt.RegisteredClaims{
			Subject: "mallory", NotBefore: jwt.NewNumericDate(now.Add(time.Hour)),
		})},
		{"alg none", signedToken(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, jwt.RegisteredClaims{
			Subject: "mallory", ExpiresAt: jwt.NewNumericDate(now.Add(time.Hour)),
		})},
		{"garbage", "not.a.jwt"},
	}
	for _, tt := range bad {
		t.Run(tt.name+"/handshake query", func(t *testing.T) {
			c, resp, err := stompclient.Dial(context.Background(), e.URL("/stomp?access_token="+url.QueryEscape(tt.token)), nil)
			if err == nil {
				c.Close()
				t.Fatalf("handshake: got success, want HTTP 401")
			}
			if resp == nil || resp.StatusCode != http.StatusUnauthorized {
				t.Fatalf("handshake: got HTTP %s (%v), want 401", status(resp), err)
			}
		})
		t.Run(tt.name+"/handshake header", func(t *testing.T) {
			c, resp, err := stompclient.Dial(context.Background(), e.URL("/stomp"), http.Header{"Authorization": {"Bearer " + tt.token}})
			if err == nil {
				c.Close()
				t.Fatalf("handshake: got success, want HTTP 401")
			}
			if resp == nil || resp.StatusCode != http.StatusUnauthorized {
				t.Fatalf("handshake: got HTTP %s (%v), want 401", status(resp), err)
			}
		})
		for _, h := range []string{"passcode", "Authorization"} {
			t.Run(tt.name+"/CONNECT "+h, func(t *testing.T) {
				c := dial(t, e.URL("/stomp"), nil)
				send(t, c, stompclient.Encode("CONNECT", nil, "accept-version", "1.2", h, tt.token, "receipt", "ignored"))
				expectError(t, c, "authentication failed")
			})
		}
	}

	// Nothing happened to the bystander.
	sendToUser(t, env, bystander, "/topic/b", "unaffected", nil)
	expectMessage(t, by, "/user/topic/b", "unaffected")
	checkServes(t, env, e)
}

// 3. Framing and receipts.

func TestFraming(t *testing.T) {
	env, e := start(t, func(c *edge.Config) { c.ClientPublish = []string{"/topic/chat.*"} })

	t.Run("several frames in one message", func(t *testing.T) {
		user := newUser("multi")
		c := dial(t, stompURL(t, e, user), nil)
		var msg []byte
		msg = append(msg, stompclient.Encode("CONNECT", nil, "accept-version", "1.2", "host", "x")...)
		msg = append(msg, stompclient.Encode("SUBSCRIBE", nil, "id", "g", "destination", "/user/topic/greetings", "receipt", "r1")...)
		msg = append(msg, stompclient.Encode("SUBSCRIBE", nil, "id", "o", "destination", "/user/topic/other", "receipt", "r2")...)
		msg = append(msg, stompclient.Encode("SEND", nil, "destination", "/app/hello", "receipt", "r3")...)
		send(t, c, msg)
		expect(t, c, "CONNECTED")
		expectReceipt(t, c, "r1")
		expectReceipt(t, c, "r2")
		// The reply to /app/hello and the SEND's receipt race each other.
		got := map[string]bool{}
		for range 2 {
			f, err := c.Next(wait)
			if err != nil {
				t.Fatalf("after SEND /app/hello: %v (so far %v)", err, got)
			}
			switch {
			case f.Command == "RECEIPT" && f.Header.Get("receipt-id") == "r3":
				got["receipt"] = true
			case f.Command == "MESSAGE" && f.Header.Get("destination") == "/user/topic/greetings" && string(f.Body) == "hello":
				got["hello"] = true
			default:
				t.Fatalf("got %s %v %q, want RECEIPT r3 or MESSAGE hello", f.Command, f.Header, f.Body)
			}
		}
		if !got["receipt"] || !got["hello"] {
			t.Fatalf("got %v, want both the receipt r3 and the hello reply", got)
		}
	})

	t.Run("one frame across three messages", func(t *testing.T) {
		user := newUser("split")
		c := connect(t, e, user)
		f := stompclient.Encode("SUBSCRIBE", nil, "id", "s", "destination", "/user/topic/split", "receipt", "split-r")
		a, b := len(f)/3, 2*len(f)/3
		for _, part := range [][]byte{f[:a], f[a:b], f[b:]} {
			send(t, c, part)
		}
		expectReceipt(t, c, "split-r")
		sendToUser(t, env, user, "/topic/split", "whole", nil)
		expectMessage(t, c, "/user/topic/split", "whole")
	})

	t.Run("CONNECT split, body across messages", func(t *testing.T) {
		user := newUser("split2")
		c := dial(t, stompURL(t, e, user), nil)
		conn := stompclient.Encode("CONNECT", nil, "accept-version", "1.2")
		send(t, c, conn[:3])
		send(t, c, conn[3:])
		expect(t, c, "CONNECTED")
		if err := c.Subscribe("s", "/topic/chat.split", wait); err != nil {
			t.Fatal(err)
		}
		body := bytes.Repeat([]byte("0123456789"), 3000) // 30 KB
		f := stompclient.Encode("SEND", body, "destination", "/topic/chat.split", "content-length", fmt.Sprint(len(body)), "receipt", "big")
		for i := 0; i < len(f); i += 1000 {
			send(t, c, f[i:min(i+1000, len(f))])
		}
		var gotMsg, gotReceipt bool
		for !gotMsg || !gotReceipt {
			fr, err := c.Next(wait)
			if err != nil {
				t.Fatalf("got %v, want MESSAGE and RECEIPT", err)
			}
			switch fr.Command {
			case "MESSAGE":
				if !bytes.Equal(fr.Body, body) {
					t.Fatalf("MESSAGE body: got %d bytes, want the %d sent", len(fr.Body), len(body))
				}
				gotMsg = true
			case "RECEIPT":
				gotReceipt = true
			default:
				t.Fatalf("got %s %v, want MESSAGE or RECEIPT", fr.Command, fr.Header)
			}
		}
	})

	t.Run("heart-beat EOLs between frames", func(t *testing.T) {
		user := newUser("eol")
		c := dial(t, stompURL(t, e, user), nil)
		send(t, c, []byte("\n\r\n"))
		send(t, c, append([]byte("\n"), stompclient.Encode("CONNECT", nil, "accept-version", "1.2")...))
		expect(t, c, "CONNECTED")
		send(t, c, []byte("\n"))
		send(t, c, []byte("\r\n"))
		var msg []byte
		msg = append(msg, stompclient.Encode("SUBSCRIBE", nil, "id", "a", "destination", "/user/topic/a", "receipt", "ra")...)
		msg = append(msg, "\n\r\n\n"...)
		msg = append(msg, stompclient.Encode("SUBSCRIBE", nil, "id", "b", "destination", "/user/topic/b", "receipt", "rb")...)
		msg = append(msg, '\n')
		send(t, c, msg)
		expectReceipt(t, c, "ra")
		expectReceipt(t, c, "rb")
		sendToUser(t, env, user, "/topic/b", "after beats", nil)
		expectMessage(t, c, "/user/topic/b", "after beats")
	})

	t.Run("body with NUL and content-length", func(t *testing.T) {
		user := newUser("nul")
		c := connect(t, e, user)
		if err := c.Subscribe("chat", "/topic/chat.room", wait); err != nil {
			t.Fatal(err)
		}
		for _, body := range [][]byte{
			[]byte("a\x00b\x00\x00c"),
			[]byte("\x00"),
			{0xff, 0x00, 0xfe, 'x', 0x00}, // not UTF-8: goes out as a binary message
		} {
			send(t, c, stompclient.Encode("SEND", body, "destination", "/topic/chat.room", "content-type", "application/octet-stream", "content-length", fmt.Sprint(len(body))))
			f := expect(t, c, "MESSAGE")
			if !bytes.Equal(f.Body, body) {
				t.Errorf("MESSAGE body: got %q, want %q", f.Body, body)
			}
			if got := f.Header.Get("destination"); got != "/topic/chat.room" {
				t.Errorf("MESSAGE destination: got %q, want /topic/chat.room", got)
			}
			if got := f.Header.Get("content-type"); got != "application/octet-stream" {
				t.Errorf("MESSAGE content-type: got %q, want application/octet-stream", got)
			}
		}
	})

	t.Run("frame of exactly 64 KiB passes, one byte more does not", func(t *testing.T) {
		c := connect(t, e, newUser("limit"))
		if err := c.Subscribe("big", "/topic/chat.big", wait); err != nil {
			t.Fatal(err)
		}
		sized := func(total int) ([]byte, []byte) {
			n := total - len(stompclient.Encode("SEND", nil, "destination", "/topic/chat.big", "content-length", "00000"))
			body := bytes.Repeat([]byte("b"), n)
			f := stompclient.Encode("SEND", body, "destination", "/topic/chat.big", "content-length", fmt.Sprintf("%05d", n))
			if len(f) != total {
				t.Fatalf("test frame: %d bytes, want %d", len(f), total)
			}
			return f, body
		}
		f, body := sized(64 << 10)
		send(t, c, f)
		m := expect(t, c, "MESSAGE")
		if !bytes.Equal(m.Body, body) {
			t.Errorf("MESSAGE body: got %d bytes, want the %d sent", len(m.Body), len(body))
		}
		f, _ = sized(64<<10 + 1)
		if err := c.SendRaw(f); err != nil {
			t.Logf("sending the oversized frame: %v", err) // refused before it was all read
		}
		expectError(t, c, "65536")
	})

	t.Run("CRLF line endings (1.2)", func(t *testing.T) {
		user := newUser("crlf")
		c := dial(t, stompURL(t, e, user), nil)
		send(t, c, []byte("CONNECT\r\naccept-version:1.2\r\n\r\n\x00\r\n"))
		expect(t, c, "CONNECTED")
		send(t, c, []byte("SUBSCRIBE\r\nid:s\r\ndestination:/user/topic/crlf\r\nreceipt:r\r\n\r\n\x00"))
		expectReceipt(t, c, "r")
		sendToUser(t, env, user, "/topic/crlf", "crlf", nil)
		expectMessage(t, c, "/user/topic/crlf", "crlf")
	})

	t.Run("STOMP 1.0 subscription without id", func(t *testing.T) {
		user := newUser("v10")
		c := dial(t, stompURL(t, e, user), nil)
		send(t, c, stompclient.Encode("CONNECT", nil))
		if f := expect(t, c, "CONNECTED"); f.Header.Get("version") != "1.0" {
			t.Fatalf("CONNECTED version: got %q, want 1.0", f.Header.Get("version"))
		}
		send(t, c, stompclient.Encode("SUBSCRIBE", nil, "destination", "/user/topic/old", "receipt", "r1"))
		expectReceipt(t, c, "r1")
		sendToUser(t, env, user, "/topic/old", "one", nil)
		expectMessage(t, c, "/user/topic/old", "one")
		send(t, c, stompclient.Encode("UNSUBSCRIBE", nil, "destination", "/user/topic/old", "receipt", "r2"))
		expectReceipt(t, c, "r2")
		sendToUser(t, env, user, "/topic/old", "two", nil)
		if f, err := c.Next(300 * time.Millisecond); err == nil {
			t.Fatalf("after UNSUBSCRIBE by destination: got %s %v %q, want nothing", f.Command, f.Header, f.Body)
		}
	})

	t.Run("SUBSCRIBE receipt means live at the broker", func(t *testing.T) {
		c := connect(t, e, newUser("live"))
		for i := range 5 {
			dest := fmt.Sprintf("/topic/live.n%d", i)
			if err := c.Subscribe(fmt.Sprint("s", i), dest, wait); err != nil {
				t.Fatal(err)
			}
			code, body := restPost(t, env, "/v1/broadcasts", map[string]any{"destination": dest, "text": "at once"})
			if code != http.StatusOK {
				t.Fatalf("Broadcast(%s): got HTTP %d %s, want 200", dest, code, body)
			}
			expectMessage(t, c, dest, "at once")
		}
	})

	t.Run("receipts", func(t *testing.T) {
		user := newUser("receipts")
		c := connect(t, e, user)
		send(t, c, stompclient.Encode("SUBSCRIBE", nil, "id", "s", "destination", "/topic/chat.rcpt", "ack", "client-individual", "receipt", "r-sub"))
		expectReceipt(t, c, "r-sub")
		send(t, c, stompclient.Encode("SEND", []byte("m"), "destination", "/topic/chat.rcpt", "receipt", "r-send"))
		// The SEND's receipt follows the broker's confirmation; the message
		// may arrive first.
		var ackID string
		for gotReceipt := false; ackID == "" || !gotReceipt; {
			f, err := c.Next(wait)
			if err != nil {
				t.Fatalf("after SEND: %v", err)
			}
			switch {
			case f.Command == "MESSAGE":
				if ackID = f.Header.Get("ack"); ackID == "" {
					t.Fatalf("MESSAGE on a client-individual subscription has no ack header: %v", f.Header)
				}
			case f.Command == "RECEIPT" && f.Header.Get("receipt-id") == "r-send":
				gotReceipt = true
			default:
				t.Fatalf("got %s %v, want MESSAGE or RECEIPT r-send", f.Command, f.Header)
			}
		}
		send(t, c, stompclient.Encode("ACK", nil, "id", ackID, "receipt", "r-ack"))
		expectReceipt(t, c, "r-ack")
		send(t, c, stompclient.Encode("NACK", nil, "id", ackID, "receipt", "r-nack"))
		expectReceipt(t, c, "r-nack")
		send(t, c, stompclient.Encode("UNSUBSCRIBE", nil, "id", "s", "receipt", "r-unsub"))
		expectReceipt(t, c, "r-unsub")
		// Unsubscribed: a later message does not arrive.
		send(t, c, stompclient.Encode("SEND", []byte("after"), "destination", "/topic/chat.rcpt", "receipt", "r-send2"))
		expectReceipt(t, c, "r-send2")
		if f, err := c.Next(200 * time.Millisecond); err == nil {
			t.Fatalf("after UNSUBSCRIBE: got %s %v, want nothing", f.Command, f.Header)
		}
		send(t, c, stompclient.Encode("DISCONNECT", nil, "receipt", "r-bye"))
		expectReceipt(t, c, "r-bye")
		expectClosed(t, c)
	})

	t.Run("user queue destination", func(t *testing.T) {
		user := newUser("queue")
		c := connect(t, e, user)
		if err := c.Subscribe("q", "/user/queue/inbox", wait); err != nil {
			t.Fatal(err)
		}
		sendToUser(t, env, user, "/queue/inbox", "queued", nil)
		expectMessage(t, c, "/user/queue/inbox", "queued")
	})

	t.Run("DISCONNECT without receipt", func(t *testing.T) {
		c := connect(t, e, newUser("bye"))
		send(t, c, stompclient.Encode("DISCONNECT", nil))
		expectClosed(t, c)
	})
}

// 4. Header escaping by version.

func TestHeaderEscapingByVersion(t *testing.T) {
	env, e := start(t, nil)
	const value = `a:b\c`
	tests := []struct {
		accept string // "" sends no accept-version (1.0)
		want   string // the header line as the edge must write it
	}{
		{"1.2", `x-note:a\cb\\c`},
		{"1.1", `x-note:a\cb\\c`},
		{"1.0", `x-note:a:b\c`},
		{"", `x-note:a:b\c`},
	}
	for _, tt := range tests {
		t.Run("v"+tt.accept, func(t *testing.T) {
			t.Parallel()
			user := newUser("esc")
			ws, resp, err := rawDial(t, stompURL(t, e, user), nil)
			if err != nil {
				t.Fatalf("dial: %v (HTTP %s)", err, status(resp))
			}
			var hs []string
			if tt.accept != "" {
				hs = []string{"accept-version", tt.accept}
			}
			rawSend(t, ws, stompclient.Encode("CONNECT", nil, hs...))
			// 1.0 SUBSCRIBE ids are optional; give one anyway.
			rawSend(t, ws, stompclient.Encode("SUBSCRIBE", nil, "id", "e", "destination", "/user/topic/esc", "receipt", "r"))
			acc, err := rawReadUntil(ws, nil, "receipt-id:r\n", wait)
			if err != nil {
				t.Fatalf("waiting for RECEIPT: %v (got %q)", err, acc)
			}
			sendToUser(t, env, user, "/topic/esc", "escaped?", map[string]string{"x-note": value})
			acc, err = rawReadUntil(ws, nil, "escaped?\x00", wait)
			if err != nil {
				t.Fatalf("waiting for MESSAGE: %v (got %q)", err, acc)
			}
			for _, line := range []string{tt.want, "content-type:text/plain;charset=UTF-8", "destination:/user/topic/esc"} {
				if !bytes.Contains(acc, []byte("\n"+line+"\n")) {
					t.Errorf("MESSAGE bytes: got %q, want a header line %q", acc, line)
				}
			}
		})
	}
}

// 5. Protocol errors: ERROR with a reason, then close; the edge goes on.

func TestProtocolErrors(t *testing.T) {
	env, e := start(t, nil)
	subscribe := func(id, dest, receipt string) []byte {
		return stompclient.Encode("SUBSCRIBE", nil, "id", id, "destination", dest, "receipt", receipt)
	}
	manyHeaders := []string{"destination", "/app/hello"}
	for i := range 32 {
		manyHeaders = append(manyHeaders, fmt.Sprintf("h%d", i), "v")
	}
	var fill [][]byte
	for i := range 32 {
		fill = append(fill, subscribe(fmt.Sprint("s", i), fmt.Sprintf("/user/topic/n%d", i), fmt.Sprint("fill-", i)))
	}
	tests := []struct {
		name    string
		accept  string   // accept-version; default 1.2
		setup   [][]byte // frames with receipt "fill-N" or "setup", each answered before the offending one
		frame   []byte
		want    []string // substrings of the ERROR message
		receipt string   // the ERROR's receipt-id
	}{
		{name: "unknown command", frame: []byte("FOO\nreceipt:r\n\n\x00"), want: []string{"FOO"}},
		{name: "frame over 64 KiB", frame: stompclient.Encode("SEND", bytes.Repeat([]byte("x"), 70<<10), "destination", "/app/hello"), want: []string{"65536"}},
		{name: "frame of 1 MiB in one message", frame: stompclient.Encode("SEND", bytes.Repeat([]byte("x"), 1<<20), "destination", "/app/hello"), want: []string{"65536"}},
		{name: "headers over 8 KiB", frame: stompclient.Encode("SEND", nil, "destination", "/app/hello", "x-big", strings.Repeat("h", 9<<10)), want: []string{"headers", "8192"}},
		{name: "more than 32 headers", frame: stompclient.Encode("SEND", nil, manyHeaders...), want: []string{"too many headers", "32"}},
		{name: "SUBSCRIBE without id", frame: stompclient.Encode("SUBSCRIBE", nil, "destination", "/topic/noid", "receipt", "r"), want: []string{"id", `"/topic/noid"`}, receipt: "r"},
		{name: "SUBSCRIBE without id 1.1", accept: "1.1", frame: stompclient.Encode("SUBSCRIBE", nil, "destination", "/topic/noid", "receipt", "r"), want: []string{"id", `"/topic/noid"`}, receipt: "r"},
		{name: "SUBSCRIBE without destination", frame: stompclient.Encode("SUBSCRIBE", nil, "id", "x", "receipt", "r"), want: []string{"destination"}, receipt: "r"},
		{name: "duplicate subscription id", setup: [][]byte{subscribe("dup", "/user/topic/one", "setup")}, frame: subscribe("dup", "/user/topic/two", "r"), want: []string{`"dup"`, "already in use", `"/user/topic/two"`}, receipt: "r"},
		{name: "33rd subscription", setup: fill, frame: subscribe("s32", "/user/topic/n32", "r"), want: []string{"too many subscriptions", "32", `"/user/topic/n32"`}, receipt: "r"},
		{name: "invalid ack mode", frame: stompclient.Encode("SUBSCRIBE", nil, "id", "x", "destination", "/topic/ack", "ack", "sometimes", "receipt", "r"), want: []string{"sometimes", `"/topic/ack"`}, receipt: "r"},
		{name: "another user's destination", frame: subscribe("x", "/user/bob/topic/x", "r"), want: []string{`"/user/bob/topic/x"`}, receipt: "r"},
		{name: "exchange", frame: subscribe("x", "/exchange/amq.topic/x", "r"), want: []string{`"/exchange/amq.topic/x"`}, receipt: "r"},
		{name: "plain queue", frame: subscribe("x", "/queue/x", "r"), want: []string{`"/queue/x"`}, receipt: "r"},
		{name: "amq queue", frame: subscribe("x", "/amq/queue/x", "r"), want: []string{`"/amq/queue/x"`}, receipt: "r"},
		{name: "dot-dot segment", frame: subscribe("x", "/topic/a/../b", "r"), want: []string{`"/topic/a/../b"`}, receipt: "r"},
		{name: "trailing slash", frame: subscribe("x", "/topic/x/", "r"), want: []string{`"/topic/x/"`}, receipt: "r"},
		{name: "star wildcard", frame: subscribe("x", "/topic/*", "r"), want: []string{`"/topic/*"`}, receipt: "r"},
		{name: "hash wildcard", frame: subscribe("x", "/topic/#", "r"), want: []string{`"/topic/#"`}, receipt: "r"},
		{name: "percent-encoded dots", frame: subscribe("x", "/topic/%2e%2e", "r"), want: []string{`"/topic/%2e%2e"`}, receipt: "r"},
		{name: "upper-case user prefix", frame: subscribe("x", "/USER/topic/x", "r"), want: []string{`"/USER/topic/x"`}, receipt: "r"},
		{name: "user queue with dot-dot", frame: subscribe("x", "/user/queue/../x", "r"), want: []string{`"/user/queue/../x"`}, receipt: "r"},
		{name: "SEND to a topic without client-publish", frame: stompclient.Encode("SEND", []byte("x"), "destination", "/topic/x", "receipt", "r"), want: []string{`"/topic/x"`, "publish"}, receipt: "r"},
		{name: "SEND to an unknown app destination", frame: stompclient.Encode("SEND", []byte("x"), "destination", "/app/unknown", "receipt", "r"), want: []string{`"/app/unknown"`}, receipt: "r"},
		{name: "SEND to another user", frame: stompclient.Encode("SEND", []byte("x"), "destination", "/user/bob/topic/x", "receipt", "r"), want: []string{`"/user/bob/topic/x"`}, receipt: "r"},
		{name: "SEND in a transaction", frame: stompclient.Encode("SEND", []byte("x"), "destination", "/app/hello", "transaction", "tx1", "receipt", "r"), want: []string{"transactions", `"/app/hello"`}, receipt: "r"},
		{name: "BEGIN", frame: stompclient.Encode("BEGIN", nil, "transaction", "tx1", "receipt", "r"), want: []string{"transactions are not supported"}, receipt: "r"},
		{name: "COMMIT", frame: stompclient.Encode("COMMIT", nil, "transaction", "tx1", "receipt", "r"), want: []string{"transactions are not supported"}, receipt: "r"},
		{name: "second CONNECT", frame: stompclient.Encode("CONNECT", nil, "accept-version", "1.2"), want: []string{"already connected"}},
		{name: "bad escape", frame: []byte("SUBSCRIBE\nid:x\ndestination:/topic/a\\tb\n\n\x00"), want: []string{"escape"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := dial(t, stompURL(t, e, newUser("proto")), nil)
			accept := tt.accept
			if accept == "" {
				accept = "1.2"
			}
			send(t, c, stompclient.Encode("CONNECT", nil, "accept-version", accept))
			expect(t, c, "CONNECTED")
			for _, s := range tt.setup {
				send(t, c, s)
			}
			for range tt.setup {
				expect(t, c, "RECEIPT")
			}
			// The edge may refuse a large frame before it has read all of
			// it, and the client's write then fails: what counts is what the
			// client receives.
			if err := c.SendRaw(tt.frame); err != nil {
				t.Logf("sending the offending frame: %v", err)
			}
			f := expectError(t, c, tt.want...)
			if got := f.Header.Get("receipt-id"); got != tt.receipt {
				t.Errorf("ERROR receipt-id: got %q, want %q", got, tt.receipt)
			}
			if got, want := string(f.Body), f.Header.Get("message"); got != want {
				t.Errorf("ERROR body: got %q, want the message %q", got, want)
			}
			checkServes(t, env, e)
		})
	}
}

func TestFrameBeforeConnect(t *testing.T) {
	env, e := start(t, nil)
	c := dial(t, stompURL(t, e, "early"), nil)
	send(t, c, stompclient.Encode("SUBSCRIBE", nil, "id", "x", "destination", "/topic/a", "receipt", "r"))
	f := expectError(t, c, "CONNECT")
	if got := f.Header.Get("receipt-id"); got != "r" {
		t.Errorf("ERROR receipt-id: got %q, want r", got)
	}
	checkServes(t, env, e)
}

// 6. Limits.

func TestSendRateDefaultBurst(t *testing.T) {
	_, e := start(t, nil)
	c := connect(t, e, newUser("burst"))
	// DESIGN.md: 100/s with bursts of 200. A burst of 200 at once passes.
	var msg []byte
	for i := range 200 {
		msg = append(msg, stompclient.Encode("SEND", nil, "destination", "/app/hello", "receipt", fmt.Sprint("b", i))...)
	}
	send(t, c, msg)
	for i := range 200 {
		expectReceipt(t, c, fmt.Sprint("b", i))
	}
}

func TestSendRateLimit(t *testing.T) {
	env, e := start(t, func(c *edge.Config) { c.SendRate = 5; c.SendBurst = 5 })
	c := connect(t, e, newUser("rate"))
	var msg []byte
	for i := range 20 {
		msg = append(msg, stompclient.Encode("SEND", nil, "destination", "/app/hello", "receipt", fmt.Sprint("s", i))...)
	}
	send(t, c, msg)
	receipts := 0
	for {
		f, err := c.Next(wait)
		if err != nil {
			t.Fatalf("got %v after %d receipts, want an ERROR", err, receipts)
		}
		if f.Command == "RECEIPT" {
			receipts++
			continue
		}
		if f.Command != "ERROR" {
			t.Fatalf("got %s, want RECEIPT or ERROR", f.Command)
		}
		if msg := f.Header.Get("message"); !strings.Contains(msg, "rate limit") || !strings.Contains(msg, `"/app/hello"`) {
			t.Errorf("ERROR message: got %q, want it to mention the rate limit and \"/app/hello\"", msg)
		}
		break
	}
	expectClosed(t, c)
	// The burst passes, the rest does not (a few tokens may refill while
	// the accepted SENDs wait for the broker).
	if receipts < 5 || receipts > 12 {
		t.Errorf("SENDs accepted before the ERROR: got %d, want 5 (the burst) to 12", receipts)
	}

	checkServes(t, env, e)
}

func TestSlowConsumerIsClosed(t *testing.T) {
	env, e := start(t, func(c *edge.Config) {
		c.MaxQueueBytes = 64 << 10
		// Long enough that only the queue bound, not a write deadline,
		// can close the client while the test runs.
		c.WriteTimeout = 30 * time.Second
		// No periodic registry snapshots during the flood: the embedded
		// broker (go-stomp v3.1.3) deadlocks, until the relay's receipt
		// timeout drops the link, when a connection that a topic floods
		// publishes at the same moment (its request loop waits on the
		// broker's processor, which waits on that connection's full write
		// queue).
		c.RegistryInterval = time.Hour
	})
	d := websocket.Dialer{HandshakeTimeout: wait}
	ws, resp, err := d.Dial(stompURL(t, e, newUser("slow")), nil)
	if err != nil {
		t.Fatalf("dial: %v (HTTP %s)", err, status(resp))
	}
	defer ws.Close()
	rawSend(t, ws, stompclient.Encode("CONNECT", nil, "accept-version", "1.2"))
	rawSend(t, ws, stompclient.Encode("SUBSCRIBE", nil, "id", "f", "destination", "/topic/flood", "receipt", "r"))
	if acc, err := rawReadUntil(ws, nil, "receipt-id:r\n", wait); err != nil {
		t.Fatalf("waiting for RECEIPT: %v (got %q)", err, acc)
	}
	// Stop reading, and flood the topic.
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base := ms.HeapInuse
	var peak atomic.Uint64

	slowClosed := func() bool {
		return metric(t, e, `pushgate_edge_sessions_closed_total{reason="slow"}`) >= 1
	}
	body := bytes.Repeat([]byte("x"), 1<<10)
	const maxMessages = 100_000
	var sent atomic.Int64
	var sendErr atomic.Pointer[error]
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	// A few pipelined senders: enough to outrun the client, few enough not
	// to outrun the embedded broker on a small, busy machine (its request
	// loop stalls every publisher while a subscriber's queue is full).
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil && sent.Load() < maxMessages {
				if err := env.Pushsvc.Pool.Send(ctx, &relay.Message{Destination: relay.TopicDestination("/topic/flood"), ContentType: "text/plain", Body: body}); err != nil {
					if ctx.Err() == nil {
						sendErr.CompareAndSwap(nil, &err)
					}
					return
				}
				if n := sent.Add(1); n%500 == 0 {
					var ms runtime.MemStats
					runtime.ReadMemStats(&ms)
					for p := peak.Load(); ms.HeapInuse > p && !peak.CompareAndSwap(p, ms.HeapInuse); p = peak.Load() {
					}
					if n >= 10_000 && slowClosed() {
						cancel()
					}
				}
			}
		}()
	}
	wg.Wait()
	t.Logf("pushed %d messages of 1 KiB; heap in use: base %d MiB, peak %d MiB", sent.Load(), base>>20, peak.Load()>>20)
	if err := sendErr.Load(); err != nil {
		t.Fatalf("flooding the topic through the broker: %v", *err)
	}
	if p := peak.Load(); p > base && p-base > 48<<20 {
		t.Errorf("heap in use grew by %d MiB while a client did not read; want it bounded (< 48 MiB)", (p-base)>>20)
	}
	if !slowClosed() {
		// The last sends may still be in flight.
		waitFor(t, wait, "sessions_closed_total{reason=\"slow\"} to increment", slowClosed)
	}

	// Reading again, the slow client finds its connection ended.
	var lastErr error
	sawSlowError := false
	var tail []byte
	total := 0
	for {
		_ = ws.SetReadDeadline(time.Now().Add(wait))
		_, p, err := ws.ReadMessage()
		if err != nil {
			lastErr = err
			break
		}
		total += len(p)
		tail = append(tail, p...)
		if i := bytes.Index(tail, []byte("ERROR\n")); i >= 0 && bytes.Contains(tail[i:], []byte("slow consumer")) {
			sawSlowError = true
		}
		if len(tail) > 64<<10 {
			tail = tail[len(tail)-1024:]
		}
	}
	var ne net.Error
	if errors.As(lastErr, &ne) && ne.Timeout() {
		t.Fatalf("slow client: connection still open after the flood, want it closed")
	}
	t.Logf("slow client: read %d bytes after resuming; connection ended with %v", total, lastErr)
	if !sawSlowError {
		t.Errorf("slow client: got no ERROR frame saying \"slow consumer\" before the close, want one")
	}

	checkServes(t, env, e)
}

func TestHeartBeat(t *testing.T) {
	_, e := start(t, func(c *edge.Config) { c.HeartBeat = time.Second })

	t.Run("silent client is closed", func(t *testing.T) {
		t.Parallel()
		c := dial(t, stompURL(t, e, newUser("silent")), nil)
		send(t, c, stompclient.Encode("CONNECT", nil, "accept-version", "1.2", "heart-beat", "1000,0"))
		f := expect(t, c, "CONNECTED")
		if got := f.Header.Get("heart-beat"); got != "1000,1000" {
			t.Errorf("CONNECTED heart-beat: got %q, want 1000,1000", got)
		}
		start := time.Now()
		f = expect(t, c, "ERROR")
		if msg := f.Header.Get("message"); !strings.Contains(msg, "heart-beat") {
			t.Errorf("ERROR message: got %q, want it to mention heart-beat", msg)
		}
		if d := time.Since(start); d < time.Second || d > 4*time.Second {
			t.Errorf("closed after %v, want after 2s of silence (1-4s)", d)
		}
		expectClosed(t, c)
	})

	t.Run("beating client stays", func(t *testing.T) {
		t.Parallel()
		user := newUser("beating")
		c := dial(t, stompURL(t, e, user), nil)
		send(t, c, stompclient.Encode("CONNECT", nil, "accept-version", "1.2", "heart-beat", "1000,0"))
		expect(t, c, "CONNECTED")
		deadline := time.Now().Add(3500 * time.Millisecond)
		for time.Now().Before(deadline) {
			send(t, c, []byte("\n"))
			if f, err := c.Next(500 * time.Millisecond); err == nil {
				t.Fatalf("got %s %v, want the session to stay quiet and open", f.Command, f.Header)
			} else if strings.Contains(err.Error(), "closed") {
				t.Fatalf("connection closed although the client sent heart-beats")
			}
		}
		send(t, c, stompclient.Encode("SUBSCRIBE", nil, "id", "s", "destination", "/user/topic/x", "receipt", "alive"))
		expectReceipt(t, c, "alive")
	})

	t.Run("server sends heart-beats", func(t *testing.T) {
		t.Parallel()
		ws, resp, err := rawDial(t, stompURL(t, e, newUser("listener")), nil)
		if err != nil {
			t.Fatalf("dial: %v (HTTP %s)", err, status(resp))
		}
		rawSend(t, ws, stompclient.Encode("CONNECT", nil, "accept-version", "1.2", "heart-beat", "0,500"))
		if acc, err := rawReadUntil(ws, nil, "CONNECTED\n", wait); err != nil {
			t.Fatalf("waiting for CONNECTED: %v (got %q)", err, acc)
		}
		start := time.Now()
		for i := range 2 {
			_ = ws.SetReadDeadline(time.Now().Add(2 * time.Second))
			_, p, err := ws.ReadMessage()
			if err != nil {
				t.Fatalf("heart-beat %d: %v", i+1, err)
			}
			if string(p) != "\n" {
				t.Fatalf("got %q, want a heart-beat \"\\n\"", p)
			}
		}
		if d := time.Since(start); d < 1500*time.Millisecond {
			t.Errorf("two heart-beats within %v, want one a second (max(1000,500) ms)", d)
		}
	})
}

func TestFirstFrameTimeout(t *testing.T) {
	env, e := start(t, func(c *edge.Config) { c.FirstFrameTimeout = 300 * time.Millisecond })
	for _, tc := range []struct {
		name string
		send []byte
	}{{"nothing sent", nil}, {"partial CONNECT", []byte("CONNECT\naccept-version:1.2\n")}} {
		t.Run(tc.name, func(t *testing.T) {
			c := dial(t, stompURL(t, e, newUser("mute")), nil)
			if tc.send != nil {
				send(t, c, tc.send)
			}
			start := time.Now()
			expectError(t, c, "CONNECT")
			if d := time.Since(start); d > 2*time.Second {
				t.Errorf("closed after %v, want about 300ms", d)
			}
		})
	}
	// A client that does connect in time is not affected by the deadline.
	c := connect(t, e, newUser("prompt"))
	if f, err := c.Next(600 * time.Millisecond); err == nil {
		t.Fatalf("connected session: got %s %v, want nothing", f.Command, f.Header)
	} else if strings.Contains(err.Error(), "closed") {
		t.Fatalf("connected session closed by the first-frame deadline")
	}
	checkServes(t, env, e)
}

// 7. Token expiry.

func TestTokenExpiryEndsSession(t *testing.T) {
	_, e := start(t, nil)
	for _, where := range []string{"handshake", "CONNECT"} {
		t.Run(where, func(t *testing.T) {
			t.Parallel()
			user := newUser("expiring")
			tok, err := edge.IssueToken(testenv.Secret, user, 2*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			var c *stompclient.Client
			if where == "handshake" {
				c = dial(t, e.URL("/stomp?access_token="+url.QueryEscape(tok)), nil)
				_, err = c.Connect(wait)
			} else {
				c = dial(t, e.URL("/stomp"), nil)
				_, err = c.Connect(wait, "passcode", tok)
			}
			if err != nil {
				t.Fatal(err)
			}
			if err := c.Subscribe("s", "/user/topic/x", wait); err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			expectError(t, c, "token expired")
			if d := time.Since(start); d > 4*time.Second {
				t.Errorf("closed %v after connecting, want at the token's exp (within 2s, 4s with slack)", d)
			}
		})
	}
}

// 8. Origin.

func TestOrigin(t *testing.T) {
	tests := []struct {
		name    string
		allowed []string
		origin  func(e *testenv.Edge) string // "" sends no Origin
		want    int
	}{
		{"default: other origin", nil, func(*testenv.Edge) string { return "http://evil.example" }, http.StatusForbidden},
		{"default: same host", nil, func(e *testenv.Edge) string { return "http://" + e.Addr }, http.StatusSwitchingProtocols},
		{"default: same host, other port", nil, func(e *testenv.Edge) string {
			host, _, _ := net.SplitHostPort(e.Addr)
			return "http://" + host + ":1"
		}, http.StatusForbidden},
		{"default: no Origin", nil, func(*testenv.Edge) string { return "" }, http.StatusSwitchingProtocols},
		{"list: listed origin", []string{"https://app.example.com"}, func(*testenv.Edge) string { return "https://app.example.com" }, http.StatusSwitchingProtocols},
		{"list: other origin", []string{"https://app.example.com"}, func(*testenv.Edge) string { return "http://evil.example" }, http.StatusForbidden},
		{"list: other scheme", []string{"https://app.example.com"}, func(*testenv.Edge) string { return "http://app.example.com" }, http.StatusForbidden},
		{"list: suffix trick", []string{"https://app.example.com"}, func(*testenv.Edge) string { return "https://app.example.com.evil.example" }, http.StatusForbidden},
		{"list: no Origin", []string{"https://app.example.com"}, func(*testenv.Edge) string { return "" }, http.StatusSwitchingProtocols},
	}
	// One edge per AllowedOrigins setting, started here so that they live
	// as long as the whole test.
	edges := map[string]*testenv.Edge{}
	for _, tt := range tests {
		if key := strings.Join(tt.allowed, ","); edges[key] == nil {
			_, edges[key] = start(t, func(c *edge.Config) { c.AllowedOrigins = tt.allowed })
		}
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := edges[strings.Join(tt.allowed, ",")]
			h := http.Header{}
			if o := tt.origin(e); o != "" {
				h.Set("Origin", o)
			}
			c, resp, err := stompclient.Dial(context.Background(), stompURL(t, e, "origin"), h)
			if err == nil {
				defer c.Close()
			}
			if got := status(resp); resp == nil || resp.StatusCode != tt.want {
				t.Fatalf("handshake with Origin %q: got HTTP %s (%v), want %d", h.Get("Origin"), got, err, tt.want)
			}
			if tt.want == http.StatusSwitchingProtocols {
				if _, err := c.Connect(wait); err != nil {
					t.Fatalf("connect: %v", err)
				}
			}
		})
	}
}

// 9. Shutdown.

func TestShutdown(t *testing.T) {
	_, e := start(t, nil)
	connected := []*stompclient.Client{connect(t, e, newUser("a")), connect(t, e, newUser("b"))}
	if err := connected[0].Subscribe("s", "/topic/news", wait); err != nil {
		t.Fatal(err)
	}
	unconnected := dial(t, stompURL(t, e, newUser("c")), nil)
	if got := get(t, "http://"+e.Addr+"/readyz"); got != http.StatusOK {
		t.Fatalf("/readyz before shutdown: got %d, want 200", got)
	}

	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- e.Server.Shutdown(ctx) }()
	for i, c := range append(connected, unconnected) {
		f := expect(t, c, "ERROR")
		if msg := f.Header.Get("message"); !strings.Contains(msg, "shutting down") {
			t.Errorf("client %d: ERROR message: got %q, want it to say the edge is shutting down", i, msg)
		}
		expectClosed(t, c)
	}
	if err := <-errc; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if got := get(t, "http://"+e.Addr+"/readyz"); got != http.StatusServiceUnavailable {
		t.Errorf("/readyz after shutdown: got %d, want 503", got)
	}
	c, resp, err := stompclient.Dial(context.Background(), stompURL(t, e, "late"), nil)
	if err == nil {
		c.Close()
		t.Fatal("handshake after shutdown: got success, want HTTP 503")
	}
	if resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("handshake after shutdown: got HTTP %s, want 503", status(resp))
	}
	// Shutdown is idempotent.
	if err := e.Server.Shutdown(ctx); err != nil {
		t.Errorf("second Shutdown: %v", err)
	}
}

// 10. Session limit.

func TestMaxSessions(t *testing.T) {
	env, e := start(t, func(c *edge.Config) { c.MaxSessions = 3 })
	var clients []*stompclient.Client
	for range 3 {
		clients = append(clients, connect(t, e, newUser("max")))
	}
	c, resp, err := stompclient.Dial(context.Background(), stompURL(t, e, "fourth"), nil)
	if err == nil {
		c.Close()
		t.Fatal("4th handshake: got success, want HTTP 503")
	}
	if resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("4th handshake: got HTTP %s (%v), want 503", status(resp), err)
	}
	// A refused handshake holds no slot, and a closed session frees its slot.
	clients[0].Close()
	var c4 *stompclient.Client
	waitFor(t, wait, "a session slot to free up", func() bool {
		c, _, err := stompclient.Dial(context.Background(), stompURL(t, e, "fourth"), nil)
		if err != nil {
			return false
		}
		c4 = c
		return true
	})
	t.Cleanup(func() { c4.Close() })
	if _, err := c4.Connect(wait); err != nil {
		t.Fatalf("connect after a slot freed: %v", err)
	}
	if err := c4.Subscribe("s", "/user/topic/m", wait); err != nil {
		t.Fatal(err)
	}
	sendToUser(t, env, "fourth", "/topic/m", "in", nil)
	expectMessage(t, c4, "/user/topic/m", "in")
}
