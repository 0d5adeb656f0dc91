package edge

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path"
	"regexp"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Defaults for Config's zero fields (DESIGN.md "Limits and defaults").
const (
	DefaultMaxSubscriptions  = 32
	DefaultMaxQueueBytes     = 1 << 20
	DefaultSendRate          = 100
	DefaultSendBurst         = 200
	DefaultHeartBeat         = 10 * time.Second
	DefaultMaxSessions       = 100_000
	DefaultFirstFrameTimeout = 10 * time.Second
	DefaultOutageGrace       = 60 * time.Second
	DefaultRegistryInterval  = 5 * time.Second
	DefaultWriteTimeout      = 10 * time.Second
	DefaultBrokerTimeout     = 5 * time.Second
)

// Config configures an edge Server. Zero fields take the defaults above.
type Config struct {
	// ID names this edge in the broker mapping, the user registry, logs and
	// the CONNECTED frame's server header. Lowercase letters, digits and
	// '-'; default: the host name and a random suffix.
	ID string
	// Auth verifies the JWTs of clients. Required.
	Auth AuthConfig
	// AllowedOrigins lists the browser origins allowed to open sessions;
	// empty means the edge's own host only. A request without Origin (not a
	// browser) is always allowed.
	AllowedOrigins []string
	// ClientPublish lists path patterns (path.Match syntax, such as
	// "/topic/chat.*") of /topic/ destinations clients may SEND to. Empty:
	// clients may not publish.
	ClientPublish []string

	// Limits bounds what one client frame may be (64 KiB, 32 headers of at
	// most 8 KiB together).
	Limits Limits
	// MaxSubscriptions bounds subscriptions per session (default 32).
	MaxSubscriptions int
	// MaxQueueBytes bounds the encoded frames waiting for a slow client;
	// beyond it the client is closed as slow (default 1 MiB).
	MaxQueueBytes int
	// SendRate and SendBurst limit SENDs per session (100/s, bursts of 200).
	SendRate  float64
	SendBurst int
	// HeartBeat is the heart-beat the edge offers in CONNECTED, both ways
	// (default 10s).
	HeartBeat time.Duration
	// MaxSessions bounds concurrent sessions on this edge, all transports.
	MaxSessions int
	// FirstFrameTimeout is how long a connection may stay open without a
	// CONNECT (default 10s).
	FirstFrameTimeout time.Duration
	// WriteTimeout bounds one write to a client; a client that does not
	// read within it is closed as slow (default 10s).
	WriteTimeout time.Duration
	// BrokerTimeout bounds waiting for the broker to confirm a
	// subscription, a registry change or a client's SEND (default 5s).
	BrokerTimeout time.Duration
	// BrokerOutageGrace is how long sessions stay open while no broker
	// connection is up; after it they are closed with an ERROR saying why
	// (default 60s).
	BrokerOutageGrace time.Duration
	// RegistryInterval is how often the edge announces a full snapshot of
	// the users it holds (default 5s); pushsvc forgets an edge that stays
	// silent for three intervals.
	RegistryInterval time.Duration
	// SockJS configures the /ws endpoint.
	SockJS SockJSConfig

	// Logger receives the edge's logs; nil means slog.Default().
	Logger *slog.Logger
	// Registerer receives the edge's metrics; nil means none are exported.
	Registerer prometheus.Registerer
}

var validID = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)

func (c *Config) setDefaults() error {
	var errs []error
	if c.ID == "" {
		c.ID = defaultID()
	}
	if !validID.MatchString(c.ID) {
		errs = append(errs, fmt.Errorf("edge id %q: use 1-63 lowercase letters, digits and '-'", c.ID))
	}
	for _, p := range c.ClientPublish {
		if _, err := path.Match(p, "/topic/x"); err != nil || !strings.HasPrefix(p, "/topic/") {
			errs = append(errs, fmt.Errorf("client-publish pattern %q: must be a /topic/ path pattern", p))
		}
	}
	c.Limits = c.Limits.withDefaults()
	setDefault(&c.MaxSubscriptions, DefaultMaxSubscriptions)
	setDefault(&c.MaxQueueBytes, DefaultMaxQueueBytes)
	setDefault(&c.SendRate, DefaultSendRate)
	setDefault(&c.SendBurst, DefaultSendBurst)
	setDefault(&c.HeartBeat, DefaultHeartBeat)
	setDefault(&c.MaxSessions, DefaultMaxSessions)
	setDefault(&c.FirstFrameTimeout, DefaultFirstFrameTimeout)
	setDefault(&c.WriteTimeout, DefaultWriteTimeout)
	setDefault(&c.BrokerTimeout, DefaultBrokerTimeout)
	setDefault(&c.BrokerOutageGrace, DefaultOutageGrace)
	setDefault(&c.RegistryInterval, DefaultRegistryInterval)
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return errors.Join(errs...)
}

func setDefault[T int | float64 | time.Duration](v *T, def T) {
	if *v == 0 {
		*v = def
	}
}

// defaultID derives an edge id from the host name, with a random suffix so
// that two edges on one host (or a restarted edge) never share an address.
func defaultID() string {
	host, _ := os.Hostname()
	host = strings.ToLower(host)
	var b strings.Builder
	for _, r := range host {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' {
			b.WriteRune(r)
		}
		if b.Len() >= 40 {
			break
		}
	}
	var suffix [4]byte
	_, _ = rand.Read(suffix[:])
	if b.Len() == 0 {
		b.WriteString("edge")
	}
	return strings.Trim(b.String(), "-") + "-" + hex.EncodeToString(suffix[:])
}
