package relay

import (
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Defaults for Config's zero fields.
const (
	DefaultConnections      = 2
	MaxConnections          = 8
	DefaultHeartBeat        = 10 * time.Second
	DefaultConnectTimeout   = 5 * time.Second
	DefaultReceiptTimeout   = 5 * time.Second
	DefaultReconnectMin     = 100 * time.Millisecond
	DefaultReconnectMax     = 2 * time.Second // back within 2 s of a broker's return
	DefaultUnsubscribeDelay = time.Second
	DefaultMaxWaitingSends  = 16384
)

// Config configures a Pool. Zero fields take the defaults above.
type Config struct {
	// Brokers are the broker endpoints; connections spread over them and
	// fail over to the others. Parse them with ParseBrokers.
	Brokers []Broker
	// Connections is the pool size (default 2, at most 8), whatever the
	// number of browser sessions.
	Connections int
	// HeartBeat is the STOMP heart-beat offered to the broker in both
	// directions (default 10s).
	HeartBeat time.Duration
	// ConnectTimeout bounds dialing and the CONNECT/CONNECTED exchange.
	ConnectTimeout time.Duration
	// ReceiptTimeout bounds how long a confirmed send or a subscription waits
	// for the broker's RECEIPT when the caller's context has no deadline.
	ReceiptTimeout time.Duration
	// ReconnectMin and ReconnectMax bound the jittered exponential backoff
	// between reconnect attempts.
	ReconnectMin, ReconnectMax time.Duration
	// UnsubscribeDelay is how long a broker subscription outlives its last
	// local subscriber, so that a client that resubscribes at once (a page
	// reload) does not cost the broker an UNSUBSCRIBE and a SUBSCRIBE.
	UnsubscribeDelay time.Duration
	// MaxWaitingSends bounds the sends to one destination that wait for
	// their turn while earlier ones await the broker's RECEIPT; past it,
	// Send fails with ErrUnavailable rather than queue without limit behind
	// a broker that has stopped confirming.
	MaxWaitingSends int
	// Name identifies this pool's owner in logs and metrics (an edge id, or
	// "pushsvc").
	Name string
	// Logger receives connection events; nil means slog.Default().
	Logger *slog.Logger
	// Registerer, when set, receives the pool's metrics.
	Registerer prometheus.Registerer
}

// Broker is one broker endpoint.
type Broker struct {
	Addr     string // host:port
	Login    string
	Passcode string
	Host     string // STOMP host header: the RabbitMQ virtual host
}

// String returns the endpoint without its credentials, for logs.
func (b Broker) String() string {
	return fmt.Sprintf("stomp://%s/%s", b.Addr, url.PathEscape(b.Host))
}

// ParseBrokers parses a comma-separated list of broker URLs of the form
// stomp://user:pass@host:port/vhost (port defaults to 61613, the virtual
// host to "/"; "%2F" in the path is a slash).
func ParseBrokers(list string) ([]Broker, error) {
	var out []Broker
	for _, raw := range strings.Split(list, ",") {
		raw = strings.TrimSpace(raw)
		if raw == "" {
			continue
		}
		u, err := url.Parse(raw)
		if err != nil {
			return nil, fmt.Errorf("broker URL %q: %w", redact(raw), err)
		}
		if u.Scheme != "stomp" && u.Scheme != "tcp" {
			return nil, fmt.Errorf("broker URL %q: scheme must be stomp://", redact(raw))
		}
		if u.Hostname() == "" {
			return nil, fmt.Errorf("broker URL %q: missing host", redact(raw))
		}
		port := u.Port()
		if port == "" {
			port = "61613"
		}
		b := Broker{Addr: u.Hostname() + ":" + port, Host: "/"}
		if strings.Contains(u.Hostname(), ":") {
			b.Addr = "[" + u.Hostname() + "]:" + port
		}
		if u.User != nil {
			b.Login = u.User.Username()
			b.Passcode, _ = u.User.Password()
		}
		if p := strings.TrimPrefix(u.Path, "/"); p != "" {
			b.Host = p
		}
		out = append(out, b)
	}
	if len(out) == 0 {
		return nil, errors.New("no broker URL given")
	}
	return out, nil
}

// redact hides the password of a URL for error messages.
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		return raw
	}
	return u.Redacted()
}

func (c *Config) setDefaults() error {
	if len(c.Brokers) == 0 {
		return errors.New("relay: no broker configured")
	}
	if c.Connections == 0 {
		c.Connections = DefaultConnections
	}
	if c.Connections < 1 || c.Connections > MaxConnections {
		return fmt.Errorf("relay: broker connections must be 1..%d, got %d", MaxConnections, c.Connections)
	}
	if c.HeartBeat == 0 {
		c.HeartBeat = DefaultHeartBeat
	}
	if c.ConnectTimeout == 0 {
		c.ConnectTimeout = DefaultConnectTimeout
	}
	if c.ReceiptTimeout == 0 {
		c.ReceiptTimeout = DefaultReceiptTimeout
	}
	if c.ReconnectMin == 0 {
		c.ReconnectMin = DefaultReconnectMin
	}
	if c.ReconnectMax == 0 {
		c.ReconnectMax = DefaultReconnectMax
	}
	if c.UnsubscribeDelay == 0 {
		c.UnsubscribeDelay = DefaultUnsubscribeDelay
	}
	if c.MaxWaitingSends == 0 {
		c.MaxWaitingSends = DefaultMaxWaitingSends
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return nil
}
