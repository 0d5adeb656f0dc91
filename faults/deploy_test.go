package faults

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pushgate/pushgate/internal/stompclient"
	"github.com/pushgate/pushgate/internal/testbroker"
	"github.com/pushgate/pushgate/internal/testenv"
)

// dialSession opens a connected STOMP session for user at wsBase without
// failing the test (for other goroutines) and returns the edge id that
// CONNECTED names. On a refused handshake the error carries the HTTP
// status and body.
func dialSession(wsBase, user, token string) (*stompclient.Client, string, error) {
	c, resp, err := stompclient.Dial(context.Background(), wsBase+"/stomp?access_token="+url.QueryEscape(token), nil)
	if err != nil {
		if resp != nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			return nil, "", fmt.Errorf("handshake: HTTP %d %s", resp.StatusCode, strings.TrimSpace(string(body)))
		}
		return nil, "", err
	}
	f, err := c.Connect(wait)
	if err != nil {
		c.Close()
		return nil, "", err
	}
	return c, strings.TrimPrefix(f.Header.Get("server"), "pushgate-edge/"), nil
}

// TestEdgeDeploy drains one of two edges (SIGTERM) under push load, with
// the clients connected through the gateway: the edge turns not ready,
// refuses new sessions, tells its clients it is shutting down with an
// ERROR, releases its broker subscriptions and exits within its shutdown
// timeout; its clients reconnect through the gateway, land on the other
// edge and receive pushes within 10 s; the other edge's clients notice
// nothing.
func TestEdgeDeploy(t *testing.T) {
	testbroker.Each(t, testEdgeDeploy)
}

func testEdgeDeploy(t *testing.T, brokerURL string) {
	const shutdownTimeout = 5 * time.Second
	e := startEnv(t, envOptions{broker: brokerURL, shutdownTimeout: shutdownTimeout})
	gw := startGateway(t, edgeGatewayYAML(e, 100*time.Millisecond))
	waitFor(t, wait, "gateway ready", func() bool { return httpStatus("http://"+gw+"/readyz") == http.StatusOK })
	base := "ws://" + gw + "/web-socket"

	const nUsers = 20
	drained, survivor := e.Edges[0], e.Edges[1]
	l := newLoad(t, e, "/topic/deploy")
	l.what = "the drain"
	var users []string
	on := map[string][]string{} // edge id → users
	tokens := map[string]string{}
	for i := 0; i < nUsers; i++ {
		u := fmt.Sprintf("deploy-%d", i)
		users = append(users, u)
		tokens[u] = testenv.Token(t, u)
		c, id, err := dialSession(base, u, tokens[u])
		if err != nil {
			t.Fatalf("%s through the gateway: %v", u, err)
		}
		t.Cleanup(func() { c.Close() })
		on[id] = append(on[id], u)
		l.attach(u, c)
	}
	report(t, "through the gateway: %d sessions on the edge to drain, %d on the other", len(on[drained.Server.ID()]), len(on[survivor.Server.ID()]))
	if len(on[drained.Server.ID()]) == 0 || len(on[survivor.Server.ID()]) == 0 {
		t.Fatalf("the gateway did not spread the sessions over both edges: %v", on)
	}
	undisturbed := map[string]bool{}
	for _, u := range on[survivor.Server.ID()] {
		undisturbed[u] = true
	}

	l.run(users, 4, 25*time.Millisecond)
	time.Sleep(time.Second)

	// SIGTERM: Serve's context is cancelled. The edge stops accepting,
	// turns not ready and tells its clients to go.
	l.setWindow(windowDuring)
	drainStart := time.Now()
	shutdownErr := make(chan error, 1)
	go func() { shutdownErr <- drained.Drain() }()

	// Its clients are told to go and reconnect through the gateway at once.
	var (
		wg              sync.WaitGroup
		mu              sync.Mutex
		refusedByDrain  atomic.Int64 // reconnects the gateway sent to the draining edge
		otherRefusals   []string
		landed          = map[string]string{}
		reconnectedAt   = map[string]time.Time{}
		told            = map[string]time.Time{}
		reconnectErrors []string
	)
	for _, u := range on[drained.Server.ID()] {
		wg.Add(1)
		go func() {
			defer wg.Done()
			deadline := time.Now().Add(shutdownTimeout)
			for len(l.errorsOf(u)) == 0 && time.Now().Before(deadline) {
				time.Sleep(2 * time.Millisecond)
			}
			mu.Lock()
			told[u] = time.Now()
			mu.Unlock()
			for time.Now().Before(drainStart.Add(10 * time.Second)) {
				c, id, err := dialSession(base, u, tokens[u])
				if err != nil {
					mu.Lock()
					if strings.Contains(err.Error(), "shutting down") {
						refusedByDrain.Add(1)
					} else {
						otherRefusals = append(otherRefusals, err.Error())
					}
					mu.Unlock()
					time.Sleep(20 * time.Millisecond)
					continue
				}
				t.Cleanup(func() { c.Close() })
				err = l.attachErr(u, c)
				mu.Lock()
				landed[u] = id
				reconnectedAt[u] = time.Now()
				if err != nil {
					reconnectErrors = append(reconnectErrors, err.Error())
				}
				mu.Unlock()
				return
			}
			mu.Lock()
			reconnectErrors = append(reconnectErrors, u+": could not reconnect within 10s")
			mu.Unlock()
		}()
	}

	// While draining: not ready, and no new session gets in. (sigterm runs
	// on its own goroutine, so allow it a moment to begin.)
	notReady := time.Now().Add(time.Second)
	for httpStatus("http://"+drained.Addr+"/readyz") == http.StatusOK {
		if time.Now().After(notReady) {
			t.Errorf("draining edge /readyz still 200 a second after SIGTERM, want 503 or no answer")
			break
		}
		time.Sleep(2 * time.Millisecond)
	}
	if c, _, err := dialSession("ws://"+drained.Addr, "late", testenv.Token(t, "late")); err == nil {
		c.Close()
		t.Errorf("a new session on the draining edge was accepted")
	}

	var drainTook time.Duration
	select {
	case err := <-shutdownErr:
		drainTook = time.Since(drainStart)
		if err != nil {
			t.Errorf("Serve after SIGTERM: %v", err)
		}
	case <-time.After(shutdownTimeout + time.Second):
		t.Fatalf("Serve did not return within the shutdown timeout %v", shutdownTimeout)
	}
	// Its broker subscriptions are released (after the pool's one second
	// unsubscribe delay), before its owner closes the pool.
	waitFor(t, 3*time.Second, "the drained edge's broker subscriptions to be released", func() bool {
		return drained.Metric("pushgate_broker_subscriptions") == 0
	})
	released := time.Since(drainStart)
	drained.Stop()
	report(t, "Serve returned %v after SIGTERM (shutdown timeout %v); broker subscriptions released %v after SIGTERM", drainTook.Round(time.Millisecond), shutdownTimeout, released.Round(time.Millisecond))

	wg.Wait()
	for _, u := range on[drained.Server.ID()] {
		errs := l.errorsOf(u)
		if len(errs) == 0 || !strings.Contains(errs[0], "shutting down") {
			t.Errorf("%s on the drained edge got ERROR frames %q, want one saying the edge is shutting down", u, errs)
		}
	}
	for _, msg := range reconnectErrors {
		t.Error(msg)
	}
	for u, id := range landed {
		if id != survivor.Server.ID() {
			t.Errorf("%s reconnected to edge %s, want the surviving edge %s", u, id, survivor.Server.ID())
		}
	}
	if n := refusedByDrain.Load(); n > 0 {
		t.Errorf("the gateway sent %d reconnects to the draining edge (refused there with 503)", n)
	}
	if len(otherRefusals) > 0 {
		report(t, "reconnect attempts refused otherwise: %d (first: %s)", len(otherRefusals), otherRefusals[0])
	}

	// Reconnected clients receive pushes within 10 s of being told to go.
	l.setWindow(windowAfter)
	time.Sleep(2 * time.Second)
	l.halt(wait)
	first := l.firstDeliveries()
	var times []time.Duration
	for _, u := range on[drained.Server.ID()] {
		at, ok := first[u]
		if !ok {
			t.Errorf("%s received no push after reconnecting", u)
			continue
		}
		d := at.Sub(told[u])
		times = append(times, d)
		if d > 10*time.Second {
			t.Errorf("%s received its first push %v after the ERROR, want within 10s", u, d)
		}
	}
	sort.Slice(times, func(i, j int) bool { return times[i] < times[j] })
	if len(times) > 0 {
		report(t, "%d clients reconnected through the gateway; ERROR to first push: median %v, max %v", len(times), times[len(times)/2].Round(time.Millisecond), times[len(times)-1].Round(time.Millisecond))
	}
	l.checkWith(undisturbed)
}
