// Package stompclient is a minimal STOMP-over-WebSocket client for tests
// and benchmarks: it sends raw frames and exposes every frame the server
// sends, including RECEIPT and ERROR, which higher-level clients hide.
package stompclient

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/go-stomp/stomp/v3/frame"
	"github.com/gorilla/websocket"
)

// Client is one STOMP session over a WebSocket.
type Client struct {
	ws *websocket.Conn
	// Frames receives every frame from the server, heart-beats excluded; it
	// is closed when the connection ends.
	Frames <-chan *frame.Frame
	// Subprotocol is what the server negotiated.
	Subprotocol string

	wmu     sync.Mutex
	pw      *io.PipeWriter
	done    chan struct{}
	receipt int
	wg      sync.WaitGroup
}

// Dial opens a WebSocket to url (ws://host/stomp?access_token=...) offering
// the STOMP subprotocols.
func Dial(ctx context.Context, url string, header http.Header) (*Client, *http.Response, error) {
	d := websocket.Dialer{Subprotocols: []string{"v12.stomp", "v11.stomp", "v10.stomp"}, HandshakeTimeout: 10 * time.Second}
	ws, resp, err := d.DialContext(ctx, url, header)
	if err != nil {
		return nil, resp, err
	}
	frames := make(chan *frame.Frame, 1024)
	pr, pw := io.Pipe()
	c := &Client{ws: ws, Frames: frames, Subprotocol: ws.Subprotocol(), pw: pw, done: make(chan struct{})}
	c.wg.Add(2)
	go func() { // WebSocket messages → byte stream
		defer c.wg.Done()
		for {
			_, p, err := ws.ReadMessage()
			if err != nil {
				pw.CloseWithError(err)
				return
			}
			if _, err := pw.Write(p); err != nil {
				return
			}
		}
	}()
	go func() { // byte stream → frames
		defer c.wg.Done()
		defer close(frames)
		r := frame.NewReader(bufio.NewReader(pr))
		for {
			f, err := r.Read()
			if err != nil {
				pr.CloseWithError(err)
				return
			}
			if f != nil {
				frames <- f
			}
		}
	}()
	return c, resp, nil
}

// SendRaw sends bytes as one WebSocket text message.
func (c *Client) SendRaw(p []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.ws.WriteMessage(websocket.TextMessage, p)
}

// Encode renders a frame; headers are name, value pairs. It does not escape
// header values (tests control them).
func Encode(command string, body []byte, headers ...string) []byte {
	var b bytes.Buffer
	b.WriteString(command)
	b.WriteByte('\n')
	for i := 0; i+1 < len(headers); i += 2 {
		b.WriteString(headers[i])
		b.WriteByte(':')
		b.WriteString(headers[i+1])
		b.WriteByte('\n')
	}
	b.WriteByte('\n')
	b.Write(body)
	b.WriteByte(0)
	return b.Bytes()
}

// Send sends one frame.
func (c *Client) Send(command string, body []byte, headers ...string) error {
	return c.SendRaw(Encode(command, body, headers...))
}

// Next returns the next frame, or an error after timeout or when the
// connection ended.
func (c *Client) Next(timeout time.Duration) (*frame.Frame, error) {
	select {
	case f, ok := <-c.Frames:
		if !ok {
			return nil, errors.New("connection closed")
		}
		return f, nil
	case <-time.After(timeout):
		return nil, fmt.Errorf("no frame within %v", timeout)
	}
}

// Expect returns the next frame and fails unless its command is command.
func (c *Client) Expect(command string, timeout time.Duration) (*frame.Frame, error) {
	f, err := c.Next(timeout)
	if err != nil {
		return nil, fmt.Errorf("waiting for %s: %w", command, err)
	}
	if f.Command != command {
		return f, fmt.Errorf("got %s (message %q, body %q), want %s", f.Command, f.Header.Get("message"), f.Body, command)
	}
	return f, nil
}

// Connect sends CONNECT with the given extra headers and waits for CONNECTED.
func (c *Client) Connect(timeout time.Duration, headers ...string) (*frame.Frame, error) {
	h := append([]string{"accept-version", "1.2,1.1,1.0", "host", "pushgate", "heart-beat", "0,0"}, headers...)
	if err := c.Send("CONNECT", nil, h...); err != nil {
		return nil, err
	}
	return c.Expect("CONNECTED", timeout)
}

// Subscribe subscribes with a receipt and waits for it.
func (c *Client) Subscribe(id, dest string, timeout time.Duration) error {
	c.receipt++
	r := "sub-" + strconv.Itoa(c.receipt)
	if err := c.Send("SUBSCRIBE", nil, "id", id, "destination", dest, "receipt", r); err != nil {
		return err
	}
	f, err := c.Expect("RECEIPT", timeout)
	if err != nil {
		return err
	}
	if got := f.Header.Get("receipt-id"); got != r {
		return fmt.Errorf("receipt-id %q, want %q", got, r)
	}
	return nil
}

// Close closes the connection and waits for the client's goroutines.
func (c *Client) Close() error {
	err := c.ws.Close()
	c.pw.Close()
	for range c.Frames { // unblock the reader if nobody consumed
	}
	c.wg.Wait()
	return err
}
