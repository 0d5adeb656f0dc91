package integration

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/pushgate/pushgate/internal/stompclient"
	"github.com/pushgate/pushgate/internal/testenv"
)

// TestThroughTheGateway runs the seed's setup: browsers reach the edges
// through the gateway's /web-socket/** route and callers reach pushsvc
// through /api/**.
func TestThroughTheGateway(t *testing.T) {
	env := testenv.Start(t, testenv.Options{Broker: embeddedURL(t)})
	gw := env.StartGateway()
	servers := map[string]int{}
	var clients []*stompclient.Client
	for i := 0; i < 6; i++ {
		c, resp, err := stompclient.Dial(context.Background(), "ws://"+gw.Addr+"/web-socket/stomp?access_token="+url.QueryEscape(testenv.Token(t, "alice")), nil)
		if err != nil {
			t.Fatalf("dial through the gateway: %v (%v)", err, resp)
		}
		t.Cleanup(func() { c.Close() })
		if c.Subprotocol != "v12.stomp" {
			t.Fatalf("negotiated subprotocol %q through the gateway, want v12.stomp", c.Subprotocol)
		}
		f, err := c.Connect(wait)
		if err != nil {
			t.Fatal(err)
		}
		servers[f.Header.Get("server")]++
		subscribe(t, c, "g", "/user/topic/greetings")
		clients = append(clients, c)
	}
	if len(servers) != 2 {
		t.Errorf("6 WebSockets through the gateway landed on %v, want both edges", servers)
	}
	req, _ := http.NewRequest(http.MethodPost, "http://"+gw.Addr+"/api/v1/users/alice/messages", strings.NewReader(`{"destination":"/topic/greetings","text":"via gateway"}`))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("push through /api: HTTP %d", resp.StatusCode)
	}
	for _, c := range clients {
		expectMessage(t, c, "/user/topic/greetings", "via gateway")
	}
	// A user name with a slash keeps its encoding through the gateway.
	odd := connect(t, env.Edges[0], "alice/bob")
	subscribe(t, odd, "g", "/user/topic/greetings")
	resp, err = http.Post("http://"+gw.Addr+"/api/v1/users/alice%2Fbob/messages", "application/json", strings.NewReader(`{"destination":"/topic/greetings","text":"slash"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	expectMessage(t, odd, "/user/topic/greetings", "slash")
	expectNothing(t, clients[0], 200*time.Millisecond)
}
