package pushsvc

import "context"

// Message is one validated push, ready for the broker.
type Message struct {
	ID          string // assigned by the service (random, e.g. 16 bytes base32/hex)
	Destination string // validated: /topic/... or /queue/...
	Body        []byte
	ContentType string            // resolved default: text → "text/plain;charset=UTF-8", json → "application/json", data → "application/octet-stream" unless content_type says otherwise
	Headers     map[string]string // copied onto the STOMP MESSAGE; validated
}

// Router delivers validated messages; the lead implements it over the broker.
type Router interface {
	SendToUser(ctx context.Context, user string, m Message) error
	Broadcast(ctx context.Context, m Message) error
}
