package gateway

import (
	"bufio"
	"context"
	"errors"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
)

// errShuttingDown refuses hijacks that race with shutdown.
var errShuttingDown = errors.New("gateway: shutting down")

// tracker knows the connections http.Server.Shutdown cannot see: hijacked (upgraded) client
// connections, and long-lived streaming requests (SockJS polling and streaming, SSE) that would
// otherwise hold shutdown for its whole timeout. Shutdown closes the first and cancels the second.
type tracker struct {
	mu      sync.Mutex
	closed  bool
	conns   map[net.Conn]struct{}
	flights map[*flight]struct{}
	// hijacked counts handlers still serving an upgraded connection; shutdown waits for them.
	hijacked sync.WaitGroup
}

func newTracker() *tracker {
	return &tracker{conns: map[net.Conn]struct{}{}, flights: map[*flight]struct{}{}}
}

// flight is one proxied request; long marks it as a stream that shutdown may cut.
type flight struct {
	cancel context.CancelFunc
	long   atomic.Bool
}

// begin registers a request; the returned context is cancelled by shutdown when the flight is
// marked long, and end must be called when the handler returns.
func (t *tracker) begin(ctx context.Context) (context.Context, *flight) {
	ctx, cancel := context.WithCancel(ctx)
	f := &flight{cancel: cancel}
	t.mu.Lock()
	t.flights[f] = struct{}{}
	t.mu.Unlock()
	return ctx, f
}

// markLong marks the flight as a stream; when shutdown has begun it is cancelled at once.
func (t *tracker) markLong(f *flight) {
	f.long.Store(true)
	t.mu.Lock()
	closed := t.closed
	t.mu.Unlock()
	if closed {
		f.cancel()
	}
}

func (t *tracker) end(f *flight) {
	t.mu.Lock()
	delete(t.flights, f)
	t.mu.Unlock()
	f.cancel()
}

// closeAll closes every hijacked connection, cancels every long flight, and refuses later
// hijacks. It is idempotent.
func (t *tracker) closeAll() {
	t.mu.Lock()
	t.closed = true
	conns := make([]net.Conn, 0, len(t.conns))
	for c := range t.conns {
		conns = append(conns, c)
	}
	var long []*flight
	for f := range t.flights {
		if f.long.Load() {
			long = append(long, f)
		}
	}
	t.mu.Unlock()
	for _, c := range conns {
		_ = c.Close()
	}
	for _, f := range long {
		f.cancel()
	}
}

// hijackWriter records the connection when ReverseProxy hijacks it for a protocol switch, and
// forgets it when the handler returns (by then ReverseProxy has closed it).
type hijackWriter struct {
	http.ResponseWriter
	t    *tracker
	conn net.Conn
}

// Hijack takes over the client connection and registers it for shutdown.
func (w *hijackWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err != nil {
		return c, brw, err
	}
	w.t.mu.Lock()
	if w.t.closed {
		w.t.mu.Unlock()
		_ = c.Close()
		return nil, nil, errShuttingDown
	}
	w.t.conns[c] = struct{}{}
	w.t.hijacked.Add(1)
	w.t.mu.Unlock()
	w.conn = c
	return c, brw, nil
}

// Unwrap lets http.ResponseController reach the server's writer for Flush and deadlines.
func (w *hijackWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *hijackWriter) release() {
	if w.conn == nil {
		return
	}
	w.t.mu.Lock()
	delete(w.t.conns, w.conn)
	w.t.mu.Unlock()
	w.t.hijacked.Done()
}

// waitHijacked waits until every upgraded connection's handler has returned, or ctx is done.
// Call it after closeAll, which refuses new hijacks.
func (t *tracker) waitHijacked(ctx context.Context) error {
	done := make(chan struct{})
	go func() {
		t.hijacked.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
