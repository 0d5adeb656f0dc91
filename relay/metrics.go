package relay

import "github.com/prometheus/client_golang/prometheus"

// metrics are the pool's Prometheus collectors.
type metrics struct {
	connections   prometheus.GaugeFunc
	subscriptions prometheus.GaugeFunc
	reconnects    prometheus.Counter
	sends         *prometheus.CounterVec
	batches       prometheus.Counter
	received      prometheus.Counter
	malformed     prometheus.Counter
}

func newMetrics(p *Pool) *metrics {
	return &metrics{
		connections: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "pushgate_broker_connections",
			Help: "Broker connections that are up.",
		}, func() float64 { return float64(p.Connected()) }),
		subscriptions: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "pushgate_broker_subscriptions",
			Help: "Broker subscriptions held (one per distinct broker destination).",
		}, func() float64 {
			p.mu.Lock()
			defer p.mu.Unlock()
			return float64(len(p.subs))
		}),
		reconnects: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "pushgate_broker_reconnects_total",
			Help: "Broker connections re-established after a loss.",
		}),
		sends: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pushgate_broker_sends_total",
			Help: "Messages sent to the broker, by result (ok: confirmed by a RECEIPT).",
		}, []string{"result"}),
		batches: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "pushgate_broker_send_frames_total",
			Help: "Broker messages published: a message sent alone, or a batch of the messages to one destination that queued while earlier ones awaited their RECEIPT.",
		}),
		received: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "pushgate_broker_messages_received_total",
			Help: "Messages received from the broker (each message of a batch counts).",
		}),
		malformed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "pushgate_broker_malformed_batches_total",
			Help: "Batches from the broker that could not be decoded and were dropped.",
		}),
	}
}

func (m *metrics) register(r prometheus.Registerer) error {
	for _, c := range []prometheus.Collector{m.connections, m.subscriptions, m.reconnects, m.sends, m.batches, m.received, m.malformed} {
		if err := r.Register(c); err != nil {
			return err
		}
	}
	return nil
}
