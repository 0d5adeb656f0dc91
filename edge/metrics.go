package edge

import "github.com/prometheus/client_golang/prometheus"

// metrics are the edge's Prometheus collectors.
type metrics struct {
	sessions          *prometheus.GaugeVec
	closed            *prometheus.CounterVec
	subscriptions     prometheus.Gauge
	framesIn          *prometheus.CounterVec
	messagesOut       prometheus.Counter
	bytesIn, bytesOut prometheus.Counter
	drops             *prometheus.CounterVec
	refused           prometheus.Counter
	refusedHandshakes *prometheus.CounterVec
	authFailures      prometheus.Counter
	users             prometheus.GaugeFunc
}

func newMetrics(s *Server) *metrics {
	return &metrics{
		sessions: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "pushgate_edge_sessions", Help: "Open client sessions, by transport.",
		}, []string{"transport"}),
		closed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pushgate_edge_sessions_closed_total", Help: "Sessions ended, by reason.",
		}, []string{"reason"}),
		subscriptions: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "pushgate_edge_subscriptions", Help: "Client subscriptions held by sessions.",
		}),
		framesIn: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pushgate_edge_frames_in_total", Help: "STOMP frames received from clients, by command.",
		}, []string{"command"}),
		messagesOut: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "pushgate_edge_messages_out_total", Help: "MESSAGE frames queued for clients.",
		}),
		bytesIn: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "pushgate_edge_bytes_in_total", Help: "Bytes received from clients.",
		}),
		bytesOut: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "pushgate_edge_bytes_out_total", Help: "Bytes written to clients.",
		}),
		drops: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pushgate_edge_drops_total", Help: "Frames dropped or refused, by reason.",
		}, []string{"reason"}),
		refused: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "pushgate_edge_refused_destinations_total", Help: "SUBSCRIBEs refused by the destination rules.",
		}),
		refusedHandshakes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pushgate_edge_refused_handshakes_total", Help: "Handshakes refused, by reason.",
		}, []string{"reason"}),
		authFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "pushgate_edge_auth_failures_total", Help: "Tokens refused at handshake or CONNECT.",
		}),
		users: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "pushgate_edge_users", Help: "Distinct users with a connected session on this edge.",
		}, func() float64 {
			s.hub.mu.RLock()
			defer s.hub.mu.RUnlock()
			return float64(len(s.hub.users))
		}),
	}
}

func (m *metrics) register(r prometheus.Registerer) error {
	for _, c := range []prometheus.Collector{m.sessions, m.closed, m.subscriptions, m.framesIn, m.messagesOut,
		m.bytesIn, m.bytesOut, m.drops, m.refused, m.refusedHandshakes, m.authFailures, m.users} {
		if err := r.Register(c); err != nil {
			return err
		}
	}
	return nil
}
