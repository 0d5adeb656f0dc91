package gateway

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"
)

type targetKind uint8

const (
	targetLB       targetKind = iota + 1 // lb://NAME, lb:ws://NAME: a discovered, balanced service
	targetDirect                         // http://, https://, ws://, wss://: one fixed upstream
	targetInternal                       // internal://NAME: an in-process handler from Options
)

// target is where a route sends requests.
type target struct {
	kind   targetKind
	name   string   // service or handler name
	direct *url.URL // scheme and host of a direct target
}

// parseTarget reads a route uri. lb://NAME and lb:ws://NAME are the same: an lb route carries
// WebSocket upgrades too (as Spring's websocket filter does), so the ws only documents intent.
// The path of a direct uri is ignored, as in Spring.
func parseTarget(uri string) (target, error) {
	if uri == "" {
		return target{}, errors.New("missing uri")
	}
	if rest, ok := strings.CutPrefix(uri, "lb:"); ok {
		for _, s := range []string{"ws://", "wss://", "http://", "https://"} {
			if r, ok := strings.CutPrefix(rest, s); ok {
				rest = "//" + r
				break
			}
		}
		name, ok := strings.CutPrefix(rest, "//")
		name = strings.TrimSuffix(name, "/")
		if !ok || !serviceName.MatchString(name) {
			return target{}, fmt.Errorf("bad uri %q: want lb://SERVICE or lb:ws://SERVICE", uri)
		}
		return target{kind: targetLB, name: name}, nil
	}
	if name, ok := strings.CutPrefix(uri, "internal://"); ok {
		name = strings.TrimSuffix(name, "/")
		if !serviceName.MatchString(name) {
			return target{}, fmt.Errorf("bad uri %q: want internal://NAME", uri)
		}
		return target{kind: targetInternal, name: name}, nil
	}
	if !strings.Contains(uri, "://") {
		return target{}, fmt.Errorf("bad uri %q: want http://, ws://, lb://, lb:ws:// or internal://", uri)
	}
	u, err := instanceURL(uri)
	if err != nil {
		return target{}, fmt.Errorf("bad uri %q: %w", uri, err)
	}
	return target{kind: targetDirect, direct: u, name: u.Host}, nil
}

// route is a compiled Route.
type route struct {
	id     string
	order  int
	index  int // declaration index, the tie-breaker at equal order
	line   int
	uriLn  int
	preds  []predicate
	filt   compiledFilters
	target target

	svc     *service     // for targetLB, set by New
	handler http.Handler // for targetInternal, set by New
}

// compileRoute checks and compiles one route; errors carry the file and line of the culprit.
func compileRoute(file string, r *Route, index int) (*route, error) {
	cr := &route{id: r.ID, order: r.Order, index: index, line: r.Line, uriLn: r.URILine}
	var errs []error
	at := func(line int, err error) {
		if line == 0 {
			line = r.Line
		}
		errs = append(errs, &ConfigError{File: file, Line: line, Err: fmt.Errorf("route %q: %w", r.ID, err)})
	}
	t, err := parseTarget(r.URI)
	if err != nil {
		at(r.URILine, err)
	}
	cr.target = t
	for _, s := range r.Predicates {
		p, err := compilePredicate(s)
		if err != nil {
			at(s.Line, err)
			continue
		}
		cr.preds = append(cr.preds, p)
	}
	for _, s := range r.Filters {
		if err := cr.filt.add(s); err != nil {
			at(s.Line, err)
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return cr, nil
}

// matches reports whether every predicate of the route matches; a route without predicates
// matches everything.
func (rt *route) matches(r *http.Request, m *matchState) bool {
	for _, p := range rt.preds {
		if !p.match(r, m) {
			return false
		}
	}
	return true
}

// upstreamPath applies the route's path filters to the escaped request path.
func (rt *route) upstreamPath(escaped string) string {
	for _, f := range rt.filt.paths {
		escaped = f.rewrite(escaped)
	}
	if !strings.HasPrefix(escaped, "/") {
		escaped = "/" + escaped
	}
	return escaped
}

// router holds routes sorted by order, then declaration.
type router []*route

func newRouter(routes []*route) router {
	rs := append(router(nil), routes...)
	sort.SliceStable(rs, func(i, j int) bool {
		if rs[i].order != rs[j].order {
			return rs[i].order < rs[j].order
		}
		return rs[i].index < rs[j].index
	})
	return rs
}

// match returns the first route (by order, then declaration) whose predicates all match, as
// Spring does, so in the seed's block the first /web-socket/** route, with its RewritePath,
// takes every /web-socket request and the two routes after it are never reached.
func (rs router) match(r *http.Request) (*route, *matchState, error) {
	m, err := newMatchState(r)
	if err != nil {
		return nil, nil, err
	}
	for _, rt := range rs {
		m.vars = nil
		if rt.matches(r, m) {
			return rt, m, nil
		}
	}
	return nil, m, nil
}

// unsafePath reports whether an escaped path holds a "." or ".." segment, literally or
// percent-encoded ("%2e%2e"), also inside a segment that decodes to several ("a%2F..%2Fb"), or
// a NUL or backslash that some upstreams read as a separator. Such paths are refused before and
// after rewriting, so that no route's rewrite can be escaped by an upstream that cleans paths.
func unsafePath(escaped string) bool {
	for _, seg := range strings.Split(escaped, "/") {
		d := seg
		if strings.IndexByte(seg, '%') >= 0 {
			var err error
			if d, err = url.PathUnescape(seg); err != nil {
				return true
			}
		}
		if strings.ContainsAny(d, "\x00\\") {
			return true
		}
		for _, part := range strings.Split(d, "/") {
			if part == "." || part == ".." {
				return true
			}
		}
	}
	return false
}
