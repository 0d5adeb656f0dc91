package faults

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pushgate/pushgate/gateway"
	"github.com/pushgate/pushgate/internal/testenv"
)

// startGateway runs a gateway with the YAML configuration yaml (its
// server port is ignored: it listens on an ephemeral port) and returns its
// host:port. It stops when the test ends.
func startGateway(t *testing.T, yaml string) string {
	t.Helper()
	addr, _ := startGatewayStop(t, yaml)
	return addr
}

// startGatewayStop is startGateway that also returns a function stopping
// the gateway (idempotent; the test's end calls it too).
func startGatewayStop(t *testing.T, yaml string) (string, func()) {
	t.Helper()
	cfg, err := gateway.ParseConfig("faults.yaml", []byte(yaml))
	if err != nil {
		t.Fatalf("gateway config: %v", err)
	}
	return testenv.RunGateway(t, cfg, gateway.Options{Logger: discard})
}

// edgeGatewayYAML routes /web-socket/** to the edges (lb:ws, health-checked
// every interval) and /api/** to pushsvc.
func edgeGatewayYAML(e *env, interval time.Duration) string {
	var edges []string
	for _, p := range e.Edges {
		edges = append(edges, strconv.Quote("http://"+p.Addr))
	}
	return `server: {address: 127.0.0.1, port: 7000}
health: {interval: ` + interval.String() + `, timeout: ` + interval.String() + `, unhealthy_threshold: 1}
routes:
  - id: web-socket
    uri: lb:ws://web-socket
    predicates: [Path=/web-socket/**]
    filters: ["RewritePath=/web-socket/(?<path>.*), /${path}"]
  - id: api
    uri: lb://pushsvc
    predicates: [Path=/api/**]
    filters: [StripPrefix=1]
discovery:
  web-socket: {static: [` + strings.Join(edges, ", ") + `]}
  pushsvc: {static: ["http://` + e.Pushsvc.HTTPAddr + `"]}
`
}
