package relay

import (
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"testing"
)

// offlinePool is a pool whose broker never answers: subscriptions are only
// bookkeeping, which is what these measure.
func offlinePool(tb testing.TB) *Pool {
	tb.Helper()
	brokers, err := ParseBrokers("stomp://127.0.0.1:1/")
	if err != nil {
		tb.Fatal(err)
	}
	p, err := New(Config{Brokers: brokers, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { p.Close() })
	return p
}

// dispatched delivers one message to dest's subscribers as link.dispatch
// does.
func dispatched(p *Pool, dest string) {
	p.mu.Lock()
	e := p.subs[dest]
	p.mu.Unlock()
	for _, s := range e.subscriptions() {
		if h := s.handler.Load(); h != nil {
			(*h)(&Message{})
		}
	}
}

// TestDispatchListAfterChurn checks that dispatch reaches exactly the
// current subscribers, once each, through subscribes and unsubscribes in
// any order.
func TestDispatchListAfterChurn(t *testing.T) {
	p := offlinePool(t)
	const dest = "/topic/pushgate.t.churn"
	rng := rand.New(rand.NewPCG(1, 2))
	calls := make([]int, 0)
	subs := map[int]*Subscription{}
	next := 0
	for round := 0; round < 2000; round++ {
		if len(subs) == 0 || rng.IntN(3) > 0 {
			i := next
			next++
			calls = append(calls, 0)
			subs[i] = p.Subscribe(dest, func(*Message) { calls[i]++ })
		} else {
			for i, s := range subs { // any one
				s.Unsubscribe()
				delete(subs, i)
				break
			}
		}
		if round%97 == 0 || round == 1999 {
			clear(calls)
			dispatched(p, dest)
			for i, c := range calls {
				_, live := subs[i]
				if live && c != 1 || !live && c != 0 {
					t.Fatalf("round %d: handler %d called %d times (subscribed: %v)", round, i, c, live)
				}
			}
		}
	}
	for _, s := range subs {
		s.Unsubscribe()
	}
}

// BenchmarkSubscribeTopic subscribes n local subscribers to one broker
// destination and unsubscribes them: an edge's connect storm and the
// disconnect after it, per subscriber.
func BenchmarkSubscribeTopic(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		b.Run(fmt.Sprintf("subscribers=%d", n), func(b *testing.B) {
			p := offlinePool(b)
			subs := make([]*Subscription, n)
			b.ReportAllocs()
			for b.Loop() {
				for i := range subs {
					subs[i] = p.Subscribe("/topic/pushgate.t.storm", func(*Message) {})
				}
				for _, s := range subs {
					s.Unsubscribe()
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/subscriber")
		})
	}
}
