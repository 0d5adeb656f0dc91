package gateway

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"time"
)

// errBodyStalled means the client stopped sending its request body for longer than
// Server.BodyReadTimeout; the gateway answers 408.
var errBodyStalled = errors.New("gateway: request body stalled")

// limitedBody bounds a request body in size (http.MaxBytesReader, giving 413) and in idleness:
// each Read must make progress within timeout, so a client that trickles a body cannot hold a
// goroutine and an upstream connection forever. The whole body may take as long as it keeps
// coming. The read deadline is cleared once the body is done, so it never reaches the
// connection's later life (keep-alive, or the background read that notices a client leaving
// during a long response).
type limitedBody struct {
	rc      io.ReadCloser
	ctl     *http.ResponseController
	timeout time.Duration
	done    atomic.Bool
	// stalled is set on a read timeout. net/http cancels the request's context on that error,
	// so the proxy may report "context canceled" rather than errBodyStalled; this tells them apart.
	stalled atomic.Bool
}

func newLimitedBody(w http.ResponseWriter, body io.ReadCloser, limit int64, timeout time.Duration) *limitedBody {
	return &limitedBody{rc: http.MaxBytesReader(w, body, limit), ctl: http.NewResponseController(w), timeout: timeout}
}

func (b *limitedBody) Read(p []byte) (int, error) {
	if b.timeout > 0 && !b.done.Load() {
		_ = b.ctl.SetReadDeadline(time.Now().Add(b.timeout))
	}
	n, err := b.rc.Read(p)
	if err != nil {
		b.finish()
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			b.stalled.Store(true)
			return n, fmt.Errorf("%w: %w", errBodyStalled, err)
		}
	}
	return n, err
}

// finish clears the read deadline; it is called at the end of the body and when the response
// begins (an upstream may answer without reading the whole body).
func (b *limitedBody) finish() {
	if b.timeout > 0 && !b.done.Swap(true) {
		_ = b.ctl.SetReadDeadline(time.Time{})
	}
}

func (b *limitedBody) Close() error {
	b.finish()
	return b.rc.Close()
}
