package faults

import (
	"fmt"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/pushgate/pushgate/edge"
	"github.com/pushgate/pushgate/internal/testbroker"
)

// outageFor is how long the broker stays down.
const outageFor = 10 * time.Second

// brokerControl stops and starts a broker.
type brokerControl struct {
	url         string
	stop, start func()
}

func eachBrokerControl(t *testing.T, fn func(t *testing.T, b brokerControl)) {
	t.Run("embedded", func(t *testing.T) {
		b := testbroker.Embedded(t)
		fn(t, brokerControl{
			url:   b.URL(),
			stop:  func() { b.Close() },
			start: func() { b = testbroker.RestartEmbedded(t, b, 0) },
		})
	})
	t.Run("rabbitmq", func(t *testing.T) {
		fn(t, brokerControl{
			url:   testbroker.RabbitMQURL(t),
			stop:  func() { rabbitStop(t) },
			start: func() { rabbitStart(t) },
		})
	})
}

// TestSerialBrokerOutage stops the broker for 10 s under steady push load.
// Sessions stay connected; every push during the outage is either
// delivered or answered 503; within 5 s of the broker's return every
// subscription is back, and every later push is delivered exactly once.
func TestSerialBrokerOutage(t *testing.T) {
	serialOnly(t)
	eachBrokerControl(t, func(t *testing.T, b brokerControl) { testOutage(t, b, 0) })
}

// TestSerialBrokerOutageGrace is the same outage with a 3 s
// --broker-outage-grace: sessions are closed with an ERROR that says why,
// and clients that reconnect once the broker is back get every push.
func TestSerialBrokerOutageGrace(t *testing.T) {
	serialOnly(t)
	eachBrokerControl(t, func(t *testing.T, b brokerControl) { testOutage(t, b, 3*time.Second) })
}

func testOutage(t *testing.T, b brokerControl, grace time.Duration) {
	e := startEnv(t, envOptions{broker: b.url, edge: func(c *edge.Config) {
		if grace > 0 {
			c.BrokerOutageGrace = grace
		}
	}})
	const nUsers = 12
	var users []string
	l := newLoad(t, e, "/topic/outage")
	for i := 0; i < nUsers; i++ {
		u := fmt.Sprintf("outage-%d", i)
		users = append(users, u)
		l.attach(u, connect(t, e.Edges[i%2], u))
	}
	news := connect(t, e.Edges[1], "news-reader")
	subscribe(t, news, "n", "/topic/outage-news")

	l.run(users, 4, 25*time.Millisecond)
	time.Sleep(2 * time.Second)

	l.setWindow(windowDuring)
	b.stop()
	stopped := time.Now()
	// pushsvc notices: its /readyz turns 503, and so do the edges'.
	pushReady := "http://" + e.Pushsvc.HTTPAddr + "/readyz"
	waitFor(t, wait, "pushsvc /readyz 503 after the broker stopped", func() bool { return httpStatus(pushReady) == http.StatusServiceUnavailable })
	noticed := time.Now()
	report(t, "pushsvc not ready %v after the broker stopped", noticed.Sub(stopped).Round(time.Millisecond))
	for _, p := range e.Edges {
		if code := httpStatus("http://" + p.Addr + "/readyz"); code != http.StatusServiceUnavailable {
			t.Errorf("edge %s /readyz during the outage: %d, want 503", p.Server.ID(), code)
		}
	}
	time.Sleep(outageFor - time.Since(stopped))

	if grace > 0 {
		// The sessions are gone: a push to a user without a session is
		// accepted and costs nothing (not a loss). Pause until they are back.
		l.paused.Store(true)
	}
	starting := time.Now()
	b.start()
	// RabbitMQ may accept connections before start_app and await_startup
	// return: "back" is when they did, the latest the broker can have
	// returned.
	back := time.Now()
	report(t, "broker start took %v", back.Sub(starting).Round(time.Millisecond))
	l.ref = back
	l.markFirst()
	// While the broker was down (from when pushsvc noticed until it was
	// started again), every push got 503.
	if codes := l.between(noticed, starting); len(codes) != 1 || codes[http.StatusServiceUnavailable] == 0 {
		t.Errorf("pushes issued during the outage were answered %v, want only 503", codes)
	} else {
		report(t, "while the broker was down: %d pushes, all 503", codes[http.StatusServiceUnavailable])
	}
	e.WaitReadyNoSettle()
	readyAfter := time.Since(back)
	report(t, "all components ready %v after the broker's start returned", readyAfter.Round(time.Millisecond))
	if readyAfter > 5*time.Second {
		t.Errorf("components took %v to become ready after the broker returned, want at most 5s", readyAfter)
	}

	if grace > 0 {
		// Every session was closed with an ERROR saying why; clients
		// reconnect now that the broker is back.
		l.mu.Lock()
		for _, u := range users {
			if errs := l.errors[u]; len(errs) != 1 || !strings.Contains(errs[0], "broker unavailable for more than") {
				t.Errorf("%s got ERROR frames %q, want one saying the broker was unavailable for more than %v", u, errs, grace)
			}
		}
		l.mu.Unlock()
		expectError(t, news, "broker unavailable for more than", time.Second)
		expectClosed(t, news, time.Second)
		reconnectStart := time.Now()
		for i, u := range users {
			l.attach(u, connect(t, e.Edges[i%2], u))
		}
		news = connect(t, e.Edges[1], "news-reader")
		subscribe(t, news, "n", "/topic/outage-news")
		report(t, "%d sessions reconnected and resubscribed in %v", nUsers+1, time.Since(reconnectStart).Round(time.Millisecond))
	}
	// The after window starts 5 s after the broker's return (or once the
	// clients are back): from then on every push must be delivered.
	time.Sleep(time.Until(back.Add(5 * time.Second)))
	l.setWindow(windowAfter)
	l.paused.Store(false)
	time.Sleep(3 * time.Second)

	// Broadcast subscriptions are back too.
	if code, body := e.broadcast("/topic/outage-news", "after the outage"); code != http.StatusOK {
		t.Errorf("broadcast after the outage: HTTP %d %s", code, body)
	} else if f, err := news.Expect("MESSAGE", wait); err != nil || string(f.Body) != "after the outage" {
		t.Errorf("broadcast after the outage not received: %v", err)
	}

	l.halt(wait)
	st := l.check()
	if st[windowDuring].refused503 == 0 {
		t.Errorf("no push was refused during the outage: %v", st[windowDuring])
	}
	if grace == 0 {
		// Sessions stayed connected: each got a push within 5 s of the
		// broker's return, without reconnecting.
		first := l.firstDeliveries()
		var worst time.Duration
		var late []string
		for _, u := range users {
			at, ok := first[u]
			d := at.Sub(back)
			if !ok || d > 5*time.Second {
				late = append(late, u)
			}
			worst = max(worst, d)
		}
		sort.Strings(late)
		report(t, "every session received a push within %v of the broker's return, without reconnecting", worst.Round(time.Millisecond))
		if len(late) > 0 {
			t.Errorf("sessions without a push within 5s of the broker's return: %v", late)
		}
		l.mu.Lock()
		if len(l.errors) > 0 {
			t.Errorf("sessions got ERROR frames during a %v outage (grace %v): %v", outageFor, edge.DefaultOutageGrace, l.errors)
		}
		l.mu.Unlock()
	}
}
