package relay

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-stomp/stomp/v3/frame"
)

// brokerSub is the pool's one broker subscription for a destination,
// shared by every local subscriber. Fields other than snapshot are guarded
// by Pool.mu.
type brokerSub struct {
	dest string
	// headers are extra SUBSCRIBE headers (a durable named queue).
	headers     []string
	subscribers map[*Subscription]struct{}
	// snapshot lists the subscriptions for dispatch, which reads it without
	// a lock. Subscribe appends to it in place: every older snapshot is a
	// prefix of the newest, so its readers never see that write.
	// Unsubscribe only clears the subscription's handler, and the list is
	// rebuilt once the subscriptions that left outnumber those that remain.
	// (Rebuilding it on every change made a topic's n subscribers cost
	// O(n²): a quarter of an edge's CPU in a connect storm of 10,000
	// sessions sharing a topic.)
	snapshot atomic.Pointer[[]*Subscription]
	left     int // subscriptions in snapshot that have left

	link  *link  // where the subscription is live or being made; nil when none is up
	id    string // its STOMP subscription id on link
	live  bool
	ready chan struct{} // closed once live on the current link

	unsubTimer *time.Timer
}

// subscriptions returns the dispatch list; entries whose handler is nil
// have left.
func (e *brokerSub) subscriptions() []*Subscription {
	if ss := e.snapshot.Load(); ss != nil {
		return *ss
	}
	return nil
}

// addLocked adds s to the dispatch list.
func (e *brokerSub) addLocked(s *Subscription) {
	ss := append(e.subscriptions(), s)
	e.snapshot.Store(&ss)
}

// removeLocked takes s, already deleted from subscribers, off dispatch.
func (e *brokerSub) removeLocked(s *Subscription) {
	s.handler.Store(nil)
	e.left++
	old := e.subscriptions()
	if e.left <= len(old)/2 {
		return
	}
	ss := make([]*Subscription, 0, len(e.subscribers))
	for _, x := range old {
		if x.handler.Load() != nil {
			ss = append(ss, x)
		}
	}
	e.left = 0
	e.snapshot.Store(&ss)
}

// Subscription is one local subscriber's share of a broker subscription.
type Subscription struct {
	pool    *Pool
	entry   *brokerSub
	handler atomic.Pointer[Handler] // nil once unsubscribed
	once    sync.Once
}

// Subscribe registers h for messages to the broker destination dest and
// returns at once. The first local subscriber of a destination makes the
// broker subscription (on reconnect it is made again, for as long as
// subscribers remain); Wait tells when it is live. Use only destinations
// built by this package's naming functions.
func (p *Pool) Subscribe(dest string, h Handler) *Subscription {
	return p.subscribe(dest, nil, h)
}

// SubscribeQueue is Subscribe for a destination whose messages must not be
// lost while its subscription moves to another connection: with RabbitMQ
// they wait in a durable queue of the given name, which the broker deletes
// once it has had no consumer for expires. (A plain /topic/ subscription's
// queue dies with its connection, and the broker confirms messages sent in
// the gap while dropping them.) Brokers without named queues, such as the
// embedded one, ignore the extra headers. Queue names must be unique to the
// subscribing process.
func (p *Pool) SubscribeQueue(dest, queue string, expires time.Duration, h Handler) *Subscription {
	return p.subscribe(dest, []string{
		"durable", "true",
		"auto-delete", "false",
		"x-queue-name", queue,
		"x-expires", strconv.FormatInt(expires.Milliseconds(), 10),
	}, h)
}

func (p *Pool) subscribe(dest string, headers []string, h Handler) *Subscription {
	s := &Subscription{pool: p}
	s.handler.Store(&h)
	p.mu.Lock()
	defer p.mu.Unlock()
	e := p.subs[dest]
	if e == nil {
		e = &brokerSub{dest: dest, headers: headers, subscribers: make(map[*Subscription]struct{}), ready: make(chan struct{})}
		p.subs[dest] = e
	}
	if e.unsubTimer != nil {
		e.unsubTimer.Stop()
		e.unsubTimer = nil
	}
	s.entry = e
	e.subscribers[s] = struct{}{}
	e.addLocked(s)
	if e.link == nil && !p.closed {
		if l := p.assignLocked(e); l != nil {
			p.confirmLocked(l, []*brokerSub{e})
		}
	}
	return s
}

// Wait blocks until the broker has confirmed the subscription (RECEIPT),
// so that messages sent to the destination from then on reach the handler.
func (s *Subscription) Wait(ctx context.Context) error {
	p := s.pool
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, p.cfg.ReceiptTimeout)
		defer cancel()
	}
	for {
		p.mu.Lock()
		live, ready := s.entry.live, s.entry.ready
		p.mu.Unlock()
		if live {
			return nil
		}
		select {
		case <-ready:
		case <-ctx.Done():
			return fmt.Errorf("%w: subscription to broker not confirmed: %w", ErrUnavailable, ctx.Err())
		}
	}
}

// Unsubscribe removes this subscriber. When it was the last one, the broker
// subscription ends after the pool's UnsubscribeDelay unless someone
// subscribes again meanwhile. Calling it twice is harmless.
func (s *Subscription) Unsubscribe() {
	s.once.Do(func() {
		p := s.pool
		p.mu.Lock()
		defer p.mu.Unlock()
		e := s.entry
		delete(e.subscribers, s)
		e.removeLocked(s)
		if len(e.subscribers) > 0 || p.closed {
			return
		}
		e.unsubTimer = time.AfterFunc(p.cfg.UnsubscribeDelay, func() { p.expire(e) })
	})
}

// expire ends the broker subscription of an entry that stayed unused.
func (p *Pool) expire(e *brokerSub) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(e.subscribers) > 0 || p.subs[e.dest] != e {
		return
	}
	delete(p.subs, e.dest)
	if l := e.link; l != nil {
		l.mu.Lock()
		delete(l.subs, e.id)
		l.mu.Unlock()
		// Messages that still arrive for the id are dropped by dispatch.
		p.writeLocked(l, frame.New(frame.UNSUBSCRIBE, frame.Id, e.id))
	}
}

// assignLocked sends the SUBSCRIBE for e on the least loaded link that is
// up and returns that link, or nil when none is up. The subscription
// becomes live when confirmLocked's receipt arrives.
func (p *Pool) assignLocked(e *brokerSub) *link {
	var best *link
	bestN := 0
	for _, l := range p.links {
		l.mu.Lock()
		n := len(l.subs)
		l.mu.Unlock()
		if best == nil || n < bestN {
			best, bestN = l, n
		}
	}
	if best == nil {
		return nil
	}
	id := "s" + strconv.FormatUint(p.nextSub.Add(1), 36)
	e.link, e.id = best, id
	best.mu.Lock()
	best.subs[id] = e
	best.mu.Unlock()
	f := frame.New(frame.SUBSCRIBE,
		frame.Id, id,
		frame.Destination, e.dest,
		frame.Ack, "auto")
	for i := 0; i+1 < len(e.headers); i += 2 {
		f.Header.Add(e.headers[i], e.headers[i+1])
	}
	p.writeLocked(best, f)
	return best
}

// confirmLocked marks entries live once l has processed their SUBSCRIBE
// frames. It follows them with a SEND to SyncDestination that asks for a
// RECEIPT: STOMP brokers process a connection's frames in order, so that
// receipt means every earlier SUBSCRIBE is in place. (go-stomp's server does
// not answer receipts on SUBSCRIBE itself; this works with every broker, and
// on reconnect one receipt confirms a whole batch.)
func (p *Pool) confirmLocked(l *link, entries []*brokerSub) {
	if l == nil || len(entries) == 0 {
		return
	}
	ids := make([]string, len(entries))
	for i, e := range entries {
		ids[i] = e.id
	}
	receipt := "r" + strconv.FormatUint(receiptSeq.Add(1), 36)
	ok := l.expect(receipt, func(err error) {
		if err != nil {
			return // the link is failing; linkDown reassigns
		}
		p.mu.Lock()
		defer p.mu.Unlock()
		for i, e := range entries {
			if e.link == l && e.id == ids[i] && !e.live {
				e.live = true
				close(e.ready)
			}
		}
	})
	if !ok {
		return
	}
	p.writeLocked(l, frame.New(frame.SEND,
		frame.Destination, SyncDestination,
		frame.ContentLength, "0",
		frame.Receipt, receipt))
}

// writeLocked queues f on l without blocking, since Pool.mu is held. The
// writer drains the queue continuously; a full queue means the link is
// stuck, and failing it moves its subscriptions to another link.
func (p *Pool) writeLocked(l *link, f *frame.Frame) {
	select {
	case l.out <- f:
	default:
		// close takes link.mu and completes receipts without Pool.mu; run
		// it outside this critical section.
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			l.close(fmt.Errorf("%w: broker write queue full", ErrUnavailable))
		}()
	}
}

// Live reports whether the broker subscription is currently confirmed.
func (s *Subscription) Live() bool {
	s.pool.mu.Lock()
	defer s.pool.mu.Unlock()
	return s.entry.live
}
