package relay

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-stomp/stomp/v3/frame"
)

// This file holds one broker connection. It is written on go-stomp's frame
// codec rather than its Conn because go-stomp's Conn.Send holds a mutex
// while it waits for a RECEIPT (so confirmed sends on one connection run one
// round trip at a time), cannot ask for a RECEIPT on SUBSCRIBE, and blocks
// every subscription of a connection when one consumer is slow. pushgate
// needs pipelined confirmations and receipted subscriptions.

// outQueueSize bounds the frames waiting for a connection's writer; senders
// block (with their context) when it is full.
const outQueueSize = 1024

// maxBatch bounds the frames the writer sends with one flush.
const maxBatch = 128

// conn keeps one pool slot connected: it dials, runs a link until it
// fails, backs off and dials again, until the pool closes.
type conn struct {
	pool  *Pool
	index int
	log   *slog.Logger
}

// run is the connection slot's loop; it returns when ctx is done.
func (c *conn) run(ctx context.Context) {
	attempt := 0
	for ctx.Err() == nil {
		broker := c.pool.cfg.Brokers[(c.index+attempt)%len(c.pool.cfg.Brokers)]
		l, err := c.dial(ctx, broker)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			d := backoff(attempt, c.pool.cfg.ReconnectMin, c.pool.cfg.ReconnectMax)
			if attempt == 0 || attempt%20 == 0 {
				c.log.Warn("broker connect failed", "broker", broker.String(), "err", err, "retry_in", d)
			}
			attempt++
			select {
			case <-ctx.Done():
				return
			case <-time.After(d):
			}
			continue
		}
		if attempt > 0 {
			c.pool.metrics.reconnects.Inc()
		}
		attempt = 0
		c.log.Info("broker connected", "broker", broker.String(), "conn", c.index)
		err = l.serve(ctx)
		if ctx.Err() != nil {
			return
		}
		c.log.Warn("broker connection lost", "broker", broker.String(), "conn", c.index, "err", err)
		attempt = 1
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff(0, c.pool.cfg.ReconnectMin, c.pool.cfg.ReconnectMax)):
		}
	}
}

// dial opens a TCP connection and runs the CONNECT/CONNECTED exchange.
func (c *conn) dial(ctx context.Context, b Broker) (*link, error) {
	cfg := &c.pool.cfg
	dctx, cancel := context.WithTimeout(ctx, cfg.ConnectTimeout)
	defer cancel()
	var d net.Dialer
	nc, err := d.DialContext(dctx, "tcp", b.Addr)
	if err != nil {
		return nil, err
	}
	if tc, ok := nc.(*net.TCPConn); ok {
		// Keepalive catches a half-open connection even when heart-beats
		// are disabled by the broker.
		_ = tc.SetKeepAlive(true)
		_ = tc.SetKeepAlivePeriod(30 * time.Second)
	}
	deadline, _ := dctx.Deadline()
	_ = nc.SetDeadline(deadline)
	hb := strconv.Itoa(int(cfg.HeartBeat / time.Millisecond))
	connect := frame.New(frame.CONNECT,
		frame.AcceptVersion, "1.2",
		frame.Host, b.Host,
		frame.HeartBeat, hb+","+hb)
	if b.Login != "" {
		connect.Header.Add(frame.Login, b.Login)
		connect.Header.Add(frame.Passcode, b.Passcode)
	}
	w := bufio.NewWriter(nc)
	if err := frame.NewWriter(w).Write(connect); err != nil {
		nc.Close()
		return nil, fmt.Errorf("send CONNECT: %w", err)
	}
	if err := w.Flush(); err != nil {
		nc.Close()
		return nil, fmt.Errorf("send CONNECT: %w", err)
	}
	r := frame.NewReader(nc)
	var f *frame.Frame
	for f == nil { // skip heart-beats
		if f, err = r.Read(); err != nil {
			nc.Close()
			return nil, fmt.Errorf("read CONNECTED: %w", err)
		}
	}
	if f.Command != frame.CONNECTED {
		nc.Close()
		return nil, fmt.Errorf("broker answered %s: %s", f.Command, f.Header.Get(frame.Message))
	}
	_ = nc.SetDeadline(time.Time{})
	l := &link{
		conn:    c,
		nc:      nc,
		r:       r,
		w:       w,
		out:     make(chan *frame.Frame, outQueueSize),
		done:    make(chan struct{}),
		pending: make(map[string]func(error)),
		subs:    make(map[string]*brokerSub),
	}
	l.sendEvery, l.expectWithin = negotiateHeartBeat(f.Header.Get(frame.HeartBeat), cfg.HeartBeat)
	// RabbitMQ receipts a SEND after its publisher confirm: the message is
	// routed. go-stomp's server (the embedded broker) receipts a SEND before
	// it routes it, but handles a connection's frames in order, so there a
	// receipt on a following no-op SEND is what proves the routing.
	l.receiptAfterRouting = strings.HasPrefix(f.Header.Get(frame.Server), "RabbitMQ/")
	return l, nil
}

// negotiateHeartBeat applies STOMP's heart-beat rule to the broker's
// CONNECTED header, given that we offered ours in both directions.
func negotiateHeartBeat(header string, ours time.Duration) (sendEvery, expectWithin time.Duration) {
	sx, sy := 0, 0
	if _, err := fmt.Sscanf(header, "%d,%d", &sx, &sy); err != nil {
		return 0, 0
	}
	if sy > 0 {
		sendEvery = max(ours, time.Duration(sy)*time.Millisecond)
	}
	if sx > 0 {
		// Allow twice the period plus a second: heart-beats are best effort.
		expectWithin = 2*max(ours, time.Duration(sx)*time.Millisecond) + time.Second
	}
	return sendEvery, expectWithin
}

// link is one established broker connection. It lives until its socket
// fails or the pool closes; the conn slot then dials a new one.
type link struct {
	conn *conn
	nc   net.Conn
	r    *frame.Reader
	w    *bufio.Writer
	out  chan *frame.Frame
	done chan struct{}

	sendEvery, expectWithin time.Duration
	// receiptAfterRouting is true when the broker's RECEIPT for a SEND means
	// the message was routed; otherwise sendConfirmed follows each SEND
	// with a receipted no-op SEND.
	receiptAfterRouting bool

	mu      sync.Mutex
	pending map[string]func(error) // receipt id → completion
	subs    map[string]*brokerSub  // subscription id → entry
	err     error

	closeOnce sync.Once
}

var receiptSeq atomic.Uint64

// serve runs the link: registers it with the pool, writes from a second
// goroutine, reads on this one, and tears everything down on failure.
func (l *link) serve(ctx context.Context) error {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		l.writeLoop()
	}()
	stop := context.AfterFunc(ctx, func() { l.close(ErrClosed) })
	l.conn.pool.linkUp(l)
	err := l.readLoop()
	l.close(err)
	stop()
	wg.Wait()
	l.conn.pool.linkDown(l)
	return err
}

// close fails the link once: the socket closes, waiting senders learn the
// broker is unavailable.
func (l *link) close(err error) {
	l.closeOnce.Do(func() {
		l.mu.Lock()
		l.err = err
		pending := l.pending
		l.pending = nil
		l.mu.Unlock()
		close(l.done)
		l.nc.Close()
		for _, complete := range pending {
			complete(fmt.Errorf("%w: connection lost: %v", ErrUnavailable, err))
		}
	})
}

func (l *link) readLoop() error {
	for {
		if l.expectWithin > 0 {
			_ = l.nc.SetReadDeadline(time.Now().Add(l.expectWithin))
		}
		f, err := l.r.Read()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return fmt.Errorf("no heart-beat from broker within %v", l.expectWithin)
			}
			return err
		}
		if f == nil {
			continue // heart-beat
		}
		switch f.Command {
		case frame.MESSAGE:
			l.dispatch(f)
		case frame.RECEIPT:
			l.complete(f.Header.Get(frame.ReceiptId), nil)
		case frame.ERROR:
			// The broker closes the connection after an ERROR; whatever
			// caused it (say, a refused send) fails that request, and the
			// rest learn it as a lost connection.
			msg := f.Header.Get(frame.Message)
			err := fmt.Errorf("%w: broker error: %s", ErrUnavailable, msg)
			if id, ok := f.Header.Contains(frame.ReceiptId); ok {
				l.complete(id, err)
			}
			return err
		}
	}
}

func (l *link) dispatch(f *frame.Frame) {
	id := f.Header.Get(frame.Subscription)
	l.mu.Lock()
	entry := l.subs[id]
	l.mu.Unlock()
	if entry == nil {
		return // unsubscribed meanwhile
	}
	dest := f.Header.Get(frame.Destination)
	if _, ok := f.Header.Contains(HeaderBatch); ok {
		err := decodeBatch(dest, f.Body, func(m *Message) { l.deliver(entry, m) })
		if err != nil {
			l.conn.log.Warn("dropping malformed batch from broker", "destination", dest, "err", err)
			l.conn.pool.metrics.malformed.Inc()
		}
		return
	}
	l.deliver(entry, &Message{
		Destination: dest,
		ContentType: f.Header.Get(frame.ContentType),
		Header:      f.Header,
		Body:        f.Body,
	})
}

// deliver hands m to every local subscriber of entry.
func (l *link) deliver(entry *brokerSub, m *Message) {
	l.conn.pool.metrics.received.Inc()
	for _, s := range entry.subscriptions() {
		if h := s.handler.Load(); h != nil {
			(*h)(m)
		}
	}
}

func (l *link) complete(id string, err error) {
	l.mu.Lock()
	done := l.pending[id]
	delete(l.pending, id)
	l.mu.Unlock()
	if done != nil {
		done(err)
	}
}

func (l *link) writeLoop() {
	fw := frame.NewWriter(l.w)
	var beat <-chan time.Time
	if l.sendEvery > 0 {
		t := time.NewTicker(l.sendEvery / 2)
		defer t.Stop()
		beat = t.C
	}
	wrote := false
	for {
		select {
		case <-l.done:
			return
		case <-beat:
			if !wrote {
				if err := l.write(func() error { return fw.Write(nil) }); err != nil {
					l.close(err)
					return
				}
			}
			wrote = false
		case f := <-l.out:
			// Write what is queued, up to maxBatch frames, before flushing:
			// under load many frames share one syscall. (Flushing after
			// each frame, as this loop once did, cost a write syscall per
			// frame: two per push with brokers that need the no-op SEND.)
			// The bound renews the write deadline while the queue never
			// empties.
			more := true
			for more {
				err := l.write(func() error {
					for n := 0; n < maxBatch; n++ {
						if err := fw.Write(f); err != nil {
							return err
						}
						select {
						case f = <-l.out:
							continue
						default:
							more = false
						}
						return nil
					}
					return nil // the batch is full; f, received, goes first in the next
				})
				if err != nil {
					l.close(err)
					return
				}
			}
			wrote = true
		}
	}
}

// write runs fn, which writes frames, and flushes the socket buffer, under
// a write deadline so a stuck broker cannot hold the writer forever.
func (l *link) write(fn func() error) error {
	_ = l.nc.SetWriteDeadline(time.Now().Add(l.conn.pool.cfg.ReceiptTimeout))
	if err := fn(); err != nil {
		return err
	}
	return l.w.Flush()
}

// enqueue hands f to the writer, blocking while the queue is full.
func (l *link) enqueue(ctx context.Context, f *frame.Frame) error {
	select {
	case l.out <- f:
		return nil
	case <-l.done:
		return fmt.Errorf("%w: connection lost", ErrUnavailable)
	case <-ctx.Done():
		return fmt.Errorf("%w: %w", ErrUnavailable, ctx.Err())
	}
}

// expect registers a completion for a receipt id. It reports false when the
// link is already closed.
func (l *link) expect(id string, done func(error)) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.pending == nil {
		return false
	}
	l.pending[id] = done
	return true
}

func (l *link) forget(id string) {
	l.mu.Lock()
	delete(l.pending, id)
	l.mu.Unlock()
}

// sendConfirmed writes f with a receipt header and waits for the broker's
// RECEIPT. Many callers may wait on one link at once: confirmations are
// pipelined, not serialized.
func (l *link) sendConfirmed(ctx context.Context, f *frame.Frame) error {
	id := "r" + strconv.FormatUint(receiptSeq.Add(1), 36)
	receipted := f
	if !l.receiptAfterRouting {
		if err := l.enqueue(ctx, f); err != nil {
			return err
		}
		receipted = frame.New(frame.SEND, frame.Destination, SyncDestination, frame.ContentLength, "0")
	}
	receipted.Header.Set(frame.Receipt, id)
	ch := make(chan error, 1)
	if !l.expect(id, func(err error) { ch <- err }) {
		return fmt.Errorf("%w: connection lost", ErrUnavailable)
	}
	if err := l.enqueue(ctx, receipted); err != nil {
		l.forget(id)
		return err
	}
	timeout := time.NewTimer(l.conn.pool.cfg.ReceiptTimeout)
	defer timeout.Stop()
	select {
	case err := <-ch:
		return err
	case <-ctx.Done():
		l.forget(id)
		return fmt.Errorf("%w: waiting for receipt: %w", ErrUnavailable, ctx.Err())
	case <-timeout.C:
		l.forget(id)
		return fmt.Errorf("%w: no receipt from broker within %v", ErrUnavailable, l.conn.pool.cfg.ReceiptTimeout)
	}
}
