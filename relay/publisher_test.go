package relay

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/go-stomp/stomp/v3/frame"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/pushgate/pushgate/internal/testbroker"
)

// TestConcurrentSendsShareBrokerMessages checks that sends to one
// destination that queue behind an unconfirmed one leave as batches, and
// that every message still arrives once, in full, with its own headers.
func TestConcurrentSendsShareBrokerMessages(t *testing.T) {
	testbroker.Each(t, func(t *testing.T, url string) {
		pub := newPool(t, url, nil)
		sub := newPool(t, url, nil)
		dest := TopicDestination(fmt.Sprintf("/topic/batch/%d", time.Now().UnixNano()))

		var mu sync.Mutex
		got := make(map[string]int)
		s := sub.Subscribe(dest, func(m *Message) {
			id := m.Header.Get(HeaderMessageID)
			mu.Lock()
			defer mu.Unlock()
			if want := "body of " + id; string(m.Body) != want || m.ContentType != "text/plain" || m.Header.Get(HeaderUser) != "u"+id {
				t.Errorf("message %s arrived as %q %q %q", id, m.ContentType, m.Header.Get(HeaderUser), m.Body)
			}
			got[id]++
		})
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.Wait(ctx); err != nil {
			t.Fatal(err)
		}
		const msgs = 1000
		errs := make(chan error, msgs)
		for i := 0; i < msgs; i++ {
			id := strconv.Itoa(i)
			go func() {
				errs <- pub.Send(ctx, &Message{
					Destination: dest,
					ContentType: "text/plain",
					Header:      frame.NewHeader(HeaderMessageID, id, HeaderUser, "u"+id),
					Body:        []byte("body of " + id),
				})
			}()
		}
		for i := 0; i < msgs; i++ {
			if err := <-errs; err != nil {
				t.Fatal(err)
			}
		}
		waitFor(t, 5*time.Second, "deliveries", func() bool {
			mu.Lock()
			defer mu.Unlock()
			return len(got) == msgs
		})
		time.Sleep(50 * time.Millisecond) // a duplicate would show up now
		mu.Lock()
		for id, n := range got {
			if n != 1 {
				t.Errorf("message %s arrived %d times", id, n)
			}
		}
		mu.Unlock()
		frames := testutil.ToFloat64(pub.metrics.batches)
		if frames >= msgs {
			t.Errorf("%d sends went out as %v broker messages: none were batched", msgs, frames)
		}
		t.Logf("%d concurrent sends, %v broker messages", msgs, frames)
		pub.sendMu.Lock()
		left := len(pub.publishers)
		pub.sendMu.Unlock()
		if left != 0 {
			t.Errorf("%d publishers left in the map after every send completed", left)
		}
	})
}

// silentBroker accepts STOMP connections, answers CONNECTED and then never
// sends a RECEIPT: a broker that has stopped confirming.
func silentBroker(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer nc.Close()
				r := frame.NewReader(nc)
				if _, err := r.Read(); err != nil {
					return
				}
				w := bufio.NewWriter(nc)
				_ = frame.NewWriter(w).Write(frame.New(frame.CONNECTED, frame.Version, "1.2"))
				_ = w.Flush()
				for {
					if _, err := r.Read(); err != nil {
						return
					}
				}
			}()
		}
	}()
	return "stomp://" + ln.Addr().String() + "/"
}

// TestWaitingSendsAreBounded checks that sends queued behind a broker that
// stopped confirming are refused past the limit, not kept without bound,
// and that those waiting fail once their confirmation times out.
func TestWaitingSendsAreBounded(t *testing.T) {
	const limit = 50
	p := newPool(t, silentBroker(t), func(c *Config) {
		c.MaxWaitingSends = limit
		c.ReceiptTimeout = 500 * time.Millisecond
	})
	dest := TopicDestination("/topic/stuck")
	ctx := context.Background()
	errs := make(chan error, maxInFlight+limit)
	// maxInFlight sends go out and wait for receipts; limit more queue.
	for i := 0; i < maxInFlight+limit; i++ {
		go func() { errs <- p.Send(ctx, &Message{Destination: dest, Body: []byte("x")}) }()
	}
	waitFor(t, 5*time.Second, "sends to queue", func() bool {
		p.sendMu.Lock()
		defer p.sendMu.Unlock()
		pub := p.publishers[dest+"\x00"]
		return pub != nil && len(pub.waiting) == limit
	})
	err := p.Send(ctx, &Message{Destination: dest, Body: []byte("one too many")})
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("send past the limit: got %v, want ErrUnavailable", err)
	}
	// Every queued send learns that it was not confirmed.
	for i := 0; i < maxInFlight+limit; i++ {
		select {
		case err := <-errs:
			if !errors.Is(err, ErrUnavailable) {
				t.Fatalf("queued send: got %v, want ErrUnavailable", err)
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("only %d of %d queued sends returned", i, maxInFlight+limit)
		}
	}
}

// TestCloseFailsWaitingSends checks that Close answers the sends still
// queued instead of leaving their callers hanging.
func TestCloseFailsWaitingSends(t *testing.T) {
	p := newPool(t, silentBroker(t), func(c *Config) { c.ReceiptTimeout = time.Minute })
	dest := TopicDestination("/topic/closing")
	const n = 20
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		go func() { errs <- p.Send(context.Background(), &Message{Destination: dest}) }()
	}
	waitFor(t, 5*time.Second, "sends to queue", func() bool {
		p.sendMu.Lock()
		defer p.sendMu.Unlock()
		pub := p.publishers[dest+"\x00"]
		return pub != nil && len(pub.waiting) == n-maxInFlight
	})
	p.Close()
	for i := 0; i < n; i++ {
		if err := <-errs; !errors.Is(err, ErrUnavailable) {
			t.Fatalf("send during Close: got %v, want ErrUnavailable", err)
		}
	}
	if err := p.Send(context.Background(), &Message{Destination: dest}); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("send after Close: got %v, want ErrUnavailable", err)
	}
}
