package gateway

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the gateway's Prometheus collectors. Instance labels are "scheme://host:port" for
// lb:// and direct routes and "internal" for internal:// routes.
type metrics struct {
	requests   *prometheus.CounterVec // route, instance, code
	websockets *prometheus.GaugeVec   // route, instance
	errors     *prometheus.CounterVec // route, instance
	healthy    *prometheus.GaugeVec   // service, instance
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "pushgate", Subsystem: "gateway", Name: "requests_total",
			Help: "Requests proxied, by route, upstream instance and status code (101 for upgrades).",
		}, []string{"route", "instance", "code"}),
		websockets: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "pushgate", Subsystem: "gateway", Name: "websockets_open",
			Help: "Upgraded (WebSocket) connections open, by route and upstream instance.",
		}, []string{"route", "instance"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "pushgate", Subsystem: "gateway", Name: "upstream_errors_total",
			Help: "Failed round trips to upstream instances (dial errors, resets, timeouts), by route and instance.",
		}, []string{"route", "instance"}),
		healthy: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "pushgate", Subsystem: "gateway", Name: "instance_healthy",
			Help: "1 when the instance of an lb:// service is in rotation, 0 when not.",
		}, []string{"service", "instance"}),
	}
	var err error
	m.requests, err = register(reg, m.requests)
	if err != nil {
		return nil, err
	}
	if m.websockets, err = register(reg, m.websockets); err != nil {
		return nil, err
	}
	if m.errors, err = register(reg, m.errors); err != nil {
		return nil, err
	}
	if m.healthy, err = register(reg, m.healthy); err != nil {
		return nil, err
	}
	return m, nil
}

// register registers c, or returns the collector already registered under its name, so that
// two gateways (tests, reloads) can share one registry.
func register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing, nil
			}
		}
		return c, err
	}
	return c, nil
}

func (m *metrics) setHealthy(service, instance string, ok bool) {
	v := 0.0
	if ok {
		v = 1
	}
	m.healthy.WithLabelValues(service, instance).Set(v)
}

func (m *metrics) forgetInstance(service, instance string) {
	m.healthy.DeleteLabelValues(service, instance)
}
