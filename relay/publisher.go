package relay

import (
	"context"
	"fmt"
	"strconv"

	"github.com/go-stomp/stomp/v3/frame"
)

// This file holds the send side of the pool. Sends to one destination go
// out at once while fewer than maxInFlight of them wait for the broker's
// RECEIPT; the sends that arrive meanwhile wait and then leave together, as
// one batch (batch.go) confirmed by one RECEIPT. A lone send therefore costs
// no added latency, and under load the number of broker messages grows with
// the round trips, not with the sends.

// maxInFlight bounds the unconfirmed broker messages per destination. One
// makes the largest batches: at 5,000 pushes/s through RabbitMQ, two in
// flight gave no better latency (within the noise of three runs each) for
// more broker frames.
const maxInFlight = 1

// outgoing is one Send waiting for its batch's confirmation.
type outgoing struct {
	ctx  context.Context
	m    *Message
	size int
	done chan error // buffered: the flusher never blocks on it
}

// publisher batches the sends to one destination (and order key).
// Its fields are guarded by Pool.sendMu.
type publisher struct {
	key      string
	waiting  []*outgoing
	inFlight int
}

// Send publishes m and returns once the broker has confirmed it with a
// RECEIPT (for RabbitMQ: routed to every queue bound at that moment). With
// no connection up it fails at once with ErrUnavailable.
func (p *Pool) Send(ctx context.Context, m *Message) error {
	select {
	case err := <-p.SendAsync(ctx, m):
		return err
	case <-ctx.Done():
		// A batch already on its way may still deliver m: the caller learns
		// only that it was not confirmed.
		return fmt.Errorf("%w: waiting for the broker: %w", ErrUnavailable, ctx.Err())
	}
}

// SendAsync is Send without the wait: the returned channel yields the
// outcome once, nil when the broker confirmed m. Callers that send one
// message to several destinations, or do other work meanwhile, need no
// goroutine per send. If ctx ends before m leaves, m is not sent and the
// outcome says so.
func (p *Pool) SendAsync(ctx context.Context, m *Message) <-chan error {
	o := &outgoing{ctx: ctx, m: m, size: batchEntrySize(m), done: make(chan error, 1)}
	if !p.Ready() {
		o.done <- fmt.Errorf("%w: no broker connection", ErrUnavailable)
	} else if err := p.queueSend(o); err != nil {
		o.done <- err
	} else {
		return o.done
	}
	p.metrics.sends.WithLabelValues("unavailable").Inc()
	return o.done
}

// queueSend adds o to its destination's publisher and starts a flush when
// fewer than maxInFlight are under way.
func (p *Pool) queueSend(o *outgoing) error {
	key := o.m.Destination + "\x00" + o.m.OrderKey
	p.sendMu.Lock()
	defer p.sendMu.Unlock()
	if p.sendClosed {
		return fmt.Errorf("%w: %w", ErrUnavailable, ErrClosed)
	}
	pub := p.publishers[key]
	if pub == nil {
		pub = &publisher{key: key}
		p.publishers[key] = pub
	}
	if len(pub.waiting) >= p.cfg.MaxWaitingSends {
		return fmt.Errorf("%w: %d sends to %s already wait for the broker", ErrUnavailable, len(pub.waiting), o.m.Destination)
	}
	pub.waiting = append(pub.waiting, o)
	if pub.inFlight < maxInFlight {
		pub.inFlight++
		batch := pub.takeLocked()
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			p.flush(pub, batch)
		}()
	}
	return nil
}

// takeLocked removes the next batch from the waiting sends: at least one,
// then as many as fit maxBatchMessages and maxBatchBytes.
func (pub *publisher) takeLocked() []*outgoing {
	n, size := 1, pub.waiting[0].size
	for n < len(pub.waiting) && n < maxBatchMessages && size+pub.waiting[n].size <= maxBatchBytes {
		size += pub.waiting[n].size
		n++
	}
	batch := pub.waiting[:n:n]
	pub.waiting = pub.waiting[n:]
	if len(pub.waiting) == 0 {
		pub.waiting = nil // let the old array go
	}
	return batch
}

// flush sends batch, reports the outcome to its senders, and goes on with
// the sends that queued up meanwhile. The publisher leaves the map once it
// has nothing waiting or in flight, so destinations used once cost nothing.
func (p *Pool) flush(pub *publisher, batch []*outgoing) {
	for {
		p.sendBatch(batch)
		p.sendMu.Lock()
		if len(pub.waiting) == 0 || p.sendClosed {
			pub.inFlight--
			if pub.inFlight == 0 && len(pub.waiting) == 0 {
				delete(p.publishers, pub.key)
			}
			p.sendMu.Unlock()
			return
		}
		batch = pub.takeLocked()
		p.sendMu.Unlock()
	}
}

// sendBatch publishes the messages of batch whose senders still wait, as
// one broker message, waits for its confirmation and reports to each.
func (p *Pool) sendBatch(batch []*outgoing) {
	live := make([]*outgoing, 0, len(batch))
	for _, o := range batch {
		if err := o.ctx.Err(); err != nil {
			o.done <- fmt.Errorf("%w: not sent: %w", ErrUnavailable, err)
			p.metrics.sends.WithLabelValues("error").Inc()
			continue
		}
		live = append(live, o)
	}
	if len(live) == 0 {
		return
	}
	var err error
	if l := p.pickLink(live[0].m.OrderKey); l == nil {
		err = fmt.Errorf("%w: no broker connection", ErrUnavailable)
	} else {
		p.metrics.batches.Inc()
		err = l.sendConfirmed(p.ctx, sendFrame(live))
	}
	result := "ok"
	if err != nil {
		result = "error"
	}
	p.metrics.sends.WithLabelValues(result).Add(float64(len(live)))
	for _, o := range live {
		o.done <- err
	}
}

// sendFrame builds the SEND for batch, all to one destination: the message
// itself when it is alone, else a batch sized by the entries' bounds.
func sendFrame(batch []*outgoing) *frame.Frame {
	m := batch[0].m
	f := frame.New(frame.SEND, frame.Destination, m.Destination)
	if len(batch) == 1 {
		if m.ContentType != "" {
			f.Header.Set(frame.ContentType, m.ContentType)
		}
		if m.Header != nil {
			for i := 0; i < m.Header.Len(); i++ {
				k, v := m.Header.GetAt(i)
				f.Header.Add(k, v)
			}
		}
		f.Body = m.Body
	} else {
		size := 0
		for _, o := range batch {
			size += o.size
		}
		body := make([]byte, 0, size)
		for _, o := range batch {
			body = appendBatchEntry(body, o.m)
		}
		f.Header.Set(frame.ContentType, batchContentType)
		f.Header.Set(HeaderBatch, strconv.Itoa(len(batch)))
		f.Body = body
	}
	f.Header.Set(frame.ContentLength, strconv.Itoa(len(f.Body)))
	return f
}

// closeSends fails the sends still waiting for their turn; Close calls it
// before it waits for the flushes under way.
func (p *Pool) closeSends() {
	p.sendMu.Lock()
	p.sendClosed = true
	var waiting []*outgoing
	for _, pub := range p.publishers {
		waiting = append(waiting, pub.waiting...)
		pub.waiting = nil
	}
	p.sendMu.Unlock()
	for _, o := range waiting {
		o.done <- fmt.Errorf("%w: %w", ErrUnavailable, ErrClosed)
	}
}
