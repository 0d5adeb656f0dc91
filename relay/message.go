package relay

import "github.com/go-stomp/stomp/v3/frame"

// Message is a message sent to or received from the broker.
type Message struct {
	// Destination is a broker destination (see names.go).
	Destination string
	// ContentType is the body's MIME type; empty means none.
	ContentType string
	// Header holds extra STOMP headers; it may be nil. On received messages
	// it is the MESSAGE frame's full header, which handlers must not modify.
	Header *frame.Header
	// Body is the payload. Received bodies are shared between handlers and
	// must not be modified.
	Body []byte
	// OrderKey, on sent messages, pins every message with the same key to
	// one connection while it is up, so the broker sees them in send order.
	OrderKey string
}

// Handler receives the messages of a subscription. It runs on the broker
// connection's read goroutine: it must return quickly and never block,
// because every other subscription on that connection waits meanwhile.
type Handler func(*Message)
