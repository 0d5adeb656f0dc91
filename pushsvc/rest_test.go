package pushsvc

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/pushgate/pushgate/relay"
)

// do sends an HTTP request to the API and returns status, body and headers.
func (a *testAPI) do(t *testing.T, method, path, token, body string) (int, string, http.Header) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, a.base+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := a.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b), resp.Header
}

// restError is grpc-gateway's JSON error body.
type restError struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

// checkRESTError fails t unless the response is an error with the HTTP
// status, gRPC code and message (msg "" skips the message check; a final
// "*" makes it a prefix, for protojson's messages, whose spacing varies on
// purpose).
func checkRESTError(t *testing.T, gotStatus int, body string, wantStatus, wantCode int, msg string) {
	t.Helper()
	var e restError
	if err := json.Unmarshal([]byte(body), &e); err != nil {
		t.Fatalf("status %d, body %q is not a JSON error: %v", gotStatus, body, err)
	}
	msgOK := msg == "" || e.Message == msg ||
		strings.HasSuffix(msg, "*") && strings.HasPrefix(e.Message, strings.TrimSuffix(msg, "*"))
	if gotStatus != wantStatus || e.Code != wantCode || !msgOK {
		t.Errorf("got %d %+v\nwant %d {Code:%d Message:%s}", gotStatus, e, wantStatus, wantCode, msg)
	}
}

func TestRESTSendToUserCurlFromDesign(t *testing.T) {
	t.Parallel()
	a := startAPI(t, Config{})
	code, body, _ := a.do(t, "POST", "/v1/users/alice/messages", testToken, `{"destination":"/topic/greetings","text":"hi"}`)
	if code != http.StatusOK {
		t.Fatalf("got %d %s, want 200", code, body)
	}
	var resp struct {
		MessageID string `json:"message_id"`
	}
	if err := json.Unmarshal([]byte(body), &resp); err != nil || len(resp.MessageID) != 32 {
		t.Fatalf("response %s: want {\"message_id\": 32 hex digits} (%v)", body, err)
	}
	want := []apiCall{{op: "user", user: "alice", m: Message{ID: resp.MessageID, Destination: "/topic/greetings",
		Body: []byte("hi"), ContentType: "text/plain;charset=UTF-8"}}}
	if diff := cmp.Diff(want, a.router.take(), cmp.AllowUnexported(apiCall{})); diff != "" {
		t.Errorf("router calls (-want +got):\n%s", diff)
	}
}

func TestRESTUserNamesArePercentDecoded(t *testing.T) {
	t.Parallel()
	a := startAPI(t, Config{})
	tests := []struct{ path, want string }{
		{"alice%2Fbob", "alice/bob"},
		{"a%2F..%2Fb", "a/../b"},
		{"100%25%20sure", "100% sure"},
		{"a.b%23c%2A", "a.b#c*"},
		{"%C3%BC%E2%9C%93", "ü✓"},
		{"team%3Aops%40x", "team:ops@x"},
		{"100%252F", "100%2F"},
		{"%20", " "},
		{"a%3Fb%3Dc", "a?b=c"},
		{strings.Repeat("%2F", 70), strings.Repeat("/", 70)},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			code, body, _ := a.do(t, "POST", "/v1/users/"+tt.path+"/messages", testToken, `{"destination":"/topic/x","text":"hi"}`)
			if code != http.StatusOK {
				t.Fatalf("got %d %s, want 200", code, body)
			}
			calls := a.router.take()
			if len(calls) != 1 || calls[0].user != tt.want {
				t.Errorf("router calls %+v, want one for user %q", calls, tt.want)
			}
		})
	}
}

func TestRESTPathUserWinsOverBody(t *testing.T) {
	t.Parallel()
	a := startAPI(t, Config{})
	code, body, _ := a.do(t, "POST", "/v1/users/alice/messages", testToken, `{"user":"mallory","destination":"/topic/x","text":"hi"}`)
	if code != http.StatusOK {
		t.Fatalf("got %d %s, want 200", code, body)
	}
	if calls := a.router.take(); len(calls) != 1 || calls[0].user != "alice" {
		t.Errorf("router calls %+v, want one for alice", calls)
	}
}

func TestRESTPayloads(t *testing.T) {
	t.Parallel()
	a := startAPI(t, Config{})
	tests := []struct {
		name, path, body string
		wantOp           string
		wantBody, wantCT string
		wantHeaders      map[string]string
	}{
		{"json object", "/v1/users/u/messages", `{"destination":"/topic/x","json":{"b":[true,null,"<&>"],"a":1.5}}`,
			"user", `{"a":1.5,"b":[true,null,"<&>"]}`, "application/json", nil},
		{"json scalar", "/v1/broadcasts", `{"destination":"/topic/x","json":42}`, "broadcast", `42`, "application/json", nil},
		{"json null", "/v1/broadcasts", `{"destination":"/topic/x","json":null}`, "broadcast", `null`, "application/json", nil},
		{"data base64", "/v1/users/u/messages", `{"destination":"/queue/x","data":"AAEC/w=="}`, "user", "\x00\x01\x02\xff", "application/octet-stream", nil},
		{"content type and headers", "/v1/broadcasts",
			`{"destination":"/topic/x","text":"<b>hi</b>","content_type":"text/html;charset=UTF-8","headers":{"X-Trace":"t"}}`,
			"broadcast", "<b>hi</b>", "text/html;charset=UTF-8", map[string]string{"X-Trace": "t"}},
		{"camelCase field names", "/v1/broadcasts", `{"destination":"/topic/x","text":"hi","contentType":"text/x"}`,
			"broadcast", "hi", "text/x", nil},
		{"empty text", "/v1/broadcasts", `{"destination":"/topic/x","text":""}`, "broadcast", "", "text/plain;charset=UTF-8", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body, _ := a.do(t, "POST", tt.path, testToken, tt.body)
			if code != http.StatusOK {
				t.Fatalf("got %d %s, want 200", code, body)
			}
			calls := a.router.take()
			if len(calls) != 1 {
				t.Fatalf("router got %d calls, want 1", len(calls))
			}
			c := calls[0]
			if c.op != tt.wantOp || string(c.m.Body) != tt.wantBody || c.m.ContentType != tt.wantCT ||
				!cmp.Equal(c.m.Headers, tt.wantHeaders) {
				t.Errorf("router got %s %q %q %v, want %s %q %q %v", c.op, c.m.Body, c.m.ContentType, c.m.Headers,
					tt.wantOp, tt.wantBody, tt.wantCT, tt.wantHeaders)
			}
		})
	}
}

func TestRESTBadRequests(t *testing.T) {
	t.Parallel()
	a := startAPI(t, Config{MaxPayloadBytes: 10})
	tests := []struct {
		name, path, body, wantMsg string
	}{
		{"app destination", "/v1/users/u/messages", `{"destination":"/app/x","text":"hi"}`,
			`destination "/app/x": must start with /topic/ or /queue/`},
		{"queue broadcast", "/v1/broadcasts", `{"destination":"/queue/x","text":"hi"}`,
			`destination "/queue/x": a broadcast goes to a /topic/ destination, not a queue`},
		{"no payload", "/v1/users/u/messages", `{"destination":"/topic/x"}`, "payload: exactly one of text, json or data is required"},
		{"empty body", "/v1/broadcasts", ``, "destination: must not be empty"},
		{"two payloads", "/v1/users/u/messages", `{"destination":"/topic/x","text":"hi","json":{"a":1}}`,
			`payload: exactly one of text, json or data is allowed, got more than one (proto:*`},
		{"unknown field", "/v1/users/u/messages", `{"destination":"/topic/x","txt":"hi"}`, `request body: proto:*`},
		{"not json", "/v1/broadcasts", `destination=/topic/x`, ""},
		{"bad base64", "/v1/broadcasts", `{"destination":"/topic/x","data":"%%%"}`, ""},
		{"too big", "/v1/broadcasts", `{"destination":"/topic/x","text":"12345678901"}`, "payload: text is 11 bytes encoded, at most 10 allowed"},
		{"huge body", "/v1/broadcasts", `{"destination":"/topic/x","text":"` + strings.Repeat("x", 70<<10) + `"}`, "request body: more than 65596 bytes"},
		{"empty user", "/v1/users//messages", `{"destination":"/topic/x","text":"hi"}`, "user: must not be empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body, _ := a.do(t, "POST", tt.path, testToken, tt.body)
			checkRESTError(t, code, body, http.StatusBadRequest, 3, tt.wantMsg)
		})
	}
	if calls := a.router.take(); len(calls) != 0 {
		t.Errorf("invalid requests reached the router: %+v", calls)
	}
}

func TestRESTAuth(t *testing.T) {
	t.Parallel()
	a := startAPI(t, Config{})
	const msg = `{"destination":"/topic/x","text":"hi"}`
	for _, path := range []string{"/v1/users/u/messages", "/v1/broadcasts", "/v1/nothing"} {
		code, body, h := a.do(t, "POST", path, "", msg)
		checkRESTError(t, code, body, http.StatusUnauthorized, 16, `missing bearer token: send "authorization: Bearer <api token>"`)
		if !strings.HasPrefix(h.Get("WWW-Authenticate"), "Bearer") {
			t.Errorf("%s: WWW-Authenticate %q, want Bearer", path, h.Get("WWW-Authenticate"))
		}
		code, body, _ = a.do(t, "POST", path, "wrong", msg)
		checkRESTError(t, code, body, http.StatusUnauthorized, 16, "invalid bearer token")
	}
	code, body, _ := a.do(t, "GET", "/test?username=bob", "", "")
	checkRESTError(t, code, body, http.StatusUnauthorized, 16, "")
	if calls := a.router.take(); len(calls) != 0 {
		t.Errorf("unauthenticated requests reached the router: %+v", calls)
	}
}

func TestRESTInsecureNeedsNoToken(t *testing.T) {
	t.Parallel()
	a := startAPI(t, Config{InsecureNoAPIToken: true})
	if code, body, _ := a.do(t, "POST", "/v1/broadcasts", "", `{"destination":"/topic/x","text":"hi"}`); code != http.StatusOK {
		t.Errorf("got %d %s, want 200", code, body)
	}
}

func TestRESTRouterErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		err        error
		wantStatus int
		wantCode   int
	}{
		{"unavailable", fmt.Errorf("pool: %w", relay.ErrUnavailable), http.StatusServiceUnavailable, 14},
		{"internal", errors.New("boom"), http.StatusInternalServerError, 13},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			a := startAPI(t, Config{})
			a.router.setErr(tt.err)
			code, body, _ := a.do(t, "POST", "/v1/users/u/messages", testToken, `{"destination":"/topic/x","text":"hi"}`)
			checkRESTError(t, code, body, tt.wantStatus, tt.wantCode, "")
			code, body, _ = a.do(t, "GET", "/test?username=u", testToken, "")
			checkRESTError(t, code, body, tt.wantStatus, tt.wantCode, "")
		})
	}
}

func TestLegacyTestEndpoint(t *testing.T) {
	t.Parallel()
	a := startAPI(t, Config{})
	code, body, _ := a.do(t, "GET", "/test?username=bob%2Fx", testToken, "")
	if code != http.StatusOK || body == "" {
		t.Fatalf("got %d %q, want 200 with a short body", code, body)
	}
	calls := a.router.take()
	if len(calls) != 1 {
		t.Fatalf("router got %d calls, want 1", len(calls))
	}
	c := calls[0]
	if c.op != "user" || c.user != "bob/x" || c.m.Destination != "/topic/greetings" ||
		string(c.m.Body) != "hello:bob/x" || c.m.ContentType != "text/plain;charset=UTF-8" {
		t.Errorf("router got %s(%q, %q %q %q), want user(\"bob/x\", /topic/greetings \"hello:bob/x\" text/plain)",
			c.op, c.user, c.m.Destination, c.m.Body, c.m.ContentType)
	}
	code, body, _ = a.do(t, "GET", "/test", testToken, "")
	checkRESTError(t, code, body, http.StatusBadRequest, 3, "username: query parameter is required, as in /test?username=NAME")
	code, body, _ = a.do(t, "POST", "/test?username=bob", testToken, "")
	checkRESTError(t, code, body, http.StatusMethodNotAllowed, 12, "/test: only GET is allowed")
	if calls := a.router.take(); len(calls) != 0 {
		t.Errorf("refused requests reached the router: %+v", calls)
	}
}

func TestCORS(t *testing.T) {
	t.Parallel()
	const origin = "https://app.example"
	request := func(a *testAPI, method, path, origin, token string) *http.Response {
		t.Helper()
		req, err := http.NewRequest(method, a.base+path, strings.NewReader(`{"destination":"/topic/x","text":"hi"}`))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Origin", origin)
		if method == http.MethodOptions {
			req.Header.Set("Access-Control-Request-Method", "POST")
			req.Header.Set("Access-Control-Request-Headers", "authorization, content-type")
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := a.http.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		return resp
	}
	t.Run("off by default", func(t *testing.T) {
		t.Parallel()
		a := startAPI(t, Config{})
		resp := request(a, "POST", "/v1/broadcasts", origin, testToken)
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Access-Control-Allow-Origin") != "" {
			t.Errorf("got %d, Access-Control-Allow-Origin %q; want 200 and none", resp.StatusCode, resp.Header.Get("Access-Control-Allow-Origin"))
		}
	})
	t.Run("allowed origin", func(t *testing.T) {
		t.Parallel()
		a := startAPI(t, Config{AllowedOrigins: []string{origin}})
		pre := request(a, "OPTIONS", "/v1/users/alice/messages", origin, "")
		if pre.StatusCode != http.StatusNoContent || pre.Header.Get("Access-Control-Allow-Origin") != origin ||
			!strings.Contains(pre.Header.Get("Access-Control-Allow-Headers"), "Authorization") {
			t.Errorf("preflight: got %d %v, want 204 allowing %s with Authorization", pre.StatusCode, pre.Header, origin)
		}
		resp := request(a, "POST", "/v1/broadcasts", origin, testToken)
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Access-Control-Allow-Origin") != origin {
			t.Errorf("POST: got %d, Access-Control-Allow-Origin %q; want 200 and %s", resp.StatusCode, resp.Header.Get("Access-Control-Allow-Origin"), origin)
		}
		other := request(a, "POST", "/v1/broadcasts", "https://evil.example", testToken)
		if got := other.Header.Get("Access-Control-Allow-Origin"); got != "" {
			t.Errorf("other origin: Access-Control-Allow-Origin %q, want none", got)
		}
		if got := request(a, "OPTIONS", "/v1/broadcasts", "https://evil.example", "").StatusCode; got != http.StatusUnauthorized {
			t.Errorf("preflight from another origin: got %d, want 401 (no CORS answer)", got)
		}
	})
}

func TestDevToken(t *testing.T) {
	t.Parallel()
	t.Run("absent outside dev", func(t *testing.T) {
		t.Parallel()
		a := startAPI(t, Config{})
		if code, _, _ := a.do(t, "GET", "/dev/token?user=alice", testToken, ""); code != http.StatusNotFound {
			t.Errorf("got %d, want 404", code)
		}
	})
	t.Run("dev", func(t *testing.T) {
		t.Parallel()
		a := startAPI(t, Config{APIToken: testToken, DevTokens: func(user string) (string, error) {
			if user == "fail" {
				return "", errors.New("no key")
			}
			return "jwt-for-" + user, nil
		}})
		// No API token needed.
		code, body, _ := a.do(t, "GET", "/dev/token?user=alice%2Fbob", "", "")
		var resp struct{ Token string }
		if err := json.Unmarshal([]byte(body), &resp); code != http.StatusOK || err != nil || resp.Token != "jwt-for-alice/bob" {
			t.Errorf("got %d %s, want 200 {\"token\":\"jwt-for-alice/bob\"}", code, body)
		}
		code, body, _ = a.do(t, "GET", "/dev/token", "", "")
		checkRESTError(t, code, body, http.StatusBadRequest, 3, "user: must not be empty (use /dev/token?user=NAME)")
		code, body, _ = a.do(t, "GET", "/dev/token?user=fail", "", "")
		checkRESTError(t, code, body, http.StatusInternalServerError, 13, "dev token: no key")
	})
}

func TestHealthReadyMetrics(t *testing.T) {
	t.Parallel()
	var ready atomic.Bool
	a := startAPI(t, Config{Ready: ready.Load})
	if code, _, _ := a.do(t, "GET", "/healthz", "", ""); code != http.StatusOK {
		t.Errorf("/healthz: got %d, want 200", code)
	}
	if code, _, _ := a.do(t, "GET", "/readyz", "", ""); code != http.StatusServiceUnavailable {
		t.Errorf("/readyz not ready: got %d, want 503", code)
	}
	ready.Store(true)
	if code, _, _ := a.do(t, "GET", "/readyz", "", ""); code != http.StatusOK {
		t.Errorf("/readyz ready: got %d, want 200", code)
	}
	a.do(t, "POST", "/v1/broadcasts", testToken, `{"destination":"/topic/x","text":"hi"}`)
	a.do(t, "POST", "/v1/broadcasts", testToken, `{"destination":"/app/x","text":"hi"}`)
	code, body, _ := a.do(t, "GET", "/metrics", "", "")
	for _, want := range []string{
		`pushgate_pushsvc_pushes_total{code="OK",rpc="Broadcast"} 1`,
		`pushgate_pushsvc_pushes_total{code="InvalidArgument",rpc="Broadcast"} 1`,
		`pushgate_pushsvc_push_duration_seconds_count{rpc="Broadcast"} 2`,
		`go_goroutines`,
	} {
		if code != http.StatusOK || !strings.Contains(body, want) {
			t.Errorf("/metrics: got %d, want 200 containing %q", code, want)
		}
	}
}
