package pushsvc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"

	pushgatev1 "github.com/pushgate/pushgate/gen/pushgate/v1"
)

// Defaults for zero Config fields.
const (
	// DefaultShutdownTimeout is how long ServeGRPC and ServeHTTP wait for
	// calls in flight after their context ends before closing connections.
	DefaultShutdownTimeout = 5 * time.Second
	// readyPollInterval is how often gRPC health follows Config.Ready.
	readyPollInterval = time.Second
	// testDestination is where GET /test sends its greeting.
	testDestination = "/topic/greetings"
)

// Config configures a Server. The zero value of a field means its default.
type Config struct {
	// APIToken is the bearer token required for PushService (gRPC metadata
	// "authorization: Bearer X"), the REST API and /test. "" is allowed only
	// when InsecureNoAPIToken is set or in dev mode (DevTokens non-nil).
	APIToken string
	// InsecureNoAPIToken allows an empty APIToken outside dev mode.
	InsecureNoAPIToken bool
	// MaxPayloadBytes bounds the encoded body of one push (text, serialized
	// json, or data). Default DefaultMaxPayloadBytes (56 KiB): the edge's
	// 64 KiB frame limit minus room for headers.
	MaxPayloadBytes int
	// DevTokens, non-nil only in `pushgate dev`, serves
	// GET /dev/token?user=NAME → {"token":"..."} without the API token. It
	// also marks dev mode, where APIToken may be empty. It is called from
	// concurrent requests.
	DevTokens func(user string) (string, error)
	// Ready reports whether pushes can be delivered (the broker is
	// connected), for /readyz and gRPC health; it is called concurrently
	// and often (every second, and per /readyz request), so it must be
	// cheap. nil means always ready.
	Ready func() bool
	// Logger receives pushsvc's logs; nil discards them.
	Logger *slog.Logger
	// Registerer receives pushsvc's metrics. nil means a new registry of
	// the Server's own, with Go and process collectors, served at /metrics
	// unless Gatherer is set.
	Registerer prometheus.Registerer
	// Gatherer is served at /metrics. nil means Registerer if it is a
	// Gatherer (as *prometheus.Registry is), else prometheus.DefaultGatherer.
	Gatherer prometheus.Gatherer
	// ShutdownTimeout bounds graceful shutdown. Default
	// DefaultShutdownTimeout.
	ShutdownTimeout time.Duration
	// AllowedOrigins, when not empty, enables CORS for the REST API and
	// /test: browser pages of these origins ("https://app.example.com",
	// or "*" for any) may call them. Empty (the default) sends no CORS
	// headers, which suits same-origin use through the gateway.
	AllowedOrigins []string
}

// Server serves the push API over gRPC and HTTP on listeners the caller
// owns. One Server may serve both at once.
type Server struct {
	cfg       Config
	svc       *pushService
	tokens    tokenChecker
	gatherer  prometheus.Gatherer
	log       *slog.Logger
	readyPoll time.Duration
}

// NewServer returns a Server that validates pushes and delivers them with r.
// It fails when no API token is configured and neither InsecureNoAPIToken
// nor dev mode allows that.
func NewServer(cfg Config, r Router) (*Server, error) {
	if r == nil {
		return nil, errors.New("pushsvc: nil Router")
	}
	if cfg.APIToken == "" && !cfg.InsecureNoAPIToken && cfg.DevTokens == nil {
		return nil, errors.New("pushsvc: an API token is required (--api-token), or --insecure-no-api-token to run without one")
	}
	if cfg.MaxPayloadBytes < 0 {
		return nil, fmt.Errorf("pushsvc: MaxPayloadBytes %d must not be negative", cfg.MaxPayloadBytes)
	}
	cfg.AllowedOrigins = slices.Clone(cfg.AllowedOrigins)
	if cfg.MaxPayloadBytes == 0 {
		cfg.MaxPayloadBytes = DefaultMaxPayloadBytes
	}
	if cfg.ShutdownTimeout <= 0 {
		cfg.ShutdownTimeout = DefaultShutdownTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Registerer == nil {
		reg := prometheus.NewRegistry()
		reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
		cfg.Registerer = reg
		if cfg.Gatherer == nil {
			cfg.Gatherer = reg
		}
	}
	gatherer := cfg.Gatherer
	if gatherer == nil {
		if g, ok := cfg.Registerer.(prometheus.Gatherer); ok {
			gatherer = g
		} else {
			gatherer = prometheus.DefaultGatherer
		}
	}
	m, err := newPushMetrics(cfg.Registerer)
	if err != nil {
		return nil, fmt.Errorf("pushsvc: register metrics: %w", err)
	}
	return &Server{
		cfg:       cfg,
		svc:       &pushService{router: r, maxPayload: cfg.MaxPayloadBytes, log: cfg.Logger, metrics: m},
		tokens:    newTokenChecker(cfg.APIToken),
		gatherer:  gatherer,
		log:       cfg.Logger,
		readyPoll: readyPollInterval,
	}, nil
}

// ready reports Config.Ready, true when it is nil.
func (s *Server) ready() bool { return s.cfg.Ready == nil || s.cfg.Ready() }

// grpcStreamWorkers is the number of goroutines that serve gRPC calls and
// stay alive in between; calls block while the broker confirms, so it
// covers the concurrency of a busy caller.
const grpcStreamWorkers = 256

// ServeGRPC serves PushService, gRPC health (SERVING while Ready) and
// reflection on ln until ctx ends, then stops gracefully (calls in flight
// get up to ShutdownTimeout). It closes ln. A clean shutdown returns nil.
func (s *Server) ServeGRPC(ctx context.Context, ln net.Listener) error {
	// Oversized payloads must reach validation, which answers
	// INVALID_ARGUMENT with the limit, rather than be cut off by gRPC's
	// RESOURCE_EXHAUSTED; so allow a generous multiple of the limit.
	maxRecv := max(4<<20, 2*s.cfg.MaxPayloadBytes+MaxHeadersBytes+64<<10)
	gs := grpc.NewServer(
		grpc.MaxRecvMsgSize(maxRecv),
		grpc.ChainUnaryInterceptor(s.tokens.unaryInterceptor),
		grpc.ChainStreamInterceptor(s.tokens.streamInterceptor),
		// Without workers, gRPC starts a goroutine per call, whose stack
		// then grows (copied, twice) on the way into the handler: an eighth
		// of pushsvc's CPU at 10k pushes/s. Workers keep their grown stacks;
		// calls beyond them still get a goroutine each.
		grpc.NumStreamWorkers(grpcStreamWorkers),
	)
	pushgatev1.RegisterPushServiceServer(gs, s.svc)
	hs := health.NewServer()
	healthpb.RegisterHealthServer(gs, hs)
	reflection.Register(gs)

	pollDone := make(chan struct{})
	pollCtx, stopPoll := context.WithCancel(ctx)
	defer stopPoll()
	go func() {
		defer close(pollDone)
		s.followReady(pollCtx, hs)
	}()

	errc := make(chan error, 1)
	go func() { errc <- gs.Serve(ln) }()
	var err error
	select {
	case err = <-errc:
		// Serve failed on its own (the listener broke): stop everything.
		gs.Stop()
		err = fmt.Errorf("pushsvc: serve gRPC: %w", err)
	case <-ctx.Done():
		// Health first, so that load balancers stop sending new calls.
		hs.Shutdown()
		s.stopGRPC(gs)
		if serr := <-errc; serr != nil && !errors.Is(serr, grpc.ErrServerStopped) {
			err = fmt.Errorf("pushsvc: serve gRPC: %w", serr)
		}
	}
	stopPoll()
	<-pollDone
	return err
}

// stopGRPC stops gs gracefully, forcibly after ShutdownTimeout: health Watch
// streams would otherwise keep GracefulStop waiting forever.
func (s *Server) stopGRPC(gs *grpc.Server) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		gs.GracefulStop()
	}()
	t := time.NewTimer(s.cfg.ShutdownTimeout)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		gs.Stop()
		<-done
	}
}

// followReady keeps the gRPC health status (overall and PushService) in
// step with Config.Ready until ctx ends.
func (s *Server) followReady(ctx context.Context, hs *health.Server) {
	last := healthpb.HealthCheckResponse_UNKNOWN
	update := func() {
		st := healthpb.HealthCheckResponse_NOT_SERVING
		if s.ready() {
			st = healthpb.HealthCheckResponse_SERVING
		}
		if st != last {
			hs.SetServingStatus("", st)
			hs.SetServingStatus(pushgatev1.PushService_ServiceDesc.ServiceName, st)
			last = st
		}
	}
	update()
	t := time.NewTicker(s.readyPoll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			update()
		}
	}
}

// ServeHTTP serves the REST API (grpc-gateway, in-process), GET /test,
// GET /dev/token (dev mode only), /healthz, /readyz and /metrics on ln until
// ctx ends, then shuts down gracefully within ShutdownTimeout. It closes ln.
// A clean shutdown returns nil.
func (s *Server) ServeHTTP(ctx context.Context, ln net.Listener) error {
	h, err := s.Handler(ctx)
	if err != nil {
		return err
	}
	hs := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("pushsvc: serve HTTP: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.ShutdownTimeout)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		// Calls still running after the timeout: cut them off.
		_ = hs.Close()
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("pushsvc: serve HTTP: %w", err)
	}
	return nil
}

// Handler returns the HTTP handler ServeHTTP serves, for callers that run
// their own http.Server. ctx scopes the grpc-gateway registration.
func (s *Server) Handler(ctx context.Context) (http.Handler, error) {
	gw := s.newGatewayMux()
	if err := pushgatev1.RegisterPushServiceHandlerServer(ctx, gw, restService{s.svc}); err != nil {
		return nil, fmt.Errorf("pushsvc: register REST handlers: %w", err)
	}
	api := s.withCORS(s.tokens.requireToken(gw, withRESTUser(gw, gw)))

	mux := http.NewServeMux()
	mux.Handle("/test", s.withCORS(s.tokens.requireToken(gw, s.handleTest(gw))))
	if s.cfg.DevTokens != nil {
		mux.Handle("GET /dev/token", s.handleDevToken(gw))
	}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeText(w, http.StatusOK, "ok\n")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !s.ready() {
			writeText(w, http.StatusServiceUnavailable, "not ready: broker not connected\n")
			return
		}
		writeText(w, http.StatusOK, "ready\n")
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.gatherer, promhttp.HandlerOpts{}))

	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// /v1/... goes to grpc-gateway exactly as sent: http.ServeMux would
		// answer an API call with "." or ".." segments with a redirect.
		if strings.HasPrefix(r.URL.Path, "/v1/") {
			// Bound what the JSON decoder reads; the payload limit proper
			// is checked after decoding. JSON escapes can make a body up
			// to six times its payload ("\u0000"), base64 4/3 times.
			r.Body = http.MaxBytesReader(w, r.Body, int64(6*s.cfg.MaxPayloadBytes+64<<10))
			api.ServeHTTP(w, r)
			return
		}
		mux.ServeHTTP(w, r)
	}), nil
}
