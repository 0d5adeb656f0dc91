package edge

// This file is the STOMP 1.0/1.1/1.2 codec for frames from untrusted browser
// clients. It is pure code: no I/O, no goroutines, no locks; a session owns
// one Decoder and feeds it the messages its transport reads.
//
// It is hand-written rather than taken from go-stomp (which the relay uses
// towards the trusted broker) because go-stomp's frame.Reader has no size
// limits at all (a client could make it buffer without bound) and always
// applies STOMP 1.2 unescaping whatever version was negotiated. Here every
// limit is enforced while bytes arrive, before a frame is buffered whole,
// and header escaping follows the negotiated version.

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Version is a STOMP protocol version. The zero value means not negotiated
// (yet), or no version in common.
type Version int

// The STOMP versions pushgate speaks.
const (
	V10 Version = 10
	V11 Version = 11
	V12 Version = 12
)

// String returns the version as it appears in accept-version and version
// headers ("1.0", "1.1", "1.2"), or "unknown".
func (v Version) String() string {
	switch v {
	case V10:
		return "1.0"
	case V11:
		return "1.1"
	case V12:
		return "1.2"
	}
	return "unknown"
}

// Header is one STOMP header, already unescaped.
type Header struct{ Name, Value string }

// Frame is one STOMP frame.
type Frame struct {
	Command string
	// Headers are in wire order. A name may repeat; only its first
	// occurrence counts (STOMP 1.2 "Repeated Header Entries"), which is what
	// Get returns.
	Headers []Header
	// Body is nil when the frame has no body.
	Body []byte
}

// Get returns the value of the first header called name. STOMP says the
// first occurrence wins, so later repeats are ignored.
func (f *Frame) Get(name string) (string, bool) {
	for _, h := range f.Headers {
		if h.Name == name {
			return h.Value, true
		}
	}
	return "", false
}

// Add appends a header. It does not replace an existing one: since the first
// occurrence wins, callers that want to override a value must build the
// header list in the right order.
func (f *Frame) Add(name, value string) {
	f.Headers = append(f.Headers, Header{Name: name, Value: value})
}

// Limits bounds what a Decoder accepts from one client. Zero (or negative)
// fields take the defaults DESIGN.md gives.
type Limits struct {
	// MaxFrameBytes bounds a whole frame, from the first byte of its command
	// to its terminating NUL inclusive. Heart-beats between frames do not
	// count. Default 64 KiB, as Spring's messageSizeLimit.
	MaxFrameBytes int
	// MaxHeaders bounds the number of header lines of a frame. Default 32.
	MaxHeaders int
	// MaxHeaderBytes bounds the raw bytes of all header lines of a frame
	// together, each counted with its EOL (LF or CRLF); the command line and
	// the blank line ending the headers are not counted. Default 8 KiB.
	MaxHeaderBytes int
}

// Default limits, used for zero fields of Limits.
const (
	stompDefaultMaxFrameBytes  = 64 << 10
	stompDefaultMaxHeaders     = 32
	stompDefaultMaxHeaderBytes = 8 << 10
)

// withDefaults fills zero or negative fields with the defaults.
func (l Limits) withDefaults() Limits {
	if l.MaxFrameBytes <= 0 {
		l.MaxFrameBytes = stompDefaultMaxFrameBytes
	}
	if l.MaxHeaders <= 0 {
		l.MaxHeaders = stompDefaultMaxHeaders
	}
	if l.MaxHeaderBytes <= 0 {
		l.MaxHeaderBytes = stompDefaultMaxHeaderBytes
	}
	return l
}

// ProtocolError is a client's violation of the STOMP protocol or of a limit.
// It is fatal for the connection: the session sends an ERROR frame whose
// message header is Reason, then closes.
type ProtocolError struct{ Reason string }

// Error returns Reason, so the error can go into an ERROR frame as it is.
func (e *ProtocolError) Error() string { return e.Reason }

func stompErrorf(format string, args ...any) *ProtocolError {
	return &ProtocolError{Reason: fmt.Sprintf(format, args...)}
}

// STOMP client commands. Decoded frames use these constants as their
// Command, so decoding never allocates a command string.
const (
	stompCmdConnect     = "CONNECT"
	stompCmdStomp       = "STOMP"
	stompCmdSend        = "SEND"
	stompCmdSubscribe   = "SUBSCRIBE"
	stompCmdUnsubscribe = "UNSUBSCRIBE"
	stompCmdBegin       = "BEGIN"
	stompCmdCommit      = "COMMIT"
	stompCmdAbort       = "ABORT"
	stompCmdAck         = "ACK"
	stompCmdNack        = "NACK"
	stompCmdDisconnect  = "DISCONNECT"
	stompCmdConnected   = "CONNECTED"
)

// stompMaxCommandLine bounds the raw command line (without its LF). The
// longest client command is 11 bytes; the slack allows trailing CRs. It lets
// a client that sends garbage fail after a few bytes instead of after a whole
// frame's worth.
const stompMaxCommandLine = 32

// stompClientCommand returns the constant for a valid client command. The switch
// on string(b) does not allocate.
func stompClientCommand(b []byte) (string, bool) {
	switch string(b) {
	case stompCmdConnect:
		return stompCmdConnect, true
	case stompCmdStomp:
		return stompCmdStomp, true
	case stompCmdSend:
		return stompCmdSend, true
	case stompCmdSubscribe:
		return stompCmdSubscribe, true
	case stompCmdUnsubscribe:
		return stompCmdUnsubscribe, true
	case stompCmdBegin:
		return stompCmdBegin, true
	case stompCmdCommit:
		return stompCmdCommit, true
	case stompCmdAbort:
		return stompCmdAbort, true
	case stompCmdAck:
		return stompCmdAck, true
	case stompCmdNack:
		return stompCmdNack, true
	case stompCmdDisconnect:
		return stompCmdDisconnect, true
	}
	return "", false
}

// stompDecodeState is where a Decoder is within the frame it reassembles.
type stompDecodeState uint8

const (
	decIdle    stompDecodeState = iota // between frames, skipping heart-beat EOLs
	decCommand                         // in the command line
	decHeaders                         // in the header lines
	decBody                            // in a body without content-length, up to the first NUL
	decBodyN                           // in a body of content-length bytes
	decBodyNUL                         // expecting the NUL after a content-length body
)

// Decoder reassembles frames from a stream of chunks (WebSocket or SockJS
// messages): one chunk may hold several frames, and one frame may span many
// chunks. It parses incrementally, so each byte is examined about once however
// the stream is split, and it holds at most one incomplete frame, which the
// limits bound.
//
// A Decoder is not safe for concurrent use; its session's read loop owns it.
type Decoder struct {
	lim     Limits
	version Version // negotiated version; applies from the next frame on
	err     error   // sticky: once decoding failed, every Feed returns it

	state       stompDecodeState
	unescape    Version // escaping rules of the current frame; 0 means none
	trimValues  bool    // 1.0 leniency: drop spaces after the colon
	cmd         string
	frameBytes  int    // bytes of the current frame consumed so far
	headerBytes int    // raw bytes of its complete header lines
	line        []byte // start of a line that a chunk boundary cut
	lineAllCR   bool   // whether line holds only CRs (a blank line so far)
	arena       []byte // unescaped header names and values, back to back
	ends        []int  // per header: end of its name, end of its value in arena
	clSeen      bool   // a content-length header was seen (the first one counts)
	clen        int    // content-length; -1 when absent
	body        []byte
}

// NewDecoder returns a Decoder that enforces l (zero fields take defaults).
func NewDecoder(l Limits) *Decoder {
	return &Decoder{lim: l.withDefaults(), clen: -1}
}

// SetVersion sets the negotiated version, which decides header unescaping:
// 1.0 none; 1.1 \n \c \\; 1.2 adds \r; any other escape is an error. CONNECT
// and STOMP frames are never unescaped (STOMP 1.2 says so, for compatibility
// with 1.0 clients). Before SetVersion, headers are unescaped as 1.2, the
// strictest reading.
//
// The version applies from the next frame on, so a session may call
// SetVersion from within emit while handling CONNECT, and the frames that
// follow in the same chunk are decoded with it.
func (d *Decoder) SetVersion(v Version) { d.version = v }

// Buffered reports how many bytes of an incomplete frame the decoder has
// consumed and holds (in some form). It is 0 between frames and never more
// than Limits.MaxFrameBytes.
func (d *Decoder) Buffered() int { return d.frameBytes }

// Feed consumes p and calls emit for each complete frame, in order. Each
// Frame is newly allocated and belongs to emit's callee; Feed does not keep p.
// Heart-beats (bare EOLs between frames) are skipped.
//
// A decoding error is fatal for the connection: Feed returns a
// *ProtocolError whose Reason suits an ERROR frame. If emit returns an error,
// Feed stops and returns it unchanged. Either way the decoder is then
// finished, and further calls return the same error.
func (d *Decoder) Feed(p []byte, emit func(*Frame) error) error {
	if d.err != nil {
		return d.err
	}
	if err := d.feed(p, emit); err != nil {
		d.err = err
		return err
	}
	return nil
}

func (d *Decoder) feed(p []byte, emit func(*Frame) error) error {
	for len(p) > 0 {
		switch d.state {
		case decIdle:
			// Heart-beats are EOLs; a lone CR is skipped too, since
			// rejecting it would protect nothing.
			i := 0
			for i < len(p) && (p[i] == '\n' || p[i] == '\r') {
				i++
			}
			p = p[i:]
			if len(p) > 0 {
				d.state = decCommand
				d.lineAllCR = true
			}

		case decCommand, decHeaders:
			i := bytes.IndexByte(p, '\n')
			if i < 0 {
				if err := d.partialLine(p); err != nil {
					return err
				}
				d.line = append(d.line, p...)
				d.frameBytes += len(p)
				return nil
			}
			line := p[:i]
			if len(d.line) > 0 {
				// Check before copying, so that a huge chunk is refused
				// without being buffered.
				if err := d.partialLine(line); err != nil {
					return err
				}
				d.line = append(d.line, line...)
				line = d.line
			}
			p = p[i+1:]
			raw := len(line) + 1 // with its LF
			d.frameBytes += i + 1
			var err error
			if d.state == decCommand {
				err = d.commandLine(line)
			} else {
				err = d.headerLine(line, raw)
			}
			if err != nil {
				return err
			}
			d.line = d.line[:0]
			d.lineAllCR = true

		case decBody:
			i := bytes.IndexByte(p, 0)
			if i < 0 {
				// The NUL is still to come, so the frame is at least one
				// byte longer than what has arrived.
				if d.frameBytes+len(p)+1 > d.lim.MaxFrameBytes {
					return d.tooLarge()
				}
				d.body = append(d.body, p...)
				d.frameBytes += len(p)
				return nil
			}
			if d.frameBytes+i+1 > d.lim.MaxFrameBytes {
				return d.tooLarge()
			}
			if i > 0 {
				d.body = append(d.body, p[:i]...)
			}
			d.frameBytes += i + 1
			p = p[i+1:]
			if err := d.finish(emit); err != nil {
				return err
			}

		case decBodyN:
			n := min(d.clen-len(d.body), len(p))
			d.body = append(d.body, p[:n]...)
			d.frameBytes += n
			p = p[n:]
			if len(d.body) == d.clen {
				d.state = decBodyNUL
			}

		case decBodyNUL:
			if p[0] != 0 {
				return stompErrorf("missing NUL after body of content-length %d", d.clen)
			}
			d.frameBytes++
			p = p[1:]
			if err := d.finish(emit); err != nil {
				return err
			}
		}
	}
	return nil
}

// partialLine checks the start of a command or header line that p ends
// within, so that limits fail as soon as they are certain to be exceeded
// rather than after the line is complete.
func (d *Decoder) partialLine(p []byte) error {
	if bytes.IndexByte(p, 0) >= 0 {
		return stompErrNULInHeaders()
	}
	n := len(d.line) + len(p)
	if d.state == decCommand && n > stompMaxCommandLine {
		return stompUnknownCommand(append(d.line, p...))
	}
	// The line still needs its LF and the frame its NUL.
	if d.frameBytes+len(p)+2 > d.lim.MaxFrameBytes {
		return d.tooLarge()
	}
	if d.state == decCommand {
		return nil
	}
	d.lineAllCR = d.lineAllCR && stompAllCR(p)
	if d.lineAllCR {
		return nil // may still be the blank line that ends the headers
	}
	if len(d.ends)/2 >= d.lim.MaxHeaders {
		return d.tooManyHeaders()
	}
	if d.headerBytes+n+1 > d.lim.MaxHeaderBytes {
		return d.headersTooLarge()
	}
	return nil
}

// commandLine starts a frame from its command line (without LF).
func (d *Decoder) commandLine(line []byte) error {
	if bytes.IndexByte(line, 0) >= 0 {
		return stompErrNULInHeaders()
	}
	if len(line) > stompMaxCommandLine {
		return stompUnknownCommand(line)
	}
	if d.frameBytes+1 > d.lim.MaxFrameBytes {
		return d.tooLarge()
	}
	cmd, ok := stompClientCommand(stompTrimCR(line))
	if !ok {
		return stompUnknownCommand(line)
	}
	d.cmd = cmd
	d.state = decHeaders
	d.unescape = 0
	if cmd != stompCmdConnect && cmd != stompCmdStomp {
		switch d.version {
		case 0:
			d.unescape = V12
		case V11, V12:
			d.unescape = d.version
		}
	}
	d.trimValues = d.version == V10
	return nil
}

// headerLine takes one header line (without LF; raw is its length with the
// LF), or the blank line that ends the headers.
func (d *Decoder) headerLine(line []byte, raw int) error {
	if bytes.IndexByte(line, 0) >= 0 {
		return stompErrNULInHeaders()
	}
	if d.frameBytes+1 > d.lim.MaxFrameBytes {
		return d.tooLarge()
	}
	line = stompTrimCR(line)
	if len(line) == 0 {
		return d.endHeaders()
	}
	if len(d.ends)/2 >= d.lim.MaxHeaders {
		return d.tooManyHeaders()
	}
	if d.headerBytes+raw > d.lim.MaxHeaderBytes {
		return d.headersTooLarge()
	}
	d.headerBytes += raw

	colon := bytes.IndexByte(line, ':')
	if colon < 0 {
		return &ProtocolError{Reason: "header line without ':'"}
	}
	if colon == 0 {
		return &ProtocolError{Reason: "empty header name"}
	}
	name, value := line[:colon], line[colon+1:]
	if d.trimValues {
		// STOMP 1.0's examples write "key: value"; STOMP 1.1 and later
		// forbid trimming, so only 1.0 gets this leniency.
		for len(value) > 0 && (value[0] == ' ' || value[0] == '\t') {
			value = value[1:]
		}
	}
	start := len(d.arena)
	var err error
	if d.arena, err = stompUnescape(d.arena, name, d.unescape, "name"); err != nil {
		return err
	}
	nameEnd := len(d.arena)
	if d.arena, err = stompUnescape(d.arena, value, d.unescape, "value"); err != nil {
		return err
	}
	d.ends = append(d.ends, nameEnd, len(d.arena))

	if !d.clSeen && string(d.arena[start:nameEnd]) == "content-length" {
		d.clSeen = true
		n, ok := stompContentLength(d.arena[nameEnd:])
		if !ok {
			return &ProtocolError{Reason: "invalid content-length"}
		}
		d.clen = n
	}
	return nil
}

// endHeaders handles the blank line after the headers.
func (d *Decoder) endHeaders() error {
	if d.clen < 0 {
		d.state = decBody
		return nil
	}
	// The whole frame size is known now: fail before buffering the body.
	if d.frameBytes+d.clen+1 > d.lim.MaxFrameBytes {
		return d.tooLarge()
	}
	if d.clen == 0 {
		d.state = decBodyNUL
		return nil
	}
	d.body = make([]byte, 0, d.clen)
	d.state = decBodyN
	return nil
}

// finish emits the frame just completed and resets the decoder for the next.
func (d *Decoder) finish(emit func(*Frame) error) error {
	f := &Frame{Command: d.cmd}
	if n := len(d.ends) / 2; n > 0 {
		// One string for all names and values: one allocation per frame
		// instead of two per header.
		s := string(d.arena)
		f.Headers = make([]Header, n)
		start := 0
		for i := range f.Headers {
			ne, ve := d.ends[2*i], d.ends[2*i+1]
			f.Headers[i] = Header{Name: s[start:ne], Value: s[ne:ve]}
			start = ve
		}
	}
	if len(d.body) > 0 {
		f.Body = d.body
	}

	d.state = decIdle
	d.cmd = ""
	d.frameBytes = 0
	d.headerBytes = 0
	d.clSeen = false
	d.clen = -1
	d.body = nil
	// Keep small scratch buffers for the next frame, but do not let one
	// large frame pin memory for the rest of a long-lived session.
	if cap(d.arena) > 4<<10 {
		d.arena = nil
	} else {
		d.arena = d.arena[:0]
	}
	if cap(d.line) > 4<<10 {
		d.line = nil
	} else {
		d.line = d.line[:0]
	}
	d.ends = d.ends[:0]
	return emit(f)
}

func (d *Decoder) tooLarge() error {
	return stompErrorf("frame exceeds %d bytes", d.lim.MaxFrameBytes)
}

func (d *Decoder) tooManyHeaders() error {
	return stompErrorf("too many headers (max %d)", d.lim.MaxHeaders)
}

func (d *Decoder) headersTooLarge() error {
	return stompErrorf("headers exceed %d bytes", d.lim.MaxHeaderBytes)
}

func stompErrNULInHeaders() error {
	return &ProtocolError{Reason: "NUL in frame headers"}
}

// stompUnknownCommand names the offending command, shortened and quoted when it
// is long or not printable, since it is the client's bytes going into an
// ERROR frame and a log line.
func stompUnknownCommand(line []byte) error {
	line = stompTrimCR(line)
	const show = 16
	plain := len(line) <= show
	for _, c := range line {
		if c < 0x21 || c > 0x7e {
			plain = false
			break
		}
	}
	if plain {
		return stompErrorf("unknown command %s", line)
	}
	if len(line) > show {
		return stompErrorf("unknown command %q...", line[:show])
	}
	return stompErrorf("unknown command %q", line)
}

// stompTrimCR drops the CRs before a line's LF: CRLF is STOMP 1.2's EOL, and
// accepting it from every version is harmless. Dropping all of them (not
// just one) means a decoded value never ends in CR, which keeps re-encoding
// exact for versions that cannot escape CR.
func stompTrimCR(b []byte) []byte {
	for len(b) > 0 && b[len(b)-1] == '\r' {
		b = b[:len(b)-1]
	}
	return b
}

func stompAllCR(b []byte) bool {
	for _, c := range b {
		if c != '\r' {
			return false
		}
	}
	return true
}

// stompUnescape appends s to dst, undoing the header escaping of version v
// (0: none). what is "name" or "value", for the error message.
func stompUnescape(dst, s []byte, v Version, what string) ([]byte, error) {
	if v == 0 {
		return append(dst, s...), nil
	}
	for {
		i := bytes.IndexByte(s, '\\')
		if i < 0 {
			return append(dst, s...), nil
		}
		dst = append(dst, s[:i]...)
		if i+1 == len(s) {
			return dst, stompErrorf("invalid escape sequence \\ at end of header %s", what)
		}
		switch c := s[i+1]; {
		case c == 'n':
			dst = append(dst, '\n')
		case c == 'c':
			dst = append(dst, ':')
		case c == '\\':
			dst = append(dst, '\\')
		case c == 'r' && v >= V12:
			dst = append(dst, '\r')
		case c > 0x20 && c < 0x7f:
			return dst, stompErrorf("invalid escape sequence \\%c in header %s", c, what)
		default:
			return dst, stompErrorf("invalid escape sequence \\ followed by byte 0x%02x in header %s", c, what)
		}
		s = s[i+2:]
	}
}

// stompContentLength parses a content-length value: decimal digits only.
// Values beyond any frame limit are reported as such by the caller, so the
// parse only needs to avoid overflow.
func stompContentLength(b []byte) (int, bool) {
	if len(b) == 0 {
		return 0, false
	}
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		if n < 1<<40 {
			n = n*10 + int(c-'0')
		}
	}
	return n, true
}

// stompEscapeMode is how AppendFrame writes header names and values.
type stompEscapeMode uint8

const (
	stompEscapeNone stompEscapeMode = iota // 1.0, and CONNECT/STOMP/CONNECTED in any version
	stompEscape11                          // \n \c \\
	stompEscape12                          // \n \c \\ \r
)

// stompNeedsEscape marks, per mode, the bytes that cannot be written as they are.
// In stompEscapeNone mode LF and NUL cannot be escaped, so AppendFrame writes a
// space instead rather than let a value inject headers or end the frame; in
// the escaping modes NUL gets the same treatment. (The decoder never produces
// such values, so decoded frames re-encode exactly.)
var stompNeedsEscape = func() (t [3][256]bool) {
	for m := range t {
		t[m]['\n'] = true
		t[m][0] = true
	}
	for _, m := range []stompEscapeMode{stompEscape11, stompEscape12} {
		t[m][':'] = true
		t[m]['\\'] = true
	}
	t[stompEscape12]['\r'] = true
	return t
}()

func stompEscape(dst []byte, s string, m stompEscapeMode) []byte {
	tab := &stompNeedsEscape[m]
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !tab[c] {
			continue
		}
		dst = append(dst, s[start:i]...)
		start = i + 1
		switch {
		case c == 0 || m == stompEscapeNone:
			dst = append(dst, ' ')
		case c == '\n':
			dst = append(dst, '\\', 'n')
		case c == ':':
			dst = append(dst, '\\', 'c')
		case c == '\\':
			dst = append(dst, '\\', '\\')
		case c == '\r':
			dst = append(dst, '\\', 'r')
		}
	}
	return append(dst, s[start:]...)
}

// AppendFrame encodes f for a client that negotiated v and appends it to dst.
// Header names and values are escaped as v requires (1.0: not at all;
// version 0 as 1.2); CONNECTED, CONNECT and STOMP frames are never escaped.
// The body is written verbatim, and a content-length header computed from it
// is added when it is non-empty; any content-length header in f is skipped,
// so a caller that copied one from elsewhere cannot get it wrong.
//
// The command must be a valid STOMP command; it is written as it is.
func AppendFrame(dst []byte, v Version, f *Frame) []byte {
	mode := stompEscape12
	switch {
	case f.Command == stompCmdConnected || f.Command == stompCmdConnect || f.Command == stompCmdStomp || v == V10:
		mode = stompEscapeNone
	case v == V11:
		mode = stompEscape11
	}
	dst = append(dst, f.Command...)
	dst = append(dst, '\n')
	for _, h := range f.Headers {
		if h.Name == "content-length" {
			continue
		}
		dst = stompEscape(dst, h.Name, mode)
		dst = append(dst, ':')
		dst = stompEscape(dst, h.Value, mode)
		dst = append(dst, '\n')
	}
	if len(f.Body) > 0 {
		dst = append(dst, "content-length:"...)
		dst = strconv.AppendInt(dst, int64(len(f.Body)), 10)
		dst = append(dst, '\n')
	}
	dst = append(dst, '\n')
	dst = append(dst, f.Body...)
	return append(dst, 0)
}

// NegotiateVersion picks the highest version that both the client's
// accept-version header (a comma-separated list) and pushgate support. A
// client that sends no accept-version (present false) speaks 1.0, as the
// spec says. It returns 0 when there is no version in common (including an
// empty header), which the session answers with an ERROR.
func NegotiateVersion(acceptVersion string, present bool) Version {
	if !present {
		return V10
	}
	var best Version
	for part := range strings.SplitSeq(acceptVersion, ",") {
		var v Version
		switch strings.TrimSpace(part) {
		case "1.0":
			v = V10
		case "1.1":
			v = V11
		case "1.2":
			v = V12
		}
		best = max(best, v)
	}
	return best
}

// stompMaxHeartBeat bounds a heart-beat interval (ms), about 24 days, so that
// converting it to a time.Duration cannot overflow.
const stompMaxHeartBeat = 1<<31 - 1

// ParseHeartBeat parses a heart-beat header, "cx,cy" in milliseconds. A
// missing (empty) header means 0,0, no heart-beats. Spaces around the numbers
// are tolerated. An invalid value is a *ProtocolError.
func ParseHeartBeat(s string) (cx, cy int, err error) {
	if strings.TrimSpace(s) == "" {
		return 0, 0, nil
	}
	a, b, ok := strings.Cut(s, ",")
	if ok {
		cx, ok = stompHeartBeatValue(a)
	}
	if ok {
		cy, ok = stompHeartBeatValue(b)
	}
	if !ok {
		q := s
		if len(q) > 32 {
			q = q[:32] + "..."
		}
		return 0, 0, stompErrorf("invalid heart-beat %q", q)
	}
	return cx, cy, nil
}

func stompHeartBeatValue(s string) (int, bool) {
	s = strings.TrimSpace(s)
	if s == "" || len(s) > 10 {
		return 0, false
	}
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, n <= stompMaxHeartBeat
}

// NegotiateHeartBeat applies STOMP's heart-beat rule to the client's CONNECT
// heart-beat cx,cy and the server's offer sx,sy (all in ms, 0 meaning
// "cannot"/"do not want"). send is how often the server must send something
// (max(sx,cy), or 0 for never). expectWithin is how long the server waits for
// data from the client before declaring it dead: twice the agreed client
// interval max(cx,sy), the margin stompjs uses (Spring's relay uses 3×),
// which absorbs one late beat and network jitter; 0 means never.
func NegotiateHeartBeat(cx, cy, sx, sy int) (send, expectWithin time.Duration) {
	if sx > 0 && cy > 0 {
		send = time.Duration(max(sx, cy)) * time.Millisecond
	}
	if cx > 0 && sy > 0 {
		expectWithin = 2 * time.Duration(max(cx, sy)) * time.Millisecond
	}
	return send, expectWithin
}
