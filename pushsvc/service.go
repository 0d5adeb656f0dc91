// Package pushsvc is pushgate's push API: the gRPC PushService, the same API
// as REST through grpc-gateway, and the legacy GET /test endpoint. It
// validates every request, then hands a Message to a Router, which delivers
// it over the broker.
package pushsvc

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pushgatev1 "github.com/pushgate/pushgate/gen/pushgate/v1"
	"github.com/pushgate/pushgate/relay"
)

// RPC names, used as the "rpc" metric label and in logs.
const (
	rpcSendToUser = "SendToUser"
	rpcBroadcast  = "Broadcast"
)

// pushService implements pushgatev1.PushServiceServer over a Router. The gRPC
// server and the in-process REST gateway both call it, so validation,
// metrics and error mapping live here rather than in interceptors (which the
// in-process gateway bypasses).
type pushService struct {
	pushgatev1.UnimplementedPushServiceServer

	router     Router
	maxPayload int
	log        *slog.Logger
	metrics    *pushMetrics
}

var _ pushgatev1.PushServiceServer = (*pushService)(nil)

// SendToUser validates req and routes it to the user's sessions.
func (s *pushService) SendToUser(ctx context.Context, req *pushgatev1.SendToUserRequest) (*pushgatev1.SendToUserResponse, error) {
	start := time.Now()
	id, err := s.sendToUser(ctx, req)
	s.observe(ctx, rpcSendToUser, start, req.GetDestination(), err)
	if err != nil {
		return nil, err
	}
	return &pushgatev1.SendToUserResponse{MessageId: id}, nil
}

func (s *pushService) sendToUser(ctx context.Context, req *pushgatev1.SendToUserRequest) (string, error) {
	if err := validateUser(req.GetUser()); err != nil {
		return "", invalidArgument(err)
	}
	m, err := s.newMessage(req.GetDestination(), false, sendToUserPayload(req), req.GetContentType(), req.GetHeaders())
	if err != nil {
		return "", invalidArgument(err)
	}
	if err := s.router.SendToUser(ctx, req.GetUser(), m); err != nil {
		return "", routerStatus(err)
	}
	return m.ID, nil
}

// Broadcast validates req and routes it to every subscriber of its topic.
func (s *pushService) Broadcast(ctx context.Context, req *pushgatev1.BroadcastRequest) (*pushgatev1.BroadcastResponse, error) {
	start := time.Now()
	id, err := s.broadcast(ctx, req)
	s.observe(ctx, rpcBroadcast, start, req.GetDestination(), err)
	if err != nil {
		return nil, err
	}
	return &pushgatev1.BroadcastResponse{MessageId: id}, nil
}

func (s *pushService) broadcast(ctx context.Context, req *pushgatev1.BroadcastRequest) (string, error) {
	m, err := s.newMessage(req.GetDestination(), true, broadcastPayload(req), req.GetContentType(), req.GetHeaders())
	if err != nil {
		return "", invalidArgument(err)
	}
	if err := s.router.Broadcast(ctx, m); err != nil {
		return "", routerStatus(err)
	}
	return m.ID, nil
}

// newMessage validates the parts common to both RPCs and builds the Message.
func (s *pushService) newMessage(dest string, topicOnly bool, p pushPayload, ct string, headers map[string]string) (Message, error) {
	if err := relay.ValidateDestination(dest, topicOnly); err != nil {
		return Message{}, err
	}
	body, ct, err := encodePayload(p, ct, s.maxPayload)
	if err != nil {
		return Message{}, err
	}
	if err := validateHeaders(headers); err != nil {
		return Message{}, err
	}
	var h map[string]string
	if len(headers) > 0 {
		// A copy: the Router may keep the message after the request is gone.
		h = make(map[string]string, len(headers))
		for k, v := range headers {
			h[k] = v
		}
	}
	return Message{ID: newMessageID(), Destination: dest, Body: body, ContentType: ct, Headers: h}, nil
}

// sendToUserPayload extracts the oneof payload of a SendToUserRequest.
func sendToUserPayload(req *pushgatev1.SendToUserRequest) pushPayload {
	switch p := req.GetPayload().(type) {
	case *pushgatev1.SendToUserRequest_Text:
		return pushPayload{set: true, kind: "text", text: p.Text}
	case *pushgatev1.SendToUserRequest_Json:
		return pushPayload{set: true, kind: "json", json: p.Json}
	case *pushgatev1.SendToUserRequest_Data:
		return pushPayload{set: true, kind: "data", data: p.Data}
	}
	return pushPayload{}
}

// broadcastPayload extracts the oneof payload of a BroadcastRequest.
func broadcastPayload(req *pushgatev1.BroadcastRequest) pushPayload {
	switch p := req.GetPayload().(type) {
	case *pushgatev1.BroadcastRequest_Text:
		return pushPayload{set: true, kind: "text", text: p.Text}
	case *pushgatev1.BroadcastRequest_Json:
		return pushPayload{set: true, kind: "json", json: p.Json}
	case *pushgatev1.BroadcastRequest_Data:
		return pushPayload{set: true, kind: "data", data: p.Data}
	}
	return pushPayload{}
}

// newMessageID returns 16 random bytes as 32 hex digits.
func newMessageID() string {
	var b [16]byte
	// crypto/rand.Read never returns an error (it crashes the program
	// instead, since Go 1.24).
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// observe records metrics for one push and logs failures that are not the
// caller's fault.
func (s *pushService) observe(ctx context.Context, rpc string, start time.Time, dest string, err error) {
	code := status.Code(err)
	s.metrics.pushes.WithLabelValues(rpc, code.String()).Inc()
	s.metrics.latency.WithLabelValues(rpc).Observe(time.Since(start).Seconds())
	switch code {
	case codes.OK, codes.InvalidArgument, codes.Canceled:
	case codes.Unavailable, codes.DeadlineExceeded:
		s.log.WarnContext(ctx, "push not sent", "rpc", rpc, "destination", dest, "code", code.String(), "err", err)
	default:
		s.log.ErrorContext(ctx, "push failed", "rpc", rpc, "destination", dest, "code", code.String(), "err", err)
	}
}

// pushMetrics are pushsvc's Prometheus collectors.
type pushMetrics struct {
	pushes  *prometheus.CounterVec
	latency *prometheus.HistogramVec
}

// newPushMetrics registers pushsvc's collectors with reg. A collector that is
// already registered (a second Server on the same registry) is reused.
func newPushMetrics(reg prometheus.Registerer) (*pushMetrics, error) {
	pushes := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "pushgate",
		Subsystem: "pushsvc",
		Name:      "pushes_total",
		Help:      "Push requests (gRPC, REST and /test) by RPC and gRPC result code.",
	}, []string{"rpc", "code"})
	latency := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: "pushgate",
		Subsystem: "pushsvc",
		Name:      "push_duration_seconds",
		Help:      "Time from a push request to the broker's confirmation or the error, by RPC.",
		Buckets:   []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
	}, []string{"rpc"})
	var err error
	if pushes, err = registerCollector(reg, pushes); err != nil {
		return nil, err
	}
	if latency, err = registerCollector(reg, latency); err != nil {
		return nil, err
	}
	return &pushMetrics{pushes: pushes, latency: latency}, nil
}

// registerCollector registers c with reg, or returns the equal collector that reg
// already has.
func registerCollector[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing, nil
			}
		}
		var zero C
		return zero, err
	}
	return c, nil
}
