package gateway

import (
	"context"
	"errors"
	"fmt"
	"mime"
	"net"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// errNoInstance means an lb:// service has no instance in rotation.
var errNoInstance = errors.New("no healthy instance")

// maxAttempts bounds how many instances one request tries after dial errors.
const maxAttempts = 3

// stateKey carries a request's *proxyState from the handler to Rewrite, the transport and the
// response hooks of the shared ReverseProxy.
type stateKey struct{}

// proxyState is what the handler decided for one proxied request, and what the proxy found.
// Only the request's own goroutine touches it (ReverseProxy calls Rewrite, RoundTrip,
// ModifyResponse and ErrorHandler from ServeHTTP's goroutine).
type proxyState struct {
	rt      *route
	path    string // escaped upstream path
	vars    map[string]string
	upgrade bool
	pol     policy
	key     string // the SockJS session id for policyHRW
	flight  *flight
	client  context.Context // the client request's own context, to tell a gone client from shutdown
	body    *limitedBody    // nil without a body

	inst     *instance // the instance of the last attempt (lb routes)
	status   int
	upgraded bool
}

func stateOf(r *http.Request) *proxyState {
	st, _ := r.Context().Value(stateKey{}).(*proxyState)
	return st
}

func (st *proxyState) instanceLabel() string {
	switch {
	case st.inst != nil:
		return st.inst.key
	case st.rt.target.kind == targetDirect:
		return st.rt.target.direct.Scheme + "://" + st.rt.target.direct.Host
	default:
		return "none"
	}
}

// newReverseProxy builds the one ReverseProxy every proxied route shares; the route-specific
// parts come from the request's proxyState.
func (g *Gateway) newReverseProxy() *httputil.ReverseProxy {
	return &httputil.ReverseProxy{
		Rewrite:   g.rewrite,
		Transport: &balancer{g: g},
		// Flush every write: SockJS xhr_streaming, eventsource and htmlfile frames must reach the
		// browser at once, and buffering a known-length response gains nothing worth the latency.
		FlushInterval:  -1,
		ModifyResponse: g.modifyResponse,
		ErrorHandler:   g.proxyError,
		ErrorLog:       slogLogger(g.log),
	}
}

// rewrite sets the forwarded request: the filtered path with its percent-encoding intact
// (alice%2Fbob stays one segment), the query string exactly as received (not re-encoded, even
// where ReverseProxy's cleaning would), X-Forwarded-For/Host/Proto (a client's own are replaced
// unless it is a trusted proxy), and the header filters.
// The client's Host header is kept (as Caddy does, and as Spring does with PreserveHostHeader),
// because the edges check a browser's Origin against Host; server.upstream_host: true sends the
// instance's host instead (Spring's default), except on routes with PreserveHostHeader.
func (g *Gateway) rewrite(pr *httputil.ProxyRequest) {
	st := stateOf(pr.In)
	out := pr.Out
	dec, _ := url.PathUnescape(st.path) // checked by the handler
	out.URL.Path, out.URL.RawPath = dec, st.path
	out.URL.RawQuery = pr.In.URL.RawQuery
	out.URL.Scheme, out.URL.Host = "http", "lb"
	if t := st.rt.target; t.kind == targetDirect {
		out.URL.Scheme, out.URL.Host = t.direct.Scheme, t.direct.Host
	}
	pr.SetXForwarded()
	if g.trusted(pr.In.RemoteAddr) {
		// A trusted hop in front: keep what it says about the original client.
		if prior := pr.In.Header.Values("X-Forwarded-For"); len(prior) > 0 {
			out.Header.Set("X-Forwarded-For", strings.Join(prior, ", ")+", "+out.Header.Get("X-Forwarded-For"))
		}
		for _, h := range []string{"X-Forwarded-Host", "X-Forwarded-Proto"} {
			if v := pr.In.Header.Get(h); v != "" {
				out.Header.Set(h, v)
			}
		}
	}
	if st.rt.filt.preserveHost || !g.cfg.Server.UpstreamHost {
		out.Host = pr.In.Host
	} else {
		out.Host = ""
	}
	for _, f := range st.rt.filt.headers {
		f.edit(out.Header, st.vars)
	}
}

// trusted reports whether the peer is one of Server.TrustedProxies.
func (g *Gateway) trusted(remoteAddr string) bool {
	if len(g.cfg.Server.TrustedProxies) == 0 {
		return false
	}
	ap, err := netip.ParseAddrPort(remoteAddr)
	if err != nil {
		return false
	}
	a := ap.Addr().Unmap()
	for _, p := range g.cfg.Server.TrustedProxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// modifyResponse records the status, counts upgraded connections, and marks streams so that
// shutdown cuts them instead of waiting for them.
func (g *Gateway) modifyResponse(resp *http.Response) error {
	st := stateOf(resp.Request)
	if st == nil {
		return nil
	}
	st.status = resp.StatusCode
	if st.body != nil {
		st.body.finish()
	}
	if resp.StatusCode == http.StatusSwitchingProtocols {
		st.upgraded = true
		g.met.websockets.WithLabelValues(st.rt.id, st.instanceLabel()).Inc()
		return nil
	}
	mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if resp.ContentLength < 0 || mt == "text/event-stream" {
		g.tracker.markLong(st.flight)
	}
	return nil
}

// proxyError answers a failed proxy round trip: 413 for a body over the limit, 408 for a body
// that stalled, 503 when the service has no instance in rotation or shutdown cut the request,
// 504 on a timeout, 502 otherwise.
func (g *Gateway) proxyError(w http.ResponseWriter, r *http.Request, err error) {
	st := stateOf(r)
	code := http.StatusBadGateway
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		code = http.StatusRequestEntityTooLarge
	case errors.Is(err, errBodyStalled) || (st != nil && st.body != nil && st.body.stalled.Load()):
		code = http.StatusRequestTimeout
		w.Header().Set("Connection", "close")
	case errors.Is(err, errNoInstance):
		code = http.StatusServiceUnavailable
	case st != nil && st.client.Err() != nil:
		// The client went away; nobody reads the answer.
		code = 499
	case r.Context().Err() != nil:
		// Shutdown cut a stream or long poll: tell the client to come back (to another gateway).
		code = http.StatusServiceUnavailable
		w.Header().Set("Connection", "close")
	case isTimeout(err):
		code = http.StatusGatewayTimeout
	}
	if st != nil {
		st.status = code
		if code == http.StatusBadGateway || code == http.StatusGatewayTimeout || code == http.StatusServiceUnavailable {
			g.log.Warn("gateway: upstream error", "route", st.rt.id, "instance", st.instanceLabel(), "path", r.URL.Path, "status", code, "err", err)
		}
	}
	if code == 499 {
		return
	}
	http.Error(w, http.StatusText(code), code)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}

// isDialError reports whether err happened while connecting, so the upstream never saw the
// request.
func isDialError(err error) bool {
	var oe *net.OpError
	return errors.As(err, &oe) && oe.Op == "dial"
}

// balancer is the proxy's RoundTripper: it picks the instance of an lb:// route by the request's
// policy, ejects an instance whose dial fails (passive health check) and retries another one when
// the request has no body to replay. A failed dial means the upstream never saw the request, so
// the retry is safe whatever the method; with a body there is nothing left to replay.
type balancer struct {
	g *Gateway
}

func (b *balancer) RoundTrip(req *http.Request) (*http.Response, error) {
	st := stateOf(req)
	if st == nil {
		return nil, errors.New("gateway: request without proxy state")
	}
	if st.rt.target.kind != targetLB {
		resp, err := b.g.transport.RoundTrip(req)
		if err != nil {
			b.g.met.errors.WithLabelValues(st.rt.id, st.instanceLabel()).Inc()
		}
		return resp, err
	}
	svc := st.rt.svc
	var tried []*instance
	var lastErr error
	for attempt := 0; attempt < maxAttempts; attempt++ {
		in := svc.pick(st.pol, st.key, tried)
		if in == nil {
			break
		}
		if st.upgrade {
			in.conns.Add(1) // counted from the pick, so a burst of upgrades spreads
		}
		st.inst = in
		out := *req.URL
		out.Scheme, out.Host = in.url.Scheme, in.url.Host
		r2 := req.WithContext(req.Context())
		r2.URL = &out
		resp, err := b.g.transport.RoundTrip(r2)
		if err == nil {
			return resp, nil
		}
		b.g.met.errors.WithLabelValues(st.rt.id, in.key).Inc()
		if st.upgrade {
			in.conns.Add(-1)
		}
		if !isDialError(err) {
			return nil, err
		}
		svc.eject(in, err)
		lastErr = err
		tried = append(tried, in)
		if req.Body != nil && req.Body != http.NoBody {
			break
		}
	}
	st.inst = nil
	if lastErr != nil {
		return nil, fmt.Errorf("service %s: %w (last: %w)", svc.name, errNoInstance, lastErr)
	}
	return nil, fmt.Errorf("service %s: %w", svc.name, errNoInstance)
}

// newTransport is the upstream transport. It uses no environment proxy, leaves compression to
// the client and upstream (the client's Accept-Encoding is forwarded), and has no overall
// timeout, since WebSockets live for hours and streams for minutes; only the wait for response
// headers is bounded (an upstream that accepts and never answers gets 504), generously, since
// SockJS long polls hold their response for about 25 s.
func newTransport(dialTimeout, responseHeaderTimeout time.Duration) *http.Transport {
	d := &net.Dialer{Timeout: dialTimeout, KeepAlive: 30 * time.Second}
	return &http.Transport{
		DialContext:           d.DialContext,
		MaxIdleConns:          1024,
		MaxIdleConnsPerHost:   128,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
		ResponseHeaderTimeout: responseHeaderTimeout,
		DisableCompression:    true,
	}
}

// serveProxy proxies one request to an lb:// or direct route.
func (g *Gateway) serveProxy(w http.ResponseWriter, r *http.Request, rt *route, m *matchState, upPath string, body *limitedBody) {
	upgrade := r.Header.Get("Upgrade") != "" && headerHasToken(r.Header, "Connection", "upgrade")
	pol, key := choosePolicy(upgrade, upPath)
	st := &proxyState{rt: rt, path: upPath, vars: m.vars, upgrade: upgrade, pol: pol, key: key, client: r.Context(), body: body}
	ctx, fl := g.tracker.begin(r.Context())
	st.flight = fl
	if pol == policyHRW {
		// SockJS polling holds the response open for about 25 s: shutdown need not wait for it.
		fl.long.Store(true)
	}
	r = r.WithContext(context.WithValue(ctx, stateKey{}, st))

	var hw *hijackWriter
	var gz *gzipWriter
	switch {
	case upgrade:
		hw = &hijackWriter{ResponseWriter: w, t: g.tracker}
		w = hw
	case !g.cfg.Server.DisableCompression && acceptsGzip(r):
		gz = &gzipWriter{ResponseWriter: w, head: r.Method == http.MethodHead}
		w = gz
	}
	defer func() {
		if body != nil {
			body.finish()
		}
		if gz != nil {
			gz.finish()
		}
		if hw != nil {
			hw.release()
		}
		label := st.instanceLabel()
		if st.upgrade && st.inst != nil {
			st.inst.conns.Add(-1)
		}
		if st.upgraded {
			g.met.websockets.WithLabelValues(rt.id, label).Dec()
		}
		code := st.status
		if code == 0 {
			code = 499 // the handler ended before any answer, such as a client gone mid-request
		}
		g.met.requests.WithLabelValues(rt.id, label, strconv.Itoa(code)).Inc()
		g.tracker.end(fl)
	}()
	g.rp.ServeHTTP(w, r)
}

// headerHasToken reports whether a comma-separated header holds token, case-insensitively.
func headerHasToken(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for _, t := range splitComma(v) {
			if equalFoldASCII(t, token) {
				return true
			}
		}
	}
	return false
}

func equalFoldASCII(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		ca, cb := a[i], b[i]
		if 'A' <= ca && ca <= 'Z' {
			ca += 'a' - 'A'
		}
		if 'A' <= cb && cb <= 'Z' {
			cb += 'a' - 'A'
		}
		if ca != cb {
			return false
		}
	}
	return true
}
