package integration

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pushgate/pushgate/internal/testenv"
)

// sockJSFrame encodes STOMP frames as a SockJS client message.
func sockJSFrame(frames ...string) string {
	b, _ := json.Marshal(frames)
	return string(b)
}

func post(t *testing.T, u, body string) (int, string) {
	t.Helper()
	resp, err := http.Post(u, "text/plain", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// edgeSessions reads an edge's own gauge of open sessions on transport.
func edgeSessions(t *testing.T, e *testenv.Edge, transport string) int {
	t.Helper()
	resp, err := http.Get("http://" + e.Addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	m := regexp.MustCompile(`pushgate_edge_sessions\{transport="` + transport + `"\} (\d+)`).FindStringSubmatch(string(b))
	if m == nil {
		return 0
	}
	var n int
	fmt.Sscan(m[1], &n)
	return n
}

// TestSockJSSessionsStayOnOneEdgeThroughTheGateway: every request of a
// SockJS session over xhr-polling or xhr-streaming reaches the edge that
// holds it (an xhr_send anywhere else would get 404), as the edges' own
// session gauges confirm.
func TestSockJSSessionsStayOnOneEdgeThroughTheGateway(t *testing.T) {
	env := testenv.Start(t, testenv.Options{Broker: embeddedURL(t)})
	gw := env.StartGateway()
	const sessions = 10
	token := url.QueryEscape(testenv.Token(t, "sam"))
	// Session ids differ per transport: xhr_send serves both kinds.
	base := func(i int, transport string) string {
		kind := "poll"
		if transport == "xhr_streaming" || i >= sessions {
			kind = "stream"
			i %= sessions
		}
		return fmt.Sprintf("http://%s/web-socket/ws/%03d/s%d%s/%s?access_token=%s", gw.Addr, i, i, kind, transport, token)
	}
	connect := sockJSFrame("CONNECT\naccept-version:1.2\nheart-beat:0,0\n\n\x00", "SUBSCRIBE\nid:g\ndestination:/user/topic/greetings\nreceipt:r1\n\n\x00")

	// xhr-polling
	for i := 0; i < sessions; i++ {
		if code, body := post(t, base(i, "xhr"), ""); code != http.StatusOK || body != "o\n" {
			t.Fatalf("open: %d %q", code, body)
		}
		if code, body := post(t, base(i, "xhr_send"), connect); code != http.StatusNoContent {
			t.Fatalf("xhr_send: %d %q", code, body)
		}
		var got string
		for !strings.Contains(got, "RECEIPT") {
			code, body := post(t, base(i, "xhr"), "")
			if code != http.StatusOK {
				t.Fatalf("poll: %d %q", code, body)
			}
			got += body
		}
		if !strings.Contains(got, "CONNECTED") {
			t.Fatalf("session %d got %q, want CONNECTED and RECEIPT", i, got)
		}
	}
	// xhr-streaming: one long response per session, read concurrently.
	streams := make([]chan string, sessions)
	for i := 0; i < sessions; i++ {
		resp, err := http.Post(base(i, "xhr_streaming"), "text/plain", nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { resp.Body.Close() })
		ch := make(chan string, 16)
		streams[i] = ch
		go func() {
			defer close(ch)
			sc := bufio.NewScanner(resp.Body)
			sc.Buffer(make([]byte, 64<<10), 1<<20)
			for sc.Scan() {
				ch <- sc.Text()
			}
		}()
	}
	readUntil := func(ch chan string, want string) {
		t.Helper()
		deadline := time.After(wait)
		for {
			select {
			case line, ok := <-ch:
				if !ok {
					t.Fatalf("stream ended before %q", want)
				}
				if strings.Contains(line, want) {
					return
				}
			case <-deadline:
				t.Fatalf("no %q on the stream", want)
			}
		}
	}
	for i, ch := range streams {
		readUntil(ch, "o") // the open frame comes after the prelude of h
		if code, body := post(t, base(sessions+i, "xhr_send"), connect); code != http.StatusNoContent {
			t.Fatalf("xhr_send (streaming): %d %q", code, body)
		}
		readUntil(ch, "RECEIPT")
	}

	var perEdge []string
	total := map[string]int{}
	for _, tr := range []string{"sockjs-xhr-polling", "sockjs-xhr-streaming"} {
		for _, e := range env.Edges {
			n := edgeSessions(t, e, tr)
			total[tr] += n
			perEdge = append(perEdge, fmt.Sprintf("%s %s=%d", e.Server.ID(), tr, n))
		}
	}
	t.Logf("sessions by edge: %v", perEdge)
	if total["sockjs-xhr-polling"] != sessions || total["sockjs-xhr-streaming"] != sessions {
		t.Fatalf("edges report %v sessions, want %d of each transport", total, sessions)
	}

	sendToUser(t, env, "sam", "/topic/greetings", "to every transport")
	for _, ch := range streams {
		readUntil(ch, "to every transport")
	}
	for i := 0; i < sessions; i++ {
		code, body := post(t, base(i, "xhr"), "")
		if code != http.StatusOK || !strings.Contains(body, "to every transport") {
			t.Fatalf("poll after push: %d %q", code, body)
		}
	}
}
