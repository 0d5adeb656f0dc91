package faults

import (
	"fmt"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pushgate/pushgate/internal/stompclient"
)

// Push windows of a fault test.
const (
	windowBefore = iota
	windowDuring
	windowAfter
	windows
)

var windowNames = [windows]string{"before", "during", "after"}

// push is one SendToUser of a load run and what came of it.
type push struct {
	seq      int
	user     string
	window   int // when it was issued
	answered int // the window current when it was answered
	code     int // HTTP status, 0 when the request failed
	body     string
	issued   time.Time
	at       time.Time // answered
}

// load pushes to a set of users at a steady rate from a few concurrent
// callers, while their sessions record every MESSAGE they receive.
type load struct {
	t    *testing.T
	env  *env
	dest string // the users' /topic/... destination

	window atomic.Int32
	seq    atomic.Int64
	paused atomic.Bool
	ref    time.Time // for debug output: when the broker came back
	what   string    // the fault, for the report ("the outage")

	mu        sync.Mutex
	pushes    []*push
	delivered map[int]int // seq → deliveries
	errors    map[string][]string
	firstSeen map[string]time.Time // user → first delivery since markFirst
	clients   map[string]*stompclient.Client

	stop    chan struct{}
	pushers sync.WaitGroup
	readers sync.WaitGroup
}

func newLoad(t *testing.T, e *env, dest string) *load {
	l := &load{
		t: t, env: e, dest: dest, what: "the outage",
		delivered: map[int]int{},
		errors:    map[string][]string{},
		firstSeen: map[string]time.Time{},
		clients:   map[string]*stompclient.Client{},
		stop:      make(chan struct{}),
	}
	t.Cleanup(l.close)
	return l
}

// attach makes c user's session: it subscribes to /user+dest and records
// what c receives until the connection ends.
func (l *load) attach(user string, c *stompclient.Client) {
	l.t.Helper()
	if err := l.attachErr(user, c); err != nil {
		l.t.Fatal(err)
	}
}

// attachErr is attach for other goroutines than the test's.
func (l *load) attachErr(user string, c *stompclient.Client) error {
	if err := c.Subscribe("load", "/user"+l.dest, wait); err != nil {
		return fmt.Errorf("%s: subscribe: %w", user, err)
	}
	l.mu.Lock()
	delete(l.firstSeen, user)
	l.clients[user] = c
	l.mu.Unlock()
	l.readers.Add(1)
	go func() {
		defer l.readers.Done()
		for f := range c.Frames {
			l.mu.Lock()
			switch f.Command {
			case "MESSAGE":
				if seq, err := strconv.Atoi(string(f.Body)); err == nil {
					l.delivered[seq]++
				}
				if _, ok := l.firstSeen[user]; !ok {
					l.firstSeen[user] = time.Now()
				}
			case "ERROR":
				l.errors[user] = append(l.errors[user], f.Header.Get("message"))
			}
			l.mu.Unlock()
		}
	}()
	return nil
}

// errorsOf returns the ERROR messages user's sessions received.
func (l *load) errorsOf(user string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.errors[user]...)
}

// run starts callers pushers, each pushing to the users in turn every
// interval.
func (l *load) run(users []string, callers int, interval time.Duration) {
	for i := 0; i < callers; i++ {
		l.pushers.Add(1)
		go func() {
			defer l.pushers.Done()
			tick := time.NewTicker(interval)
			defer tick.Stop()
			for {
				select {
				case <-l.stop:
					return
				case <-tick.C:
				}
				if l.paused.Load() {
					continue
				}
				seq := int(l.seq.Add(1))
				p := &push{seq: seq, user: users[seq%len(users)], window: int(l.window.Load()), issued: time.Now()}
				p.code, p.body = l.env.sendToUser(p.user, l.dest, strconv.Itoa(seq))
				p.at = time.Now()
				p.answered = int(l.window.Load())
				l.mu.Lock()
				l.pushes = append(l.pushes, p)
				l.mu.Unlock()
			}
		}()
	}
}

func (l *load) setWindow(w int) { l.window.Store(int32(w)) }

// markFirst forgets first deliveries, to time the next ones.
func (l *load) markFirst() {
	l.mu.Lock()
	l.firstSeen = map[string]time.Time{}
	l.mu.Unlock()
}

// firstDeliveries returns, per user, when it first received a push since
// markFirst.
func (l *load) firstDeliveries() map[string]time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := map[string]time.Time{}
	for k, v := range l.firstSeen {
		out[k] = v
	}
	return out
}

// halt stops the pushers and waits up to timeout for every accepted push
// to be delivered.
func (l *load) halt(timeout time.Duration) {
	select {
	case <-l.stop:
	default:
		close(l.stop)
	}
	l.pushers.Wait()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		l.mu.Lock()
		missing := 0
		for _, p := range l.pushes {
			if p.code == http.StatusOK && l.delivered[p.seq] == 0 {
				missing++
			}
		}
		l.mu.Unlock()
		if missing == 0 {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (l *load) close() {
	select {
	case <-l.stop:
	default:
		close(l.stop)
	}
	l.pushers.Wait()
	l.mu.Lock()
	clients := l.clients
	l.clients = map[string]*stompclient.Client{}
	l.mu.Unlock()
	for _, c := range clients {
		c.Close()
	}
	l.readers.Wait()
}

// windowStats counts one window's pushes.
type windowStats struct {
	issued, accepted, refused503, otherErrors, delivered, acceptedMissing, refusedDelivered int
}

func (s windowStats) String() string {
	return fmt.Sprintf("issued %d, accepted %d, delivered %d (accepted but missing %d), 503 %d (of them delivered anyway %d), other errors %d",
		s.issued, s.accepted, s.delivered, s.acceptedMissing, s.refused503, s.refusedDelivered, s.otherErrors)
}

// check prints the windows' numbers and enforces the contract: every push
// of the before and after windows accepted and delivered exactly once;
// during, every push not delivered was answered with 503, and none was
// delivered twice. A push counts in the before window only if it was also
// answered before the outage began.
func (l *load) check() [windows]windowStats { return l.checkWith(nil) }

// checkWith is check for a run in which sessions went away during the
// window "during" (an edge drained): a push to a user without a session is
// accepted and dropped, so there only the users in undisturbed must have
// every accepted push delivered.
func (l *load) checkWith(undisturbed map[string]bool) [windows]windowStats {
	t := l.t
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	var st [windows]windowStats
	var firstBad [windows]string
	dups := 0
	for _, p := range l.pushes {
		w := p.window
		if w == windowBefore && p.answered != windowBefore {
			w = windowDuring
		}
		s := &st[w]
		s.issued++
		n := l.delivered[p.seq]
		if n > 1 {
			dups++
		}
		if n > 0 {
			s.delivered++
		}
		switch p.code {
		case http.StatusOK:
			s.accepted++
			if n == 0 {
				s.acceptedMissing++
				if undisturbed != nil && w == windowDuring && !undisturbed[p.user] {
					break
				}
				if firstBad[w] == "" {
					firstBad[w] = fmt.Sprintf("push %d to %s accepted but never delivered", p.seq, p.user)
				}
				if os.Getenv("FAULTS_DEBUG") != "" {
					t.Logf("missing: push %d to %s issued %v answered %v %s", p.seq, p.user, p.issued.Sub(l.ref).Round(time.Millisecond), p.at.Sub(l.ref).Round(time.Millisecond), p.body)
				}
			}
		case http.StatusServiceUnavailable:
			s.refused503++
			if n > 0 {
				s.refusedDelivered++
			}
			if w != windowDuring && firstBad[w] == "" {
				firstBad[w] = fmt.Sprintf("push %d to %s: HTTP 503 %s", p.seq, p.user, p.body)
			}
		default:
			s.otherErrors++
			if firstBad[w] == "" {
				firstBad[w] = fmt.Sprintf("push %d to %s: HTTP %d %s", p.seq, p.user, p.code, p.body)
			}
		}
	}
	for w := 0; w < windows; w++ {
		report(t, "pushes %-6s %s: %v", windowNames[w], l.what, st[w])
		if firstBad[w] != "" {
			t.Errorf("%s %s: %s", windowNames[w], l.what, firstBad[w])
		}
	}
	if dups > 0 {
		t.Errorf("%d pushes delivered more than once", dups)
	}
	if st[windowBefore].accepted == 0 || st[windowAfter].accepted == 0 {
		t.Errorf("no pushes accepted before or after the outage: %v / %v", st[windowBefore], st[windowAfter])
	}
	byMessage := map[string]int{}
	for _, errs := range l.errors {
		for _, msg := range errs {
			byMessage[msg]++
		}
	}
	var msgs []string
	for msg, n := range byMessage {
		msgs = append(msgs, fmt.Sprintf("%d × %q", n, msg))
	}
	sort.Strings(msgs)
	if len(msgs) > 0 {
		report(t, "ERROR frames received by the sessions: %s", strings.Join(msgs, ", "))
	}
	return st
}

// between returns the status codes of the pushes issued at or after from
// and answered before to.
func (l *load) between(from, to time.Time) map[int]int {
	l.mu.Lock()
	defer l.mu.Unlock()
	codes := map[int]int{}
	for _, p := range l.pushes {
		if !p.issued.Before(from) && p.at.Before(to) {
			codes[p.code]++
		}
	}
	return codes
}
