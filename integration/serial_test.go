package integration

// Tests named TestSerial* change or measure the broker as a whole (they
// count RabbitMQ's connections and queues, or restart it): the Makefile runs
// them on their own, after the parallel packages, with `-run TestSerial -p 1`.

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pushgate/pushgate/internal/stompclient"
	"github.com/pushgate/pushgate/internal/testbroker"
	"github.com/pushgate/pushgate/internal/testenv"
	"github.com/pushgate/pushgate/relay"
)

func serialOnly(t *testing.T) {
	t.Helper()
	if os.Getenv("PUSHGATE_SERIAL") != "1" {
		t.Skip("changes the shared broker: run with PUSHGATE_SERIAL=1 (make test does)")
	}
}

// TestSerialBrokerSeesOneSubscriptionPerDestination checks RabbitMQ's own
// view: 200 sessions on one edge subscribed to 50 distinct topics cost the
// broker at most the pool's connections and one queue per topic.
func TestSerialBrokerSeesOneSubscriptionPerDestination(t *testing.T) {
	serialOnly(t)
	env := testenv.Start(t, testenv.Options{Broker: testbroker.RabbitMQURL(t), Edges: 1})
	e := env.Edges[0]
	tag := fmt.Sprintf("view%d", time.Now().UnixNano())
	for i := 0; i < 200; i++ {
		c := connect(t, e, fmt.Sprintf("user-%d", i))
		subscribe(t, c, "t", fmt.Sprintf("/topic/%s/d%d", tag, i%50))
		subscribe(t, c, "u", "/user/topic/greetings")
	}

	ports := map[string]bool{}
	for _, a := range e.Pool.LocalAddrs() {
		ports[a] = true
	}
	conns := 0
	// STOMP connections are listed by the STOMP plugin's own command.
	for _, line := range strings.Split(testbroker.Rabbitmqctl(t, "list_stomp_connections", "conn_name"), "\n") {
		if from, _, ok := strings.Cut(strings.TrimSpace(line), " -> "); ok && ports[from] {
			conns++
		}
	}
	if conns == 0 || conns > relay.DefaultConnections {
		t.Errorf("RabbitMQ lists %d connections from the edge, want 1..%d", conns, relay.DefaultConnections)
	}

	queues := map[string]int{}
	for _, line := range strings.Split(testbroker.Rabbitmqctl(t, "list_bindings", "source_name", "routing_key", "destination_name"), "\n") {
		f := strings.Fields(line)
		if len(f) == 3 && f[0] == "amq.topic" && strings.Contains(f[1], tag) {
			queues[f[1]]++
		}
	}
	if len(queues) != 50 {
		t.Errorf("RabbitMQ has bindings for %d of our topics, want 50", len(queues))
	}
	for key, n := range queues {
		if n != 1 {
			t.Errorf("topic %s has %d queues at the broker, want 1", key, n)
		}
	}
	t.Logf("200 sessions, 50 topics: %d broker connections, %d topic queues", conns, len(queues))
}

// TestSerialConnectStorm connects 5,000 users to one edge at once: every
// /user/ SUBSCRIBE receipt arrives within 5 s and RabbitMQ's queue count
// barely moves, since users cost the broker nothing.
func TestSerialConnectStorm(t *testing.T) {
	serialOnly(t)
	if raceEnabled {
		t.Skip("the race detector allows at most 8128 goroutines; make test runs this without -race")
	}
	const n = 5000
	env := testenv.Start(t, testenv.Options{Broker: testbroker.RabbitMQURL(t), Edges: 1})
	before := len(strings.Fields(testbroker.Rabbitmqctl(t, "list_queues", "name")))
	e := env.Edges[0]
	tokens := make([]string, n)
	for i := range tokens {
		tokens[i] = testenv.Token(t, fmt.Sprintf("storm-%d", i))
	}
	clients := make([]*stompclient.Client, n)
	errs := make(chan error, n)
	start := time.Now()
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, _, err := stompclient.Dial(context.Background(), e.URL("/stomp?access_token="+url.QueryEscape(tokens[i])), nil)
			if err != nil {
				errs <- err
				return
			}
			clients[i] = c
			if _, err := c.Connect(10 * time.Second); err != nil {
				errs <- err
				return
			}
			errs <- c.Subscribe("g", "/user/topic/greetings", 10*time.Second)
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	t.Cleanup(func() {
		for _, c := range clients {
			if c != nil {
				c.Close()
			}
		}
	})
	close(errs)
	failed := 0
	for err := range errs {
		if err != nil {
			if failed == 0 {
				t.Errorf("first failure: %v", err)
			}
			failed++
		}
	}
	after := len(strings.Fields(testbroker.Rabbitmqctl(t, "list_queues", "name")))
	t.Logf("%d sessions connected and subscribed in %v (%d failed); RabbitMQ queues %d -> %d", n, elapsed, failed, before, after)
	if failed > 0 {
		t.Fatalf("%d of %d sessions failed", failed, n)
	}
	if elapsed > 5*time.Second {
		t.Errorf("storm took %v, want at most 5s", elapsed)
	}
	if after-before > 8 {
		t.Errorf("RabbitMQ queues grew by %d, want a handful (users must not cost queues)", after-before)
	}
	// A push still reaches one of them.
	sendToUser(t, env, "storm-4321", "/topic/greetings", "after the storm")
	expectMessage(t, clients[4321], "/user/topic/greetings", "after the storm")
}

// TestSerialBrokerRestart stops the broker under connected sessions: they
// stay open, pushes during the outage are refused with 503, and once the
// broker is back subscriptions return and pushes arrive exactly once.
func TestSerialBrokerRestart(t *testing.T) {
	serialOnly(t)
	t.Run("embedded", func(t *testing.T) {
		b := testbroker.Embedded(t)
		testBrokerRestart(t, b.URL(), func() { b.Close() }, func() { testbroker.RestartEmbedded(t, b, 0) })
	})
	t.Run("rabbitmq", func(t *testing.T) {
		testBrokerRestart(t, testbroker.RabbitMQURL(t),
			func() { testbroker.Rabbitmqctl(t, "stop_app") },
			func() {
				testbroker.Rabbitmqctl(t, "start_app")
				testbroker.Rabbitmqctl(t, "await_startup")
			})
	})
}

func testBrokerRestart(t *testing.T, brokerURL string, stop, start func()) {
	env := testenv.Start(t, testenv.Options{Broker: brokerURL})
	alice := connect(t, env.Edges[0], "alice")
	bob := connect(t, env.Edges[1], "bob")
	subscribe(t, alice, "g", "/user/topic/greetings")
	subscribe(t, bob, "n", "/topic/news")

	stop()
	deadline := time.Now().Add(wait)
	for {
		code, _ := restPost(t, env, "/v1/users/alice/messages", map[string]any{"destination": "/topic/greetings", "text": "lost?"})
		if code == http.StatusServiceUnavailable {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("push during the outage: HTTP %d, want 503", code)
		}
		time.Sleep(50 * time.Millisecond)
	}
	start()
	restarted := time.Now()
	// Subscriptions come back: the edges and pushsvc report ready again.
	env.WaitReady()
	t.Logf("ready %v after the broker restarted", time.Since(restarted))
	if d := time.Since(restarted); d > 5*time.Second+env.Opts.Settle {
		t.Errorf("took %v to recover, want at most 5s", d)
	}
	sendToUser(t, env, "alice", "/topic/greetings", "after")
	expectMessage(t, alice, "/user/topic/greetings", "after")
	broadcast(t, env, "/topic/news", "news after")
	expectMessage(t, bob, "/topic/news", "news after")
	expectNothing(t, alice, 200*time.Millisecond)
	expectNothing(t, bob, 50*time.Millisecond)
}
