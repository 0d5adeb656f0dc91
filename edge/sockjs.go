package edge

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"github.com/igm/sockjs-go/v3/sockjs"
)

// SockJS serving is split in two. The HTTP transports (xhr, xhr_send,
// xhr_streaming, eventsource, htmlfile, jsonp, jsonp_send) plus the greeting,
// /info and the iframe page are igm/sockjs-go's, configured and wrapped here
// to close its gaps with the 0.3.3 protocol:
//
//   - status codes and texts for bad payloads and callbacks (it answers 400
//     with other words): wrapped, the request is checked here first and only
//     a valid one reaches sockjs-go (sockjs_encode.go);
//   - the unicode escaping the protocol requires of server frames (it uses
//     encoding/json, which leaves U+200C–U+200F, U+202A–U+202F,
//     U+2060–U+206F and U+FFF0–U+FFFF raw): wrapped, the ResponseWriter it
//     writes frames to escapes them;
//   - no bound on request bodies: wrapped, 413 above MaxMessageBytes;
//   - Set-Cookie on /info when JSESSIONID is on: wrapped, stripped;
//   - an iframe ETag that ignores the sockjs-client URL: wrapped, replaced by
//     a hash of the page actually served;
//   - its iframe page points at a CDN by default: configured (ClientURL);
//   - Send buffers without bound while no request is receiving: wrapped, see
//     sockjsPending;
//   - no write deadline on streaming responses: wrapped, each frame write
//     gets WriteTimeout;
//   - Origin: wrapped, originAllowed answers 403 before sockjs-go sees the
//     request; its CORS headers then follow the 0.3.3 suite (configuration);
//   - a spurious c[2010,"Another connection still open"] when a client polls
//     again the instant its previous poll ended (sockjs-go detaches the old
//     request on a goroutine): wrapped, swallowed and the request retried;
//   - a first request that stalls past the disconnect delay attaches to an
//     already closed session and would hang: wrapped, ended (see release).
//
// Left as sockjs-go does it: the entropy in /info is math/rand's 31 bits;
// eventsource frames %-escape "%", "\r", "\n" and NUL (sockjs-client
// decodeURIs them); a closed HTTP-transport session lingers, answering its
// close frame, for a disconnect delay (one goroutine each), shutdown
// included; a receiving request that arrives in the instant between an
// aborted session's close and sockjs-go forgetting it waits for a heartbeat.
//
// The two WebSocket endpoints (/{server}/{session}/websocket and the raw
// /websocket) are pushgate's own code on gorilla/websocket
// (sockjs_websocket.go): sockjs-go gives no access to the connection, so
// neither a read limit nor the unicode escaping nor the STOMP subprotocols
// could be added by configuration or wrapping.

// SockJSConfig holds the SockJS server options; zero fields get the protocol
// defaults.
type SockJSConfig struct {
	// Prefix is the URL path the endpoint is served under, for example "/ws"
	// (the default); it must start with "/" and not end with one.
	Prefix string
	// Heartbeat is how often an idle receiving connection gets an "h" frame;
	// default 25s.
	Heartbeat time.Duration
	// DisconnectDelay is how long a session lives with no receiving request
	// before it is closed and released; default 5s.
	DisconnectDelay time.Duration
	// ResponseLimit is how many bytes a streaming response (xhr_streaming,
	// eventsource, htmlfile) carries before it is ended and the client opens
	// another; default 128 KiB.
	ResponseLimit int
	// MaxSessions bounds the open SockJS sessions of this endpoint, over all
	// transports; a request that would open one more gets 503. Default 10000.
	MaxSessions int
	// MaxMessageBytes bounds one client-to-server request body (xhr_send,
	// jsonp_send) or WebSocket message; larger bodies get 413 and larger
	// WebSocket messages close the connection (1009). Default 128 KiB: a
	// 64 KiB STOMP frame, JSON-escaped, with room to spare.
	MaxMessageBytes int
	// AllowedOrigins is checked with originAllowed on WebSocket upgrades, on
	// /info and on every session request (403 when refused). Empty means the
	// same host only.
	AllowedOrigins []string
	// JSessionID sets cookie_needed in /info and a JSESSIONID cookie (dummy,
	// or the client's own value echoed) on session requests, for load
	// balancers that are sticky only on that cookie. Off by default.
	JSessionID bool
	// DisableWebSocket turns the websocket transports off (/info then says
	// websocket:false), for load balancers that cannot carry WebSocket.
	DisableWebSocket bool
	// ClientURL is the sockjs-client script the iframe page (used by the
	// iframe-based transports when the page is on another origin) loads.
	// Default "/sockjs.min.js": the gateway's demo route serves sockjs-client
	// 1.6.1's dist/sockjs.min.js there, built by `make web`. Point it
	// elsewhere when the edge is reached without the gateway. Never a CDN.
	ClientURL string
	// WriteTimeout bounds one write of frames to a client; a client that does
	// not take them in time fails the write, and its session closes. Default
	// 10s.
	WriteTimeout time.Duration
}

// SockJS defaults, as in the protocol, sockjs-node, Spring and sockjs-go.
const (
	defaultSockJSPrefix          = "/ws"
	defaultSockJSHeartbeat       = 25 * time.Second
	defaultSockJSDisconnectDelay = 5 * time.Second
	defaultSockJSResponseLimit   = 128 << 10
	defaultSockJSMaxSessions     = 10000
	defaultSockJSMaxMessageBytes = 128 << 10
	defaultSockJSClientURL       = "/sockjs.min.js"
	defaultSockJSWriteTimeout    = 10 * time.Second

	// sockjsPendingLimit bounds the bytes handed to sockjs-go that no
	// response has carried yet (see sockjsPending).
	sockjsPendingLimit = 256 << 10
)

// withDefaults fills zero fields and validates the rest.
func (c SockJSConfig) withDefaults() (SockJSConfig, error) {
	if c.Prefix == "" {
		c.Prefix = defaultSockJSPrefix
	}
	if c.Heartbeat == 0 {
		c.Heartbeat = defaultSockJSHeartbeat
	}
	if c.DisconnectDelay == 0 {
		c.DisconnectDelay = defaultSockJSDisconnectDelay
	}
	if c.ResponseLimit == 0 {
		c.ResponseLimit = defaultSockJSResponseLimit
	}
	if c.MaxSessions == 0 {
		c.MaxSessions = defaultSockJSMaxSessions
	}
	if c.MaxMessageBytes == 0 {
		c.MaxMessageBytes = defaultSockJSMaxMessageBytes
	}
	if c.ClientURL == "" {
		c.ClientURL = defaultSockJSClientURL
	}
	if c.WriteTimeout == 0 {
		c.WriteTimeout = defaultSockJSWriteTimeout
	}
	var errs []error
	if !strings.HasPrefix(c.Prefix, "/") || (len(c.Prefix) > 1 && strings.HasSuffix(c.Prefix, "/")) {
		errs = append(errs, fmt.Errorf("sockjs: prefix %q must start with / and not end with one", c.Prefix))
	}
	if c.Heartbeat < 0 || c.DisconnectDelay < 0 || c.WriteTimeout < 0 {
		errs = append(errs, errors.New("sockjs: heartbeat, disconnect delay and write timeout must be positive"))
	}
	if c.ResponseLimit < 0 || c.MaxSessions < 0 || c.MaxMessageBytes < 0 {
		errs = append(errs, errors.New("sockjs: response limit, max sessions and max message bytes must be positive"))
	}
	if strings.ContainsAny(c.ClientURL, "\"<>") {
		errs = append(errs, fmt.Errorf("sockjs: client URL %q must not contain quotes or angle brackets", c.ClientURL))
	}
	return c, errors.Join(errs...)
}

// sockjsHandler serves one SockJS endpoint. Lock order: sockjs-go's session
// lock, then sockjsHandler.mu, then sockjsPending.mu; none is held across a
// network write except sockjs-go's own.
type sockjsHandler struct {
	cfg        SockJSConfig
	inner      *sockjs.Handler
	onSession  func(t Transport, r *http.Request, recv func() ([]byte, error))
	upgrader   websocket.Upgrader
	iframeETag string

	mu       sync.Mutex
	closed   bool                    // shutting down: no new sessions
	open     int                     // sessions counted against MaxSessions
	sessions map[string]*sockjsEntry // HTTP-transport sessions by session id
	live     map[Transport]struct{}  // running sessions, closed on shutdown
	wg       sync.WaitGroup          // running onSession calls
}

// sockjsEntry is pushgate's record of one HTTP-transport session, keyed like
// sockjs-go's own by the session id segment of the URL.
type sockjsEntry struct {
	state   sockjsEntryState
	pending sockjsPending
	// expiry, when set: a reservation's end, or a done entry's removal.
	expiry *time.Timer
	// receivers are the receiving requests in flight.
	receivers map[*sockjsResponseWriter]context.CancelFunc
	// appClosed is set when the application (Transport.Close) closed the
	// session, as opposed to sockjs-go closing it (disconnect delay, or
	// the receiving request aborted by the network).
	appClosed atomic.Bool
}

type sockjsEntryState int

const (
	// sockjsReserved: a receiving request for an unknown id passed the
	// MaxSessions check and went to sockjs-go, which is about to start the
	// session; the slot is counted from here so that concurrent requests
	// cannot overshoot MaxSessions.
	sockjsReserved sockjsEntryState = iota
	// sockjsRunning: onSession runs.
	sockjsRunning
	// sockjsDone: onSession returned; sockjs-go may still answer the close
	// frame for a while. Not counted.
	sockjsDone
)

// newSockJSHandler returns the handler for cfg.Prefix. For each new SockJS
// session it calls onSession on a goroutine owned by the handler; onSession
// runs the session to its end: it reads with recv (which returns each client
// message as bytes, and an error once the session is closed) and writes
// through t. When onSession returns, the SockJS session is closed (if not
// already).
//
// r is the request that opened the session (its URL carries access_token);
// for HTTP transports its context ends with that request, not with the
// session. recv must be called from one goroutine at a time.
func newSockJSHandler(cfg SockJSConfig, onSession func(t Transport, r *http.Request, recv func() ([]byte, error))) (http.Handler, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if onSession == nil {
		return nil, errors.New("sockjs: onSession is nil")
	}
	h := &sockjsHandler{
		cfg:       cfg,
		onSession: onSession,
		sessions:  make(map[string]*sockjsEntry),
		live:      make(map[Transport]struct{}),
	}
	h.upgrader = websocket.Upgrader{
		// SockJS's own websocket transport offers no subprotocol; STOMP
		// clients on the raw /websocket offer these, and Chrome fails the
		// handshake unless one is echoed.
		Subprotocols: []string{"v12.stomp", "v11.stomp", "v10.stomp"},
		CheckOrigin:  func(r *http.Request) bool { return originAllowed(r, cfg.AllowedOrigins) },
	}
	opts := sockjs.Options{
		SockJSURL:       cfg.ClientURL,
		ResponseLimit:   uint32(cfg.ResponseLimit),
		Websocket:       !cfg.DisableWebSocket, // only /info reads it: websocket paths never reach sockjs-go
		HeartbeatDelay:  cfg.Heartbeat,
		DisconnectDelay: cfg.DisconnectDelay,
	}
	if cfg.JSessionID {
		opts.JSessionID = sockjs.DefaultJSessionID
	}
	h.inner = sockjs.NewHandler(cfg.Prefix, opts, h.runHTTPSession)
	h.iframeETag = h.renderIframeETag()
	return h, nil
}

// Paths below the prefix. sockjs-go matches the same shapes; these decide
// which of pushgate's checks apply before it does.
var (
	sockjsSessionPath = regexp.MustCompile(`^/([^/.]+)/([^/.]+)/([^/.]+)$`)
	sockjsIframePath  = regexp.MustCompile(`^/iframe[0-9a-z._-]*\.html$`)
)

// ServeHTTP routes one request of the endpoint.
func (h *sockjsHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rest, ok := strings.CutPrefix(r.URL.Path, h.cfg.Prefix)
	if !ok || (rest != "" && rest[0] != '/') {
		http.NotFound(w, r)
		return
	}
	switch {
	case rest == "" || rest == "/":
		h.inner.ServeHTTP(w, r) // greeting
	case rest == "/info":
		if h.checkOrigin(w, r) {
			h.inner.ServeHTTP(&sockjsNoCookieWriter{ResponseWriter: w}, r)
		}
	case rest == "/websocket":
		h.serveWebSocket(w, r, true)
	case sockjsIframePath.MatchString(rest):
		h.serveIframe(w, r)
	default:
		m := sockjsSessionPath.FindStringSubmatch(rest)
		if m == nil {
			h.inner.ServeHTTP(w, r) // 404
			return
		}
		h.serveSession(w, r, m[2], m[3])
	}
}

// sockjsTransportMethods is the method each session transport is served on;
// other methods go to sockjs-go, which answers OPTIONS preflights and 405.
var sockjsTransportMethods = map[string]string{
	"xhr":           http.MethodPost,
	"xhr_streaming": http.MethodPost,
	"xhr_send":      http.MethodPost,
	"jsonp_send":    http.MethodPost,
	"eventsource":   http.MethodGet,
	"htmlfile":      http.MethodGet,
	"jsonp":         http.MethodGet,
}

// serveSession serves /{server}/{session}/{transport}.
func (h *sockjsHandler) serveSession(w http.ResponseWriter, r *http.Request, id, transport string) {
	if transport == "websocket" {
		h.serveWebSocket(w, r, false)
		return
	}
	method, known := sockjsTransportMethods[transport]
	if !known {
		h.inner.ServeHTTP(w, r) // 404
		return
	}
	if !h.checkOrigin(w, r) {
		return
	}
	if r.Method != method {
		h.inner.ServeHTTP(w, r) // OPTIONS preflight, or 405
		return
	}
	switch transport {
	case "xhr_send", "jsonp_send":
		h.serveSend(w, r, transport)
		return
	}
	var callback string
	if transport == "jsonp" || transport == "htmlfile" {
		callback = r.URL.Query().Get("c")
		if err := checkSockJSCallback(callback); err != nil {
			sockjsError(w, err)
			return
		}
	}
	entry, err := h.reserve(id)
	if err != nil {
		sockjsError(w, err)
		return
	}
	sw := &sockjsResponseWriter{
		ResponseWriter: w,
		h:              h,
		rc:             http.NewResponseController(w),
		dataPrefix:     sockjsFramePrefix(transport, callback, "a["),
		busyPrefix:     sockjsFramePrefix(transport, callback, "c[2010,"),
		entry:          entry,
		timeout:        h.cfg.WriteTimeout,
	}
	defer sw.finish()
	// sockjs-go ends a receiving request when its context ends; release
	// uses that to end requests that attached to a session sockjs-go had
	// already closed (see release).
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	r = r.WithContext(ctx)
	h.addReceiver(entry, sw, cancel)
	defer h.removeReceiver(entry, sw)
	// sockjs-go detaches a finished receiving request on a goroutine of its
	// own, so a client that polls again at once (sockjs-client does) can
	// find the previous request still attached and get a spurious
	// c[2010,"Another connection still open"], which ends its session. When
	// no other receiving request is in flight, the writer swallows that
	// frame and the request is served again a moment later.
	for attempt := 0; ; attempt++ {
		sw.spurious = false
		sw.suppressBusy = attempt < sockjsBusyRetries
		h.inner.ServeHTTP(sw, r)
		if !sw.spurious || ctx.Err() != nil {
			return
		}
		time.Sleep(time.Millisecond << attempt)
		if !sw.wroteHeader {
			w.Header().Del("Set-Cookie") // sockjs-go adds the JSESSIONID cookie again
		}
		sw.skipPrelude = transport == "xhr_streaming" || transport == "eventsource" || transport == "htmlfile"
	}
}

// sockjsBusyRetries bounds the retries of a request that got a spurious
// 2010 (see serveSession): 1+2+4+8+16+32 ms in all.
const sockjsBusyRetries = 6

// onlyReceiver reports whether sw is the only receiving request in flight
// for its session.
func (h *sockjsHandler) onlyReceiver(sw *sockjsResponseWriter) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	_, ok := sw.entry.receivers[sw]
	return ok && len(sw.entry.receivers) == 1
}

// addReceiver records a receiving request in flight.
func (h *sockjsHandler) addReceiver(e *sockjsEntry, sw *sockjsResponseWriter, cancel context.CancelFunc) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if e.receivers == nil {
		e.receivers = make(map[*sockjsResponseWriter]context.CancelFunc)
	}
	e.receivers[sw] = cancel
}

// removeReceiver forgets a finished receiving request.
func (h *sockjsHandler) removeReceiver(e *sockjsEntry, sw *sockjsResponseWriter) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(e.receivers, sw)
}

// serveSend checks an xhr_send or jsonp_send body the way the protocol wants
// (413, or 500 with its texts) before sockjs-go, which would answer 400,
// reads it again.
func (h *sockjsHandler) serveSend(w http.ResponseWriter, r *http.Request, transport string) {
	body, err := io.ReadAll(io.LimitReader(r.Body, int64(h.cfg.MaxMessageBytes)+1))
	if err != nil {
		http.Error(w, "Could not read the request body.", http.StatusBadRequest)
		return
	}
	if len(body) > h.cfg.MaxMessageBytes {
		sockjsError(w, errSockJSTooLarge)
		return
	}
	payload := body
	if transport == "jsonp_send" {
		if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt == "application/x-www-form-urlencoded" {
			form, err := url.ParseQuery(string(body))
			if err != nil {
				sockjsError(w, errSockJSBrokenJSON)
				return
			}
			payload = []byte(form.Get("d"))
		}
	}
	if _, err := decodeSockJSPayload(payload); err != nil {
		sockjsError(w, err)
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.ContentLength = int64(len(body))
	h.inner.ServeHTTP(w, r)
}

// checkOrigin answers 403 and returns false when the Origin is refused.
func (h *sockjsHandler) checkOrigin(w http.ResponseWriter, r *http.Request) bool {
	if originAllowed(r, h.cfg.AllowedOrigins) {
		return true
	}
	http.Error(w, "Origin not allowed.", http.StatusForbidden)
	return false
}

// serveIframe serves the iframe page through sockjs-go with pushgate's ETag,
// which changes with the page (and so with ClientURL): sockjs-go hashes only
// its template, so browsers would keep a page naming an old script URL for
// the year the page may be cached.
func (h *sockjsHandler) serveIframe(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		h.inner.ServeHTTP(w, r)
		return
	}
	if inm := r.Header.Get("If-None-Match"); inm != "" && etagListContains(inm, h.iframeETag) {
		hd := w.Header()
		hd.Set("Cache-Control", "public, max-age=31536000")
		hd.Set("Expires", time.Now().AddDate(1, 0, 0).UTC().Format(http.TimeFormat))
		hd.Set("ETag", h.iframeETag)
		w.WriteHeader(http.StatusNotModified)
		return
	}
	r = r.Clone(r.Context())
	r.Header.Del("If-None-Match")
	h.inner.ServeHTTP(&sockjsETagWriter{ResponseWriter: w, etag: h.iframeETag}, r)
}

// renderIframeETag renders the iframe page once and hashes it.
func (h *sockjsHandler) renderIframeETag() string {
	rec := httptest.NewRecorder()
	h.inner.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, h.cfg.Prefix+"/iframe.html", nil))
	sum := sha256.Sum256(rec.Body.Bytes())
	return `"` + hex.EncodeToString(sum[:16]) + `"`
}

// etagListContains reports whether an If-None-Match value names etag.
func etagListContains(list, etag string) bool {
	for _, e := range strings.Split(list, ",") {
		e = strings.TrimPrefix(strings.TrimSpace(e), "W/")
		if e == "*" || e == etag {
			return true
		}
	}
	return false
}

// reserve finds the entry for a receiving request, or counts a new session
// against MaxSessions before sockjs-go creates it.
func (h *sockjsHandler) reserve(id string) (*sockjsEntry, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if e, ok := h.sessions[id]; ok {
		return e, nil
	}
	if h.closed {
		return nil, errSockJSShuttingDown
	}
	if h.open >= h.cfg.MaxSessions {
		return nil, errSockJSTooManySessions
	}
	e := &sockjsEntry{state: sockjsReserved}
	e.pending.reset()
	h.sessions[id] = e
	h.open++
	// sockjs-go starts the session right after the request reaches it, so a
	// reservation still unclaimed after the disconnect delay was for a
	// request that never opened one (an old session's close frame, a
	// malformed query, a failed first write).
	e.expiry = time.AfterFunc(h.cfg.DisconnectDelay, func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		if h.sessions[id] == e && e.state == sockjsReserved {
			delete(h.sessions, id)
			h.open--
		}
	})
	return e, nil
}

// claim turns the session's entry into a running one when sockjs-go starts
// it; it returns false when the handler is shutting down.
func (h *sockjsHandler) claim(id string, t *sockjsHTTPTransport) (*sockjsEntry, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, false
	}
	e, ok := h.sessions[id]
	switch {
	case !ok:
		e = &sockjsEntry{}
		e.pending.reset()
		h.sessions[id] = e
		h.open++
	case e.state == sockjsDone:
		// The id was reused after sockjs-go forgot the old session; keep the
		// entry (requests in flight hold it) and count it again.
		e.pending.reset()
		e.appClosed.Store(false)
		h.open++
	}
	if e.expiry != nil {
		e.expiry.Stop()
		e.expiry = nil
	}
	e.state = sockjsRunning
	t.entry = e
	h.live[t] = struct{}{}
	h.wg.Add(1)
	return e, true
}

// release ends a running HTTP-transport session's count. The entry stays
// for a disconnect delay so that late requests for the id (which sockjs-go
// answers with the close frame) are not counted as new sessions.
//
// A session that sockjs-go closed itself may still have a receiving request
// attached: sockjs-go arms the disconnect timer when it creates a session,
// and if that fires before the first request attaches (a stall longer than
// the disconnect delay), the request attaches to the closed session and
// would wait for heartbeats for ever. Such requests are ended here; the
// client sees an empty response and reconnects.
func (h *sockjsHandler) release(id string, e *sockjsEntry, t Transport) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.live, t)
	e.state = sockjsDone
	h.open--
	h.wg.Done()
	if !e.appClosed.Load() {
		for _, cancel := range e.receivers {
			cancel()
		}
	}
	e.expiry = time.AfterFunc(h.cfg.DisconnectDelay, func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		if h.sessions[id] == e && e.state == sockjsDone {
			delete(h.sessions, id)
		}
	})
}

// acquire counts a WebSocket session against MaxSessions.
func (h *sockjsHandler) acquire(t Transport) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return errSockJSShuttingDown
	}
	if h.open >= h.cfg.MaxSessions {
		return errSockJSTooManySessions
	}
	h.open++
	h.live[t] = struct{}{}
	h.wg.Add(1)
	return nil
}

// releaseSlot ends a WebSocket session's count.
func (h *sockjsHandler) releaseSlot(t Transport) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.live, t)
	h.open--
	h.wg.Done()
}

// openSessions is the number of open SockJS sessions, over all transports:
// the sessions gauge. An abandoned session leaves it a disconnect delay after
// its last receiving request.
func (h *sockjsHandler) openSessions() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.open
}

// shutdown refuses new sessions, closes every open one with code and reason
// (CloseServerShutdown for a draining edge), and waits until their onSession
// calls have returned or ctx ends. sockjs-go keeps answering the close frame
// to HTTP transports for a disconnect delay, then forgets the sessions.
func (h *sockjsHandler) shutdown(ctx context.Context, code int, reason string) error {
	h.mu.Lock()
	h.closed = true
	live := make([]Transport, 0, len(h.live))
	for t := range h.live {
		live = append(live, t)
	}
	h.mu.Unlock()
	// Close concurrently: each close writes to a client, and a slow one
	// must not hold up the others.
	var closing sync.WaitGroup
	for _, t := range live {
		closing.Go(func() { _ = t.Close(code, reason) })
	}
	done := make(chan struct{})
	go func() {
		closing.Wait()
		h.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("sockjs: shutdown: %w", ctx.Err())
	}
}

// runHTTPSession is sockjs-go's session callback for the HTTP transports; it
// runs on a goroutine sockjs-go starts for the session, which the handler
// accounts for in wg.
func (h *sockjsHandler) runHTTPSession(s sockjs.Session) {
	t := &sockjsHTTPTransport{sess: s, name: sockjsReceiverName(s.ReceiverType())}
	e, ok := h.claim(s.ID(), t)
	if !ok {
		_ = s.Close(uint32(CloseServerShutdown), "Server shutting down")
		return
	}
	defer h.release(s.ID(), e, t)
	h.onSession(t, s.Request(), t.recv)
	_ = t.Close(CloseNormal, "Normal closure")
}

// sockjsReceiverName names the transport sockjs-go attached first.
func sockjsReceiverName(rt sockjs.ReceiverType) string {
	switch rt {
	case sockjs.ReceiverTypeXHR:
		return "sockjs-xhr-polling"
	case sockjs.ReceiverTypeXHRStreaming:
		return "sockjs-xhr-streaming"
	case sockjs.ReceiverTypeEventSource:
		return "sockjs-eventsource"
	case sockjs.ReceiverTypeHtmlFile:
		return "sockjs-htmlfile"
	case sockjs.ReceiverTypeJSONP:
		return "sockjs-jsonp-polling"
	case sockjs.ReceiverTypeWebsocket:
		return "sockjs-websocket"
	case sockjs.ReceiverTypeRawWebsocket:
		return "sockjs-rawwebsocket"
	}
	return "sockjs"
}

// sockjsHTTPTransport is a Transport over one sockjs-go session.
type sockjsHTTPTransport struct {
	sess  sockjs.Session
	name  string
	entry *sockjsEntry
}

// Name implements Transport.
func (t *sockjsHTTPTransport) Name() string { return t.name }

// Write implements Transport. It blocks while sockjsPendingLimit bytes are
// already waiting in sockjs-go for a receiving request, until a response
// carries them or the session closes; that keeps the session layer's own
// bounded queue the only place where a slow client's backlog grows.
func (t *sockjsHTTPTransport) Write(msg []byte) error {
	if err := t.entry.pending.add(t.sess.Context(), len(msg)); err != nil {
		return fmt.Errorf("sockjs %s: %w", t.name, err)
	}
	if err := t.sess.Send(string(msg)); err != nil {
		return fmt.Errorf("sockjs %s: send: %w", t.name, err)
	}
	return nil
}

// Close implements Transport: the client gets c[code,"reason"] now or on its
// next receiving request, with the code mapped by sockjsCloseCode.
func (t *sockjsHTTPTransport) Close(code int, reason string) error {
	t.entry.appClosed.Store(true)
	code, reason = sockjsCloseCode(code, reason)
	if err := t.sess.Close(uint32(code), reason); err != nil && !errors.Is(err, sockjs.ErrSessionNotOpen) {
		return fmt.Errorf("sockjs %s: close: %w", t.name, err)
	}
	return nil
}

// recv returns the next client message, skipping empty ones, which the
// protocol says to ignore.
func (t *sockjsHTTPTransport) recv() ([]byte, error) {
	for {
		m, err := t.sess.Recv()
		if err != nil {
			return nil, fmt.Errorf("sockjs %s: receive: %w", t.name, err)
		}
		if m != "" {
			return []byte(m), nil
		}
	}
}

// sockjsPending counts the bytes given to sockjs-go's Session.Send that no
// response has carried yet. sockjs-go appends every Send to an unbounded
// slice while no receiving request is attached (between two polls, or after
// a client vanished, until the disconnect delay), and offers no way to see
// its length. Every frame it writes goes through sockjsResponseWriter, and a
// data frame always carries the whole buffer, so seeing one means the
// buffer is empty again.
type sockjsPending struct {
	mu      sync.Mutex
	bytes   int
	drained chan struct{} // closed (and replaced) when bytes drops to 0
}

// reset empties the count.
func (p *sockjsPending) reset() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.bytes = 0
	p.drained = make(chan struct{})
}

// add counts n more bytes, waiting while the limit would be passed. A single
// message larger than the limit goes through once nothing else waits.
func (p *sockjsPending) add(ctx context.Context, n int) error {
	for {
		p.mu.Lock()
		if p.bytes == 0 || p.bytes+n <= sockjsPendingLimit {
			p.bytes += n
			p.mu.Unlock()
			return nil
		}
		ch := p.drained
		p.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return errSockJSClosed
		}
	}
}

// drain records that a response carried everything sent so far.
func (p *sockjsPending) drain() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.bytes > 0 {
		p.bytes = 0
		close(p.drained)
		p.drained = make(chan struct{})
	}
}

// sockjsFramePrefix is how a frame starting with start ("a[" for data,
// "c[2010," for the busy close) begins on each transport.
func sockjsFramePrefix(transport, callback, start string) []byte {
	switch transport {
	case "eventsource":
		return []byte("data: " + start)
	case "htmlfile":
		return []byte("<script>\np(\"" + start)
	case "jsonp":
		return []byte(callback + "(\"" + start)
	}
	return []byte(start)
}

// sockjsResponseWriter is the ResponseWriter sockjs-go writes a receiving
// request's frames to. sockjs-go writes each frame with one Write call.
type sockjsResponseWriter struct {
	http.ResponseWriter
	h           *sockjsHandler
	rc          *http.ResponseController
	dataPrefix  []byte
	busyPrefix  []byte
	entry       *sockjsEntry
	timeout     time.Duration
	deadlineSet bool
	wroteHeader bool

	// The spurious-2010 retry (see serveSession).
	suppressBusy bool // swallow a 2010 frame if no other request receives
	spurious     bool // a 2010 frame was swallowed
	skipPrelude  bool // serving the request again, and its prelude is out: drop the next write
}

// WriteHeader passes the status on once; a retried request has sent it.
func (w *sockjsResponseWriter) WriteHeader(code int) {
	if w.wroteHeader {
		return
	}
	w.wroteHeader = true
	w.ResponseWriter.WriteHeader(code)
}

// Write escapes the characters the protocol wants escaped, under a write
// deadline, and notes data frames for sockjsPending.
func (w *sockjsResponseWriter) Write(p []byte) (int, error) {
	if w.skipPrelude {
		w.skipPrelude = false
		return len(p), nil
	}
	if w.suppressBusy && bytes.HasPrefix(p, w.busyPrefix) && w.h.onlyReceiver(w) {
		w.spurious = true
		return len(p), nil
	}
	w.wroteHeader = true
	if w.timeout > 0 && w.rc.SetWriteDeadline(time.Now().Add(w.timeout)) == nil {
		w.deadlineSet = true
	}
	if _, err := w.ResponseWriter.Write(escapeSockJSUnicode(p)); err != nil {
		return 0, err
	}
	if bytes.HasPrefix(p, w.dataPrefix) {
		w.entry.pending.drain()
	}
	return len(p), nil
}

// Flush implements http.Flusher, which sockjs-go requires.
func (w *sockjsResponseWriter) Flush() { _ = w.rc.Flush() }

// Unwrap lets http.ResponseController reach the connection.
func (w *sockjsResponseWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// finish clears the write deadline, which would otherwise outlive the
// request on a kept-alive connection.
func (w *sockjsResponseWriter) finish() {
	if w.deadlineSet {
		_ = w.rc.SetWriteDeadline(time.Time{})
	}
}

// sockjsNoCookieWriter drops the JSESSIONID cookie sockjs-go sets on /info,
// which the protocol forbids there.
type sockjsNoCookieWriter struct {
	http.ResponseWriter
	wrote bool
}

func (w *sockjsNoCookieWriter) WriteHeader(code int) {
	if !w.wrote {
		w.wrote = true
		w.Header().Del("Set-Cookie")
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *sockjsNoCookieWriter) Write(p []byte) (int, error) {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	return w.ResponseWriter.Write(p)
}

// Unwrap lets http.ResponseController reach the connection.
func (w *sockjsNoCookieWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// sockjsETagWriter puts pushgate's ETag on the iframe page.
type sockjsETagWriter struct {
	http.ResponseWriter
	etag  string
	wrote bool
}

func (w *sockjsETagWriter) WriteHeader(code int) {
	if !w.wrote {
		w.wrote = true
		w.Header().Set("ETag", w.etag)
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *sockjsETagWriter) Write(p []byte) (int, error) {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	return w.ResponseWriter.Write(p)
}

// Unwrap lets http.ResponseController reach the connection.
func (w *sockjsETagWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
