package relay

import "errors"

// ErrUnavailable reports that the broker could not take a message or a
// subscription: no broker connection is up, or the broker did not confirm
// in time. Callers map it to gRPC UNAVAILABLE / HTTP 503.
var ErrUnavailable = errors.New("relay: broker unavailable")

// ErrClosed reports use of a pool after Close.
var ErrClosed = errors.New("relay: pool closed")
