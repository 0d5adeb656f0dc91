package edge

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-stomp/stomp/v3/frame"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/pushgate/pushgate/relay"
)

// Broker is what the edge needs of the broker side; *relay.Pool provides it.
type Broker interface {
	// Subscribe registers h for a broker destination (reference-counted).
	Subscribe(dest string, h relay.Handler) *relay.Subscription
	// SubscribeQueue subscribes through a durable named queue that keeps
	// messages while the subscription moves to another connection.
	SubscribeQueue(dest, queue string, expires time.Duration, h relay.Handler) *relay.Subscription
	// Send publishes a message and waits for the broker's confirmation.
	Send(ctx context.Context, m *relay.Message) error
	// Ready reports whether a broker connection is up.
	Ready() bool
	// NextConnect is closed when a broker connection next comes up.
	NextConnect() <-chan struct{}
}

var _ Broker = (*relay.Pool)(nil)

// appHandler handles a client's SEND to an /app/ destination.
type appHandler func(ctx context.Context, s *session, f *Frame) error

// Server is one edge: it accepts browser sessions on /stomp (STOMP over
// WebSocket) and /ws (SockJS), authenticates them, and connects their
// subscriptions to the broker through a shared pool.
type Server struct {
	cfg     Config
	broker  Broker
	auth    *Authenticator
	log     *slog.Logger
	metrics *metrics
	gather  prometheus.Gatherer

	hub    *hub
	ann    *announcer
	apps   map[string]appHandler
	mux    *http.ServeMux
	msgSeq atomic.Uint64

	own []*relay.Subscription // the edge's address and the all-edges topic

	sessions atomic.Int64 // open sessions, all transports (MaxSessions)
	draining atomic.Bool
	cancel   context.CancelFunc
	wg       sync.WaitGroup
}

// New creates an edge that uses b for the broker and starts its background
// work (registry announcements, broker outage watch). The broker may be
// down: the edge reports not ready until it is up.
func New(cfg Config, b Broker, gatherer prometheus.Gatherer) (*Server, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	auth, err := NewAuthenticator(cfg.Auth)
	if err != nil {
		return nil, err
	}
	s := &Server{
		cfg:    cfg,
		broker: b,
		auth:   auth,
		log:    cfg.Logger.With("edge", cfg.ID),
		gather: gatherer,
	}
	s.metrics = newMetrics(s)
	if cfg.Registerer != nil {
		if err := s.metrics.register(cfg.Registerer); err != nil {
			return nil, err
		}
	}
	s.ann = newAnnouncer(&s.cfg, b)
	s.hub = newHub(s.ann)
	s.ann.counts = s.hub.count
	s.ann.all = s.hub.counts
	s.apps = map[string]appHandler{"/app/hello": s.hello}

	sockjs, err := newSockJSHandler(s.sockJSConfig(), s.serveSockJS)
	if err != nil {
		return nil, err
	}
	s.mux = http.NewServeMux()
	s.mux.HandleFunc("/stomp", s.serveWebSocket)
	s.mux.Handle("/ws/", s.admit(sockjs))
	s.mux.Handle("/ws", s.admit(sockjs))
	s.mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "ok") })
	s.mux.HandleFunc("/readyz", s.serveReady)
	if gatherer != nil {
		s.mux.Handle("/metrics", promhttp.HandlerFor(gatherer, promhttp.HandlerOpts{}))
	}

	// The edge's own address receives user messages resolved to it; the
	// all-edges topic those pushsvc could not resolve yet and /app/ replies.
	s.own = []*relay.Subscription{
		b.SubscribeQueue(relay.EdgeDestination(cfg.ID), "pushgate.edge."+cfg.ID, relay.QueueExpiry, s.deliverToUser),
		b.SubscribeQueue(relay.AllEdgesDestination, "pushgate.edges."+cfg.ID, relay.QueueExpiry, s.deliverToUser),
	}
	s.ann.live = func() bool {
		for _, sub := range s.own {
			if !sub.Live() {
				return false
			}
		}
		return true
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	s.goBackground(func() { s.ann.run(ctx) })
	s.goBackground(func() { s.watchBroker(ctx) })
	return s, nil
}

// ID returns the edge's id.
func (s *Server) ID() string { return s.cfg.ID }

func (s *Server) goBackground(fn func()) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		fn()
	}()
}

// ServeHTTP serves the edge's endpoints: /stomp, /ws, /healthz, /readyz and
// /metrics.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// Ready reports whether the edge can take sessions: the broker is up, the
// edge's own subscriptions are live, and it is not draining.
func (s *Server) Ready() error {
	switch {
	case s.draining.Load():
		return errors.New("draining")
	case !s.broker.Ready():
		return errors.New("broker unavailable")
	}
	for _, sub := range s.own {
		if !sub.Live() {
			return errors.New("edge subscriptions not confirmed by the broker yet")
		}
	}
	return nil
}

func (s *Server) serveReady(w http.ResponseWriter, r *http.Request) {
	if err := s.Ready(); err != nil {
		http.Error(w, "not ready: "+err.Error(), http.StatusServiceUnavailable)
		return
	}
	fmt.Fprintln(w, "ready")
}

// handshake checks what every transport checks before a session starts:
// the edge is not draining, the Origin is allowed, a token given in the
// handshake is valid, and the session limit has room. On success the
// caller owns one session slot and must release it.
func (s *Server) handshake(w http.ResponseWriter, r *http.Request) (*Identity, bool) {
	if s.refuseWhileDraining(w) {
		return nil, false
	}
	if !originAllowed(r, s.cfg.AllowedOrigins) {
		s.metrics.refusedHandshakes.WithLabelValues("origin").Inc()
		http.Error(w, "origin not allowed", http.StatusForbidden)
		return nil, false
	}
	ident, ok := s.checkToken(w, r)
	if !ok {
		return nil, false
	}
	if !s.takeSession() {
		s.metrics.refusedHandshakes.WithLabelValues("max_sessions").Inc()
		http.Error(w, "too many sessions on this edge", http.StatusServiceUnavailable)
		return nil, false
	}
	return ident, true
}

// refuseWhileDraining answers 503 and reports true once the edge drains.
func (s *Server) refuseWhileDraining(w http.ResponseWriter) bool {
	if !s.draining.Load() {
		return false
	}
	http.Error(w, "edge is shutting down", http.StatusServiceUnavailable)
	return true
}

// requestIdentity verifies the token a handshake request carries (the
// access_token parameter or Authorization header); nil without one.
func (s *Server) requestIdentity(r *http.Request) (*Identity, error) {
	token := TokenFromRequest(r)
	if token == "" {
		return nil, nil
	}
	id, err := s.auth.Verify(token)
	if err != nil {
		s.metrics.authFailures.Inc()
		return nil, err
	}
	return &id, nil
}

// checkToken answers 401 for a request whose token is invalid; a request
// without one passes (its token may come in CONNECT).
func (s *Server) checkToken(w http.ResponseWriter, r *http.Request) (*Identity, bool) {
	ident, err := s.requestIdentity(r)
	if err != nil {
		s.metrics.refusedHandshakes.WithLabelValues("token").Inc()
		http.Error(w, "invalid token: "+err.Error(), http.StatusUnauthorized)
		return nil, false
	}
	return ident, true
}

// takeSession takes one of MaxSessions slots; serveSession gives it back.
func (s *Server) takeSession() bool {
	if s.sessions.Add(1) > int64(s.cfg.MaxSessions) {
		s.sessions.Add(-1)
		return false
	}
	return true
}

// serveSession runs a session on t until it ends. read returns the next
// client message; the calling goroutine is the session's only reader.
func (s *Server) serveSession(t Transport, ident *Identity, read func() ([]byte, error)) {
	defer s.sessions.Add(-1)
	sess := s.newSession(t, newSessionID(), ident)
	s.hub.track(sess)
	s.metrics.sessions.WithLabelValues(t.Name()).Inc()
	defer s.metrics.sessions.WithLabelValues(t.Name()).Dec()
	if s.draining.Load() {
		// Shutdown may have listed the sessions before this one was tracked.
		sess.close(reasonShutdown)
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		sess.writeLoop()
	}()
	for {
		p, err := read()
		if err != nil {
			sess.close(reasonClientGone)
			break
		}
		if !sess.handleMessage(p) {
			break
		}
	}
	<-sess.writerDone
	sess.cleanup()
}

func newSessionID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// deliverToUser hands a user message from the broker to the sessions of its
// user on this edge. Messages for users the edge does not hold (an
// all-edges message, or a registry that lagged) are dropped here.
func (s *Server) deliverToUser(m *relay.Message) {
	if m.Header == nil {
		return
	}
	user, err := relay.DecodeUser(m.Header.Get(relay.HeaderUser))
	dest := m.Header.Get(relay.HeaderUserDestination)
	if err != nil || dest == "" {
		s.log.Warn("dropping malformed user message", "err", err)
		return
	}
	if skip := m.Header.Get(relay.HeaderSkipEdges); skip != "" && slices.Contains(strings.Split(skip, ","), s.cfg.ID) {
		return // this edge got the message at its own address
	}
	s.hub.forUser(user, func(sess *session) { sess.deliverUser(dest, m) })
}

// hello is the built-in /app/hello handler: like Spring's
// @MessageMapping("/hello") @SendToUser("/topic/greetings"), it answers
// "hello" on /user/topic/greetings of every session of the sender, on
// every edge. The edge has no registry of its own, so the reply goes to all
// edges and each delivers it to the sessions it holds.
func (s *Server) hello(ctx context.Context, sess *session, f *Frame) error {
	h := frame.NewHeader(
		relay.HeaderUser, relay.EncodeUser(sess.user),
		relay.HeaderUserDestination, "/topic/greetings",
		relay.HeaderOrigin, s.cfg.ID,
	)
	return s.broker.Send(ctx, &relay.Message{
		Destination: relay.AllEdgesDestination,
		ContentType: "text/plain;charset=UTF-8",
		Header:      h,
		Body:        []byte("hello"),
	})
}

// watchBroker closes every session once the broker has been unreachable
// for longer than BrokerOutageGrace. Shorter outages pass unnoticed by
// clients: the relay restores their subscriptions when it reconnects.
func (s *Server) watchBroker(ctx context.Context) {
	tick := time.NewTicker(min(time.Second, s.cfg.BrokerOutageGrace/4))
	defer tick.Stop()
	var downSince time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			if s.broker.Ready() {
				downSince = time.Time{}
				continue
			}
			if downSince.IsZero() {
				downSince = now
				continue
			}
			if now.Sub(downSince) < s.cfg.BrokerOutageGrace {
				continue
			}
			r := reasonBrokerOutage(fmt.Sprintf("broker unavailable for more than %v", s.cfg.BrokerOutageGrace))
			for _, sess := range s.hub.sessions() {
				if sess.state.Load() == stateConnected {
					sess.close(r)
				}
			}
		}
	}
}

// Shutdown drains the edge: it reports not ready, refuses new sessions,
// tells every client to go (an ERROR, then close code 3000 on SockJS),
// waits for their sessions to end or ctx to expire, tells pushsvc it holds
// no one, and releases its broker subscriptions. It does not close the
// broker pool, which the caller owns.
func (s *Server) Shutdown(ctx context.Context) error {
	if !s.draining.CompareAndSwap(false, true) {
		return nil
	}
	for _, sess := range s.hub.sessions() {
		sess.close(reasonShutdown)
	}
	var err error
	for s.sessions.Load() > 0 {
		if ctx.Err() != nil {
			err = fmt.Errorf("edge shutdown: %d sessions still open: %w", s.sessions.Load(), ctx.Err())
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	byeCtx, cancel := context.WithTimeout(context.Background(), s.cfg.BrokerTimeout)
	if s.broker.Ready() {
		if e := s.ann.bye(byeCtx); e != nil {
			s.log.Warn("could not announce shutdown to the registry", "err", e)
		}
	}
	cancel()
	s.cancel()
	for _, sub := range s.own {
		sub.Unsubscribe()
	}
	s.wg.Wait()
	return err
}

// Serve serves the edge on ln until ctx ends, then stops accepting
// connections and drains it (Shutdown) within shutdownTimeout.
func (s *Server) Serve(ctx context.Context, ln net.Listener, shutdownTimeout time.Duration) error {
	hs := &http.Server{
		Handler:           s,
		ReadHeaderTimeout: 10 * time.Second,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	nl := &notifyListener{Listener: ln, closed: make(chan struct{})}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(nl) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	// Stop accepting before telling clients to go: a client that
	// reconnects at once must not reach this edge again. A gateway's dial
	// then fails, which makes it pick another edge; a 503 from a draining
	// edge would be passed on to the client.
	hsDone := make(chan error, 1)
	go func() { hsDone <- hs.Shutdown(sctx) }()
	select {
	case <-nl.closed:
	case <-sctx.Done():
	}
	err := s.Shutdown(sctx)
	if e := <-hsDone; e != nil && err == nil {
		err = e
	}
	if e := <-errc; e != nil && !errors.Is(e, http.ErrServerClosed) && err == nil {
		err = e
	}
	return err
}

// notifyListener tells when http.Server.Shutdown has closed it.
type notifyListener struct {
	net.Listener
	once   sync.Once
	closed chan struct{}
}

func (l *notifyListener) Close() error {
	err := l.Listener.Close()
	l.once.Do(func() { close(l.closed) })
	return err
}
