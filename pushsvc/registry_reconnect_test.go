package pushsvc

import (
	"testing"
	"time"

	"github.com/pushgate/pushgate/relay"
)

// TestRegistryAfterReconnect: after pushsvc's broker connection comes back,
// an edge that has not announced itself since may not have resubscribed
// its address (the broker would confirm a push to it and drop it), so it
// is unconfirmed until it announces; and silence during the outage does
// not make pushsvc forget edges.
func TestRegistryAfterReconnect(t *testing.T) {
	t0 := time.Unix(1000, 0)
	r := newRegistry(time.Second, t0)
	delta := func(edge string, users map[string]int) *relay.RegistryEvent {
		return &relay.RegistryEvent{Kind: relay.RegistryDelta, Edge: edge, Users: users, IntervalMillis: 1000}
	}
	r.apply(delta("a", map[string]int{"alice": 1}), t0)
	r.apply(delta("b", map[string]int{"bob": 1}), t0)
	if e := r.unconfirmed("alice", t0.Add(2*time.Second)); e != "" {
		t.Fatalf("before any reconnect: unconfirmed %q", e)
	}

	// The broker was away for 10 s: three intervals of silence, but the
	// edges are not forgotten at the reconnect.
	back := t0.Add(10 * time.Second)
	r.markIncomplete(back)
	if gone := r.expire(back.Add(time.Millisecond)); len(gone) != 0 {
		t.Fatalf("edges forgotten right after a reconnect: %v", gone)
	}
	// While the registry settles, a push goes to every edge: any edge not
	// heard from since the reconnect makes it unsafe.
	if e := r.unconfirmed("carol", back.Add(100*time.Millisecond)); e == "" {
		t.Fatal("settling registry with silent edges: want an unconfirmed edge")
	}
	r.apply(delta("a", map[string]int{"alice": 1}), back.Add(200*time.Millisecond))
	if e := r.unconfirmed("carol", back.Add(300*time.Millisecond)); e != "b" {
		t.Fatalf("settling, a re-announced: unconfirmed %q, want b", e)
	}
	// Settled: only the user's own edges matter.
	later := back.Add(2 * time.Second)
	if e := r.unconfirmed("alice", later); e != "" {
		t.Fatalf("alice's edge re-announced: unconfirmed %q", e)
	}
	if e := r.unconfirmed("bob", later); e != "b" {
		t.Fatalf("bob's edge silent since the reconnect: unconfirmed %q, want b", e)
	}
	// An edge silent for three intervals after the reconnect is forgotten;
	// its users are then offline, not unconfirmed.
	if gone := r.expire(back.Add(3100 * time.Millisecond)); len(gone) != 1 || gone[0] != "b" {
		t.Fatalf("expire after 3 silent intervals: %v, want [b]", gone)
	}
	if e := r.unconfirmed("bob", back.Add(3200*time.Millisecond)); e != "" {
		t.Fatalf("forgotten edge still unconfirmed: %q", e)
	}
}
