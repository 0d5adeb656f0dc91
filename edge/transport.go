package edge

// Transport is a session's view of one client connection: a WebSocket, or a
// SockJS session over any of its transports. The session's writer goroutine
// is the only caller of Write; Close may be called from any goroutine and
// must be idempotent.
//
// Reading is not part of the interface: the HTTP handler goroutine that owns
// the connection reads messages and hands them to the session, the way
// net/http handlers own their request.
type Transport interface {
	// Name identifies the transport in logs and metrics, for example
	// "websocket" or "sockjs-xhr-streaming".
	Name() string
	// Write sends one message (one or more whole STOMP frames) to the client.
	Write(msg []byte) error
	// Close ends the connection and tells the client why: a WebSocket close
	// frame, or a SockJS close frame c[code,"reason"].
	Close(code int, reason string) error
}

// Close codes sent to clients.
const (
	// CloseNormal ends a session that finished normally (DISCONNECT).
	CloseNormal = 1000
	// CloseGoingAway tells the client the edge is shutting down; SockJS
	// clients see it as 3000 "Go away!"-style application close.
	CloseGoingAway = 1001
	// CloseProtocolError follows an ERROR frame, as Spring does.
	CloseProtocolError = 1002
	// CloseServerShutdown is the SockJS application close code used when the
	// edge drains (SockJS reserves 3000-4999 for applications).
	CloseServerShutdown = 3000
)
