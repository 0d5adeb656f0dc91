package edge

import (
	"io"
	"net/http"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/gorilla/websocket"
)

// stompSubprotocols are the WebSocket subprotocols of STOMP, in the order
// the edge prefers them; stomp.js offers all three, and Chrome fails the
// handshake if the server does not echo one it offered.
var stompSubprotocols = []string{"v12.stomp", "v11.stomp", "v10.stomp"}

// writeBufferPool shares gorilla's write buffers between idle connections:
// a buffer is held only while a write is in progress, which matters with
// tens of thousands of mostly idle sessions.
var writeBufferPool = &sync.Pool{}

func (s *Server) upgrader() *websocket.Upgrader {
	return &websocket.Upgrader{
		ReadBufferSize:  1024,
		WriteBufferSize: 4096,
		WriteBufferPool: writeBufferPool,
		Subprotocols:    stompSubprotocols,
		// handshake checks the Origin against --allowed-origins first.
		CheckOrigin: func(*http.Request) bool { return true },
	}
}

// serveWebSocket serves /stomp: STOMP frames in WebSocket messages.
func (s *Server) serveWebSocket(w http.ResponseWriter, r *http.Request) {
	ident, ok := s.handshake(w, r)
	if !ok {
		return
	}
	conn, err := s.upgrader().Upgrade(w, r, nil)
	if err != nil {
		s.sessions.Add(-1)
		return // Upgrade has answered the client
	}
	t := &wsTransport{conn: conn, writeTimeout: s.cfg.WriteTimeout}
	// The session gets a goroutine of its own and this handler returns.
	// While a handler runs, net/http keeps what it holds per connection
	// alive even after the hijack: its 4 KiB read and write buffers, the
	// response's 2 KiB buffer, the request and its context, and the deep
	// stack of its serve goroutine; returning lets all of that go (about a
	// third of an idle session's memory). s.wg covers the goroutine, as it
	// covers the session's writer.
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		// Messages are read in chunks and fed to the session's decoder as they
		// arrive, so no whole message is buffered: the decoder bounds each frame
		// and answers one over the limit with an ERROR, however large the
		// message carrying it, and a message may hold any number of frames.
		var msg io.Reader // the message being read; nil between messages
		var buf *[]byte   // its chunk buffer, from readChunks; idle sessions hold none
		release := func() {
			if buf != nil {
				readChunks.Put(buf)
				buf = nil
			}
		}
		defer release()
		s.serveSession(t, ident, func() ([]byte, error) {
			for {
				if msg == nil {
					// The session has handled what the last call returned
					// (its decoder keeps no reference), so the chunk can go.
					release()
					_, r, err := conn.NextReader()
					if err != nil {
						return nil, err
					}
					msg, buf = r, readChunks.Get().(*[]byte)
				}
				n, err := msg.Read(*buf)
				if err == io.EOF {
					msg = nil
				} else if err != nil {
					return nil, err
				}
				if n > 0 {
					return (*buf)[:n], nil
				}
			}
		})
		// The session has ended and Close has sent the close frame. Closing a
		// TCP connection with unread client data in it makes the kernel send a
		// reset, which can destroy the ERROR and close frames on their way to
		// the client; so first read and discard until the client answers the
		// close frame or the deadline Close set passes.
		for {
			if _, _, err := conn.NextReader(); err != nil {
				break
			}
		}
		_ = conn.Close()
	}()
}

// readChunks holds the buffers that client messages are read into: a
// connect storm reads three messages per session, and allocating a chunk for
// each was the largest part of an edge's garbage.
var readChunks = sync.Pool{New: func() any { b := make([]byte, wsReadChunk); return &b }}

const (
	// wsReadChunk is the most of a client message read at once.
	wsReadChunk = 4 << 10
	// wsCloseLinger bounds the wait for a client to answer the close frame.
	wsCloseLinger = 2 * time.Second
)

// wsTransport is a gorilla WebSocket connection as a session Transport.
type wsTransport struct {
	conn         *websocket.Conn
	writeTimeout time.Duration
	closeOnce    sync.Once
}

func (t *wsTransport) Name() string { return "websocket" }

// Write sends frames as one text message, or as a binary message when a
// body is not UTF-8 (browsers fail a connection on invalid text).
func (t *wsTransport) Write(msg []byte) error {
	typ := websocket.TextMessage
	if !utf8.Valid(msg) {
		typ = websocket.BinaryMessage
	}
	_ = t.conn.SetWriteDeadline(time.Now().Add(t.writeTimeout))
	return t.conn.WriteMessage(typ, msg)
}

func (t *wsTransport) Close(code int, reason string) error {
	t.closeOnce.Do(func() {
		if len(reason) > 120 { // a close frame's reason is at most 123 bytes
			reason = reason[:120]
			for !utf8.ValidString(reason) {
				reason = reason[:len(reason)-1]
			}
		}
		if code == CloseServerShutdown {
			code = CloseGoingAway
		}
		err := t.conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, reason), time.Now().Add(time.Second))
		if err != nil {
			_ = t.conn.Close()
			return
		}
		// The reader goroutine reads on until the client answers the close
		// frame, then closes the connection (serveWebSocket); this bounds
		// the wait, and ends a read blocked on a client that is gone.
		_ = t.conn.SetReadDeadline(time.Now().Add(wsCloseLinger))
	})
	return nil
}
