package gateway

import (
	"log/slog"
	"net/url"
	"sync"
	"sync/atomic"
	"time"
)

// instance is one upstream of an lb:// service. Selection reads its atomics without locks.
type instance struct {
	url  *url.URL
	key  string // "http://host:port", the identity across discovery updates and the metrics label
	seed uint64 // hash of key, mixed into the rendezvous score

	healthy atomic.Bool
	// conns counts upgraded connections plus upgrades being set up, for least-connections.
	conns atomic.Int64
	// okRun and failRun count consecutive active check results, against the thresholds.
	okRun, failRun atomic.Int32
	// ejectedUntil (Unix nanoseconds) keeps a passively ejected instance out when active checks
	// are disabled, since nothing else would bring it back.
	ejectedUntil atomic.Int64
}

func newInstance(u *url.URL) *instance {
	key := u.Scheme + "://" + u.Host
	return &instance{url: u, key: key, seed: hashString(key)}
}

// available reports whether the instance may get new requests.
func (in *instance) available(now int64) bool {
	return in.healthy.Load() && in.ejectedUntil.Load() <= now
}

// service is an lb:// service: its current instances, its health policy and balancing state.
type service struct {
	name   string
	disc   Discovery
	health Health
	log    *slog.Logger
	met    *metrics

	mu    sync.Mutex // serializes updates of insts
	insts atomic.Pointer[[]*instance]
	rr    atomic.Uint64 // round-robin cursor
	// recheck asks the health loop for an immediate round, after discovery added instances.
	recheck chan struct{}
}

func newService(name string, d Discovery, h Health, log *slog.Logger, met *metrics) *service {
	s := &service{name: name, disc: d, health: h, log: log.With("service", name), met: met, recheck: make(chan struct{}, 1)}
	empty := []*instance{}
	s.insts.Store(&empty)
	return s
}

// instances returns the current snapshot; callers must not modify it.
func (s *service) instances() []*instance { return *s.insts.Load() }

// setInstances replaces the instance set, keeping the state of instances that remain. New
// instances start healthy when initial is true (the first set, so that the gateway serves at
// once and passive checks catch the dead) and unhealthy otherwise, until an active check passes.
func (s *service) setInstances(urls []*url.URL, initial bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	old := map[string]*instance{}
	for _, in := range s.instances() {
		old[in.key] = in
	}
	next := make([]*instance, 0, len(urls))
	added := false
	for _, u := range urls {
		in := newInstance(u)
		if prev, ok := old[in.key]; ok {
			next = append(next, prev)
			delete(old, in.key)
			continue
		}
		if seen(next, in.key) {
			continue
		}
		in.healthy.Store(initial || s.health.Disabled)
		next = append(next, in)
		s.met.setHealthy(s.name, in.key, in.healthy.Load())
		if initial {
			s.log.Debug("gateway: instance added", "instance", in.key)
		} else {
			s.log.Info("gateway: instance added", "instance", in.key)
		}
		added = true
	}
	for _, in := range old {
		s.met.forgetInstance(s.name, in.key)
		s.log.Info("gateway: instance removed", "instance", in.key)
	}
	s.insts.Store(&next)
	if added && !initial {
		select {
		case s.recheck <- struct{}{}:
		default:
		}
	}
}

func seen(list []*instance, key string) bool {
	for _, in := range list {
		if in.key == key {
			return true
		}
	}
	return false
}

// healthyCount returns the number of instances available now.
func (s *service) healthyCount() int {
	now := time.Now().UnixNano()
	n := 0
	for _, in := range s.instances() {
		if in.available(now) {
			n++
		}
	}
	return n
}

// eject takes an instance out of rotation at once after a failed dial (passive check). With
// active checks it comes back after HealthyThreshold passes; without, after one Interval.
func (s *service) eject(in *instance, err error) {
	in.okRun.Store(0)
	if s.health.Disabled {
		in.ejectedUntil.Store(time.Now().Add(s.health.Interval).UnixNano())
		s.log.Warn("gateway: instance ejected", "instance", in.key, "for", s.health.Interval, "err", err)
		return
	}
	if in.healthy.Swap(false) {
		s.met.setHealthy(s.name, in.key, false)
		s.log.Warn("gateway: instance ejected until its health check passes", "instance", in.key, "err", err)
	}
}

// report records one active check result against the thresholds.
func (s *service) report(in *instance, ok bool, err error) {
	if ok {
		in.failRun.Store(0)
		if n := in.okRun.Add(1); n >= int32(s.health.HealthyThreshold) && !in.healthy.Load() {
			in.healthy.Store(true)
			s.met.setHealthy(s.name, in.key, true)
			s.log.Info("gateway: instance healthy", "instance", in.key)
		}
		return
	}
	in.okRun.Store(0)
	if n := in.failRun.Add(1); n >= int32(s.health.UnhealthyThreshold) && in.healthy.Load() {
		in.healthy.Store(false)
		s.met.setHealthy(s.name, in.key, false)
		s.log.Warn("gateway: instance unhealthy", "instance", in.key, "err", err)
	}
}
