package edge

import "fmt"

// closeReason says why a session ends, what the client is told and how.
type closeReason struct {
	// code is the transport close code (WebSocket, or SockJS).
	code int
	// message goes into the ERROR frame's message header and the close
	// frame's reason.
	message string
	// errorFrame sends an ERROR frame before closing (only once connected
	// or for a failed CONNECT; never for a client that just went away).
	errorFrame bool
	// receiptID goes into the ERROR frame when the offending frame asked
	// for a receipt.
	receiptID string
	// flush writes queued frames before the ERROR and close; false for a
	// slow client whose queue is the problem.
	flush bool
	// headers are extra ERROR frame headers (the supported versions after a
	// failed negotiation).
	headers []Header
	// metric labels pushgate_edge_sessions_closed_total.
	metric string
}

var (
	reasonDisconnect = closeReason{code: CloseNormal, message: "bye", flush: true, metric: "disconnect"}
	reasonClientGone = closeReason{code: CloseNormal, message: "client went away", metric: "client_gone"}
	reasonShutdown   = closeReason{code: CloseServerShutdown, message: "edge is shutting down, reconnect", errorFrame: true, flush: true, metric: "shutdown"}
)

func reasonProtocol(msg, receiptID string) closeReason {
	return closeReason{code: CloseProtocolError, message: msg, errorFrame: true, receiptID: receiptID, flush: true, metric: "protocol"}
}

func reasonAuth(msg string) closeReason {
	return closeReason{code: CloseProtocolError, message: msg, errorFrame: true, flush: true, metric: "auth"}
}

func reasonSlow(limit int) closeReason {
	return closeReason{code: CloseProtocolError, message: fmt.Sprintf("slow consumer: more than %d bytes waiting to be sent", limit), errorFrame: true, metric: "slow"}
}

func reasonHeartBeat(d fmt.Stringer) closeReason {
	return closeReason{code: CloseProtocolError, message: fmt.Sprintf("no data or heart-beat from client within %v", d), errorFrame: true, flush: true, metric: "heartbeat"}
}

var (
	reasonFirstFrame   = closeReason{code: CloseProtocolError, message: "no CONNECT frame in time", errorFrame: true, metric: "first_frame"}
	reasonTokenExpired = closeReason{code: CloseProtocolError, message: "token expired", errorFrame: true, flush: true, metric: "token_expired"}
	reasonWriteTimeout = closeReason{code: CloseProtocolError, message: "slow consumer: write timed out", metric: "slow"}
)

func reasonBrokerOutage(msg string) closeReason {
	return closeReason{code: CloseProtocolError, message: msg, errorFrame: true, flush: true, metric: "broker_outage"}
}
