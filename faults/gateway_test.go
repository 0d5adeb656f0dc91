package faults

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"
)

// fakeUpstream is a misbehaving upstream: it accepts TCP connections and
// then either never answers (blackhole) or resets them (reset).
type fakeUpstream struct {
	ln    net.Listener
	mu    sync.Mutex
	conns []net.Conn
	done  chan struct{}
}

func startFakeUpstream(t *testing.T, reset bool) *fakeUpstream {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := &fakeUpstream{ln: ln, done: make(chan struct{})}
	go func() {
		defer close(u.done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			if reset {
				_ = c.(*net.TCPConn).SetLinger(0)
				c.Close() // RST
				continue
			}
			u.mu.Lock()
			u.conns = append(u.conns, c) // held open, never read or written
			u.mu.Unlock()
		}
	}()
	t.Cleanup(u.close)
	return u
}

func (u *fakeUpstream) url() string { return "http://" + u.ln.Addr().String() }

func (u *fakeUpstream) close() {
	u.ln.Close()
	<-u.done
	u.mu.Lock()
	for _, c := range u.conns {
		c.Close()
	}
	u.conns = nil
	u.mu.Unlock()
}

func openFDs() int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return -1
	}
	return len(ents)
}

// TestGatewayUpstreamFaults puts three bad upstreams behind the gateway —
// one that accepts TCP and never answers, one that resets connections,
// one that answers after 3 s — next to a healthy one: requests to the bad
// ones fail fast with 502 or 504 (the slow one is served), a balanced
// service with bad and healthy instances keeps serving from the healthy
// one, and afterwards the process's goroutines and file descriptors are
// back to their baseline.
func TestGatewayUpstreamFaults(t *testing.T) {
	baseG, baseFD := runtime.NumGoroutine(), openFDs()
	healthy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "ok")
	}))
	defer healthy.Close()
	slowRelease := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/readyz" {
			return
		}
		select {
		case <-time.After(3 * time.Second):
		case <-slowRelease:
		case <-r.Context().Done():
		}
		fmt.Fprintln(w, "slow ok")
	}))
	defer slow.Close()
	blackhole := startFakeUpstream(t, false)
	reset := startFakeUpstream(t, true)

	gw, stopGateway := startGatewayStop(t, `server: {address: 127.0.0.1, port: 7000, response_header_timeout: 5s}
health: {interval: 200ms, timeout: 200ms, unhealthy_threshold: 1}
routes:
  - {id: blackhole, uri: "`+blackhole.url()+`", predicates: [Path=/blackhole/**]}
  - {id: reset, uri: "`+reset.url()+`", predicates: [Path=/reset/**]}
  - {id: slow, uri: "`+slow.URL+`", predicates: [Path=/slow/**]}
  - {id: ok, uri: "`+healthy.URL+`", predicates: [Path=/ok/**]}
  - {id: mixed, uri: lb://mixed, predicates: [Path=/mixed/**]}
discovery:
  mixed: {static: ["`+blackhole.url()+`", "`+reset.url()+`", "`+healthy.URL+`"]}
`)
	client := &http.Client{Timeout: blackholePatience, Transport: &http.Transport{DisableKeepAlives: true}}
	get := func(path string) (int, time.Duration, error) {
		start := time.Now()
		c := client
		if path == "/mixed/x" {
			// A request that reached the blackhole before the health check
			// took it out would hang: the balanced route must answer at once.
			c = &http.Client{Timeout: 2 * time.Second, Transport: client.Transport}
		}
		resp, err := c.Get("http://" + gw + path)
		if err != nil {
			return 0, time.Since(start), err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode, time.Since(start), nil
	}
	// Warm up (the first health round takes the bad instances out), then
	// take the baseline.
	time.Sleep(time.Second)
	if code, _, err := get("/ok/x"); code != http.StatusOK {
		t.Fatalf("healthy upstream through the gateway: %d %v", code, err)
	}
	waitFor(t, 5*time.Second, "the bad instances of the balanced service to leave the rotation", func() bool {
		for i := 0; i < 6; i++ {
			if code, _, _ := get("/mixed/x"); code != http.StatusOK {
				return false
			}
		}
		return true
	})
	blackholeHung := false

	for _, tc := range []struct {
		path   string
		want   []int
		within time.Duration
	}{
		{"/reset/x", []int{http.StatusBadGateway}, time.Second},
		{"/blackhole/x", []int{http.StatusGatewayTimeout, http.StatusBadGateway}, 10 * time.Second},
		{"/slow/x", []int{http.StatusOK}, 5 * time.Second},
	} {
		var (
			wg sync.WaitGroup
			mu sync.Mutex
		)
		results := make([]string, 8)
		for i := range results {
			wg.Add(1)
			go func() {
				defer wg.Done()
				code, took, err := get(tc.path)
				if tc.path == "/blackhole/x" && code == 0 && took >= blackholePatience {
					mu.Lock()
					blackholeHung = true
					mu.Unlock()
					return
				}
				ok := false
				for _, w := range tc.want {
					ok = ok || code == w
				}
				results[i] = strconv.Itoa(code)
				if !ok || took > tc.within {
					t.Errorf("GET %s: HTTP %d after %v (%v), want one of %v within %v", tc.path, code, took.Round(time.Millisecond), err, tc.want, tc.within)
				} else if i == 0 {
					report(t, "GET %s: HTTP %d after %v", tc.path, code, took.Round(time.Millisecond))
				}
			}()
		}
		// Healthy upstreams keep serving meanwhile.
		for i := 0; i < 20; i++ {
			for _, p := range []string{"/ok/x", "/mixed/x"} {
				if code, took, err := get(p); code != http.StatusOK || took > time.Second {
					t.Errorf("GET %s while %s misbehaves: HTTP %d after %v (%v)", p, tc.path, code, took, err)
				}
			}
		}
		wg.Wait()
	}

	// Nothing leaks: once the gateway and the upstreams are stopped,
	// goroutines and file descriptors return to what they were before.
	stopGateway()
	close(slowRelease)
	slow.Close()
	healthy.Close()
	blackhole.close()
	reset.close()
	client.CloseIdleConnections()
	var g, fd int
	deadline := time.Now().Add(10 * time.Second)
	for {
		g, fd = runtime.NumGoroutine(), openFDs()
		if g <= baseG+5 && fd <= baseFD+5 {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("after the faults: %d goroutines (baseline %d), %d fds (baseline %d)", g, baseG, fd, baseFD)
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	report(t, "goroutines %d → %d, open fds %d → %d", baseG, g, baseFD, fd)
	if blackholeHung {
		t.Errorf("an upstream that accepts TCP and never answers got no 504 within %v: server.response_header_timeout does not bound it", blackholePatience)
	}
}

// blackholePatience is how long a request to the blackhole waits before
// the client gives up.
const blackholePatience = 10 * time.Second
