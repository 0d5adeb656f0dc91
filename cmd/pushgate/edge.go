package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/pushgate/pushgate/edge"
	"github.com/pushgate/pushgate/relay"
)

// brokerFlags configure the relay pool of an edge or pushsvc.
type brokerFlags struct {
	url         string
	connections int
}

func (fs *flagSet) brokerFlags() *brokerFlags {
	b := &brokerFlags{}
	fs.StringVar(&b.url, "broker", "", "broker URLs, comma-separated: stomp://user:pass@host:61613/vhost (the nodes of a RabbitMQ cluster)")
	fs.IntVar(&b.connections, "broker-connections", relay.DefaultConnections, "broker connections of this process, whatever the number of sessions (1-8)")
	return b
}

func (b *brokerFlags) pool(name string, reg prometheus.Registerer, log *slog.Logger) (*relay.Pool, error) {
	return newPool(b.url, b.connections, name, reg, log)
}

func newPool(url string, connections int, name string, reg prometheus.Registerer, log *slog.Logger) (*relay.Pool, error) {
	if url == "" {
		return nil, errors.New("--broker is required (stomp://user:pass@host:61613/vhost)")
	}
	brokers, err := relay.ParseBrokers(url)
	if err != nil {
		return nil, fmt.Errorf("--broker: %w", err)
	}
	return relay.New(relay.Config{Brokers: brokers, Connections: connections, Name: name, Logger: log, Registerer: reg})
}

// edgeFlags are the flags of an edge, shared by `edge` and `dev`.
type edgeFlags struct {
	cfg       edge.Config
	secret    string
	publicKey string
	origins   *[]string
	publish   *[]string
}

func (fs *flagSet) edgeFlags() *edgeFlags {
	e := &edgeFlags{}
	c := &e.cfg
	fs.StringVar(&e.secret, "jwt-secret", "", "HS256 secret that signs client tokens")
	fs.StringVar(&e.publicKey, "jwt-public-key", "", "PEM file with the RS256 (RSA) or ES256 (P-256) public key that verifies client tokens")
	e.origins = fs.list("allowed-origins", nil, "origins allowed to open browser sessions, comma-separated (https://app.example.com, *.example.com, *); default: the edge's own host")
	e.publish = fs.list("client-publish", nil, "/topic/ destination patterns clients may SEND to, comma-separated (path.Match syntax: /topic/chat.*); default: none")
	fs.IntVar(&c.Limits.MaxFrameBytes, "max-frame-bytes", 64<<10, "largest STOMP frame a client may send")
	fs.IntVar(&c.Limits.MaxHeaders, "max-headers", 32, "most headers in a client frame")
	fs.IntVar(&c.Limits.MaxHeaderBytes, "max-header-bytes", 8<<10, "largest total size of a client frame's headers")
	fs.IntVar(&c.MaxSubscriptions, "max-subscriptions", edge.DefaultMaxSubscriptions, "subscriptions per session")
	fs.IntVar(&c.MaxQueueBytes, "max-queue-bytes", edge.DefaultMaxQueueBytes, "outbound bytes queued per session before the client is closed as slow")
	fs.Float64Var(&c.SendRate, "send-rate", edge.DefaultSendRate, "SEND frames per second per session")
	fs.IntVar(&c.SendBurst, "send-burst", edge.DefaultSendBurst, "SEND burst per session")
	fs.DurationVar(&c.HeartBeat, "heart-beat", edge.DefaultHeartBeat, "STOMP heart-beat the edge offers, both ways")
	fs.IntVar(&c.MaxSessions, "max-sessions", edge.DefaultMaxSessions, "open sessions per edge, all transports")
	fs.DurationVar(&c.FirstFrameTimeout, "first-frame-timeout", edge.DefaultFirstFrameTimeout, "time a connection may stay open without CONNECT")
	fs.DurationVar(&c.WriteTimeout, "write-timeout", edge.DefaultWriteTimeout, "longest write to a client before it is closed as slow")
	fs.DurationVar(&c.BrokerOutageGrace, "broker-outage-grace", edge.DefaultOutageGrace, "how long sessions stay open while the broker is unreachable")
	fs.DurationVar(&c.RegistryInterval, "registry-interval", edge.DefaultRegistryInterval, "how often the edge announces a snapshot of its users")
	fs.DurationVar(&c.SockJS.Heartbeat, "sockjs-heartbeat", 25*time.Second, "SockJS heartbeat period")
	fs.DurationVar(&c.SockJS.DisconnectDelay, "sockjs-disconnect-delay", 5*time.Second, "SockJS session lifetime without a receiving request")
	fs.IntVar(&c.SockJS.ResponseLimit, "sockjs-response-limit", 128<<10, "bytes a SockJS streaming response carries before it is closed")
	return e
}

// config completes the edge configuration from the flags.
func (e *edgeFlags) config(id string) (edge.Config, error) {
	c := e.cfg
	c.ID = id
	c.AllowedOrigins = *e.origins
	c.ClientPublish = *e.publish
	switch {
	case e.secret != "" && e.publicKey != "":
		return c, errors.New("give either --jwt-secret or --jwt-public-key, not both")
	case e.secret != "":
		c.Auth.HMACSecret = []byte(e.secret)
	case e.publicKey != "":
		pem, err := os.ReadFile(e.publicKey)
		if err != nil {
			return c, fmt.Errorf("--jwt-public-key: %w", err)
		}
		c.Auth.PublicKeyPEM = pem
	default:
		return c, errors.New("--jwt-secret or --jwt-public-key is required to verify client tokens")
	}
	return c, nil
}

func runEdge(ctx context.Context, args []string, stderr io.Writer) error {
	fs := newFlagSet("edge", "Runs one edge: browser sessions over STOMP/WebSocket (/stomp) and SockJS (/ws).")
	listen := fs.String("listen", ":8080", "address to serve on (host:port or :port)")
	id := fs.String("edge-id", "", "this edge's id (lowercase letters, digits, '-'); default: host name and a random suffix")
	shutdown := fs.Duration("shutdown-timeout", 10*time.Second, "how long draining may take on SIGTERM")
	bf := fs.brokerFlags()
	ef := fs.edgeFlags()
	lf := fs.logFlags()
	pprofAddr := fs.pprofFlag()
	fs.SetOutput(stderr)
	if err := fs.parse(args); err != nil {
		return err
	}
	log, err := lf.logger(stderr)
	if err != nil {
		return err
	}
	if err := startPprof(ctx, *pprofAddr, log); err != nil {
		return err
	}
	cfg, err := ef.config(*id)
	if err != nil {
		return err
	}
	reg := newRegistry()
	pool, err := bf.pool("edge", reg, log)
	if err != nil {
		return err
	}
	defer pool.Close()
	cfg.Logger, cfg.Registerer = log, reg
	srv, err := edge.New(cfg, pool, reg)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	log.Info("edge listening", "addr", ln.Addr().String(), "id", srv.ID())
	return srv.Serve(ctx, ln, *shutdown)
}

// newRegistry returns a Prometheus registry with the process collectors.
func newRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}
