package relay

import (
	"context"
	"fmt"
	"hash/fnv"
	"sync"
	"sync/atomic"
)

// Pool is a small, fixed set of broker connections shared by every session
// of a process. It keeps one broker subscription per destination, however
// many local subscribers it has.
//
// Lock order: Pool.mu before link.mu; neither is held during network I/O.
type Pool struct {
	cfg     Config
	conns   []*conn
	metrics *metrics

	ctx    context.Context // ends with Close
	cancel context.CancelFunc
	wg     sync.WaitGroup

	sendMu     sync.Mutex
	publishers map[string]*publisher // destination and order key → its sends
	sendClosed bool

	mu     sync.Mutex
	links  []*link               // links that are up, in no particular order
	subs   map[string]*brokerSub // destination → entry
	closed bool

	outages  uint64        // times the last link went down (guarded by mu)
	rr       atomic.Uint64 // round robin over links for sends
	nextSub  atomic.Uint64
	upSignal chan struct{} // closed and replaced whenever a link comes up
}

// New starts a pool that connects in the background. It returns at once:
// a broker that is down is not an error, the pool keeps trying and Ready
// reports the state.
func New(cfg Config) (*Pool, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	p := &Pool{
		cfg:        cfg,
		subs:       make(map[string]*brokerSub),
		publishers: make(map[string]*publisher),
		upSignal:   make(chan struct{}),
	}
	p.metrics = newMetrics(p)
	if cfg.Registerer != nil {
		if err := p.metrics.register(cfg.Registerer); err != nil {
			return nil, err
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	p.ctx, p.cancel = ctx, cancel
	for i := 0; i < cfg.Connections; i++ {
		c := &conn{pool: p, index: i, log: cfg.Logger.With("pool", cfg.Name)}
		p.conns = append(p.conns, c)
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			c.run(ctx)
		}()
	}
	return p, nil
}

// Close disconnects from the broker and waits for the pool's goroutines.
// Broker subscriptions end with their connections.
func (p *Pool) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	for _, e := range p.subs {
		if e.unsubTimer != nil {
			e.unsubTimer.Stop()
		}
	}
	p.mu.Unlock()
	p.closeSends()
	p.cancel()
	p.wg.Wait()
	return nil
}

// Ready reports whether at least one broker connection is up.
func (p *Pool) Ready() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.links) > 0
}

// Connected returns the number of broker connections that are up.
func (p *Pool) Connected() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.links)
}

// WaitReady blocks until a broker connection is up or ctx ends.
func (p *Pool) WaitReady(ctx context.Context) error {
	for {
		p.mu.Lock()
		up := len(p.links) > 0
		signal := p.upSignal
		p.mu.Unlock()
		if up {
			return nil
		}
		select {
		case <-signal:
		case <-ctx.Done():
			return fmt.Errorf("%w: %w", ErrUnavailable, ctx.Err())
		}
	}
}

// pickLink chooses the link for a send: the key's link when it is up, so
// that ordered messages share a connection, else round robin.
func (p *Pool) pickLink(key string) *link {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.links) == 0 {
		return nil
	}
	if key != "" {
		h := fnv.New32a()
		h.Write([]byte(key))
		want := int(h.Sum32() % uint32(len(p.conns)))
		for _, l := range p.links {
			if l.conn.index == want {
				return l
			}
		}
		return p.links[0]
	}
	return p.links[p.rr.Add(1)%uint64(len(p.links))]
}

// linkUp is called by a link once it is established.
func (p *Pool) linkUp(l *link) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return
	}
	p.links = append(p.links, l)
	close(p.upSignal)
	p.upSignal = make(chan struct{})
	p.reassignLocked()
}

// reassignLocked subscribes every entry that has subscribers but no link,
// confirming each link's batch with one receipt.
func (p *Pool) reassignLocked() {
	batches := make(map[*link][]*brokerSub)
	for _, e := range p.subs {
		if e.link == nil && len(e.subscribers) > 0 {
			if l := p.assignLocked(e); l != nil {
				batches[l] = append(batches[l], e)
			}
		}
	}
	for l, entries := range batches {
		p.confirmLocked(l, entries)
	}
}

// linkDown moves the subscriptions of a failed link to the links that are
// still up; with none up they wait for the next linkUp.
func (p *Pool) linkDown(l *link) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, x := range p.links {
		if x == l {
			p.links = append(p.links[:i], p.links[i+1:]...)
			if len(p.links) == 0 {
				p.outages++
			}
			break
		}
	}
	for _, e := range p.subs {
		if e.link != l {
			continue
		}
		e.link = nil
		e.id = ""
		if e.live {
			e.live = false
			e.ready = make(chan struct{})
		}
	}
	if !p.closed {
		p.reassignLocked()
	}
}

// NextConnect returns a channel that is closed the next time a broker
// connection comes up, so owners can resynchronise state the broker may
// have lost (edges re-announce their users).
func (p *Pool) NextConnect() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.upSignal
}

// LocalAddrs returns the local addresses of the broker connections that are
// up, so operators (and tests) can find them in the broker's own view.
func (p *Pool) LocalAddrs() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]string, 0, len(p.links))
	for _, l := range p.links {
		out = append(out, l.nc.LocalAddr().String())
	}
	return out
}

// Outages returns how many times the pool lost its last broker connection.
// While no connection is up, subscriptions that do not keep their messages
// in a named queue miss what is sent; a changed count after NextConnect
// tells an owner that it came back from such an outage, while a
// connection that comes up beside others (the pool's second at start, or
// one replacing a lost one) does not change it.
func (p *Pool) Outages() uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.outages
}
