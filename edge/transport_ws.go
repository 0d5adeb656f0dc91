package edge

import (
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
	// A message may hold several frames; the decoder bounds each frame,
	// this bounds one message's buffer.
	conn.SetReadLimit(int64(4 * s.cfg.Limits.MaxFrameBytes))
	t := &wsTransport{conn: conn, writeTimeout: s.cfg.WriteTimeout}
	s.serveSession(t, ident, func() ([]byte, error) {
		for {
			typ, p, err := conn.ReadMessage()
			if err != nil {
				return nil, err
			}
			if typ == websocket.TextMessage || typ == websocket.BinaryMessage {
				return p, nil
			}
		}
	})
}

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
		_ = t.conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, reason), time.Now().Add(time.Second))
		_ = t.conn.Close()
	})
	return nil
}
