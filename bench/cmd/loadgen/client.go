package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// This file is the load generator's STOMP client: lean enough for 50,000
// sessions in one process. A session is one goroutine (its reader) and a
// small WebSocket buffer; frames are parsed in place and only MESSAGE bodies,
// RECEIPTs and ERRORs are looked at.

// frameInfo is what the client keeps of a server frame.
type frameInfo struct {
	command string
	receipt string // receipt-id of a RECEIPT
	message string // message header of an ERROR
	body    []byte // valid only during the callback
}

// parseFrames calls fn for every whole STOMP frame in p, skipping heart-beat
// newlines. It returns the bytes of an unfinished trailing frame.
func parseFrames(p []byte, fn func(*frameInfo)) []byte {
	for len(p) > 0 {
		for len(p) > 0 && (p[0] == '\n' || p[0] == '\r') {
			p = p[1:]
		}
		if len(p) == 0 {
			return nil
		}
		end := bytes.IndexByte(p, 0)
		if end < 0 {
			return p
		}
		f := p[:end]
		p = p[end+1:]
		nl := bytes.IndexByte(f, '\n')
		if nl < 0 {
			continue
		}
		fi := frameInfo{command: string(bytes.TrimRight(f[:nl], "\r"))}
		rest := f[nl+1:]
		for {
			nl = bytes.IndexByte(rest, '\n')
			if nl < 0 {
				rest = nil
				break
			}
			line := bytes.TrimRight(rest[:nl], "\r")
			rest = rest[nl+1:]
			if len(line) == 0 {
				break
			}
			if fi.command == "MESSAGE" {
				continue // the body is all the generator reads of a MESSAGE
			}
			k, v, _ := bytes.Cut(line, []byte{':'})
			switch string(k) {
			case "receipt-id":
				fi.receipt = string(v)
			case "message":
				fi.message = string(v)
			}
		}
		fi.body = rest
		fn(&fi)
	}
	return nil
}

// transport is one client connection carrying STOMP frames.
type transport interface {
	// send writes one client message holding whole STOMP frames.
	send(b []byte) error
	// read returns the next server message's STOMP bytes.
	read() ([]byte, error)
	close()
}

// dialOptions say how to open a session.
type dialOptions struct {
	kind    string // "ws", "sockjs-ws", "sockjs-xhr-streaming"
	url     string // ws://host/stomp, http://host/ws (SockJS base), ws://host:15674/ws
	token   string // JWT for pushgate, sent as access_token; empty for web-stomp
	localIP string // source address for the TCP connection; empty = any
}

var httpClients sync.Map // localIP → *http.Client

func dialerFor(localIP string) *net.Dialer {
	d := &net.Dialer{Timeout: 20 * time.Second}
	if localIP != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(localIP)}
	}
	return d
}

func dialTransport(ctx context.Context, o dialOptions) (transport, error) {
	switch o.kind {
	case "ws":
		u := o.url
		if o.token != "" {
			u += "?access_token=" + url.QueryEscape(o.token)
		}
		c, err := dialWS(ctx, u, o.localIP)
		if err != nil {
			return nil, err
		}
		return &wsTransport{c: c}, nil
	case "sockjs-ws":
		u := strings.Replace(o.url, "http", "ws", 1) + sockJSPath() + "/websocket"
		if o.token != "" {
			u += "?access_token=" + url.QueryEscape(o.token)
		}
		c, err := dialWS(ctx, u, o.localIP)
		if err != nil {
			return nil, err
		}
		t := &sockJSWS{c: c}
		if err := t.open(); err != nil {
			c.Close()
			return nil, err
		}
		return t, nil
	case "sockjs-xhr-streaming":
		return dialXHRStreaming(ctx, o)
	}
	return nil, fmt.Errorf("unknown transport %q", o.kind)
}

func dialWS(ctx context.Context, u, localIP string) (*websocket.Conn, error) {
	d := websocket.Dialer{
		NetDialContext:   dialerFor(localIP).DialContext,
		Subprotocols:     []string{"v12.stomp", "v11.stomp", "v10.stomp"},
		HandshakeTimeout: 20 * time.Second,
		ReadBufferSize:   2048,
		WriteBufferSize:  1024,
	}
	c, resp, err := d.DialContext(ctx, u, nil)
	if err != nil {
		if resp != nil {
			return nil, fmt.Errorf("%w (HTTP %d)", err, resp.StatusCode)
		}
		return nil, err
	}
	return c, nil
}

// wsTransport is STOMP over a raw WebSocket (/stomp, web-stomp's /ws).
type wsTransport struct {
	c   *websocket.Conn
	buf []byte
}

func (t *wsTransport) send(b []byte) error {
	_ = t.c.SetWriteDeadline(time.Now().Add(20 * time.Second))
	return t.c.WriteMessage(websocket.TextMessage, b)
}

func (t *wsTransport) read() ([]byte, error) {
	_, r, err := t.c.NextReader()
	if err != nil {
		return nil, err
	}
	t.buf = t.buf[:0]
	for {
		if len(t.buf) == cap(t.buf) {
			t.buf = append(t.buf, 0)[:len(t.buf)]
		}
		n, err := r.Read(t.buf[len(t.buf):cap(t.buf)])
		t.buf = t.buf[:len(t.buf)+n]
		if err == io.EOF {
			return t.buf, nil
		}
		if err != nil {
			return nil, err
		}
	}
}

func (t *wsTransport) close() { t.c.Close() }

func sockJSPath() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return "/" + strconv.Itoa(int(b[0])%1000) + "/" + hex.EncodeToString(b[:])
}

// sockJSWS is STOMP over SockJS's websocket transport: server messages are
// "o", "h", "a[...]" and "c[...]"; client messages are JSON arrays.
type sockJSWS struct {
	c       *websocket.Conn
	pending [][]byte
}

func (t *sockJSWS) open() error {
	_ = t.c.SetReadDeadline(time.Now().Add(20 * time.Second))
	_, p, err := t.c.ReadMessage()
	_ = t.c.SetReadDeadline(time.Time{})
	if err != nil {
		return err
	}
	if string(p) != "o" {
		return fmt.Errorf("sockjs: expected open frame, got %q", p)
	}
	return nil
}

func (t *sockJSWS) send(b []byte) error {
	msg, _ := json.Marshal([]string{string(b)})
	_ = t.c.SetWriteDeadline(time.Now().Add(20 * time.Second))
	return t.c.WriteMessage(websocket.TextMessage, msg)
}

func (t *sockJSWS) read() ([]byte, error) {
	for {
		if len(t.pending) > 0 {
			p := t.pending[0]
			t.pending = t.pending[1:]
			return p, nil
		}
		_, p, err := t.c.ReadMessage()
		if err != nil {
			return nil, err
		}
		msgs, err := decodeSockJS(p)
		if err != nil {
			return nil, err
		}
		t.pending = msgs
	}
}

func (t *sockJSWS) close() { t.c.Close() }

var errSockJSClosed = errors.New("sockjs: closed by server")

// decodeSockJS returns the messages of one SockJS frame.
func decodeSockJS(p []byte) ([][]byte, error) {
	p = bytes.TrimRight(p, "\n")
	if len(p) == 0 {
		return nil, nil
	}
	switch p[0] {
	case 'o', 'h':
		return nil, nil
	case 'c':
		return nil, fmt.Errorf("%w: %s", errSockJSClosed, p[1:])
	case 'a':
		var arr []string
		if err := json.Unmarshal(p[1:], &arr); err != nil {
			return nil, fmt.Errorf("sockjs: bad array frame: %w", err)
		}
		out := make([][]byte, len(arr))
		for i, s := range arr {
			out[i] = []byte(s)
		}
		return out, nil
	}
	return nil, fmt.Errorf("sockjs: unexpected frame %q", p[:min(len(p), 20)])
}

// sockJSXHR is STOMP over SockJS xhr-streaming: one long POST response
// carries server frames, each client message is a POST to xhr_send.
type sockJSXHR struct {
	client  *http.Client
	base    string // http://host/ws/{server}/{session}
	query   string
	resp    *http.Response
	r       *bufio.Reader
	pending [][]byte
}

func dialXHRStreaming(ctx context.Context, o dialOptions) (transport, error) {
	v, ok := httpClients.Load(o.localIP)
	if !ok {
		tr := &http.Transport{
			DialContext:         dialerFor(o.localIP).DialContext,
			MaxIdleConnsPerHost: 4096,
			MaxConnsPerHost:     0,
			IdleConnTimeout:     30 * time.Second,
		}
		v, _ = httpClients.LoadOrStore(o.localIP, &http.Client{Transport: tr})
	}
	t := &sockJSXHR{client: v.(*http.Client), base: o.url + sockJSPath()}
	if o.token != "" {
		t.query = "?access_token=" + url.QueryEscape(o.token)
	}
	if err := t.stream(); err != nil {
		return nil, err
	}
	// The prelude is 2048 'h' and a newline, then the open frame.
	for {
		line, err := t.r.ReadBytes('\n')
		if err != nil {
			t.resp.Body.Close()
			return nil, fmt.Errorf("sockjs xhr_streaming: %w", err)
		}
		if len(line) > 0 && line[0] == 'o' {
			return t, nil
		}
	}
}

// stream opens a receiving request (the first, or the next after the
// server ended one).
func (t *sockJSXHR) stream() error {
	if t.resp != nil {
		t.resp.Body.Close()
	}
	req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, t.base+"/xhr_streaming"+t.query, nil)
	if err != nil {
		return err
	}
	resp, err := t.client.Do(req)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return fmt.Errorf("sockjs xhr_streaming: HTTP %d", resp.StatusCode)
	}
	t.resp, t.r = resp, bufio.NewReaderSize(resp.Body, 4096)
	return nil
}

func (t *sockJSXHR) send(b []byte) error {
	msg, _ := json.Marshal([]string{string(b)})
	req, err := http.NewRequest(http.MethodPost, t.base+"/xhr_send"+t.query, bytes.NewReader(msg))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "text/plain;charset=UTF-8")
	resp, err := t.client.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("sockjs xhr_send: HTTP %d", resp.StatusCode)
	}
	return nil
}

func (t *sockJSXHR) read() ([]byte, error) {
	for {
		if len(t.pending) > 0 {
			p := t.pending[0]
			t.pending = t.pending[1:]
			return p, nil
		}
		line, err := t.r.ReadBytes('\n')
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			// The server ends a streaming response after
			// --sockjs-response-limit bytes; the client opens the next.
			if err := t.stream(); err != nil {
				return nil, err
			}
			continue
		}
		if err != nil {
			return nil, err
		}
		msgs, err := decodeSockJS(line)
		if err != nil {
			return nil, err
		}
		t.pending = msgs
	}
}

func (t *sockJSXHR) close() { t.resp.Body.Close() }

// session is one STOMP session of the generator.
type session struct {
	t         transport
	idx       int
	onMessage func(body []byte)
	receipts  chan string
	failed    chan error
}

// connect opens a transport, sends CONNECT and waits for CONNECTED. Then
// the session's reader runs until the transport fails.
func connect(ctx context.Context, o dialOptions, login, passcode, host string, idx int, onMessage func([]byte)) (*session, error) {
	t, err := dialTransport(ctx, o)
	if err != nil {
		return nil, err
	}
	s := &session{t: t, idx: idx, onMessage: onMessage, receipts: make(chan string, 4), failed: make(chan error, 1)}
	var cf strings.Builder
	cf.WriteString("CONNECT\naccept-version:1.2,1.1\nheart-beat:0,0\n")
	if host != "" {
		cf.WriteString("host:" + host + "\n")
	}
	if login != "" {
		cf.WriteString("login:" + login + "\npasscode:" + passcode + "\n")
	}
	cf.WriteString("\n\x00")
	if err := t.send([]byte(cf.String())); err != nil {
		t.close()
		return nil, fmt.Errorf("send CONNECT: %w", err)
	}
	connected := make(chan error, 1)
	go s.readLoop(connected)
	select {
	case err := <-connected:
		if err != nil {
			t.close()
			return nil, err
		}
	case <-ctx.Done():
		t.close()
		return nil, ctx.Err()
	}
	return s, nil
}

func (s *session) readLoop(connected chan error) {
	var rest []byte
	first := true
	for {
		p, err := s.t.read()
		if err != nil {
			if first {
				connected <- fmt.Errorf("waiting for CONNECTED: %w", err)
			}
			select {
			case s.failed <- err:
			default:
			}
			return
		}
		if len(rest) > 0 {
			p = append(rest, p...)
		}
		rest = parseFrames(p, func(f *frameInfo) {
			switch f.command {
			case "MESSAGE":
				if s.onMessage != nil {
					s.onMessage(f.body)
				}
			case "CONNECTED":
				if first {
					first = false
					connected <- nil
				}
			case "RECEIPT":
				select {
				case s.receipts <- f.receipt:
				default:
				}
			case "ERROR":
				err := fmt.Errorf("STOMP ERROR: %s", f.message)
				if first {
					first = false
					connected <- err
				}
				select {
				case s.failed <- err:
				default:
				}
			}
		})
		if len(rest) > 0 {
			rest = append([]byte(nil), rest...) // p is reused by the next read
		}
	}
}

// subscribe sends SUBSCRIBE frames (with a receipt on the last) and waits
// for the receipt.
func (s *session) subscribe(ctx context.Context, dests ...string) error {
	var b strings.Builder
	for i, d := range dests {
		fmt.Fprintf(&b, "SUBSCRIBE\nid:sub-%d\ndestination:%s\nack:auto\n", i, d)
		if i == len(dests)-1 {
			b.WriteString("receipt:subscribed\n")
		}
		b.WriteString("\n\x00")
	}
	if err := s.t.send([]byte(b.String())); err != nil {
		return err
	}
	select {
	case <-s.receipts:
		return nil
	case err := <-s.failed:
		return fmt.Errorf("subscribe: %w", err)
	case <-ctx.Done():
		return fmt.Errorf("subscribe: no RECEIPT: %w", ctx.Err())
	}
}

func (s *session) close() { s.t.close() }
