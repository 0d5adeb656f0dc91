package edge

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/gorilla/websocket"
)

// sockjsCloseGrace is how long a closed WebSocket waits for the client's
// close reply before the connection is dropped.
const sockjsCloseGrace = time.Second

// serveWebSocket serves /{server}/{session}/websocket (SockJS framing) and,
// with raw set, /websocket (plain WebSocket, one message per message). The
// handler goroutine runs the session: it calls onSession, whose recv reads
// the connection. WebSocket sessions may reuse a session id concurrently
// (protocol), so they are not keyed by it.
func (h *sockjsHandler) serveWebSocket(w http.ResponseWriter, r *http.Request, raw bool) {
	if h.cfg.DisableWebSocket {
		http.NotFound(w, r)
		return
	}
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		w.WriteHeader(http.StatusMethodNotAllowed)
		return
	}
	// The protocol's texts for requests a proxy has stripped of the upgrade.
	if !headerHasToken(r.Header, "Upgrade", "websocket") {
		http.Error(w, `Can "Upgrade" only to "WebSocket".`, http.StatusBadRequest)
		return
	}
	if !headerHasToken(r.Header, "Connection", "upgrade") {
		http.Error(w, `"Connection" must be "Upgrade".`, http.StatusBadRequest)
		return
	}
	if !h.checkOrigin(w, r) {
		return
	}
	name := "sockjs-websocket"
	if raw {
		name = "sockjs-rawwebsocket"
	}
	t := &sockjsWSTransport{name: name, raw: raw, writeTimeout: h.cfg.WriteTimeout}
	if err := h.acquire(t); err != nil {
		sockjsError(w, err)
		return
	}
	defer h.releaseSlot(t)
	conn, err := h.upgrader.Upgrade(w, r, nil)
	if err != nil {
		return // the upgrader has answered the request
	}
	defer conn.Close()
	conn.SetReadLimit(int64(h.cfg.MaxMessageBytes))
	if !t.start(conn, h.cfg.Heartbeat) {
		return
	}
	h.onSession(t, r, t.recv)
	_ = t.Close(CloseNormal, "Normal closure")
}

// headerHasToken reports whether a comma-separated header holds token, in
// any case ("Connection: keep-alive, Upgrade" from old Firefox included).
func headerHasToken(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for _, t := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

// sockjsWSTransport is a Transport over one WebSocket of the SockJS
// endpoint. Writes (messages, heartbeats, the close) are serialized by mu
// and bounded by writeTimeout, so a client that stops reading fails a write
// instead of growing a buffer: that is the whole back-pressure story here.
type sockjsWSTransport struct {
	name         string
	raw          bool
	writeTimeout time.Duration
	conn         *websocket.Conn

	mu        sync.Mutex
	closed    bool
	heartbeat time.Duration
	timer     *time.Timer
	// early holds a Close that came before the upgrade completed
	// (shutdown); start carries it out.
	early *sockjsEarlyClose

	pending []string // messages of the last SockJS frame not yet returned by recv
}

// sockjsEarlyClose is a close requested before the connection existed.
type sockjsEarlyClose struct {
	code   int
	reason string
}

// start sends the open frame and starts heartbeats. It returns false when
// the session was closed before it started (by shutdown).
func (t *sockjsWSTransport) start(conn *websocket.Conn, heartbeat time.Duration) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.conn = conn
	t.heartbeat = heartbeat
	if t.early != nil {
		if !t.raw {
			_ = t.writeLocked(websocket.TextMessage, []byte("o"))
		}
		_ = t.closeLocked(t.early.code, t.early.reason)
		return false
	}
	if !t.raw {
		if err := t.writeLocked(websocket.TextMessage, []byte("o")); err != nil {
			return true // the session's first read fails and ends it
		}
	}
	if heartbeat > 0 {
		t.timer = time.AfterFunc(heartbeat, t.beat)
	}
	return true
}

// beat sends one heartbeat: an "h" frame, or a ping on the raw endpoint,
// which has no framing.
func (t *sockjsWSTransport) beat() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return
	}
	var err error
	if t.raw {
		err = t.conn.WriteControl(websocket.PingMessage, nil, time.Now().Add(t.writeTimeout))
	} else {
		err = t.writeLocked(websocket.TextMessage, []byte("h"))
	}
	if err == nil {
		t.timer.Reset(t.heartbeat)
	}
}

// writeLocked writes one message under the write deadline; t.mu is held.
func (t *sockjsWSTransport) writeLocked(typ int, b []byte) error {
	if t.writeTimeout > 0 {
		if err := t.conn.SetWriteDeadline(time.Now().Add(t.writeTimeout)); err != nil {
			return fmt.Errorf("%s: set write deadline: %w", t.name, err)
		}
	}
	if err := t.conn.WriteMessage(typ, b); err != nil {
		return fmt.Errorf("%s: write: %w", t.name, err)
	}
	return nil
}

// Name implements Transport.
func (t *sockjsWSTransport) Name() string { return t.name }

// Write implements Transport: one a["msg"] frame, or on the raw endpoint the
// message itself (binary if it is not UTF-8, which a text message must be).
func (t *sockjsWSTransport) Write(msg []byte) error {
	typ, b := websocket.TextMessage, msg
	if !t.raw {
		b = sockjsMessageFrame(msg)
	} else if !utf8.Valid(msg) {
		typ = websocket.BinaryMessage
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return fmt.Errorf("%s: %w", t.name, errSockJSClosed)
	}
	return t.writeLocked(typ, b)
}

// Close implements Transport. SockJS framing sends c[code,"reason"] with the
// code mapped by sockjsCloseCode, then a WebSocket close with the same code;
// the raw endpoint sends only the WebSocket close, with the code as given.
// The connection is dropped once the client answers the close, or after
// sockjsCloseGrace.
func (t *sockjsWSTransport) Close(code int, reason string) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return nil
	}
	if t.conn == nil {
		t.closed = true
		t.early = &sockjsEarlyClose{code: code, reason: reason}
		return nil
	}
	return t.closeLocked(code, reason)
}

// closeLocked sends the close; t.mu is held.
func (t *sockjsWSTransport) closeLocked(code int, reason string) error {
	t.closed = true
	if t.timer != nil {
		t.timer.Stop()
	}
	// A short deadline: shutdown closes every session, and a client that
	// stopped reading must not hold that up for a whole write timeout.
	deadline := time.Now().Add(sockjsCloseGrace)
	if !t.raw {
		code, reason = sockjsCloseCode(code, reason)
		if t.conn.SetWriteDeadline(deadline) == nil {
			_ = t.conn.WriteMessage(websocket.TextMessage, sockjsCloseFrame(code, reason))
		}
	} else if !validWebSocketCloseCode(code) {
		code = websocket.CloseNormalClosure
	}
	err := t.conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, truncateUTF8(reason, 123)), deadline)
	// recv (the session's reader) sees the client's close reply, or times
	// out; either ends the session.
	_ = t.conn.SetReadDeadline(deadline)
	if err != nil && !errors.Is(err, websocket.ErrCloseSent) {
		_ = t.conn.Close()
		return fmt.Errorf("%s: close: %w", t.name, err)
	}
	return nil
}

// abort drops the connection without a close handshake, as the protocol
// wants for broken JSON.
func (t *sockjsWSTransport) abort() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.closed = true
	if t.timer != nil {
		t.timer.Stop()
	}
	if t.conn != nil {
		_ = t.conn.Close()
	}
}

// recv returns the next client message. Empty messages are ignored, as the
// protocol says; broken JSON drops the connection.
func (t *sockjsWSTransport) recv() ([]byte, error) {
	for {
		if len(t.pending) > 0 {
			m := t.pending[0]
			t.pending = t.pending[1:]
			if m != "" {
				return []byte(m), nil
			}
			continue
		}
		typ, data, err := t.conn.ReadMessage()
		if err != nil {
			t.abort()
			return nil, fmt.Errorf("%s: read: %w", t.name, err)
		}
		if typ != websocket.TextMessage && typ != websocket.BinaryMessage || len(data) == 0 {
			continue
		}
		if t.raw {
			return data, nil
		}
		msgs, err := decodeSockJSWebSocketMessage(data)
		if err != nil {
			t.abort()
			return nil, fmt.Errorf("%s: %w", t.name, err)
		}
		t.pending = msgs
	}
}

// validWebSocketCloseCode reports whether code may be sent in a close frame
// (RFC 6455 section 7.4).
func validWebSocketCloseCode(code int) bool {
	switch {
	case code >= 1000 && code <= 1003, code >= 1007 && code <= 1014:
		return true
	case code >= 3000 && code <= 4999:
		return true
	}
	return false
}

// truncateUTF8 shortens s to at most n bytes without splitting a character.
func truncateUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
