package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/pushgate/pushgate/edge"
)

// This file is the optional Centrifugo peer (-target centrifugo): its JSON
// client protocol over WebSocket (connect with a JWT, subscribe, receive
// publication pushes) and its HTTP server API for publishing. A session's
// MESSAGE body is the publication's data, a JSON string holding the same
// "phase seq time" body the STOMP scenarios use. Per-user pushes go to the
// user-limited channel "greetings#<user>", which only that user may
// subscribe to: Centrifugo's way of addressing one user.

type centrifugoReply struct {
	ID    int `json:"id"`
	Error *struct {
		Code    int
		Message string
	} `json:"error"`
	Push *struct {
		Channel string `json:"channel"`
		Pub     *struct {
			Data json.RawMessage `json:"data"`
		} `json:"pub"`
	} `json:"push"`
}

// centrifugoChannel is the channel a STOMP destination of the scenarios
// maps to.
func centrifugoChannel(dest string, user string) string {
	switch dest {
	case "/user/topic/greetings":
		return "greetings#" + user
	}
	return "bench." + dest[len("/topic/"):]
}

// connectCentrifugo opens a Centrifugo session subscribed to dests.
func connectCentrifugo(ctx context.Context, c *config, o dialOptions, i int, dests []string, onMessage func([]byte)) (*session, error) {
	ws, err := dialWS(ctx, o.url, o.localIP)
	if err != nil {
		return nil, err
	}
	t := &wsTransport{c: ws}
	s := &session{t: t, idx: i, onMessage: onMessage, receipts: make(chan string, 4), failed: make(chan error, 1)}
	tok, err := edge.IssueToken([]byte(c.JWTSecret), userName(i), 6*time.Hour)
	if err != nil {
		ws.Close()
		return nil, err
	}
	var cmds bytes.Buffer
	fmt.Fprintf(&cmds, `{"id":1,"connect":{"token":%q}}`, tok)
	for k, d := range dests {
		fmt.Fprintf(&cmds, "\n"+`{"id":%d,"subscribe":{"channel":%q}}`, k+2, centrifugoChannel(d, userName(i)))
	}
	if err := t.send(cmds.Bytes()); err != nil {
		ws.Close()
		return nil, err
	}
	ready := make(chan error, 1)
	go func() {
		want := 1 + len(dests)
		for {
			p, err := t.read()
			if err != nil {
				if want > 0 {
					ready <- err
				}
				select {
				case s.failed <- err:
				default:
				}
				return
			}
			for _, line := range bytes.Split(p, []byte{'\n'}) {
				line = bytes.TrimSpace(line)
				if len(line) == 0 {
					continue
				}
				if string(line) == "{}" {
					// The server's ping; it closes clients that do not
					// answer (this goroutine is the only writer now).
					_ = t.send([]byte("{}"))
					continue
				}
				var r centrifugoReply
				if err := json.Unmarshal(line, &r); err != nil {
					continue
				}
				switch {
				case r.Error != nil && want > 0:
					want = 0
					ready <- fmt.Errorf("centrifugo error %d: %s", r.Error.Code, r.Error.Message)
				case r.ID > 0 && want > 0:
					if want--; want == 0 {
						ready <- nil
					}
				case r.Push != nil && r.Push.Pub != nil && s.onMessage != nil:
					var body string
					if json.Unmarshal(r.Push.Pub.Data, &body) == nil {
						s.onMessage([]byte(body))
					}
				}
			}
		}
	}()
	select {
	case err := <-ready:
		if err != nil {
			ws.Close()
			return nil, err
		}
		return s, nil
	case <-ctx.Done():
		ws.Close()
		return nil, ctx.Err()
	}
}

// centrifugoPublisher publishes through Centrifugo's HTTP server API.
type centrifugoPublisher struct {
	client  *http.Client
	url     string // http://host:port/api/publish
	key     string
	channel string
	users   int // >0: to user seq%users's greetings channel
}

func newCentrifugoPublisher(c *config, users int) *centrifugoPublisher {
	return &centrifugoPublisher{
		client:  &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1024}, Timeout: 10 * time.Second},
		url:     c.CentrifugoAPI + "/api/publish",
		key:     c.APIToken,
		channel: centrifugoChannel(c.Topic, ""),
		users:   users,
	}
}

func (p *centrifugoPublisher) publish(ctx context.Context, seq uint64, b []byte) error {
	ch := p.channel
	if p.users > 0 {
		ch = "greetings#" + userName(int(seq%uint64(p.users)))
	}
	body, _ := json.Marshal(map[string]any{"channel": ch, "data": string(b)})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("X-API-Key", p.key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := p.client.Do(req)
	if err != nil {
		return err
	}
	out, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || bytes.Contains(out, []byte(`"error"`)) {
		return fmt.Errorf("centrifugo publish: HTTP %d: %s", resp.StatusCode, out)
	}
	return nil
}

func (p *centrifugoPublisher) close() { p.client.CloseIdleConnections() }
