package pushsvc

import (
	"sort"
	"sync"
	"time"

	"github.com/pushgate/pushgate/relay"
)

// registry is pushsvc's in-memory view of which edge holds which users,
// built from the edges' announcements (relay.RegistryEvent). It is pure
// state: the Router feeds it events and asks it where a user is.
//
// It is complete only once it has had time to hear every edge's snapshot:
// after pushsvc starts, and again after its broker connection was lost
// (announcements may have been missed meanwhile). While incomplete, the
// Router sends user messages to all edges instead of trusting it.
type registry struct {
	settle time.Duration

	mu         sync.RWMutex
	edges      map[string]*edgeState
	users      map[string]map[string]int // user → edge → sessions
	completeAt time.Time
	// reconnectedAt is when pushsvc's broker connection last came back.
	// An edge not heard from since may not have resubscribed its address
	// yet: the broker would confirm a message to it and drop it.
	reconnectedAt time.Time
}

type edgeState struct {
	users    map[string]int
	lastSeen time.Time
	interval time.Duration
	// pending assembles a snapshot that arrives in several parts.
	pending *pendingSnapshot
}

type pendingSnapshot struct {
	id    uint64
	next  int
	parts int
	users map[string]int
}

// defaultEdgeInterval is assumed for an edge that did not say its interval.
const defaultEdgeInterval = 5 * time.Second

func newRegistry(settle time.Duration, now time.Time) *registry {
	return &registry{
		settle:     settle,
		edges:      make(map[string]*edgeState),
		users:      make(map[string]map[string]int),
		completeAt: now.Add(settle),
	}
}

// markIncomplete starts a new settling period, after which the registry is
// trusted again.
func (r *registry) markIncomplete(now time.Time) {
	r.mu.Lock()
	r.completeAt = now.Add(r.settle)
	r.reconnectedAt = now
	r.mu.Unlock()
}

// unconfirmed returns an edge that a push to user may need but that has
// not announced itself since the last broker reconnect ("" when there is
// none): one of user's edges, or, while the registry is incomplete and the
// push goes to every edge, any known edge. The broker would confirm a
// message to such an edge and drop it if the edge has not resubscribed.
func (r *registry) unconfirmed(user string, now time.Time) string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if r.reconnectedAt.IsZero() {
		return ""
	}
	stale := func(id string) bool {
		e := r.edges[id]
		return e != nil && e.lastSeen.Before(r.reconnectedAt)
	}
	if now.Before(r.completeAt) {
		for id := range r.edges {
			if stale(id) {
				return id
			}
		}
		return ""
	}
	for id := range r.users[user] {
		if stale(id) {
			return id
		}
	}
	return ""
}

// apply records one announcement.
func (r *registry) apply(ev *relay.RegistryEvent, now time.Time) {
	if ev.Edge == "" {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if ev.Kind == relay.RegistryBye {
		r.dropEdgeLocked(ev.Edge)
		return
	}
	e := r.edges[ev.Edge]
	if e == nil {
		e = &edgeState{users: make(map[string]int), interval: defaultEdgeInterval}
		r.edges[ev.Edge] = e
	}
	e.lastSeen = now
	if ev.IntervalMillis > 0 {
		e.interval = time.Duration(ev.IntervalMillis) * time.Millisecond
	}
	switch ev.Kind {
	case relay.RegistryDelta:
		for u, n := range ev.Users {
			r.setLocked(ev.Edge, e, u, n)
		}
	case relay.RegistrySnapshot:
		if ev.Part == 1 {
			e.pending = &pendingSnapshot{id: ev.Snapshot, next: 1, parts: ev.Parts, users: make(map[string]int)}
		}
		p := e.pending
		if p == nil || p.id != ev.Snapshot || p.next != ev.Part {
			e.pending = nil // a part went missing; the next snapshot repairs it
			return
		}
		for u, n := range ev.Users {
			if n > 0 {
				p.users[u] = n
			}
		}
		p.next++
		if ev.Part < p.parts {
			return
		}
		e.pending = nil
		for u := range e.users {
			if _, ok := p.users[u]; !ok {
				r.setLocked(ev.Edge, e, u, 0)
			}
		}
		for u, n := range p.users {
			r.setLocked(ev.Edge, e, u, n)
		}
	}
}

// setLocked sets user's session count on an edge, keeping the index.
func (r *registry) setLocked(edge string, e *edgeState, user string, n int) {
	if n <= 0 {
		delete(e.users, user)
		if m := r.users[user]; m != nil {
			delete(m, edge)
			if len(m) == 0 {
				delete(r.users, user)
			}
		}
		return
	}
	e.users[user] = n
	m := r.users[user]
	if m == nil {
		m = make(map[string]int, 1)
		r.users[user] = m
	}
	m[edge] = n
}

func (r *registry) dropEdgeLocked(edge string) {
	e := r.edges[edge]
	if e == nil {
		return
	}
	for u := range e.users {
		r.setLocked(edge, e, u, 0)
	}
	delete(r.edges, edge)
}

// expire forgets edges that stayed silent for three of their intervals:
// they crashed or were cut off, and their users are no longer reachable
// there.
func (r *registry) expire(now time.Time) (forgotten []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for id, e := range r.edges {
		// Silence counts only from the last broker reconnect: while
		// pushsvc was cut off it could not hear anyone.
		if now.Sub(later(e.lastSeen, r.reconnectedAt)) > 3*e.interval {
			r.dropEdgeLocked(id)
			forgotten = append(forgotten, id)
		}
	}
	return forgotten
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// lookup returns the edges holding user, sorted, and whether the registry
// is complete enough to trust that list.
func (r *registry) lookup(user string, now time.Time) (edges []string, complete bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if held := r.users[user]; len(held) > 0 {
		edges = make([]string, 0, len(held))
		for e := range held {
			edges = append(edges, e)
		}
		sort.Strings(edges)
	}
	return edges, !now.Before(r.completeAt)
}

// stats returns the number of edges and users known.
func (r *registry) stats() (edges, users int) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return len(r.edges), len(r.users)
}
