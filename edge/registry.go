package edge

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/pushgate/pushgate/relay"
)

// announcer tells pushsvc which users this edge holds, over the broker
// (relay.RegistryDestination): deltas as sessions come and go, and a full
// snapshot every RegistryInterval and after every broker reconnect. One
// goroutine sends them one at a time, in order, so counts never go
// backwards; changes that arrive while a send is in flight share the next
// one, so a connect storm costs the broker a few messages, not one per user.
type announcer struct {
	edgeID   string
	interval time.Duration
	timeout  time.Duration
	broker   Broker
	counts   func(user string) int
	all      func() map[string]int
	// live reports whether the edge's own broker subscriptions are live;
	// the snapshot after a reconnect waits for it (nil: no wait).
	live func() bool

	mu      sync.Mutex
	dirty   map[string]struct{}
	waiters []chan error
	kick    chan struct{}
	seq     uint64
}

func newAnnouncer(cfg *Config, b Broker) *announcer {
	return &announcer{
		edgeID:   cfg.ID,
		interval: cfg.RegistryInterval,
		timeout:  cfg.BrokerTimeout,
		broker:   b,
		dirty:    make(map[string]struct{}),
		kick:     make(chan struct{}, 1),
	}
}

// changed records that user's session count changed. With wait, the
// returned channel receives the result of the announcement that carries
// the change; otherwise it is nil.
func (a *announcer) changed(user string, wait bool) <-chan error {
	var ch chan error
	a.mu.Lock()
	a.dirty[user] = struct{}{}
	if wait {
		ch = make(chan error, 1)
		a.waiters = append(a.waiters, ch)
	}
	a.mu.Unlock()
	select {
	case a.kick <- struct{}{}:
	default:
	}
	return ch
}

// run sends announcements until ctx ends.
func (a *announcer) run(ctx context.Context) {
	ticker := time.NewTicker(a.interval)
	defer ticker.Stop()
	// Fetched once and again only after it fires, so a reconnect during a
	// send is not missed.
	reconnected := a.broker.NextConnect()
	for {
		select {
		case <-ctx.Done():
			a.take()
			return
		case <-a.kick:
			a.delta(ctx)
		case <-ticker.C:
			a.snapshot(ctx)
		case <-reconnected:
			reconnected = a.broker.NextConnect()
			a.snapshot(ctx)
		}
	}
}

// waitLive waits, at most the broker timeout, until live reports true.
func (a *announcer) waitLive(ctx context.Context) {
	if a.live == nil {
		return
	}
	deadline := time.Now().Add(a.timeout)
	for !a.live() && time.Now().Before(deadline) {
		select {
		case <-ctx.Done():
			return
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// take empties the pending changes and returns them with their waiters.
func (a *announcer) take() (map[string]struct{}, []chan error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	d, w := a.dirty, a.waiters
	a.dirty, a.waiters = make(map[string]struct{}), nil
	return d, w
}

func (a *announcer) delta(ctx context.Context) {
	dirty, waiters := a.take()
	if len(dirty) == 0 {
		notify(waiters, nil)
		return
	}
	users := make(map[string]int, len(dirty))
	for u := range dirty {
		users[u] = a.counts(u)
	}
	err := a.send(ctx, &relay.RegistryEvent{Kind: relay.RegistryDelta, Users: users})
	notify(waiters, err)
}

// snapshot sends the full user set in parts; pending changes are covered
// by it.
func (a *announcer) snapshot(ctx context.Context) {
	_, waiters := a.take()
	all := a.all()
	a.seq++
	parts := (len(all) + relay.MaxSnapshotUsers - 1) / relay.MaxSnapshotUsers
	if parts == 0 {
		parts = 1
	}
	part := &relay.RegistryEvent{Kind: relay.RegistrySnapshot, Snapshot: a.seq, Part: 1, Parts: parts, Users: make(map[string]int)}
	var err error
	flush := func() {
		if err == nil {
			err = a.send(ctx, part)
		}
		part = &relay.RegistryEvent{Kind: relay.RegistrySnapshot, Snapshot: a.seq, Part: part.Part + 1, Parts: parts, Users: make(map[string]int)}
	}
	for u, n := range all {
		part.Users[u] = n
		if len(part.Users) == relay.MaxSnapshotUsers {
			flush()
		}
	}
	if len(part.Users) > 0 || part.Part == 1 {
		flush()
	}
	notify(waiters, err)
}

// bye tells pushsvc that this edge holds no one any more.
func (a *announcer) bye(ctx context.Context) error {
	return a.send(ctx, &relay.RegistryEvent{Kind: relay.RegistryBye})
}

func (a *announcer) send(ctx context.Context, ev *relay.RegistryEvent) error {
	// pushsvc takes any announcement after a broker reconnect as the sign
	// that the edge is back and sends it users' messages: announce only
	// once the edge's address receives again.
	a.waitLive(ctx)
	ev.Edge = a.edgeID
	ev.IntervalMillis = a.interval.Milliseconds()
	body, err := json.Marshal(ev)
	if err != nil {
		return fmt.Errorf("encode registry event: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, a.timeout)
	defer cancel()
	return a.broker.Send(ctx, &relay.Message{
		Destination: relay.RegistryDestination,
		ContentType: "application/json",
		Body:        body,
		OrderKey:    relay.OrderKeyRegistry,
	})
}

func notify(waiters []chan error, err error) {
	for _, w := range waiters {
		w <- err
	}
}
