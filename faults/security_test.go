package faults

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/gorilla/websocket"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/pushgate/pushgate/edge"
	pushgatev1 "github.com/pushgate/pushgate/gen/pushgate/v1"
	"github.com/pushgate/pushgate/internal/stompclient"
	"github.com/pushgate/pushgate/internal/testbroker"
	"github.com/pushgate/pushgate/internal/testenv"
	"github.com/pushgate/pushgate/relay"
)

// hostileDestinations are SUBSCRIBE destinations with which alice tries to
// read bob's messages or the broker's internals.
var hostileDestinations = []string{
	"/user/bob/topic/secret", "/user/bob/queue/secret", "/user/bob/topic/secret/",
	"/USER/topic/secret", "/User/bob/topic/secret", "/user/Topic/secret", "/user/TOPIC/secret",
	"/user/topic/../bob/topic/secret", "/user/topic/secret/..", "/user/topic/./secret", "/user/topic/..",
	"/user/topic/secret/", "/user/topic/secret//", "/user//topic/secret", "//user/topic/secret", "/user/topic//secret",
	"/user/%62ob/topic/secret", "/user/topic/%2e%2e/x", "/user%2Fbob%2Ftopic%2Fsecret", "%2Fuser%2Ftopic%2Fsecret",
	"/user/topic/secret%00", "/user/topic/sec ret", "/user/topic/sec\tret", " /user/topic/secret", "/user/topic/secret ",
	"/user/topic/*", "/user/topic/#", "/user/*/topic/secret", "/user/#", "/user/topic/secret.*", "/user/topic/secret.#",
	"/topic/*", "/topic/#", "/topic/secret.*", "/topic/secret/#", "/topic/..", "/topic/",
	"/exchange/amq.topic/pushgate.Edges", "/exchange/amq.topic/#", "/exchange/amq.topic/pushgate.edge.*",
	"/amq/queue/pushgate.registry", "/amq/queue/x", "/queue/secret", "/queue/secret-userbob", "/temp-queue/secret",
	"/reply-queue/x", "/user/bob", "/user/", "/user", "/app/hello", "secret", "/user/topic/секрет",
}

// TestUserIsolation tries every spelling above: each is refused with an
// ERROR naming the destination, or (where it is alice's own destination)
// accepted; either way, nothing pushed to bob ever reaches alice.
func TestUserIsolation(t *testing.T) {
	testbroker.Each(t, func(t *testing.T, brokerURL string) {
		e := startEnv(t, envOptions{broker: brokerURL})
		bob := connect(t, e.Edges[1], "bob")
		subscribe(t, bob, "t", "/user/topic/secret")
		subscribe(t, bob, "q", "/user/queue/secret")

		var spies []*stompclient.Client
		refused, accepted := 0, []string{}
		for _, dest := range hostileDestinations {
			spy := connect(t, e.Edges[len(spies)%2], "alice")
			if err := spy.Send("SUBSCRIBE", nil, "id", "x", "destination", dest, "receipt", "r"); err != nil {
				t.Fatal(err)
			}
			f, err := spy.Next(wait)
			if err != nil {
				t.Fatalf("SUBSCRIBE %q: %v", dest, err)
			}
			switch f.Command {
			case "ERROR":
				refused++
				msg := f.Header.Get("message")
				if dest != "" && !strings.Contains(msg, relay.Quote(dest)) && !strings.Contains(msg, dest) {
					t.Errorf("SUBSCRIBE %q: ERROR %q does not name the destination", dest, msg)
				}
				expectClosed(t, spy, wait)
			case "RECEIPT":
				accepted = append(accepted, dest)
				spies = append(spies, spy)
			default:
				t.Fatalf("SUBSCRIBE %q: got %s", dest, f.Command)
			}
		}
		report(t, "%d destination spellings: %d refused with an ERROR naming them, accepted as alice's own: %q", len(hostileDestinations), refused, accepted)

		// Also SEND: alice cannot publish into bob's destinations.
		for _, dest := range []string{"/user/bob/topic/secret", "/topic/secret", "/exchange/amq.topic/pushgate.Edges", "/queue/secret", "/app/../topic/secret"} {
			spy := connect(t, e.Edges[0], "alice")
			if err := spy.Send("SEND", []byte("forged"), "destination", dest); err != nil {
				t.Fatal(err)
			}
			expectError(t, spy, "cannot send to", wait)
		}

		// bob gets what is pushed to him; alice's accepted sessions nothing.
		for _, d := range []string{"/topic/secret", "/queue/secret"} {
			if code, body := e.sendToUser("bob", d, "for bob only"); code != http.StatusOK {
				t.Fatalf("push to bob: %d %s", code, body)
			}
		}
		for range 2 {
			f, err := bob.Expect("MESSAGE", wait)
			if err != nil || string(f.Body) != "for bob only" {
				t.Fatalf("bob did not get his push: %v", err)
			}
		}
		if f, err := bob.Next(300 * time.Millisecond); err == nil {
			t.Errorf("bob got an extra %s %q (a forged SEND?)", f.Command, f.Body)
		}
		for i, spy := range spies {
			if f, err := spy.Next(100 * time.Millisecond); err == nil {
				t.Errorf("alice's session subscribed to %q got %s %q", accepted[i], f.Command, f.Body)
			}
		}
	})
}

// TestOrigin: a browser page of another site cannot open a session, over
// WebSocket or SockJS; the same host and non-browsers (no Origin) can.
func TestOrigin(t *testing.T) {
	e := startEnv(t, envOptions{broker: testbroker.Embedded(t).URL(), edges: 1})
	p := e.Edges[0]
	tok := url.QueryEscape(testenv.Token(t, "alice"))
	for _, tc := range []struct {
		name, path, origin string
		want               int
	}{
		{"websocket, other site", "/stomp?access_token=" + tok, "https://evil.example", http.StatusForbidden},
		{"websocket, other port", "/stomp?access_token=" + tok, "http://127.0.0.1:1", http.StatusForbidden},
		{"websocket, null origin", "/stomp?access_token=" + tok, "null", http.StatusForbidden},
		{"websocket, same host", "/stomp?access_token=" + tok, "http://" + p.Addr, http.StatusSwitchingProtocols},
		{"websocket, no Origin", "/stomp?access_token=" + tok, "", http.StatusSwitchingProtocols},
		{"sockjs raw websocket, other site", "/ws/websocket?access_token=" + tok, "https://evil.example", http.StatusForbidden},
		{"sockjs session websocket, other site", "/ws/000/abcdefgh/websocket?access_token=" + tok, "https://evil.example", http.StatusForbidden},
		{"sockjs raw websocket, same host", "/ws/websocket?access_token=" + tok, "http://" + p.Addr, http.StatusSwitchingProtocols},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := http.Header{}
			if tc.origin != "" {
				h.Set("Origin", tc.origin)
			}
			d := websocket.Dialer{Subprotocols: []string{"v12.stomp"}, HandshakeTimeout: wait}
			ws, resp, err := d.Dial(p.URL(tc.path), h)
			got := 0
			if resp != nil {
				got = resp.StatusCode
			}
			if ws != nil {
				ws.Close()
			}
			if got != tc.want {
				t.Errorf("handshake with Origin %q: HTTP %d (%v), want %d", tc.origin, got, err, tc.want)
			}
		})
	}
	// SockJS HTTP transports check it too.
	for _, path := range []string{"/ws/info", "/ws/000/abcdefgh/xhr", "/ws/000/abcdefgh/xhr_streaming"} {
		method := http.MethodPost
		if path == "/ws/info" {
			method = http.MethodGet
		}
		req, _ := http.NewRequest(method, "http://"+p.Addr+path, nil)
		req.Header.Set("Origin", "https://evil.example")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("SockJS %s %s from another origin: HTTP %d, want 403", method, path, resp.StatusCode)
		}
	}
}

// signed returns a token for claims signed with method and key, with
// extra header fields.
func signed(t *testing.T, method jwt.SigningMethod, key any, claims jwt.MapClaims, header map[string]any) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, claims)
	for k, v := range header {
		tok.Header[k] = v
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// handshakeStatus opens /stomp with token as access_token and returns the
// HTTP status of the handshake.
func handshakeStatus(t *testing.T, p *testenv.Edge, token string) int {
	t.Helper()
	c, resp, err := stompclient.Dial(context.Background(), p.URL("/stomp?access_token="+url.QueryEscape(token)), nil)
	if err == nil {
		c.Close()
		return http.StatusSwitchingProtocols
	}
	if resp == nil {
		t.Fatalf("handshake: %v", err)
	}
	return resp.StatusCode
}

// connectError sends token in CONNECT's passcode and returns the ERROR's
// message ("" when CONNECTED).
func connectError(t *testing.T, p *testenv.Edge, token string) string {
	t.Helper()
	c, _, err := dial(t, p.URL("/stomp"), nil)
	if err != nil {
		t.Fatal(err)
	}
	// The edge may refuse a frame over its limits before the client has
	// written all of it: its ERROR and close can cut the write short, and
	// the ERROR is what counts.
	sendErr := c.Send("CONNECT", nil, "accept-version", "1.2", "host", "x", "passcode", token)
	f, err := c.Next(wait)
	if err != nil {
		t.Fatalf("CONNECT (sent: %v): %v", sendErr, err)
	}
	if f.Command == "CONNECTED" {
		return ""
	}
	expectClosed(t, c, wait)
	return f.Header.Get("message")
}

// TestJWT covers tokens that must not open a session, over both the
// handshake (401, or 431 for a token too large for the request line) and
// CONNECT (ERROR, then close), and a token that expires during a session
// (closed at expiry with a reason).
func TestJWT(t *testing.T) {
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	otherRSA, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKIXPublicKey(&rsaKey.PublicKey)
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	b := testbroker.Embedded(t).URL()
	hmacEdge := startEnv(t, envOptions{broker: b, edges: 1}).Edges[0]
	rsaEdge := startEnv(t, envOptions{broker: b, edges: 1, edge: func(c *edge.Config) {
		c.Auth = edge.AuthConfig{PublicKeyPEM: pubPEM}
	}}).Edges[0]

	exp := time.Now().Add(time.Hour).Unix()
	claims := jwt.MapClaims{"sub": "alice", "exp": exp}
	none, err := jwt.NewWithClaims(jwt.SigningMethodNone, claims).SignedString(jwt.UnsafeAllowNoneSignatureType)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name  string
		edge  *testenv.Edge
		token string
	}{
		{"alg none", hmacEdge, none},
		{"alg none, upper case", hmacEdge, strings.Replace(none, strings.Split(none, ".")[0], jwtSegment(`{"alg":"NONE","typ":"JWT"}`), 1)},
		{"HS512 with the right secret (alg not pinned)", hmacEdge, signed(t, jwt.SigningMethodHS512, testenv.Secret, claims, nil)},
		{"HS256 with another secret", hmacEdge, signed(t, jwt.SigningMethodHS256, []byte("not the secret"), claims, nil)},
		{"unknown kid, other secret", hmacEdge, signed(t, jwt.SigningMethodHS256, []byte("attacker key"), claims, map[string]any{"kid": "attacker"})},
		{"kid path traversal, empty key", hmacEdge, signed(t, jwt.SigningMethodHS256, []byte{0}, claims, map[string]any{"kid": "../../../../dev/null"})},
		{"jku pointing elsewhere", hmacEdge, signed(t, jwt.SigningMethodHS256, []byte("attacker key"), claims, map[string]any{"jku": "https://evil.example/jwks"})},
		{"expired", hmacEdge, signed(t, jwt.SigningMethodHS256, testenv.Secret, jwt.MapClaims{"sub": "alice", "exp": time.Now().Add(-time.Minute).Unix()}, nil)},
		{"not valid yet", hmacEdge, signed(t, jwt.SigningMethodHS256, testenv.Secret, jwt.MapClaims{"sub": "alice", "nbf": time.Now().Add(time.Hour).Unix()}, nil)},
		{"no sub", hmacEdge, signed(t, jwt.SigningMethodHS256, testenv.Secret, jwt.MapClaims{"exp": exp}, nil)},
		{"sub not a string", hmacEdge, signed(t, jwt.SigningMethodHS256, testenv.Secret, jwt.MapClaims{"sub": 42, "exp": exp}, nil)},
		{"RS256 edge: HS256 signed with the public key (alg confusion)", rsaEdge, signed(t, jwt.SigningMethodHS256, pubPEM, claims, nil)},
		{"RS256 edge: HS256 signed with the DER key", rsaEdge, signed(t, jwt.SigningMethodHS256, der, claims, nil)},
		{"RS256 edge: another RSA key", rsaEdge, signed(t, jwt.SigningMethodRS256, otherRSA, claims, nil)},
		{"RS256 edge: PS256 with the right key", rsaEdge, signed(t, jwt.SigningMethodPS256, rsaKey, claims, nil)},
		{"RS256 edge: unknown kid, another key", rsaEdge, signed(t, jwt.SigningMethodRS256, otherRSA, claims, map[string]any{"kid": "rotated-2031"})},
		{"garbage", hmacEdge, "not.a.jwt"},
		{"oversized (9 KiB claim)", hmacEdge, signed(t, jwt.SigningMethodHS256, testenv.Secret, jwt.MapClaims{"sub": "alice", "exp": exp, "pad": strings.Repeat("a", 9<<10)}, nil)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := handshakeStatus(t, tc.edge, tc.token); got != http.StatusUnauthorized {
				t.Errorf("handshake: HTTP %d, want 401", got)
			}
			msg := connectError(t, tc.edge, tc.token)
			if msg == "" {
				t.Errorf("CONNECT with the token: CONNECTED, want ERROR")
			} else if strings.Contains(msg, tc.token) {
				t.Errorf("ERROR quotes the token: %q", msg)
			}
		})
	}
	// Control: the right tokens work, a kid is ignored (there is one key).
	for _, tc := range []struct {
		name  string
		edge  *testenv.Edge
		token string
	}{
		{"HS256", hmacEdge, signed(t, jwt.SigningMethodHS256, testenv.Secret, claims, map[string]any{"kid": "whatever"})},
		{"RS256", rsaEdge, signed(t, jwt.SigningMethodRS256, rsaKey, claims, map[string]any{"kid": "whatever"})},
	} {
		if got := handshakeStatus(t, tc.edge, tc.token); got != http.StatusSwitchingProtocols {
			t.Errorf("%s: valid token refused at the handshake: %d", tc.name, got)
		}
		if msg := connectError(t, tc.edge, tc.token); msg != "" {
			t.Errorf("%s: valid token refused at CONNECT: %q", tc.name, msg)
		}
	}
	// A 64 KiB token does not get through the handshake at all.
	huge := strings.Repeat("a", 64<<10)
	if got := handshakeStatus(t, hmacEdge, huge); got != http.StatusUnauthorized && got != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("64 KiB token at the handshake: HTTP %d, want 401 or 431", got)
	}

	// Expiry during the session: closed at exp, with the reason.
	expAt := time.Now().Add(2 * time.Second).Truncate(time.Second).Add(time.Second)
	short := signed(t, jwt.SigningMethodHS256, testenv.Secret, jwt.MapClaims{"sub": "alice", "exp": expAt.Unix()}, nil)
	c, _, err := dial(t, hmacEdge.URL("/stomp?access_token="+url.QueryEscape(short)), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Connect(wait); err != nil {
		t.Fatal(err)
	}
	subscribe(t, c, "g", "/user/topic/greetings")
	msg := expectError(t, c, "token expired", time.Until(expAt)+3*time.Second)
	late := time.Since(expAt)
	expectClosed(t, c, wait)
	report(t, "session closed %v after its token's exp with ERROR %q", late.Round(time.Millisecond), msg)
	if late < 0 || late > time.Second {
		t.Errorf("closed %v after exp, want within 1s after it", late)
	}
}

func jwtSegment(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// TestAPIToken: the push API needs the bearer token, over REST and gRPC;
// health, readiness and metrics do not.
func TestAPIToken(t *testing.T) {
	const token = "faults-api-token-0123456789"
	e := startEnv(t, envOptions{broker: testbroker.Embedded(t).URL(), edges: 1, apiToken: token})
	body := map[string]any{"destination": "/topic/greetings", "text": "hi"}
	for _, tc := range []struct{ name, token string }{{"no token", ""}, {"wrong token", "nope"}, {"token with a suffix", token + "x"}, {"token prefix", token[:10]}} {
		if code, out := e.post("/v1/users/alice/messages", body, tc.token); code != http.StatusUnauthorized {
			t.Errorf("REST SendToUser, %s: HTTP %d %s, want 401", tc.name, code, out)
		}
		if code, _ := e.post("/v1/broadcasts", body, tc.token); code != http.StatusUnauthorized {
			t.Errorf("REST Broadcast, %s: HTTP %d, want 401", tc.name, code)
		}
	}
	req, _ := http.NewRequest(http.MethodGet, "http://"+e.Pushsvc.HTTPAddr+"/test?username=alice", nil)
	req.Header.Set("Authorization", "Basic "+b64("alice:"+token))
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("/test with Basic auth: %v %v, want 401", resp.StatusCode, err)
	} else {
		resp.Body.Close()
	}
	if code, out := e.post("/v1/users/alice/messages", body, token); code != http.StatusOK {
		t.Errorf("REST with the token: HTTP %d %s", code, out)
	}
	for _, path := range []string{"/healthz", "/readyz", "/metrics"} {
		if code := httpStatus("http://" + e.Pushsvc.HTTPAddr + path); code != http.StatusOK {
			t.Errorf("%s without a token: HTTP %d, want 200", path, code)
		}
	}

	cc, err := grpc.NewClient(e.Pushsvc.GRPCAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	client := pushgatev1.NewPushServiceClient(cc)
	req1 := &pushgatev1.SendToUserRequest{User: "alice", Destination: "/topic/greetings", Payload: &pushgatev1.SendToUserRequest_Text{Text: "hi"}}
	for _, tc := range []struct{ name, md string }{{"no token", ""}, {"wrong token", "Bearer nope"}, {"no scheme", token}} {
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		if tc.md != "" {
			ctx = metadata.AppendToOutgoingContext(ctx, "authorization", tc.md)
		}
		_, err := client.SendToUser(ctx, req1)
		cancel()
		if status.Code(err) != codes.Unauthenticated {
			t.Errorf("gRPC SendToUser, %s: %v, want UNAUTHENTICATED", tc.name, err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if _, err := client.SendToUser(metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+token), req1); err != nil {
		t.Errorf("gRPC with the token: %v", err)
	}
}
