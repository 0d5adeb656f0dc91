package faults

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"net/url"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/pushgate/pushgate/edge"
	"github.com/pushgate/pushgate/internal/stompclient"
	"github.com/pushgate/pushgate/internal/testbroker"
	"github.com/pushgate/pushgate/internal/testenv"
)

// heapAfterGC returns the live heap after a full collection.
func heapAfterGC() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

const mib = 1 << 20

// TestSlowConsumer pushes 10,000 messages of 1 KiB to a client that never
// reads: the edge closes it at its outbound limit (1 MiB by default) and
// the process heap stays bounded.
func TestSlowConsumer(t *testing.T) {
	e := startEnv(t, envOptions{broker: testbroker.Embedded(t).URL(), edges: 1})
	p := e.Edges[0]

	// A raw WebSocket whose socket buffers are small, so the edge's queue,
	// not the kernel, absorbs what the client does not read.
	d := websocket.Dialer{
		Subprotocols:    []string{"v12.stomp"},
		ReadBufferSize:  1024,
		WriteBufferSize: 1024,
		NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
			if err == nil {
				_ = c.(*net.TCPConn).SetReadBuffer(4096)
			}
			return c, err
		},
	}
	ws, _, err := d.Dial(p.URL("/stomp?access_token="+url.QueryEscape(testenv.Token(t, "sloth"))), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	mustWrite := func(b []byte) {
		if err := ws.WriteMessage(websocket.TextMessage, b); err != nil {
			t.Fatal(err)
		}
	}
	mustRead := func(want string) {
		_ = ws.SetReadDeadline(time.Now().Add(wait))
		_, msg, err := ws.ReadMessage()
		if err != nil || !bytes.HasPrefix(msg, []byte(want)) {
			t.Fatalf("want %s: %q %v", want, msg, err)
		}
	}
	mustWrite(stompclient.Encode("CONNECT", nil, "accept-version", "1.2", "host", "x", "heart-beat", "0,0"))
	mustRead("CONNECTED")
	mustWrite(stompclient.Encode("SUBSCRIBE", nil, "id", "s", "destination", "/user/topic/flood", "receipt", "r"))
	mustRead("RECEIPT")
	// From here on the client reads nothing.

	before := heapAfterGC()
	var peak atomic.Uint64
	sampleDone := make(chan struct{})
	stopSampling := make(chan struct{})
	go func() {
		defer close(sampleDone)
		var m runtime.MemStats
		for {
			select {
			case <-stopSampling:
				return
			case <-time.After(50 * time.Millisecond):
			}
			runtime.ReadMemStats(&m)
			if m.HeapInuse > peak.Load() {
				peak.Store(m.HeapInuse)
			}
		}
	}()

	const n, size = 10000, 1024
	payload := strings.Repeat("x", size)
	start := time.Now()
	var accepted, refused atomic.Int64
	var closedAt atomic.Int64
	var wg sync.WaitGroup
	next := atomic.Int64{}
	for w := 0; w < 16; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= n {
				code, _ := e.sendToUser("sloth", "/topic/flood", payload)
				if code == http.StatusOK {
					accepted.Add(1)
				} else {
					refused.Add(1)
				}
				if closedAt.Load() == 0 && p.Metric("pushgate_edge_sessions_closed_total", "reason", "slow") > 0 {
					closedAt.CompareAndSwap(0, int64(time.Since(start)))
				}
			}
		}()
	}
	wg.Wait()
	pushed := time.Since(start)
	waitFor(t, 30*time.Second, "the slow client to be closed", func() bool {
		return p.Metric("pushgate_edge_sessions_closed_total", "reason", "slow") == 1 && p.Metric("pushgate_edge_sessions") == 0
	})
	closedAt.CompareAndSwap(0, int64(time.Since(start)))
	close(stopSampling)
	<-sampleDone
	after := heapAfterGC()

	// What reached the client: at most the outbound limit and the kernel
	// buffers' worth of messages, then the connection ends.
	got, sawError := 0, false
	_ = ws.SetReadDeadline(time.Now().Add(wait))
	for {
		_, msg, err := ws.ReadMessage()
		if err != nil {
			break
		}
		got += bytes.Count(msg, []byte("MESSAGE\n"))
		sawError = sawError || bytes.Contains(msg, []byte("ERROR\n"))
	}
	report(t, "%d pushes of %d B in %v (%d accepted, %d refused); slow client closed %v after the first push; it had received %d messages; ERROR frame reached it: %v",
		n, size, pushed.Round(time.Millisecond), accepted.Load(), refused.Load(), time.Duration(closedAt.Load()).Round(time.Millisecond), got, sawError)
	report(t, "heap: before %.1f MiB, peak in use %.1f MiB, after %.1f MiB (growth %.1f MiB)",
		float64(before)/mib, float64(peak.Load())/mib, float64(after)/mib, (float64(after)-float64(before))/mib)
	if got >= n {
		t.Errorf("the client that never read got all %d messages: nothing was bounded", got)
	}
	if after > before+8*mib {
		t.Errorf("heap grew from %d to %d bytes after the slow client was closed", before, after)
	}
	if accepted.Load() != n {
		t.Errorf("%d of %d pushes accepted: a slow client must not slow the push API down", accepted.Load(), n)
	}
}

// TestSendFlood floods the edge with SEND frames from one session: past
// the burst it is closed with an ERROR naming the rate limit, and another
// user's session keeps working.
func TestSendFlood(t *testing.T) {
	e := startEnv(t, envOptions{broker: testbroker.Embedded(t).URL(), edges: 1})
	p := e.Edges[0]
	bob := connect(t, p, "bob")
	subscribe(t, bob, "g", "/user/topic/greetings")
	flooder := connect(t, p, "flooder")
	subscribe(t, flooder, "g", "/user/topic/greetings")

	// 1,000 SENDs, 50 frames per WebSocket message.
	start := time.Now()
	var batch []byte
	sent := 0
	for i := 0; i < 1000; i++ {
		batch = append(batch, stompclient.Encode("SEND", nil, "destination", "/app/hello")...)
		if (i+1)%50 == 0 {
			if err := flooder.SendRaw(batch); err != nil {
				break // the edge closed the session
			}
			sent += 50
			batch = batch[:0]
		}
	}
	replies, errMsg := 0, ""
	for errMsg == "" {
		f, err := flooder.Next(wait)
		if err != nil {
			break
		}
		switch f.Command {
		case "MESSAGE":
			replies++
		case "ERROR":
			errMsg = f.Header.Get("message")
		}
	}
	elapsed := time.Since(start)
	report(t, "%d SENDs written in %v: %d answered, then ERROR %q", sent, elapsed.Round(time.Millisecond), replies, errMsg)
	if !strings.Contains(errMsg, "SEND rate limit exceeded") {
		t.Fatalf("flooder's ERROR %q, want the SEND rate limit", errMsg)
	}
	if limit := edge.DefaultSendBurst + int(elapsed.Seconds()*edge.DefaultSendRate) + 1; replies > limit {
		t.Errorf("%d SENDs answered in %v, want at most %d (burst %d, %d/s)", replies, elapsed, limit, edge.DefaultSendBurst, edge.DefaultSendRate)
	}
	expectClosed(t, flooder, wait)
	// Another session is not affected.
	if err := bob.Send("SEND", nil, "destination", "/app/hello"); err != nil {
		t.Fatal(err)
	}
	if f, err := bob.Expect("MESSAGE", wait); err != nil || string(f.Body) != "hello" {
		t.Fatalf("bob's /app/hello after the flood: %v", err)
	}
}

// TestHeartBeatExpiry: a client that promised heart-beats and went silent
// is closed with an ERROR once twice the agreed period has passed.
func TestHeartBeatExpiry(t *testing.T) {
	e := startEnv(t, envOptions{broker: testbroker.Embedded(t).URL(), edges: 1, edge: func(c *edge.Config) { c.HeartBeat = 500 * time.Millisecond }})
	c, _, err := dial(t, e.Edges[0].URL("/stomp?access_token="+url.QueryEscape(testenv.Token(t, "ghost"))), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Send("CONNECT", nil, "accept-version", "1.2", "host", "x", "heart-beat", "500,0"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Expect("CONNECTED", wait); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	msg := expectError(t, c, "no data or heart-beat from client", 5*time.Second)
	took := time.Since(start)
	expectClosed(t, c, wait)
	report(t, "silent client (heart-beat 500 ms) closed after %v: %q", took.Round(time.Millisecond), msg)
	if took < 900*time.Millisecond || took > 3*time.Second {
		t.Errorf("closed after %v, want about twice the 500 ms heart-beat", took)
	}
}

// TestConnectionFlood opens 10,000 WebSocket handshakes that never send
// CONNECT against an edge with --max-sessions 2000 and a 2 s first-frame
// timeout: at no time are there more than 2,000 sessions, the rest are
// refused with 503, every accepted one is closed at the first-frame
// timeout, a real client still gets in afterwards, and goroutines return
// to the baseline. It runs without the race detector, whose 8128
// goroutine limit it would exceed (make test-faults runs it so).
func TestConnectionFlood(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allows at most 8128 goroutines; make test-faults runs this without -race")
	}
	const (
		n           = 10000
		maxSessions = 2000
		firstFrame  = 2 * time.Second
	)
	e := startEnv(t, envOptions{broker: testbroker.Embedded(t).URL(), edges: 1, edge: func(c *edge.Config) {
		c.MaxSessions = maxSessions
		c.FirstFrameTimeout = firstFrame
	}})
	p := e.Edges[0]
	baseline := runtime.NumGoroutine()

	var peak atomic.Int64
	stopSampling := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			if v := int64(p.Metric("pushgate_edge_sessions")); v > peak.Load() {
				peak.Store(v)
			}
			select {
			case <-stopSampling:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()

	var (
		accepted, refused503, failed atomic.Int64
		closedByTimeout, closedOther atomic.Int64
		maxLife                      atomic.Int64
		firstFailure                 atomic.Value
		readers                      sync.WaitGroup
		next                         atomic.Int64
		workers                      sync.WaitGroup
	)
	d := websocket.Dialer{Subprotocols: []string{"v12.stomp"}, HandshakeTimeout: 10 * time.Second, ReadBufferSize: 512, WriteBufferSize: 512}
	start := time.Now()
	for w := 0; w < 256; w++ {
		workers.Add(1)
		go func() {
			defer workers.Done()
			for next.Add(1) <= n {
				ws, resp, err := d.Dial(p.URL("/stomp"), nil)
				if err != nil {
					if resp != nil && resp.StatusCode == http.StatusServiceUnavailable {
						refused503.Add(1)
					} else {
						failed.Add(1)
						firstFailure.CompareAndSwap(nil, err.Error())
					}
					continue
				}
				accepted.Add(1)
				opened := time.Now()
				readers.Add(1)
				go func() {
					defer readers.Done()
					defer ws.Close()
					_ = ws.SetReadDeadline(time.Now().Add(firstFrame + 10*time.Second))
					timedOut := false
					for {
						_, msg, err := ws.ReadMessage()
						if err != nil {
							break
						}
						timedOut = timedOut || bytes.Contains(msg, []byte("no CONNECT frame in time"))
					}
					life := int64(time.Since(opened))
					for {
						cur := maxLife.Load()
						if life <= cur || maxLife.CompareAndSwap(cur, life) {
							break
						}
					}
					if timedOut {
						closedByTimeout.Add(1)
					} else {
						closedOther.Add(1)
					}
				}()
			}
		}()
	}
	workers.Wait()
	flood := time.Since(start)
	readers.Wait()
	close(stopSampling)
	<-sampled

	report(t, "%d handshakes in %v: %d accepted, %d refused with 503, %d failed otherwise; at most %d sessions at once (limit %d)",
		n, flood.Round(time.Millisecond), accepted.Load(), refused503.Load(), failed.Load(), peak.Load(), maxSessions)
	report(t, "accepted connections closed by the %v first-frame timeout: %d (other ends: %d), longest lived %v",
		firstFrame, closedByTimeout.Load(), closedOther.Load(), time.Duration(maxLife.Load()).Round(time.Millisecond))
	if f := firstFailure.Load(); f != nil {
		t.Errorf("%d handshakes failed without a 503; first: %v", failed.Load(), f)
	}
	if peak.Load() > maxSessions {
		t.Errorf("%d sessions at once, over --max-sessions %d", peak.Load(), maxSessions)
	}
	if refused503.Load() == 0 {
		t.Errorf("no handshake was refused: the flood did not reach --max-sessions")
	}
	if closedByTimeout.Load() != accepted.Load() {
		t.Errorf("%d of %d accepted connections were closed by the first-frame timeout", closedByTimeout.Load(), accepted.Load())
	}
	if l := time.Duration(maxLife.Load()); l > firstFrame+3*time.Second {
		t.Errorf("a connection without CONNECT lived %v, want about %v", l, firstFrame)
	}

	// The edge still serves a real client.
	c := connect(t, p, "after-flood")
	subscribe(t, c, "g", "/user/topic/greetings")
	if code, body := e.sendToUser("after-flood", "/topic/greetings", "still here"); code != http.StatusOK {
		t.Fatalf("push after the flood: %d %s", code, body)
	}
	if f, err := c.Expect("MESSAGE", wait); err != nil || string(f.Body) != "still here" {
		t.Fatalf("push after the flood not received: %v", err)
	}
	c.Close()
	var now int
	waitFor(t, 10*time.Second, "goroutines back to the baseline", func() bool {
		now = runtime.NumGoroutine()
		return now <= baseline+20
	})
	report(t, "goroutines: %d before the flood, %d after", baseline, now)
}
