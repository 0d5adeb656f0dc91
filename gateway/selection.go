package gateway

import (
	"strings"
	"time"
)

// policy is how an instance is chosen for one request.
type policy uint8

const (
	// policyRoundRobin spreads plain HTTP requests.
	policyRoundRobin policy = iota
	// policyLeastConn sends a WebSocket upgrade to the instance with the fewest open upgraded
	// connections, so a restarted edge refills instead of staying empty.
	policyLeastConn
	// policyHRW sends every request of one SockJS session to the same instance by rendezvous
	// hashing on the session id: no cookie, and only the sessions of an instance that leaves
	// move when instances come and go.
	policyHRW
)

func (p policy) String() string {
	switch p {
	case policyLeastConn:
		return "least_conn"
	case policyHRW:
		return "hrw"
	default:
		return "round_robin"
	}
}

// sockjsTransports are the SockJS 0.3.3 per-session transports.
var sockjsTransports = map[string]bool{
	"websocket": true, "xhr": true, "xhr_send": true, "xhr_streaming": true,
	"eventsource": true, "htmlfile": true, "jsonp": true, "jsonp_send": true,
}

// sockjsSession returns the session id of a SockJS session request: the last three segments of
// the upstream path are {server}/{session}/{transport} with a known transport and non-empty ids
// without dots (SockJS forbids them), whatever prefix comes before.
func sockjsSession(escapedPath string) (session, transport string, ok bool) {
	p := strings.TrimSuffix(escapedPath, "/")
	i := strings.LastIndexByte(p, '/')
	if i < 0 || !sockjsTransports[p[i+1:]] {
		return "", "", false
	}
	transport, p = p[i+1:], p[:i]
	i = strings.LastIndexByte(p, '/')
	if i < 0 {
		return "", "", false
	}
	session, p = p[i+1:], p[:i]
	i = strings.LastIndexByte(p, '/')
	if i < 0 {
		return "", "", false
	}
	server := p[i+1:]
	if server == "" || session == "" || strings.Contains(server, ".") || strings.Contains(session, ".") {
		return "", "", false
	}
	return session, transport, true
}

// choosePolicy picks the balancing policy of a request to an lb:// service.
//
// A SockJS "websocket" transport request is both an upgrade and a session request; it is
// balanced by least connections, not by the session hash. A SockJS session that uses the
// websocket transport consists of that one request (the client opens a new session, with a new
// id, when it falls back to another transport), so hashing buys no stickiness there, while least
// connections corrects imbalance (an edge that restarts empty is refilled first). Every request of
// an HTTP-transport session (xhr, xhr_send, xhr_streaming, eventsource, htmlfile, jsonp,
// jsonp_send) is hashed, so xhr_send reaches the edge holding the session.
func choosePolicy(upgrade bool, upstreamPath string) (policy, string) {
	if upgrade {
		return policyLeastConn, ""
	}
	if session, _, ok := sockjsSession(upstreamPath); ok {
		return policyHRW, session
	}
	return policyRoundRobin, ""
}

// pick chooses an available instance not in exclude, or nil when there is none.
func (s *service) pick(pol policy, key string, exclude []*instance) *instance {
	insts := s.instances()
	n := len(insts)
	if n == 0 {
		return nil
	}
	now := time.Now().UnixNano()
	ok := func(in *instance) bool { return in.available(now) && !contains(exclude, in) }
	switch pol {
	case policyHRW:
		kh := hashString(key)
		var best *instance
		var bestScore uint64
		for _, in := range insts {
			if !ok(in) {
				continue
			}
			if sc := mix64(kh ^ in.seed); best == nil || sc > bestScore {
				best, bestScore = in, sc
			}
		}
		return best
	case policyLeastConn:
		// Start at a rotating offset so that ties spread instead of all going to the first.
		start := int(s.rr.Add(1) % uint64(n))
		var best *instance
		var bestConns int64
		for k := 0; k < n; k++ {
			in := insts[(start+k)%n]
			if !ok(in) {
				continue
			}
			if c := in.conns.Load(); best == nil || c < bestConns {
				best, bestConns = in, c
			}
		}
		return best
	default:
		// Count the available instances and take the cursor's one among them, so that the
		// neighbour of an instance out of rotation does not get its share too.
		avail := 0
		for _, in := range insts {
			if ok(in) {
				avail++
			}
		}
		if avail == 0 {
			return nil
		}
		want := int(s.rr.Add(1) % uint64(avail))
		for _, in := range insts {
			if ok(in) {
				if want == 0 {
					return in
				}
				want--
			}
		}
		// Availability changed between the passes: take any available instance.
		for _, in := range insts {
			if ok(in) {
				return in
			}
		}
		return nil
	}
}

func contains(list []*instance, in *instance) bool {
	for _, x := range list {
		if x == in {
			return true
		}
	}
	return false
}

// hashString is 64-bit FNV-1a; the rendezvous score must be the same in every gateway replica
// and across restarts, so no per-process seed.
func hashString(s string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return h
}

// mix64 is the splitmix64 finalizer; it spreads FNV's weak low bits over the whole score.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}
