package edge

import (
	"context"
	"sync"
)

// hub knows every session of the edge and, for connected ones, their user.
// It is the edge's side of the user registry: each change of a user's
// session count is announced to pushsvc (registry.go).
type hub struct {
	ann *announcer

	mu    sync.RWMutex
	all   map[*session]struct{}
	users map[string]map[*session]struct{}
}

func newHub(ann *announcer) *hub {
	return &hub{
		ann:   ann,
		all:   make(map[*session]struct{}),
		users: make(map[string]map[*session]struct{}),
	}
}

// track records a new session, connected or not, so shutdown can reach it.
func (h *hub) track(s *session) {
	h.mu.Lock()
	h.all[s] = struct{}{}
	h.mu.Unlock()
}

// join adds a connected session to its user and waits until the broker has
// confirmed the registry change that announces it.
func (h *hub) join(ctx context.Context, s *session) error {
	h.mu.Lock()
	m := h.users[s.user]
	if m == nil {
		m = make(map[*session]struct{})
		h.users[s.user] = m
	}
	m[s] = struct{}{}
	h.mu.Unlock()
	select {
	case err := <-h.ann.changed(s.user, true):
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// leave removes a session; its user's change is announced without waiting.
func (h *hub) leave(s *session) {
	h.mu.Lock()
	delete(h.all, s)
	m, ok := h.users[s.user]
	if ok {
		if _, joined := m[s]; !joined {
			ok = false
		}
		delete(m, s)
		if len(m) == 0 {
			delete(h.users, s.user)
		}
	}
	h.mu.Unlock()
	if ok {
		h.ann.changed(s.user, false)
	}
}

// forUser calls fn for each session of user. fn must not block: it runs
// under the hub's read lock, on a relay goroutine.
func (h *hub) forUser(user string, fn func(*session)) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	for s := range h.users[user] {
		fn(s)
	}
}

// count returns the sessions user has on this edge.
func (h *hub) count(user string) int {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return len(h.users[user])
}

// counts returns every user with their session count.
func (h *hub) counts() map[string]int {
	h.mu.RLock()
	defer h.mu.RUnlock()
	out := make(map[string]int, len(h.users))
	for u, m := range h.users {
		out[u] = len(m)
	}
	return out
}

// sessions returns every tracked session.
func (h *hub) sessions() []*session {
	h.mu.RLock()
	defer h.mu.RUnlock()
	out := make([]*session, 0, len(h.all))
	for s := range h.all {
		out = append(out, s)
	}
	return out
}
