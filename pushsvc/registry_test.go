package pushsvc

import (
	"slices"
	"testing"
	"time"

	"github.com/pushgate/pushgate/relay"
)

func TestRegistry(t *testing.T) {
	t0 := time.Unix(1000, 0)
	settle := 7 * time.Second
	type step struct {
		at     time.Duration // after t0
		event  *relay.RegistryEvent
		expire bool
		// then: lookup of user → edges and completeness
		user     string
		edges    []string
		complete bool
	}
	delta := func(edge string, users map[string]int) *relay.RegistryEvent {
		return &relay.RegistryEvent{Kind: relay.RegistryDelta, Edge: edge, Users: users, IntervalMillis: 1000}
	}
	snap := func(edge string, id uint64, part, parts int, users map[string]int) *relay.RegistryEvent {
		return &relay.RegistryEvent{Kind: relay.RegistrySnapshot, Edge: edge, Snapshot: id, Part: part, Parts: parts, Users: users, IntervalMillis: 1000}
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"incomplete until settled", []step{
			{at: 0, event: delta("e1", map[string]int{"alice": 1}), user: "alice", edges: []string{"e1"}, complete: false},
			{at: settle, user: "alice", edges: []string{"e1"}, complete: true},
		}},
		{"join on two edges, leave one", []step{
			{event: delta("e1", map[string]int{"alice": 1})},
			{event: delta("e2", map[string]int{"alice": 2})},
			{at: settle, user: "alice", edges: []string{"e1", "e2"}, complete: true},
			{at: settle, event: delta("e1", map[string]int{"alice": 0}), user: "alice", edges: []string{"e2"}, complete: true},
			{at: settle, event: delta("e2", map[string]int{"alice": 0}), user: "alice", edges: nil, complete: true},
		}},
		{"snapshot replaces state", []step{
			{event: delta("e1", map[string]int{"alice": 1, "bob": 1})},
			{event: snap("e1", 1, 1, 1, map[string]int{"bob": 1, "carol": 2})},
			{at: settle, user: "alice", edges: nil, complete: true},
			{at: settle, user: "carol", edges: []string{"e1"}, complete: true},
		}},
		{"multi-part snapshot applies at its last part", []step{
			{event: delta("e1", map[string]int{"alice": 1})},
			{event: snap("e1", 2, 1, 2, map[string]int{"bob": 1}), at: settle, user: "alice", edges: []string{"e1"}, complete: true},
			{event: snap("e1", 2, 2, 2, map[string]int{"carol": 1}), at: settle, user: "alice", edges: nil, complete: true},
			{at: settle, user: "bob", edges: []string{"e1"}, complete: true},
		}},
		{"snapshot with a missing part is ignored", []step{
			{event: delta("e1", map[string]int{"alice": 1})},
			{event: snap("e1", 3, 2, 2, map[string]int{"bob": 1}), at: settle, user: "alice", edges: []string{"e1"}, complete: true},
			{at: settle, user: "bob", edges: nil, complete: true},
		}},
		{"silent edge is forgotten after three intervals", []step{
			{event: delta("e1", map[string]int{"alice": 1})},
			{at: 2900 * time.Millisecond, expire: true, user: "alice", edges: []string{"e1"}},
			{at: 3100 * time.Millisecond, expire: true, user: "alice", edges: nil},
		}},
		{"bye removes the edge", []step{
			{event: delta("e1", map[string]int{"alice": 1})},
			{event: &relay.RegistryEvent{Kind: relay.RegistryBye, Edge: "e1"}, user: "alice", edges: nil},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRegistry(settle, t0)
			for i, s := range tt.steps {
				now := t0.Add(s.at)
				if s.event != nil {
					r.apply(s.event, now)
				}
				if s.expire {
					r.expire(now)
				}
				if s.user == "" {
					continue
				}
				edges, complete := r.lookup(s.user, now)
				if !slices.Equal(edges, s.edges) {
					t.Errorf("step %d: lookup(%q) edges = %v, want %v", i, s.user, edges, s.edges)
				}
				if s.at >= settle && complete != s.complete {
					t.Errorf("step %d: complete = %v, want %v", i, complete, s.complete)
				}
				if s.at < settle && complete {
					t.Errorf("step %d: complete before the settle time", i)
				}
			}
		})
	}
}

func TestRegistryMarkIncomplete(t *testing.T) {
	t0 := time.Unix(1000, 0)
	r := newRegistry(time.Second, t0)
	if _, ok := r.lookup("x", t0.Add(time.Second)); !ok {
		t.Fatal("not complete after settling")
	}
	r.markIncomplete(t0.Add(5 * time.Second))
	if _, ok := r.lookup("x", t0.Add(5500*time.Millisecond)); ok {
		t.Fatal("complete right after markIncomplete")
	}
	if _, ok := r.lookup("x", t0.Add(6*time.Second)); !ok {
		t.Fatal("not complete after settling again")
	}
}
