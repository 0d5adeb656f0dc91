// Package broker runs the embedded STOMP broker of `pushgate dev`: go-stomp's
// server package on a loopback listener, so that the same relay code that
// talks to RabbitMQ's STOMP plugin runs without outside services.
package broker

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"

	"github.com/go-stomp/stomp/v3/server"
)

// Embedded is a running in-process STOMP broker. go-stomp's server has no
// shutdown of its own, so Embedded owns the listener and every accepted
// connection and closes them on Close. The server's request-processing
// goroutine stays parked after Close (go-stomp offers no way to stop it);
// it holds no connection and costs nothing, but leak checks in tests must
// ignore it (see IgnoreLeak).
type Embedded struct {
	ln  net.Listener
	url string

	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
}

// IgnoreLeak names the go-stomp server goroutine that outlives Close, for
// goleak.IgnoreTopFunction.
const IgnoreLeak = "github.com/go-stomp/stomp/v3/server.(*requestProcessor).Serve"

// Start listens on addr (use "127.0.0.1:0" for an ephemeral port) and serves
// STOMP there until Close. It accepts any login.
func Start(addr string, logger *slog.Logger) (*Embedded, error) {
	if logger == nil {
		logger = slog.Default()
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("embedded broker: %w", err)
	}
	b := &Embedded{
		url:   "stomp://" + ln.Addr().String() + "/",
		conns: make(map[net.Conn]struct{}),
	}
	b.ln = &trackingListener{Listener: ln, b: b}
	srv := &server.Server{Log: stompLogger{logger.With("component", "embedded-broker")}}
	// Serve never returns: go-stomp's processor loops forever (IgnoreLeak).
	go srv.Serve(b.ln) //nolint:errcheck

	return b, nil
}

// Addr returns the broker's listen address.
func (b *Embedded) Addr() string { return b.ln.Addr().String() }

// URL returns the broker URL for --broker.
func (b *Embedded) URL() string { return b.url }

// Close stops accepting and drops every connection, as a broker crash
// would; clients see their connections fail.
func (b *Embedded) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	conns := b.conns
	b.conns = nil
	b.mu.Unlock()
	err := b.ln.Close()
	for c := range conns {
		c.Close()
	}
	if errors.Is(err, net.ErrClosed) {
		err = nil
	}
	return err
}

type trackingListener struct {
	net.Listener
	b *Embedded
}

func (l *trackingListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		l.b.mu.Lock()
		if l.b.closed {
			l.b.mu.Unlock()
			c.Close()
			continue
		}
		tc := &trackedConn{Conn: c, b: l.b}
		l.b.conns[tc] = struct{}{}
		l.b.mu.Unlock()
		return tc, nil
	}
}

type trackedConn struct {
	net.Conn
	b    *Embedded
	once sync.Once
}

func (c *trackedConn) Close() error {
	c.once.Do(func() {
		c.b.mu.Lock()
		delete(c.b.conns, c)
		c.b.mu.Unlock()
	})
	return c.Conn.Close()
}

// stompLogger adapts slog to go-stomp's logger. All of it goes to debug:
// go-stomp reports every client disconnect as an error.
type stompLogger struct{ l *slog.Logger }

func (s stompLogger) Debugf(f string, a ...interface{})   { s.l.Debug(fmt.Sprintf(f, a...)) }
func (s stompLogger) Infof(f string, a ...interface{})    { s.l.Debug(fmt.Sprintf(f, a...)) }
func (s stompLogger) Warningf(f string, a ...interface{}) { s.l.Debug(fmt.Sprintf(f, a...)) }
func (s stompLogger) Errorf(f string, a ...interface{})   { s.l.Debug(fmt.Sprintf(f, a...)) }
func (s stompLogger) Debug(m string)                      { s.l.Debug(m) }
func (s stompLogger) Info(m string)                       { s.l.Debug(m) }
func (s stompLogger) Warning(m string)                    { s.l.Debug(m) }
func (s stompLogger) Error(m string)                      { s.l.Debug(m) }
