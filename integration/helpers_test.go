package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/pushgate/pushgate/internal/stompclient"
	"github.com/pushgate/pushgate/internal/testbroker"
	"github.com/pushgate/pushgate/internal/testenv"
)

const wait = 5 * time.Second

// connect opens a connected STOMP session for user on e.
func connect(t *testing.T, e *testenv.Edge, user string) *stompclient.Client {
	t.Helper()
	c, _, err := stompclient.Dial(context.Background(), e.URL("/stomp?access_token="+url.QueryEscape(testenv.Token(t, user))), nil)
	if err != nil {
		t.Fatalf("dial %s as %q: %v", e.Addr, user, err)
	}
	t.Cleanup(func() { c.Close() })
	if _, err := c.Connect(wait); err != nil {
		t.Fatalf("connect as %q: %v", user, err)
	}
	return c
}

func subscribe(t *testing.T, c *stompclient.Client, id, dest string) {
	t.Helper()
	if err := c.Subscribe(id, dest, wait); err != nil {
		t.Fatalf("subscribe %s: %v", dest, err)
	}
}

// expectMessage waits for a MESSAGE with the given body.
func expectMessage(t *testing.T, c *stompclient.Client, dest, body string) {
	t.Helper()
	f, err := c.Expect("MESSAGE", wait)
	if err != nil {
		t.Fatalf("want MESSAGE %q on %s: %v", body, dest, err)
	}
	if got := f.Header.Get("destination"); got != dest {
		t.Fatalf("MESSAGE destination %q, want %q", got, dest)
	}
	if string(f.Body) != body {
		t.Fatalf("MESSAGE body %q, want %q", f.Body, body)
	}
}

// expectNothing checks that no frame arrives within d.
func expectNothing(t *testing.T, c *stompclient.Client, d time.Duration) {
	t.Helper()
	if f, err := c.Next(d); err == nil {
		t.Fatalf("unexpected %s frame: headers %v body %q", f.Command, f.Header, f.Body)
	}
}

// restPost posts JSON to pushsvc's REST API and returns status and body.
func restPost(t *testing.T, env *testenv.Env, path string, body any) (int, string) {
	t.Helper()
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest(http.MethodPost, "http://"+env.Pushsvc.HTTPAddr+path, bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	if env.Opts.APIToken != "" {
		req.Header.Set("Authorization", "Bearer "+env.Opts.APIToken)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(out)
}

func sendToUser(t *testing.T, env *testenv.Env, user, dest, text string) {
	t.Helper()
	code, body := restPost(t, env, "/v1/users/"+url.PathEscape(user)+"/messages", map[string]any{"destination": dest, "text": text})
	if code != http.StatusOK {
		t.Fatalf("SendToUser(%q): HTTP %d %s", user, code, body)
	}
}

func broadcast(t *testing.T, env *testenv.Env, dest, text string) {
	t.Helper()
	code, body := restPost(t, env, "/v1/broadcasts", map[string]any{"destination": dest, "text": text})
	if code != http.StatusOK {
		t.Fatalf("Broadcast(%s): HTTP %d %s", dest, code, body)
	}
}

var _ = fmt.Sprintf

func embeddedURL(t *testing.T) string { return testbroker.Embedded(t).URL() }
