package integration

import (
	"fmt"
	"testing"
	"time"

	"github.com/pushgate/pushgate/internal/testbroker"
	"github.com/pushgate/pushgate/internal/testenv"
)

// TestPushAfterSubscribeReceiptArrives: a user connected on one edge opens a
// session on the other; a push sent right after that session's SUBSCRIBE
// RECEIPT must arrive there, with no sleep in between. pushsvc orders the
// edge's registry change before the push it resolves.
func TestPushAfterSubscribeReceiptArrives(t *testing.T) {
	testbroker.Each(t, func(t *testing.T, brokerURL string) {
		env := testenv.Start(t, testenv.Options{Broker: brokerURL})
		home := connect(t, env.Edges[0], "olivia")
		subscribe(t, home, "g", "/user/topic/greetings")
		rounds := 1000
		if testing.Short() {
			rounds = 100
		}
		start := time.Now()
		for i := 0; i < rounds; i++ {
			c := connect(t, env.Edges[1], "olivia")
			subscribe(t, c, "g", "/user/topic/greetings")
			body := fmt.Sprintf("round %d", i)
			sendToUser(t, env, "olivia", "/topic/greetings", body)
			expectMessage(t, c, "/user/topic/greetings", body)
			expectMessage(t, home, "/user/topic/greetings", body)
			c.Close()
		}
		t.Logf("%d rounds in %v", rounds, time.Since(start))
	})
}

// TestPushsvcRestart replaces pushsvc while sessions stay connected: pushes
// during the rebuild of its registry (sent to all edges) and after it
// (resolved) arrive.
func TestPushsvcRestart(t *testing.T) {
	testbroker.Each(t, func(t *testing.T, brokerURL string) {
		env := testenv.Start(t, testenv.Options{Broker: brokerURL, Settle: time.Second})
		alice := connect(t, env.Edges[0], "alice")
		bob := connect(t, env.Edges[1], "bob")
		subscribe(t, alice, "g", "/user/topic/greetings")
		subscribe(t, bob, "g", "/user/topic/greetings")

		env.Pushsvc.Stop()
		env.Pushsvc = env.StartPushsvc()
		env.WaitReadyNoSettle()
		sendToUser(t, env, "alice", "/topic/greetings", "during rebuild")
		expectMessage(t, alice, "/user/topic/greetings", "during rebuild")
		time.Sleep(env.Opts.Settle + 200*time.Millisecond)
		sendToUser(t, env, "bob", "/topic/greetings", "after rebuild")
		expectMessage(t, bob, "/user/topic/greetings", "after rebuild")
		expectNothing(t, alice, 200*time.Millisecond)
	})
}
