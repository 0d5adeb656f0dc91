package edge

import (
	"bytes"
	"testing"

	"github.com/go-stomp/stomp/v3/frame"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/pushgate/pushgate/relay"
)

// TestSharedMessageMatchesAppendFrame checks that a MESSAGE encoded once
// and shared between sessions is byte for byte the frame each session used
// to encode for itself, in every STOMP version, for headers that need
// escaping, acks, and empty bodies.
func TestSharedMessageMatchesAppendFrame(t *testing.T) {
	messages := []*relay.Message{
		{
			ContentType: "text/plain;charset=UTF-8",
			Header: frame.NewHeader("destination", "/topic/pushgate.t.news", "message-id", "T_1", "subscription", "s1",
				"content-length", "5", relay.HeaderMessageID, "0123abcd", relay.HeaderOrigin, "pushsvc-1",
				"x-note", "a:b\\c\r\nd", "x-empty", ""),
			Body: []byte("hello"),
		},
		{
			Header: frame.NewHeader(relay.HeaderMessageID, "id:with\nescapes", relay.HeaderUser, "alice",
				relay.HeaderUserDestination, "/topic/greetings"),
		},
	}
	subs := []struct{ id, ack string }{{"sub-0", "auto"}, {"s:1\n", "client"}, {"x", "client-individual"}}
	for _, m := range messages {
		for _, dest := range []string{"/topic/news", "/user/topic/gr:eet"} {
			for _, v := range []Version{V10, V11, V12} {
				for _, sub := range subs {
					id := m.Header.Get(relay.HeaderMessageID)
					want := AppendFrame(nil, v, messageFrame(sub.id, dest, sub.ack, id, m))
					sm := sharedMessageFor(dest, m)
					if sm == nil {
						t.Fatal("no shared message for a message with an id")
					}
					mode := messageEscapeMode(v)
					head, tail := sm.encoded(mode)
					mid := appendHeader(nil, "subscription", sub.id, mode)
					if sub.ack != "auto" {
						mid = appendHeader(mid, "ack", id, mode)
					}
					got := bytes.Join([][]byte{head, mid, tail}, nil)
					if !bytes.Equal(got, want) {
						t.Errorf("%s %s sub %q:\ngot  %q\nwant %q", v, dest, sub.id, got, want)
					}
				}
			}
		}
	}
	if sharedMessageFor("/topic/x", &relay.Message{Header: frame.NewHeader("a", "b")}) != nil {
		t.Error("a message without a pushgate message id is shared; want each session to number its own")
	}
}

// TestDeliverToUserSkipsListedEdges checks that an edge ignores a user
// message that names it in pushgate-skip-edges (pushsvc sent it to the
// edge's own address already) and delivers every other.
func TestDeliverToUserSkipsListedEdges(t *testing.T) {
	srv := benchServer(t) // edge id "bench-edge"
	ss, _, stop := benchSessions(t, srv, 1, V12)
	defer stop()
	s := ss[0]
	srv.hub.mu.Lock()
	srv.hub.users[s.user] = map[*session]struct{}{s: {}}
	srv.hub.mu.Unlock()
	s.userSubs = map[string][]userSub{"/topic/greetings": {{id: "sub-0", ack: "auto"}}}
	for i, tc := range []struct {
		skip string
		want float64
	}{
		{"", 1},
		{"other-edge", 1},
		{"bench-edge-2,bench", 1},
		{"bench-edge", 0},
		{"a,bench-edge,b", 0},
	} {
		m := brokerMessage(relay.AllEdgesDestination, s.user, i)
		if tc.skip != "" {
			m.Header.Add(relay.HeaderSkipEdges, tc.skip)
		}
		before := testutil.ToFloat64(srv.metrics.messagesOut)
		srv.deliverToUser(m)
		if got := testutil.ToFloat64(srv.metrics.messagesOut) - before; got != tc.want {
			t.Errorf("skip list %q: %v deliveries, want %v", tc.skip, got, tc.want)
		}
	}
}
