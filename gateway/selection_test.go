package gateway

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
)

func testService(t *testing.T, n int) *service {
	t.Helper()
	met, err := newMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	s := newService("svc", Discovery{}, Health{}.withDefaults(Health{}), slog.New(slog.NewTextHandler(io.Discard, nil)), met)
	s.setInstances(testURLs(n), true)
	return s
}

func testURLs(n int) []*url.URL {
	var urls []*url.URL
	for i := range n {
		urls = append(urls, &url.URL{Scheme: "http", Host: fmt.Sprintf("10.0.0.%d:8080", i+1)})
	}
	return urls
}

func TestRoundRobinSkipsUnavailable(t *testing.T) {
	t.Parallel()
	s := testService(t, 3)
	insts := s.instances()
	insts[1].healthy.Store(false)
	seen := map[string]int{}
	for range 100 {
		seen[s.pick(policyRoundRobin, "", nil).key]++
	}
	if seen[insts[1].key] != 0 || seen[insts[0].key] != 50 || seen[insts[2].key] != 50 {
		t.Errorf("round robin spread %v", seen)
	}
	for _, in := range insts {
		in.healthy.Store(false)
	}
	if in := s.pick(policyRoundRobin, "", nil); in != nil {
		t.Errorf("picked %s with every instance down", in.key)
	}
}

func TestLeastConnPick(t *testing.T) {
	t.Parallel()
	s := testService(t, 3)
	insts := s.instances()
	insts[0].conns.Store(5)
	insts[1].conns.Store(2)
	insts[2].conns.Store(2)
	got := map[string]int{}
	for range 10 {
		got[s.pick(policyLeastConn, "", nil).key]++
	}
	if got[insts[0].key] != 0 || got[insts[1].key] == 0 || got[insts[2].key] == 0 {
		t.Errorf("ties between the least loaded should spread: %v", got)
	}
	if in := s.pick(policyLeastConn, "", []*instance{insts[1], insts[2]}); in != insts[0] {
		t.Errorf("with the others excluded, picked %v", in)
	}
}

// TestHRWStability checks rendezvous hashing: the same key always gets the same instance, keys
// spread evenly, and removing or adding an instance moves only the keys it loses or wins.
func TestHRWStability(t *testing.T) {
	t.Parallel()
	s := testService(t, 4)
	const keys = 4000
	before := map[string]string{}
	count := map[string]int{}
	for i := range keys {
		k := fmt.Sprintf("sess-%d", i)
		before[k] = s.pick(policyHRW, k, nil).key
		if again := s.pick(policyHRW, k, nil).key; again != before[k] {
			t.Fatalf("key %s: %s then %s", k, before[k], again)
		}
		count[before[k]]++
	}
	for inst, n := range count {
		if n < keys/4*8/10 || n > keys/4*12/10 {
			t.Errorf("instance %s has %d of %d keys, want about %d", inst, n, keys, keys/4)
		}
	}

	// An instance leaves rotation: only its keys move.
	gone := s.instances()[2]
	gone.healthy.Store(false)
	for k, was := range before {
		now := s.pick(policyHRW, k, nil).key
		if was != gone.key && now != was {
			t.Fatalf("key %s moved from %s to %s though its instance stayed", k, was, now)
		}
	}
	gone.healthy.Store(true)

	// A fifth instance joins: keys move only to it, about a fifth of them.
	s.setInstances(testURLs(5), false)
	s.instances()[4].healthy.Store(true)
	moved := 0
	for k, was := range before {
		now := s.pick(policyHRW, k, nil).key
		if now != was {
			if now != s.instances()[4].key {
				t.Fatalf("key %s moved from %s to %s, not to the new instance", k, was, now)
			}
			moved++
		}
	}
	if moved < keys/5*7/10 || moved > keys/5*13/10 {
		t.Errorf("%d keys moved to the new instance, want about %d", moved, keys/5)
	}
}

func TestChoosePolicy(t *testing.T) {
	t.Parallel()
	cases := []struct {
		upgrade bool
		path    string
		pol     policy
		key     string
	}{
		{true, "/ws/000/abc/websocket", policyLeastConn, ""},
		{true, "/stomp", policyLeastConn, ""},
		{false, "/ws/000/abc/xhr_send", policyHRW, "abc"},
		{false, "/ws/info", policyRoundRobin, ""},
		{false, "/v1/users/alice/messages", policyRoundRobin, ""},
	}
	for _, c := range cases {
		pol, key := choosePolicy(c.upgrade, c.path)
		if pol != c.pol || key != c.key {
			t.Errorf("choosePolicy(%v, %q) = %v, %q; want %v, %q", c.upgrade, c.path, pol, key, c.pol, c.key)
		}
	}
}

type ipResolver []net.IPAddr

func (r ipResolver) LookupIPAddr(context.Context, string) ([]net.IPAddr, error) { return r, nil }
func (r ipResolver) LookupSRV(context.Context, string, string, string) (string, []*net.SRV, error) {
	return "", nil, fmt.Errorf("no srv")
}

func TestDNSResolve(t *testing.T) {
	t.Parallel()
	d := Discovery{DNS: "edge.default.svc", Port: 8080}
	urls, err := d.resolve(context.Background(), ipResolver{{IP: net.ParseIP("10.0.0.2")}, {IP: net.ParseIP("fd00::1")}, {IP: net.ParseIP("10.0.0.1")}})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, u := range urls {
		got = append(got, u.String())
	}
	if d := cmp.Diff([]string{"http://10.0.0.1:8080", "http://10.0.0.2:8080", "http://[fd00::1]:8080"}, got); d != "" {
		t.Errorf("instances (-want +got):\n%s", d)
	}
	if _, err := (Discovery{SRV: "_http._tcp.edge"}).resolve(context.Background(), ipResolver{}); err == nil {
		t.Error("failed SRV lookup gave no error")
	}
}
