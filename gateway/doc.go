// Package gateway is pushgate's L7 gateway: Spring Cloud Gateway's route shorthand (a Spring
// application.yml route block loads unchanged), lb:// services from static or DNS discovery
// with active and passive health checks, and proxying on net/http/httputil.ReverseProxy that
// carries HTTP, WebSocket upgrades and SockJS streams. testdata/example.yaml lists every key.
//
// Routing is Spring's: routes sorted by order, and among equal orders the first declared that
// matches wins. So in the seed's block the first /web-socket/** route, with its RewritePath,
// takes every /web-socket request, upgrades included, and the two routes after it never match.
// lb://NAME and lb:ws://NAME are the same: both carry plain HTTP and upgrades.
//
// Balancing: WebSocket upgrades go to the instance with the fewest open upgraded connections;
// every request of one SockJS HTTP-transport session ({server}/{session}/{transport}, the last
// three segments of the upstream path) goes to the same instance by rendezvous hashing on the
// session id, without cookies; everything else is round robin. A SockJS websocket transport
// request is balanced by least connections (see choosePolicy for why).
//
// Hostile input: paths with "." or ".." segments, literal or percent-encoded, are refused
// (400) before and after rewriting; bodies over the limit get 413, headers over it 431, stalled
// bodies 408; ReadHeaderTimeout ends slowloris clients. No timeout applies to an upgraded
// connection: STOMP heart-beats keep it alive and only shutdown or a peer closes it.
//
// Files: config.go (types, defaults, loading), parse.go (the YAML walker), route.go,
// predicate.go, pattern.go (Ant-style patterns), filter.go, upstream.go (instances and
// services), discovery.go, selection.go, health.go, proxy.go, body.go (request body limits),
// conns.go (hijacked connections and streams, for shutdown), compress.go, metrics.go,
// gateway.go (New, Run, ServeHTTP), dev.go with dev.yaml.tmpl.
//
// Concurrency: selection reads instance snapshots and atomics without locks; service.mu only
// serializes discovery updates; tracker.mu guards the sets of hijacked connections and flights.
// No lock is held during network I/O. Every goroutine Run starts ends before Run returns.
package gateway
