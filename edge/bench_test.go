package edge

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-stomp/stomp/v3/frame"

	"github.com/pushgate/pushgate/relay"
)

// Benchmarks of the edge's fan-out path: one broker MESSAGE handed to many
// sessions, the way the relay's dispatch calls each subscriber's handler,
// through each session's outbox and writer goroutine to a transport that
// only counts bytes. Run with:
//
//	go test -run '^$' -bench 'Fanout|DeliverUser|Destination' -benchmem ./edge/

// countingTransport is a Transport whose writes cost nothing but counting.
type countingTransport struct {
	writes atomic.Int64
	bytes  atomic.Int64
}

func (t *countingTransport) Name() string { return "bench" }
func (t *countingTransport) Write(msg []byte) error {
	t.writes.Add(1)
	t.bytes.Add(int64(len(msg)))
	return nil
}
func (t *countingTransport) Close(int, string) error { return nil }

// benchServer is a Server with just what delivery needs: no broker, no
// listener, no registry announcements.
func benchServer(b testing.TB) *Server {
	b.Helper()
	cfg := Config{ID: "bench-edge", Auth: AuthConfig{HMACSecret: []byte("bench")}}
	if err := cfg.setDefaults(); err != nil {
		b.Fatal(err)
	}
	s := &Server{cfg: cfg}
	s.metrics = newMetrics(s)
	s.hub = newHub(newAnnouncer(&s.cfg, nil))
	return s
}

// benchSessions starts n connected sessions with their writer goroutines;
// stop ends them.
func benchSessions(b testing.TB, srv *Server, n int, v Version) (ss []*session, ts []*countingTransport, stop func()) {
	b.Helper()
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		t := &countingTransport{}
		s := srv.newSession(t, fmt.Sprintf("s%d", i), nil)
		s.user = fmt.Sprintf("user-%d", i)
		s.ver.Store(int32(v))
		s.clocks.Store(&sessionClocks{})
		s.state.Store(stateConnected)
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.writeLoop()
		}()
		ss, ts = append(ss, s), append(ts, t)
	}
	return ss, ts, func() {
		for _, s := range ss {
			s.close(reasonShutdown)
		}
		wg.Wait()
	}
}

// brokerMessage is a MESSAGE as the relay hands it to handlers: pushsvc's
// headers, the broker's own, a small JSON body.
func brokerMessage(dest string, user string, seq int) *relay.Message {
	h := frame.NewHeader(
		"destination", dest,
		"message-id", fmt.Sprintf("T_s1@@session-x@@%d", seq),
		"subscription", "s1",
		"content-type", "application/json",
		"content-length", "37",
		relay.HeaderMessageID, fmt.Sprintf("0123456789abcdef0123456789ab%04d", seq%10000),
		relay.HeaderOrigin, "pushsvc-0a1b2c3d4e5f",
	)
	if user != "" {
		h.Add(relay.HeaderUser, relay.EncodeUser(user))
		h.Add(relay.HeaderUserDestination, "/topic/greetings")
	}
	return &relay.Message{Destination: dest, ContentType: "application/json", Header: h, Body: []byte(`{"name":"alice","text":"hello world"}`)}
}

// drain waits until every session's outbox is empty: the writers have
// written all that was delivered.
func drain(ss []*session) {
	for _, s := range ss {
		for {
			s.out.mu.Lock()
			n := len(s.out.buf)
			s.out.mu.Unlock()
			if n == 0 {
				break
			}
			time.Sleep(50 * time.Microsecond)
		}
	}
}

// BenchmarkFanout delivers one broker message per op to every subscriber of
// a topic, as relay dispatch does: each subscriber's handler is the closure
// onSubscribe registers.
func BenchmarkFanout(b *testing.B) {
	for _, n := range []int{1, 100, 1000, 10000} {
		for _, v := range []Version{V12, V10} {
			b.Run(fmt.Sprintf("subs=%d/%s", n, v), func(b *testing.B) {
				srv := benchServer(b)
				ss, ts, stop := benchSessions(b, srv, n, v)
				defer stop()
				const dest = "/topic/news"
				handlers := make([]relay.Handler, len(ss))
				for i, s := range ss {
					id := "sub-0"
					handlers[i] = func(m *relay.Message) { s.deliver(id, dest, "auto", m) }
				}
				msgs := make([]*relay.Message, 64)
				for i := range msgs {
					msgs[i] = brokerMessage(relay.TopicDestination(dest), "", i)
				}
				b.ReportAllocs()
				i := 0
				for b.Loop() {
					m := msgs[i%len(msgs)]
					i++
					for _, h := range handlers {
						h(m)
					}
					if i%32 == 0 {
						drain(ss) // bound the outboxes as a real writer would
					}
				}
				drain(ss)
				var writes, bytes int64
				for _, t := range ts {
					writes += t.writes.Load()
					bytes += t.bytes.Load()
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(i*n), "ns/delivery")
				b.ReportMetric(float64(bytes)/float64(i*n), "B/delivery")
				b.ReportMetric(float64(writes)/float64(i), "writes/op")
			})
		}
	}
}

// BenchmarkDeliverUser delivers a user message as it arrives on the edge's
// own address: user lookup in the hub, then the user's sessions.
func BenchmarkDeliverUser(b *testing.B) {
	const users = 1000
	srv := benchServer(b)
	ss, _, stop := benchSessions(b, srv, users, V12)
	defer stop()
	for _, s := range ss {
		srv.hub.mu.Lock()
		srv.hub.users[s.user] = map[*session]struct{}{s: {}}
		srv.hub.mu.Unlock()
		s.userSubs = map[string][]userSub{"/topic/greetings": {{id: "sub-0", ack: "auto"}}}
	}
	msgs := make([]*relay.Message, users)
	for i := range msgs {
		msgs[i] = brokerMessage(relay.EdgeDestination("bench-edge"), ss[i].user, i)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		srv.deliverToUser(msgs[i%users])
		i++
		if i%1024 == 0 {
			drain(ss)
		}
	}
	drain(ss)
}

// BenchmarkSubscribeDestination maps the destinations a client subscribes
// to: its user destinations and topics.
func BenchmarkSubscribeDestination(b *testing.B) {
	for _, d := range []string{"/user/topic/greetings", "/user/queue/orders.eu-west/2026", "/topic/news/sports.football"} {
		b.Run(d, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, _, err := parseSubscribeDestination(d); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
