package faults

import (
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/pushgate/pushgate/internal/stompclient"
	"github.com/pushgate/pushgate/internal/testbroker"
)

// TestOrderPerUser: pushes to one user, each sent after the previous one
// was answered, arrive in that order at every session of the user, on both
// edges (pushsvc spreads its sends over its broker connections; the order
// holds because each is confirmed before the next is sent).
func TestOrderPerUser(t *testing.T) {
	testbroker.Each(t, func(t *testing.T, brokerURL string) {
		e := startEnv(t, envOptions{broker: brokerURL})
		names := []string{"edge 0, first session", "edge 0, second session", "edge 1"}
		clients := []*stompclient.Client{connect(t, e.Edges[0], "carol"), connect(t, e.Edges[0], "carol"), connect(t, e.Edges[1], "carol")}
		for _, c := range clients {
			subscribe(t, c, "o", "/user/queue/ordered")
		}
		const n = 300
		start := time.Now()
		for i := 0; i < n; i++ {
			if code, body := e.sendToUser("carol", "/queue/ordered", strconv.Itoa(i)); code != http.StatusOK {
				t.Fatalf("push %d: %d %s", i, code, body)
			}
		}
		took := time.Since(start)
		for i, c := range clients {
			for want := 0; want < n; want++ {
				f, err := c.Expect("MESSAGE", wait)
				if err != nil {
					t.Fatalf("%s: message %d: %v", names[i], want, err)
				}
				if got := string(f.Body); got != strconv.Itoa(want) {
					t.Fatalf("%s: got %s, want %d: out of order", names[i], got, want)
				}
			}
		}
		report(t, "%d sequential pushes in %v arrived in order at 3 sessions on 2 edges", n, took.Round(time.Millisecond))
	})
}
