package edge

import (
	"sync"
	"sync/atomic"
	"time"
)

// outbox holds encoded frames waiting for the session's writer, bounded in
// bytes. Producers (the reader, relay fan-out, timers) never block on it:
// when a client falls behind by more than the bound, it is closed as slow.
type outbox struct {
	mu   sync.Mutex
	buf  []byte
	max  int
	wake chan struct{} // capacity 1: "there is something to write"
}

func newOutbox(max int) *outbox {
	return &outbox{max: max, wake: make(chan struct{}, 1)}
}

// push appends an encoded frame. It reports false, appending nothing, when
// that would exceed the bound.
func (o *outbox) push(frame []byte) bool {
	o.mu.Lock()
	if len(o.buf)+len(frame) > o.max {
		o.mu.Unlock()
		return false
	}
	o.buf = append(o.buf, frame...)
	o.mu.Unlock()
	o.signal()
	return true
}

// signal wakes the writer: frames are queued, or (session.close, CONNECT,
// the session's clock) it has something else to look at.
func (o *outbox) signal() {
	select {
	case o.wake <- struct{}{}:
	default:
	}
}

// push3 appends one frame given in three parts (a shared message's head,
// the session's own headers, its tail), like push(head+mid+tail) without
// building that slice.
func (o *outbox) push3(head, mid, tail []byte) bool {
	o.mu.Lock()
	if len(o.buf)+len(head)+len(mid)+len(tail) > o.max {
		o.mu.Unlock()
		return false
	}
	o.buf = append(append(append(o.buf, head...), mid...), tail...)
	o.mu.Unlock()
	o.signal()
	return true
}

// take returns everything queued and empties the queue, reusing spare, the
// buffer the writer finished with, to avoid an allocation per batch.
func (o *outbox) take(spare []byte) []byte {
	o.mu.Lock()
	defer o.mu.Unlock()
	b := o.buf
	if cap(spare) > 64<<10 {
		spare = nil // let a burst's large buffer go
	}
	o.buf = spare[:0]
	return b
}

// writeLoop is the only goroutine that writes to the session's transport:
// queued frames, heart-beats, and the final ERROR and close. It also keeps
// the session's clocks (client heart-beats, the first-frame deadline, token
// expiry) so that an idle session costs no other goroutine or timer.
//
// It waits on the outbox's wake channel alone: close, CONNECT (a change of
// clocks) and the clock timer signal it too, and it looks at what is due
// after each wake. Under fan-out a session is woken once per message, and
// a goroutine parked on one channel is woken for a fraction of what a
// select over four channels costs (each of which it must lock, queue on
// and dequeue from).
func (s *session) writeLoop() {
	defer close(s.writerDone)
	var clockDue atomic.Bool
	clock := time.AfterFunc(s.srv.cfg.FirstFrameTimeout, func() {
		clockDue.Store(true)
		s.out.signal()
	})
	defer clock.Stop()
	var spare []byte
	lastWrite := time.Now()
	for {
		<-s.out.wake
		select {
		case <-s.closing:
			s.finish(*s.reason.Load())
			return
		default:
		}
		rearm := false
		select {
		case <-s.clocksChanged:
			rearm = true
		default:
		}
		if clockDue.Swap(false) {
			rearm = true
			now := time.Now()
			if r, ok := s.checkClocks(now, lastWrite); !ok {
				s.close(r) // signals the wake channel: finish runs next
				continue
			}
			if c := s.clocks.Load(); c != nil && c.sendEvery > 0 && now.Sub(lastWrite) >= c.sendEvery {
				if err := s.write(heartBeatFrame); err != nil {
					s.close(reasonWriteTimeout)
					continue
				}
				lastWrite = now
			}
		}
		b := s.out.take(spare)
		spare = b // never the outbox's buffer now, so take may reuse it
		if len(b) > 0 {
			if err := s.write(b); err != nil {
				s.close(reasonWriteTimeout)
				continue
			}
			lastWrite = time.Now()
		}
		// The clock is re-armed only when it fired or the clocks changed:
		// a write only moves the next heart-beat later and no other clock
		// earlier, so an armed clock fires no later than needed, and an
		// early firing finds nothing due and re-arms.
		if rearm {
			clock.Reset(s.nextCheck(time.Now(), lastWrite))
		}
	}
}

var heartBeatFrame = []byte{'\n'}

// write sends one transport message and accounts for it.
func (s *session) write(b []byte) error {
	err := s.t.Write(b)
	if err == nil {
		s.srv.metrics.bytesOut.Add(float64(len(b)))
	}
	return err
}

// checkClocks reports whether the session may go on at now.
func (s *session) checkClocks(now, lastWrite time.Time) (closeReason, bool) {
	st := s.state.Load()
	if st == stateConnecting && now.Sub(s.started) >= s.srv.cfg.FirstFrameTimeout {
		return reasonFirstFrame, false
	}
	if c := s.clocks.Load(); st == stateConnected && c != nil {
		if c.expectWithin > 0 && now.Sub(time.Unix(0, s.lastRead.Load())) > c.expectWithin {
			return reasonHeartBeat(c.expectWithin), false
		}
		if !c.expires.IsZero() && !now.Before(c.expires) {
			return reasonTokenExpired, false
		}
	}
	return closeReason{}, true
}

// nextCheck returns how long the writer may sleep before a clock needs it.
func (s *session) nextCheck(now, lastWrite time.Time) time.Duration {
	next := time.Hour
	consider := func(at time.Time) {
		if d := at.Sub(now); d < next {
			next = d
		}
	}
	switch s.state.Load() {
	case stateConnecting:
		consider(s.started.Add(s.srv.cfg.FirstFrameTimeout))
	case stateConnected:
		c := s.clocks.Load()
		if c == nil {
			break
		}
		if c.sendEvery > 0 {
			consider(lastWrite.Add(c.sendEvery))
		}
		if c.expectWithin > 0 {
			consider(time.Unix(0, s.lastRead.Load()).Add(c.expectWithin))
		}
		if !c.expires.IsZero() {
			consider(c.expires)
		}
	}
	if next < time.Millisecond {
		next = time.Millisecond
	}
	return next
}

// finish ends the session on the writer goroutine, in order: flush what is
// queued (unless the queue is the problem), send the ERROR frame, close the
// transport. The reader sees its transport fail and cleans up the rest.
func (s *session) finish(r closeReason) {
	if r.flush {
		if b := s.out.take(nil); len(b) > 0 {
			_ = s.write(b)
		}
	}
	if r.errorFrame {
		f := &Frame{Command: "ERROR"}
		f.Add("message", r.message)
		if r.receiptID != "" {
			f.Add("receipt-id", r.receiptID)
		}
		for _, h := range r.headers {
			f.Add(h.Name, h.Value)
		}
		f.Add("content-type", "text/plain")
		f.Body = []byte(r.message)
		_ = s.write(AppendFrame(nil, s.version(), f))
	}
	_ = s.t.Close(r.code, r.message)
}
