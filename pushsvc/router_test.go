package pushsvc

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pushgate/pushgate/internal/testbroker"
	"github.com/pushgate/pushgate/relay"
)

// TestSendToUserEarlyAndLateEdges checks the two halves of SendToUser: the
// edges known when the call starts get the message before the marker, the
// edges announced while the marker travels get it after, and none gets it
// twice, also when the registry turns incomplete meanwhile and the message
// goes to every edge.
func TestSendToUserEarlyAndLateEdges(t *testing.T) {
	url := testbroker.Embedded(t).URL()
	newPool := func(name string) *relay.Pool {
		brokers, err := relay.ParseBrokers(url)
		if err != nil {
			t.Fatal(err)
		}
		p, err := relay.New(relay.Config{Brokers: brokers, Name: name})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { p.Close() })
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := p.WaitReady(ctx); err != nil {
			t.Fatal(err)
		}
		return p
	}

	// Two edges, "a" and "b", listening at their addresses and on the
	// all-edges destination, as edges do, honouring the skip list.
	edges := newPool("edges")
	var mu sync.Mutex
	got := map[string][]string{} // edge → message ids
	listen := func(edge, dest string) *relay.Subscription {
		return edges.Subscribe(dest, func(m *relay.Message) {
			if skip := m.Header.Get(relay.HeaderSkipEdges); skip != "" && slices.Contains(strings.Split(skip, ","), edge) {
				return
			}
			mu.Lock()
			got[edge] = append(got[edge], m.Header.Get(relay.HeaderMessageID))
			mu.Unlock()
		})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, s := range []*relay.Subscription{
		listen("a", relay.EdgeDestination("a")), listen("b", relay.EdgeDestination("b")),
		listen("a", relay.AllEdgesDestination), listen("b", relay.AllEdgesDestination),
	} {
		if err := s.Wait(ctx); err != nil {
			t.Fatal(err)
		}
	}

	r, err := NewRouter(RouterConfig{Settle: time.Millisecond}, newPool("pushsvc"))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	waitUntil(t, "router ready", r.Ready)
	announce := func(edge string, n int) {
		r.reg.apply(&relay.RegistryEvent{Kind: relay.RegistryDelta, Edge: edge, Users: map[string]int{"alice": n}, IntervalMillis: 60000}, time.Now())
	}
	t.Cleanup(func() { testHookAfterEarlySends = nil })

	for _, tc := range []struct {
		name     string
		meantime func() // while the marker travels
		want     map[string]int
	}{
		{"known edge only", nil, map[string]int{"a": 1}},
		{"edge announced during the marker", func() { announce("b", 1) }, map[string]int{"a": 1, "b": 1}},
		{"registry incomplete during the marker", func() {
			r.reg.settle = time.Hour         // as after a broker outage that has not settled
			r.reg.markIncomplete(time.Now()) // (settle first: markIncomplete reads it)
			announce("a", 1)                 // both edges re-announced
			announce("b", 0)
		}, map[string]int{"a": 1, "b": 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r.reg.settle = time.Millisecond
			r.reg.markIncomplete(time.Now().Add(-time.Second)) // settled, nobody stale
			announce("a", 1)
			announce("b", 0)
			mu.Lock()
			got = map[string][]string{}
			mu.Unlock()
			var early map[string]int
			testHookAfterEarlySends = func() {
				// The early send is confirmed before the marker is even sent.
				waitUntil(t, "early send", func() bool { mu.Lock(); defer mu.Unlock(); return len(got["a"]) == 1 })
				mu.Lock()
				early = map[string]int{"a": len(got["a"]), "b": len(got["b"])}
				mu.Unlock()
				if tc.meantime != nil {
					tc.meantime()
				}
			}
			if err := r.SendToUser(ctx, "alice", Message{ID: tc.name, Destination: "/topic/greetings", Body: []byte("hi")}); err != nil {
				t.Fatal(err)
			}
			if early["a"] != 1 || early["b"] != 0 {
				t.Errorf("before the marker: %v, want only a", early)
			}
			time.Sleep(100 * time.Millisecond) // a duplicate would arrive now
			mu.Lock()
			defer mu.Unlock()
			for _, e := range []string{"a", "b"} {
				if len(got[e]) != tc.want[e] {
					t.Errorf("edge %s got %v, want %d message(s)", e, got[e], tc.want[e])
				}
			}
		})
	}
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}
