package main

import (
	"bytes"
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pushgate/pushgate/edge"
)

// openSessions opens n sessions, c.Concurrency at a time, each subscribed
// to dests(i), and calls at(k, elapsed) whenever k sessions (a checkpoint)
// are up. onMessage(i) returns the MESSAGE callback of session i.
func openSessions(ctx context.Context, c *config, n int, dests func(i int) []string,
	onMessage func(i int) func([]byte), at func(k int, elapsed time.Duration)) ([]*session, time.Duration, error) {
	sessions := make([]*session, n)
	start := time.Now()
	next := 0
	for _, cp := range c.Checkpoints {
		cp = min(cp, n)
		if cp <= next {
			continue
		}
		var (
			wg       sync.WaitGroup
			mu       sync.Mutex
			firstErr error
			failed   atomic.Int64
		)
		jobs := make(chan int)
		for w := 0; w < c.Concurrency; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range jobs {
					s, err := openOne(ctx, c, i, dests(i), onMessage(i))
					if err != nil {
						failed.Add(1)
						mu.Lock()
						if firstErr == nil {
							firstErr = fmt.Errorf("session %d: %w", i, err)
						}
						mu.Unlock()
						continue
					}
					sessions[i] = s
				}
			}()
		}
	feed:
		for i := next; i < cp; i++ {
			select {
			case jobs <- i:
			case <-ctx.Done():
				break feed
			}
		}
		close(jobs)
		wg.Wait()
		if firstErr != nil {
			closeAll(sessions)
			return nil, 0, fmt.Errorf("%d of %d sessions failed; first: %w", failed.Load(), cp-next, firstErr)
		}
		if ctx.Err() != nil {
			closeAll(sessions)
			return nil, 0, ctx.Err()
		}
		next = cp
		if at != nil {
			// What at does (scraping, asking the broker) is not connect time.
			t0 := time.Now()
			at(cp, t0.Sub(start))
			start = start.Add(time.Since(t0))
		}
	}
	return sessions, time.Since(start), nil
}

func openOne(ctx context.Context, c *config, i int, dests []string, onMessage func([]byte)) (*session, error) {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	o := dialOptions{kind: c.Transport, url: c.URLs[i%len(c.URLs)]}
	if c.LocalIPs > 1 {
		o.localIP = "127.0.0." + strconv.Itoa(1+(i/len(c.URLs))%c.LocalIPs)
	}
	if c.Target == "centrifugo" {
		return connectCentrifugo(ctx, c, o, i, dests, onMessage)
	}
	var login, passcode, host string
	if c.Target == "pushgate" {
		tok, err := edge.IssueToken([]byte(c.JWTSecret), userName(i), 6*time.Hour)
		if err != nil {
			return nil, err
		}
		o.token = tok
	} else {
		login, passcode, host = c.Login, c.Passcode, c.VHost
	}
	s, err := connect(ctx, o, login, passcode, host, i, onMessage)
	if err != nil {
		return nil, err
	}
	if len(dests) > 0 {
		if err := s.subscribe(ctx, dests...); err != nil {
			s.close()
			return nil, err
		}
	}
	return s, nil
}

func userName(i int) string { return "u" + strconv.Itoa(i) }

func closeAll(ss []*session) {
	var wg sync.WaitGroup
	for _, s := range ss {
		if s != nil {
			wg.Add(1)
			go func() { defer wg.Done(); s.close() }()
		}
	}
	wg.Wait()
}

// alive counts sessions whose transport has not failed.
func alive(ss []*session) (n int, firstErr error) {
	for _, s := range ss {
		if s == nil {
			continue
		}
		select {
		case err := <-s.failed:
			s.failed <- err
			if firstErr == nil {
				firstErr = err
			}
		default:
			n++
		}
	}
	return n, firstErr
}

// body builds a message body: "phase seq unixnanos " padded to size.
func body(size, phase int, seq uint64, now time.Time) []byte {
	b := make([]byte, 0, max(size, 48))
	b = strconv.AppendInt(b, int64(phase), 10)
	b = append(b, ' ')
	b = strconv.AppendUint(b, seq, 10)
	b = append(b, ' ')
	b = strconv.AppendInt(b, now.UnixNano(), 10)
	b = append(b, ' ')
	for len(b) < size {
		b = append(b, '.')
	}
	return b
}

// parseBody reverses body.
func parseBody(p []byte) (phase int, seq uint64, sent int64, ok bool) {
	f := bytes.SplitN(p, []byte{' '}, 4)
	if len(f) < 3 {
		return 0, 0, 0, false
	}
	ph, err1 := strconv.Atoi(string(f[0]))
	sq, err2 := strconv.ParseUint(string(f[1]), 10, 64)
	ts, err3 := strconv.ParseInt(string(f[2]), 10, 64)
	return ph, sq, ts, err1 == nil && err2 == nil && err3 == nil
}

// tally counts deliveries of one phase: per receiver (fan-out: each
// subscriber must get every message) or per message (push: each message
// has one receiver), with duplicates and latency.
type tally struct {
	phase     int
	perRecv   bool
	seen      [][]uint32 // perRecv: [receiver][seq/32] bitset; else [0][seq/32]
	mu        []sync.Mutex
	delivered atomic.Int64
	dups      atomic.Int64
	stray     atomic.Int64 // messages of another phase or unparseable
	lastNanos atomic.Int64
	lat       hist
}

func newTally(phase, receivers, maxSeq int, perRecv bool) *tally {
	words := (maxSeq + 31) / 32
	t := &tally{phase: phase, perRecv: perRecv}
	if !perRecv {
		receivers = 1
	}
	t.seen = make([][]uint32, receivers)
	t.mu = make([]sync.Mutex, receivers)
	for i := range t.seen {
		t.seen[i] = make([]uint32, words)
	}
	return t
}

func (t *tally) record(recv int, p []byte) {
	now := time.Now().UnixNano()
	phase, seq, sent, ok := parseBody(p)
	if !ok || phase != t.phase {
		t.stray.Add(1)
		return
	}
	r := 0
	if t.perRecv {
		r = recv
	}
	w, bit := int(seq/32), uint32(1)<<(seq%32)
	if w >= len(t.seen[r]) {
		t.stray.Add(1)
		return
	}
	t.mu[r].Lock()
	dup := t.seen[r][w]&bit != 0
	t.seen[r][w] |= bit
	t.mu[r].Unlock()
	if dup {
		t.dups.Add(1)
		return
	}
	t.delivered.Add(1)
	t.lat.record(time.Duration(now - sent))
	for {
		l := t.lastNanos.Load()
		if now <= l || t.lastNanos.CompareAndSwap(l, now) {
			break
		}
	}
}

// missing counts expected deliveries that did not arrive: for each receiver
// (or the one shared set) the seqs in sent that are not marked.
func (t *tally) missing(sent []bool) int64 {
	var n int64
	for r := range t.seen {
		t.mu[r].Lock()
		for seq, ok := range sent {
			if ok && t.seen[r][seq/32]&(1<<(seq%32)) == 0 {
				n++
			}
		}
		t.mu[r].Unlock()
	}
	return n
}

// waitDelivered waits until want deliveries were counted, or drain passes
// without progress.
func waitDelivered(ctx context.Context, t *tally, want int64, drain time.Duration) {
	last, lastChange := t.delivered.Load(), time.Now()
	for t.delivered.Load() < want && ctx.Err() == nil {
		time.Sleep(20 * time.Millisecond)
		if d := t.delivered.Load(); d != last {
			last, lastChange = d, time.Now()
		} else if time.Since(lastChange) > drain {
			return
		}
	}
}
