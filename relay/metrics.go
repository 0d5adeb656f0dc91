package relay

import "github.com/prometheus/client_golang/prometheus"

// metrics are the pool's Prometheus collectors.
type metrics struct {
	connections   prometheus.GaugeFunc
	subscriptions prometheus.GaugeFunc
	reconnects    prometheus.Counter
	sends         *prometheus.CounterVec
	received      prometheus.Counter
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
		received: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "pushgate_broker_messages_received_total",
			Help: "Messages received from the broker.",
		}),
	}
}

func (m *metrics) register(r prometheus.Registerer) error {
	for _, c := range []prometheus.Collector{m.connections, m.subscriptions, m.reconnects, m.sends, m.received} {
		if err := r.Register(c); err != nil {
			return err
		}
	}
	return nil
}
