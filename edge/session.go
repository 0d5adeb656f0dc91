package edge

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/pushgate/pushgate/relay"
)

// Session states.
const (
	stateConnecting int32 = iota
	stateConnected
	stateClosed
)

// sessionClocks are the timings fixed at CONNECT, published to the writer
// in one atomic store.
type sessionClocks struct {
	sendEvery    time.Duration // server→client heart-beat period; 0 = none
	expectWithin time.Duration // client→server silence allowed; 0 = unlimited
	expires      time.Time     // token expiry; zero = none
}

// session is one STOMP session over any transport. The transport's handler
// goroutine is its only reader and runs handleMessage; writeLoop is its only
// writer; relay goroutines deliver through the outbox.
type session struct {
	srv     *Server
	id      string
	t       Transport
	started time.Time
	// handshake is the identity proven by the handshake's token, if any.
	handshake *Identity

	state         atomic.Int32
	ver           atomic.Int32
	clocks        atomic.Pointer[sessionClocks]
	clocksChanged chan struct{}
	lastRead      atomic.Int64 // unix nanos

	out        *outbox
	closing    chan struct{}
	closeOnce  sync.Once
	reason     atomic.Pointer[closeReason]
	writerDone chan struct{}

	// Set once at CONNECT, before the session joins the hub; read-only after.
	user string

	// Reader goroutine only.
	dec     *Decoder
	subs    map[string]*clientSub
	limiter *rate.Limiter

	// mu guards userSubs, which relay goroutines read to deliver.
	mu       sync.Mutex
	userSubs map[string][]userSub // "/topic/greetings" → subscriptions
}

type clientSub struct {
	id, dest string // client's id and destination
	kind     destKind
	name     string // for destUser, the user-relative destination
	relay    *relay.Subscription
}

type userSub struct{ id, ack string }

func (srv *Server) newSession(t Transport, id string, handshake *Identity) *session {
	now := time.Now()
	s := &session{
		srv:           srv,
		id:            id,
		t:             t,
		started:       now,
		handshake:     handshake,
		clocksChanged: make(chan struct{}, 1),
		out:           newOutbox(srv.cfg.MaxQueueBytes),
		closing:       make(chan struct{}),
		writerDone:    make(chan struct{}),
		dec:           NewDecoder(srv.cfg.Limits),
		subs:          make(map[string]*clientSub),
	}
	s.lastRead.Store(now.UnixNano())
	return s
}

func (s *session) version() Version {
	if v := Version(s.ver.Load()); v != 0 {
		return v
	}
	return V12
}

// close asks the writer to end the session for reason r. It never blocks
// and may be called from any goroutine; the first reason wins.
func (s *session) close(r closeReason) {
	s.closeOnce.Do(func() {
		s.reason.Store(&r)
		s.state.Store(stateClosed)
		close(s.closing)
		s.out.signal() // the writer waits on the outbox alone
		s.srv.metrics.closed.WithLabelValues(r.metric).Inc()
	})
}

// enqueue queues an encoded frame for the client, closing it as slow when
// its queue is full. Frames for a closing session are dropped: it is going.
func (s *session) enqueue(b []byte) {
	if s.state.Load() == stateClosed {
		return
	}
	if !s.out.push(b) {
		s.srv.metrics.drops.WithLabelValues("slow_consumer").Inc()
		s.close(reasonSlow(s.srv.cfg.MaxQueueBytes))
	}
}

func (s *session) send(f *Frame) { s.enqueue(AppendFrame(nil, s.version(), f)) }

// errStop stops decoding after a frame handler closed the session.
var errStop = errors.New("session closing")

// handleMessage feeds one transport message to the decoder and handles the
// frames it completes. It reports whether the session goes on.
func (s *session) handleMessage(p []byte) bool {
	s.lastRead.Store(time.Now().UnixNano())
	s.srv.metrics.bytesIn.Add(float64(len(p)))
	if err := s.dec.Feed(p, s.handleFrame); err != nil {
		var pe *ProtocolError
		if errors.As(err, &pe) {
			s.close(reasonProtocol(pe.Reason, ""))
		} else if !errors.Is(err, errStop) {
			s.close(reasonProtocol(err.Error(), ""))
		}
		return false
	}
	return s.state.Load() != stateClosed
}

// fail closes the session with an ERROR for frame f and stops decoding.
func (s *session) fail(f *Frame, msg string) error {
	receipt, _ := f.Get("receipt")
	s.close(reasonProtocol(msg, receipt))
	return errStop
}

func (s *session) handleFrame(f *Frame) error {
	s.srv.metrics.framesIn.WithLabelValues(f.Command).Inc()
	if s.state.Load() == stateConnecting {
		if f.Command != "CONNECT" && f.Command != "STOMP" {
			return s.fail(f, fmt.Sprintf("expected CONNECT, got %s", f.Command))
		}
		return s.onConnect(f)
	}
	var err error
	switch f.Command {
	case "SEND":
		err = s.onSend(f)
	case "SUBSCRIBE":
		err = s.onSubscribe(f)
	case "UNSUBSCRIBE":
		err = s.onUnsubscribe(f)
	case "ACK", "NACK":
		// Delivery is at most once; acknowledgements change nothing.
	case "BEGIN", "COMMIT", "ABORT":
		return s.fail(f, "transactions are not supported")
	case "DISCONNECT":
		s.receipt(f)
		s.close(reasonDisconnect)
		return errStop
	case "CONNECT", "STOMP":
		return s.fail(f, "already connected")
	default:
		return s.fail(f, fmt.Sprintf("unexpected command %s", f.Command))
	}
	if err != nil {
		return err
	}
	s.receipt(f)
	return nil
}

// receipt answers a frame's receipt header.
func (s *session) receipt(f *Frame) {
	if id, ok := f.Get("receipt"); ok {
		r := &Frame{Command: "RECEIPT"}
		r.Add("receipt-id", id)
		s.send(r)
	}
}

func (s *session) brokerContext() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), s.srv.cfg.BrokerTimeout)
}

func (s *session) onConnect(f *Frame) error {
	accept, present := f.Get("accept-version")
	v := NegotiateVersion(accept, present)
	if v == 0 {
		r := reasonProtocol(fmt.Sprintf("unsupported STOMP version %q: supported versions are 1.0,1.1,1.2", accept), "")
		r.headers = []Header{{Name: "version", Value: "1.0,1.1,1.2"}}
		s.close(r)
		return errStop
	}
	s.ver.Store(int32(v))
	s.dec.SetVersion(v)

	ident := s.handshake
	if ident == nil {
		token := TokenFromConnect(f)
		if token == "" {
			s.close(reasonAuth("authentication required: send a JWT as access_token or Authorization at the handshake, or as passcode or Authorization in CONNECT"))
			return errStop
		}
		id, err := s.srv.auth.Verify(token)
		if err != nil {
			s.srv.metrics.authFailures.Inc()
			s.close(reasonAuth("authentication failed: " + err.Error()))
			return errStop
		}
		ident = &id
	}
	hb, _ := f.Get("heart-beat")
	cx, cy, err := ParseHeartBeat(hb)
	if err != nil {
		return s.fail(f, fmt.Sprintf("invalid heart-beat header %q", hb))
	}
	offer := int(s.srv.cfg.HeartBeat / time.Millisecond)
	sendEvery, expectWithin := NegotiateHeartBeat(cx, cy, offer, offer)

	if !s.srv.broker.Ready() {
		s.close(reasonBrokerOutage("broker unavailable, try again later"))
		return errStop
	}
	s.user = ident.User
	// The user joins the registry before CONNECTED is sent: once a client
	// is connected, pushes resolved after its SUBSCRIBE receipt find it.
	ctx, cancel := s.brokerContext()
	defer cancel()
	if err := s.srv.hub.join(ctx, s); err != nil {
		s.close(reasonBrokerOutage("broker unavailable: cannot register the session: " + err.Error()))
		return errStop
	}
	s.clocks.Store(&sessionClocks{sendEvery: sendEvery, expectWithin: expectWithin, expires: ident.Expires})
	s.state.Store(stateConnected)
	select {
	case s.clocksChanged <- struct{}{}:
	default:
	}
	s.out.signal()

	c := &Frame{Command: "CONNECTED"}
	c.Add("version", v.String())
	c.Add("heart-beat", fmt.Sprintf("%d,%d", offer, offer))
	c.Add("server", "pushgate-edge/"+s.srv.cfg.ID)
	c.Add("session", s.id)
	c.Add("user-name", ident.User)
	s.send(c)
	return nil
}

func (s *session) onSend(f *Frame) error {
	dest, ok := f.Get("destination")
	if !ok {
		return s.fail(f, "SEND frame has no destination header")
	}
	if s.limiter == nil {
		s.limiter = rate.NewLimiter(rate.Limit(s.srv.cfg.SendRate), s.srv.cfg.SendBurst)
	}
	if !s.limiter.Allow() {
		s.srv.metrics.drops.WithLabelValues("send_rate").Inc()
		return s.fail(f, fmt.Sprintf("SEND rate limit exceeded: at most %v per second, bursts of %d (sending to %s)", s.srv.cfg.SendRate, s.srv.cfg.SendBurst, relay.Quote(dest)))
	}
	if _, ok := f.Get("transaction"); ok {
		return s.fail(f, fmt.Sprintf("transactions are not supported (sending to %s)", relay.Quote(dest)))
	}
	kind, name, err := s.srv.parseSendDestination(dest)
	if err != nil {
		return s.fail(f, err.Error())
	}
	ctx, cancel := s.brokerContext()
	defer cancel()
	switch kind {
	case destApp:
		err = s.srv.apps[name](ctx, s, f)
	case destTopic:
		ct, _ := f.Get("content-type")
		err = s.srv.broker.Send(ctx, &relay.Message{
			Destination: relay.TopicDestination(name),
			ContentType: ct,
			Body:        f.Body,
		})
	}
	if err != nil {
		return s.fail(f, fmt.Sprintf("cannot send to %s: %v", relay.Quote(dest), err))
	}
	return nil
}

func (s *session) onSubscribe(f *Frame) error {
	dest, ok := f.Get("destination")
	if !ok {
		return s.fail(f, "SUBSCRIBE frame has no destination header")
	}
	id, ok := f.Get("id")
	if !ok {
		if s.version() != V10 {
			return s.fail(f, fmt.Sprintf("SUBSCRIBE to %s has no id header", relay.Quote(dest)))
		}
		id = dest // STOMP 1.0 makes the id optional
	}
	if _, dup := s.subs[id]; dup {
		return s.fail(f, fmt.Sprintf("subscription id %s is already in use (subscribing to %s)", relay.Quote(id), relay.Quote(dest)))
	}
	if len(s.subs) >= s.srv.cfg.MaxSubscriptions {
		return s.fail(f, fmt.Sprintf("too many subscriptions: at most %d per session (subscribing to %s)", s.srv.cfg.MaxSubscriptions, relay.Quote(dest)))
	}
	ack, _ := f.Get("ack")
	switch ack {
	case "", "auto":
		ack = "auto"
	case "client", "client-individual":
		if ack == "client-individual" && s.version() == V10 {
			return s.fail(f, "ack mode client-individual needs STOMP 1.1 or later")
		}
	default:
		return s.fail(f, fmt.Sprintf("invalid ack mode %s for %s", relay.Quote(ack), relay.Quote(dest)))
	}
	kind, name, err := parseSubscribeDestination(dest)
	if err != nil {
		s.srv.metrics.refused.Inc()
		return s.fail(f, err.Error())
	}
	sub := &clientSub{id: id, dest: dest, kind: kind, name: name}
	switch kind {
	case destUser:
		// The user joined the registry at CONNECT, so this subscription is
		// reachable as soon as it is recorded.
		s.mu.Lock()
		if s.userSubs == nil {
			s.userSubs = make(map[string][]userSub)
		}
		s.userSubs[name] = append(s.userSubs[name], userSub{id: id, ack: ack})
		s.mu.Unlock()
	case destTopic:
		sub.relay = s.srv.broker.Subscribe(relay.TopicDestination(name), func(m *relay.Message) {
			s.deliver(id, dest, ack, m)
		})
		ctx, cancel := s.brokerContext()
		err := sub.relay.Wait(ctx)
		cancel()
		if err != nil {
			sub.relay.Unsubscribe()
			return s.fail(f, fmt.Sprintf("cannot subscribe to %s: %v", relay.Quote(dest), err))
		}
	}
	s.subs[id] = sub
	s.srv.metrics.subscriptions.Inc()
	return nil
}

func (s *session) onUnsubscribe(f *Frame) error {
	id, ok := f.Get("id")
	if !ok && s.version() == V10 {
		id, ok = f.Get("destination")
	}
	if !ok {
		return s.fail(f, "UNSUBSCRIBE frame has no id header")
	}
	if sub := s.subs[id]; sub != nil {
		s.drop(sub)
	}
	return nil
}

// drop ends one client subscription.
func (s *session) drop(sub *clientSub) {
	delete(s.subs, sub.id)
	s.srv.metrics.subscriptions.Dec()
	switch sub.kind {
	case destTopic:
		sub.relay.Unsubscribe()
	case destUser:
		s.mu.Lock()
		subs := s.userSubs[sub.name]
		for i, u := range subs {
			if u.id == sub.id {
				subs = append(subs[:i:i], subs[i+1:]...)
				break
			}
		}
		if len(subs) == 0 {
			delete(s.userSubs, sub.name)
		} else {
			s.userSubs[sub.name] = subs
		}
		s.mu.Unlock()
	}
}

// deliverUser delivers a user message for the user-relative destination
// dest to every subscription of this session to "/user"+dest.
func (s *session) deliverUser(dest string, m *relay.Message) {
	s.mu.Lock()
	subs := s.userSubs[dest]
	if len(subs) == 0 {
		s.mu.Unlock()
		return
	}
	subs = append([]userSub(nil), subs...)
	s.mu.Unlock()
	for _, u := range subs {
		s.deliver(u.id, userPrefix+dest, u.ack, m)
	}
}

// deliver queues a MESSAGE for one client subscription.
//
// One broker message is usually delivered to many sessions (every
// subscriber of a topic on this edge), and its frame differs between them
// only in the subscription and ack headers. So it is encoded once per
// STOMP version (sharedMessageFor) and each session appends the shared
// bytes around its own headers straight into its outbox: no frame, header
// slice or buffer is allocated per session. The bytes are exactly those of
// AppendFrame(messageFrame(...)) (TestSharedMessageMatchesAppendFrame).
func (s *session) deliver(subID, dest, ack string, m *relay.Message) {
	if s.state.Load() != stateConnected {
		return
	}
	sm := sharedMessageFor(dest, m)
	if sm == nil {
		// Without pushgate's message id each session numbers its own, as
		// always: nothing to share.
		id := s.srv.cfg.ID + "-" + strconv.FormatUint(s.srv.msgSeq.Add(1), 36)
		s.enqueue(AppendFrame(nil, s.version(), messageFrame(subID, dest, ack, id, m)))
	} else {
		s.enqueueShared(sm, subID, ack)
	}
	s.srv.metrics.messagesOut.Inc()
}

// messageFrame is the MESSAGE frame a subscription receives for m.
func messageFrame(subID, dest, ack, id string, m *relay.Message) *Frame {
	f := &Frame{Command: "MESSAGE", Headers: make([]Header, 0, 8)}
	f.Add("destination", dest)
	f.Add("message-id", id)
	f.Add("subscription", subID)
	if ack != "auto" {
		f.Add("ack", id)
	}
	if m.ContentType != "" {
		f.Add("content-type", m.ContentType)
	}
	if m.Header != nil {
		for i := 0; i < m.Header.Len(); i++ {
			k, v := m.Header.GetAt(i)
			if !brokerHeader(k) {
				f.Add(k, v)
			}
		}
	}
	f.Body = m.Body
	return f
}

// sharedMessage is one broker message for one client destination, encoded
// once per escaping mode: head is the frame up to the per-session headers
// (command, destination, message-id), tail the rest (content-type, the
// application's headers, content-length, the body and the NUL).
type sharedMessage struct {
	src  *relay.Message // identity: the relay makes one Message per delivery
	dest string
	id   string
	enc  [3]struct {
		once       sync.Once
		head, tail []byte
	}
}

// sharedMessages caches the message being fanned out, per slot: the relay
// calls every handler of a delivery in turn on one broker connection's
// goroutine, so consecutive sessions find it here. A slot per destination
// hash keeps two broker connections dispatching at once from evicting each
// other. An entry is valid for exactly its (src, dest): it holds src, so the
// pointer cannot be reused for another message while cached.
var (
	sharedMessages    [16]atomic.Pointer[sharedMessage]
	sharedMessageSeed = maphash.MakeSeed()
)

// sharedMessageFor returns m encoded for dest, or nil when m has no
// pushgate message id.
func sharedMessageFor(dest string, m *relay.Message) *sharedMessage {
	if m.Header == nil {
		return nil
	}
	slot := &sharedMessages[maphash.String(sharedMessageSeed, dest)%uint64(len(sharedMessages))]
	if sm := slot.Load(); sm != nil && sm.src == m && sm.dest == dest {
		return sm
	}
	id := m.Header.Get(relay.HeaderMessageID)
	if id == "" {
		return nil
	}
	sm := &sharedMessage{src: m, dest: dest, id: id}
	slot.Store(sm)
	return sm
}

// messageEscapeMode is how AppendFrame escapes a MESSAGE's headers for v.
func messageEscapeMode(v Version) stompEscapeMode {
	switch v {
	case V10:
		return stompEscapeNone
	case V11:
		return stompEscape11
	}
	return stompEscape12
}

func appendHeader(dst []byte, name, value string, mode stompEscapeMode) []byte {
	dst = stompEscape(dst, name, mode)
	dst = append(dst, ':')
	dst = stompEscape(dst, value, mode)
	return append(dst, '\n')
}

// encoded returns the shared parts for mode, encoding them on first use.
func (sm *sharedMessage) encoded(mode stompEscapeMode) (head, tail []byte) {
	e := &sm.enc[mode]
	e.once.Do(func() {
		m := sm.src
		h := append(make([]byte, 0, 16+len(sm.dest)+len(sm.id)+24), "MESSAGE\n"...)
		h = appendHeader(h, "destination", sm.dest, mode)
		e.head = appendHeader(h, "message-id", sm.id, mode)
		t := make([]byte, 0, 64+len(m.ContentType)+len(m.Body))
		if m.ContentType != "" {
			t = appendHeader(t, "content-type", m.ContentType, mode)
		}
		for i := 0; i < m.Header.Len(); i++ {
			// content-length is a broker header: AppendFrame writes its own.
			if k, v := m.Header.GetAt(i); !brokerHeader(k) {
				t = appendHeader(t, k, v, mode)
			}
		}
		if len(m.Body) > 0 {
			t = append(t, "content-length:"...)
			t = strconv.AppendInt(t, int64(len(m.Body)), 10)
			t = append(t, '\n')
		}
		t = append(t, '\n')
		t = append(t, m.Body...)
		e.tail = append(t, 0)
	})
	return e.head, e.tail
}

// enqueueShared queues sm for one subscription: the shared head, this
// subscription's headers, the shared tail.
func (s *session) enqueueShared(sm *sharedMessage, subID, ack string) {
	if s.state.Load() == stateClosed {
		return
	}
	mode := messageEscapeMode(s.version())
	head, tail := sm.encoded(mode)
	var buf [128]byte
	mid := appendHeader(buf[:0], "subscription", subID, mode)
	if ack != "auto" {
		mid = appendHeader(mid, "ack", sm.id, mode)
	}
	if !s.out.push3(head, mid, tail) {
		s.srv.metrics.drops.WithLabelValues("slow_consumer").Inc()
		s.close(reasonSlow(s.srv.cfg.MaxQueueBytes))
	}
}

// brokerHeader reports whether a header of a broker MESSAGE belongs to the
// broker or to pushgate rather than to the application, and so is not
// copied onto the client's MESSAGE.
func brokerHeader(name string) bool {
	switch name {
	case "destination", "message-id", "subscription", "content-type", "content-length",
		"ack", "receipt", "receipt-id", "redelivered", "persistent", "priority",
		"expires", "timestamp", "reply-to", "amqp-message-id", "correlation-id", "type", "app-id", "user-id":
		return true
	}
	return strings.HasPrefix(name, "pushgate-")
}

// cleanup releases what the session holds, once both its goroutines are
// done: broker subscriptions, and its place in the hub and the registry.
func (s *session) cleanup() {
	for _, sub := range s.subs {
		s.drop(sub)
	}
	s.srv.hub.leave(s)
}
