package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestGatewayCommandRoutesTheDesignExample runs `pushgate gateway` with
// DESIGN.md's example configuration, upstreams replaced by test servers.
func TestGatewayCommandRoutesTheDesignExample(t *testing.T) {
	upstream := func(name string) *httptest.Server {
		s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/readyz" {
				return
			}
			fmt.Fprintf(w, "%s %s", name, r.URL.EscapedPath())
		}))
		t.Cleanup(s.Close)
		return s
	}
	edge, api := upstream("edge"), upstream("pushsvc")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	config := fmt.Sprintf(`server: {address: 127.0.0.1, port: %d}
routes:
  - id: web-socket
    uri: lb:ws://web-socket
    predicates: [Path=/web-socket/**]
    filters: ["RewritePath=/web-socket/(?<path>.*), /${path}"]
  - id: api
    uri: lb://pushsvc
    predicates: [Path=/api/**]
    filters: [StripPrefix=1]
discovery:
  web-socket: {static: [%q]}
  pushsvc: {static: [%q]}
`, port, edge.URL, api.URL)
	path := filepath.Join(t.TempDir(), "gateway.yaml")
	if err := os.WriteFile(path, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"gateway", "--config", path, "--log-level", "error"}, io.Discard, io.Discard)
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("gateway exited with %v", err)
		}
	}()
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	get := func(p string) string {
		deadline := time.Now().Add(5 * time.Second)
		for {
			resp, err := http.Get(base + p)
			if err == nil {
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				return string(b)
			}
			if time.Now().After(deadline) {
				t.Fatalf("GET %s: %v", p, err)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	if got := get("/web-socket/ws/info"); got != "edge /ws/info" {
		t.Errorf("/web-socket/ws/info reached %q, want edge /ws/info", got)
	}
	if got := get("/api/v1/users/alice%2Fbob/messages"); got != "pushsvc /v1/users/alice%2Fbob/messages" {
		t.Errorf("/api/... reached %q, want the encoded path at pushsvc", got)
	}
	if got := get("/healthz"); !strings.Contains(got, "ok") {
		t.Errorf("/healthz: %q", got)
	}

	// A bad file stops the gateway with file:line: reason.
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(bad, []byte("routes:\n  - id: x\n    uri: lb://nowhere\n    predicates: [Path=/x/**]\n    filterz: []\n"), 0o600)
	err = run(context.Background(), []string{"gateway", "--config", bad}, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "bad.yaml:") {
		t.Errorf("bad config: got %v, want an error naming the file and line", err)
	}
}
