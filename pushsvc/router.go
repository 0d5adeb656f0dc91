package pushsvc

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-stomp/stomp/v3/frame"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/pushgate/pushgate/relay"
)

// Broker is what the Router needs of the broker side; *relay.Pool has it.
type Broker interface {
	SubscribeQueue(dest, queue string, expires time.Duration, h relay.Handler) *relay.Subscription
	Send(ctx context.Context, m *relay.Message) error
	SendAsync(ctx context.Context, m *relay.Message) <-chan error
	Ready() bool
	NextConnect() <-chan struct{}
	Outages() uint64
}

var _ Broker = (*relay.Pool)(nil)

// RouterConfig configures a BrokerRouter.
type RouterConfig struct {
	// Settle is how long the registry is considered incomplete after start
	// and after a broker reconnect: long enough to hear a snapshot from
	// every edge. Default: the edges' default snapshot interval plus 2s.
	Settle time.Duration
	// Timeout bounds a marker round trip and each broker confirmation when
	// the caller's context has no earlier deadline (default 5s).
	Timeout time.Duration
	Logger  *slog.Logger
	// Registerer receives the router's metrics when set.
	Registerer prometheus.Registerer
}

// BrokerRouter delivers pushes through the broker. It keeps the user
// registry the edges announce, sends a user's message only to the edges
// that hold the user, and orders registry changes before the pushes it
// resolves (see sync), so that a session whose SUBSCRIBE was receipted
// before a push was accepted always gets that push.
type BrokerRouter struct {
	broker  Broker
	reg     *registry
	cfg     RouterConfig
	log     *slog.Logger
	id      string
	sub     *relay.Subscription
	metrics *routerMetrics

	mu      sync.Mutex
	waiting []chan error             // pushes waiting for the next marker
	markers map[string]chan struct{} // markers in flight
	kick    chan struct{}

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

var _ Router = (*BrokerRouter)(nil)

// NewRouter subscribes to the registry and starts the router's background
// work. The broker may be down; pushes then fail with relay.ErrUnavailable.
func NewRouter(cfg RouterConfig, b Broker) (*BrokerRouter, error) {
	if cfg.Settle == 0 {
		cfg.Settle = defaultEdgeInterval + 2*time.Second
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 5 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	var id [6]byte
	_, _ = rand.Read(id[:])
	r := &BrokerRouter{
		broker:  b,
		reg:     newRegistry(cfg.Settle, time.Now()),
		cfg:     cfg,
		log:     cfg.Logger,
		id:      "pushsvc-" + hex.EncodeToString(id[:]),
		markers: make(map[string]chan struct{}),
		kick:    make(chan struct{}, 1),
	}
	r.metrics = newRouterMetrics(r)
	if cfg.Registerer != nil {
		if err := r.metrics.register(cfg.Registerer); err != nil {
			return nil, err
		}
	}
	// A durable named queue: registry changes sent while the subscription
	// moves to another broker connection wait there instead of being lost.
	r.sub = b.SubscribeQueue(relay.RegistryDestination, "pushgate.registry."+r.id, relay.QueueExpiry, r.onRegistry)
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	r.goBackground(func() { r.markerLoop(ctx) })
	r.goBackground(func() { r.maintain(ctx) })
	return r, nil
}

func (r *BrokerRouter) goBackground(fn func()) {
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		fn()
	}()
}

// Close stops the router's background work and its registry subscription.
func (r *BrokerRouter) Close() {
	r.cancel()
	r.wg.Wait()
	r.sub.Unsubscribe()
}

// Ready reports whether the router can take pushes: the broker is up and
// the registry subscription is live.
func (r *BrokerRouter) Ready() bool { return r.broker.Ready() && r.sub.Live() }

// onRegistry handles a registry message. It runs on a broker connection's
// read goroutine and only touches memory.
func (r *BrokerRouter) onRegistry(m *relay.Message) {
	var ev relay.RegistryEvent
	if err := json.Unmarshal(m.Body, &ev); err != nil {
		r.log.Warn("ignoring malformed registry message", "err", err)
		return
	}
	if ev.Kind == relay.RegistryMarker {
		r.mu.Lock()
		ch := r.markers[ev.Marker]
		delete(r.markers, ev.Marker)
		r.mu.Unlock()
		if ch != nil {
			close(ch)
		}
		return
	}
	r.reg.apply(&ev, time.Now())
}

// maintain forgets silent edges, and distrusts the registry after every
// return from a broker outage, when announcements may have been lost.
func (r *BrokerRouter) maintain(ctx context.Context) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	// Fetched once and again only after it fires, so a reconnect that
	// happens while a tick is handled is not missed.
	reconnected := r.broker.NextConnect()
	// Only a return from an outage counts: a connection coming up beside
	// others (the second of the pool at start) lost nothing, and treating it
	// as a return would refuse pushes to edges heard a moment before.
	outages := r.broker.Outages()
	for {
		select {
		case <-ctx.Done():
			return
		case <-reconnected:
			reconnected = r.broker.NextConnect()
			if o := r.broker.Outages(); o != outages {
				outages = o
				r.reg.markIncomplete(time.Now())
			}
		case now := <-tick.C:
			if !r.broker.Ready() {
				// Cut off from the broker, pushsvc hears no edge: their
				// silence says nothing (pushes are refused meanwhile).
				continue
			}
			for _, e := range r.reg.expire(now) {
				r.log.Info("forgot silent edge", "edge", e)
			}
		}
	}
}

// sync returns once every registry change the broker accepted before the
// call has been applied. It sends a marker through the registry
// destination and waits to receive it back: the broker delivers the
// registry queue in order, so everything before the marker has arrived.
// Pushes that arrive while a marker is in flight share the next one.
func (r *BrokerRouter) sync(ctx context.Context) error {
	ch := make(chan error, 1)
	r.mu.Lock()
	r.waiting = append(r.waiting, ch)
	r.mu.Unlock()
	select {
	case r.kick <- struct{}{}:
	default:
	}
	select {
	case err := <-ch:
		return err
	case <-ctx.Done():
		return fmt.Errorf("%w: waiting for the user registry: %w", relay.ErrUnavailable, ctx.Err())
	}
}

func (r *BrokerRouter) markerLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			r.mu.Lock()
			batch := r.waiting
			r.waiting = nil
			r.mu.Unlock()
			for _, ch := range batch {
				ch <- fmt.Errorf("%w: router closed", relay.ErrUnavailable)
			}
			return
		case <-r.kick:
		}
		for {
			r.mu.Lock()
			batch := r.waiting
			r.waiting = nil
			r.mu.Unlock()
			if len(batch) == 0 {
				break
			}
			err := r.roundTrip(ctx)
			r.metrics.markers.Inc()
			for _, ch := range batch {
				ch <- err
			}
		}
	}
}

// roundTrip sends one marker and waits for it to come back.
func (r *BrokerRouter) roundTrip(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, r.cfg.Timeout)
	defer cancel()
	var b [8]byte
	_, _ = rand.Read(b[:])
	id := r.id + "-" + hex.EncodeToString(b[:])
	back := make(chan struct{})
	r.mu.Lock()
	r.markers[id] = back
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		delete(r.markers, id)
		r.mu.Unlock()
	}()
	body, _ := json.Marshal(&relay.RegistryEvent{Kind: relay.RegistryMarker, Marker: id})
	if err := r.broker.Send(ctx, &relay.Message{Destination: relay.RegistryDestination, ContentType: "application/json", Body: body}); err != nil {
		return err
	}
	select {
	case <-back:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("%w: user registry marker did not come back: %w", relay.ErrUnavailable, ctx.Err())
	}
}

// SendToUser delivers m to every session of user subscribed to
// "/user"+m.Destination, on whichever edges hold them. A user that no edge
// holds costs nothing and is not an error.
//
// The edges that hold the user when the call starts get the message at
// once, while the ordering marker (sync) is under way: a session those
// edges hold is in their hub before the broker confirmed its announcement,
// so it gets the message whichever arrives first. After the marker, edges
// that announced the user meanwhile get it too. The caller thus waits for
// the slower of the two round trips instead of their sum.
func (r *BrokerRouter) SendToUser(ctx context.Context, user string, m Message) error {
	if !r.broker.Ready() {
		return fmt.Errorf("%w: no broker connection", relay.ErrUnavailable)
	}
	ctx, cancel := r.bounded(ctx)
	defer cancel()
	var (
		sent    []string // edges already sent to
		pending []<-chan error
	)
	now := time.Now()
	if r.reg.unconfirmed(user, now) == "" {
		if edges, complete := r.reg.lookup(user, now); complete {
			for _, e := range edges {
				pending = append(pending, r.sendAsync(ctx, relay.EdgeDestination(e), user, m, nil))
			}
			sent = edges
		}
	}
	if testHookAfterEarlySends != nil {
		testHookAfterEarlySends()
	}
	err := r.sync(ctx)
	if err == nil {
		var more []<-chan error
		more, err = r.sendAfterSync(ctx, user, m, sent)
		pending = append(pending, more...)
	}
	errs := []error{err}
	for _, ch := range pending {
		errs = append(errs, <-ch) // each channel answers, at the latest when ctx ends
	}
	return errors.Join(errs...)
}

// testHookAfterEarlySends, when set by a test, runs between the early sends
// of SendToUser and its marker, where the registry may change.
var testHookAfterEarlySends func()

// sendAfterSync sends m to the edges the registry names for user now that
// it is in order, except those already sent to.
func (r *BrokerRouter) sendAfterSync(ctx context.Context, user string, m Message, sent []string) ([]<-chan error, error) {
	now := time.Now()
	if e := r.reg.unconfirmed(user, now); e != "" {
		// Sending now could be confirmed by the broker and lost.
		return nil, fmt.Errorf("%w: edge %s has not announced itself since the broker connection came back", relay.ErrUnavailable, e)
	}
	edges, complete := r.reg.lookup(user, now)
	if !complete {
		// Spring's "unresolved user destination" broadcast, only while the
		// registry may miss edges: every edge checks locally, and those
		// sent to already skip it.
		r.metrics.userSends.WithLabelValues("all_edges").Inc()
		return []<-chan error{r.sendAsync(ctx, relay.AllEdgesDestination, user, m, sent)}, nil
	}
	if len(edges) == 0 && len(sent) == 0 {
		r.metrics.userSends.WithLabelValues("offline").Inc()
		return nil, nil
	}
	r.metrics.userSends.WithLabelValues("resolved").Inc()
	var pending []<-chan error
	for _, e := range edges {
		if !slices.Contains(sent, e) {
			pending = append(pending, r.sendAsync(ctx, relay.EdgeDestination(e), user, m, nil))
		}
	}
	return pending, nil
}

// Broadcast delivers m to every session subscribed to m.Destination.
func (r *BrokerRouter) Broadcast(ctx context.Context, m Message) error {
	ctx, cancel := r.bounded(ctx)
	defer cancel()
	return <-r.sendAsync(ctx, relay.TopicDestination(m.Destination), "", m, nil)
}

// bounded gives ctx the router's Timeout unless it has an earlier deadline,
// so that every send's channel answers in time.
func (r *BrokerRouter) bounded(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, r.cfg.Timeout)
}

// sendAsync publishes m to the broker destination dest, for user when not
// empty; edges listed in skip ignore it. ctx must have a deadline: the
// channel answers by then.
func (r *BrokerRouter) sendAsync(ctx context.Context, dest, user string, m Message, skip []string) <-chan error {
	h := frame.NewHeader(relay.HeaderMessageID, m.ID, relay.HeaderOrigin, r.id)
	if user != "" {
		h.Add(relay.HeaderUser, relay.EncodeUser(user))
		h.Add(relay.HeaderUserDestination, m.Destination)
	}
	if len(skip) > 0 {
		h.Add(relay.HeaderSkipEdges, strings.Join(skip, ","))
	}
	for k, v := range m.Headers {
		h.Add(k, v)
	}
	return r.broker.SendAsync(ctx, &relay.Message{Destination: dest, ContentType: m.ContentType, Header: h, Body: m.Body})
}

type routerMetrics struct {
	userSends *prometheus.CounterVec
	markers   prometheus.Counter
	edges     prometheus.GaugeFunc
	users     prometheus.GaugeFunc
}

func newRouterMetrics(r *BrokerRouter) *routerMetrics {
	return &routerMetrics{
		userSends: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pushgate_pushsvc_user_sends_total",
			Help: "SendToUser resolutions: resolved (to the edges holding the user), offline (no edge), all_edges (registry incomplete).",
		}, []string{"resolution"}),
		markers: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "pushgate_pushsvc_registry_markers_total",
			Help: "Registry ordering markers sent (each shared by the pushes that waited for it).",
		}),
		edges: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "pushgate_registry_edges", Help: "Edges known to the user registry.",
		}, func() float64 { e, _ := r.reg.stats(); return float64(e) }),
		users: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "pushgate_registry_users", Help: "Users known to the user registry (online on some edge).",
		}, func() float64 { _, u := r.reg.stats(); return float64(u) }),
	}
}

func (m *routerMetrics) register(reg prometheus.Registerer) error {
	for _, c := range []prometheus.Collector{m.userSends, m.markers, m.edges, m.users} {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}
