package edge

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"unicode/utf8"
)

// sockjsRefusal is a refused request: the status and the text the client
// gets. The texts are the SockJS 0.3.3 protocol suite's where it has one.
type sockjsRefusal struct {
	status int
	text   string
}

func (e *sockjsRefusal) Error() string { return e.text }

// Refusals. The protocol answers bad payloads and callbacks with 500.
var (
	errSockJSPayloadExpected = &sockjsRefusal{http.StatusInternalServerError, "Payload expected."}
	errSockJSBrokenJSON      = &sockjsRefusal{http.StatusInternalServerError, "Broken JSON encoding."}
	errSockJSNoCallback      = &sockjsRefusal{http.StatusInternalServerError, `"callback" parameter required`}
	errSockJSBadCallback     = &sockjsRefusal{http.StatusInternalServerError, `invalid "callback" parameter`}
	errSockJSTooLarge        = &sockjsRefusal{http.StatusRequestEntityTooLarge, "Payload too large."}
	errSockJSTooManySessions = &sockjsRefusal{http.StatusServiceUnavailable, "Too many sessions."}
	errSockJSShuttingDown    = &sockjsRefusal{http.StatusServiceUnavailable, "Server shutting down."}
)

// errSockJSClosed is returned by Write once the session has closed.
var errSockJSClosed = errors.New("sockjs: session closed")

// sockjsError answers a refused request.
func sockjsError(w http.ResponseWriter, err error) {
	var r *sockjsRefusal
	if errors.As(err, &r) {
		http.Error(w, r.text, r.status)
		return
	}
	http.Error(w, err.Error(), http.StatusInternalServerError)
}

// checkSockJSCallback checks a jsonp or htmlfile callback name, which the
// response pastes into JavaScript. The protocol allows [a-zA-Z0-9-_.];
// pushgate refuses "-" too, because sockjs-go (which writes the response)
// refuses it with a 400, and sockjs-client never generates one.
func checkSockJSCallback(cb string) error {
	if cb == "" {
		return errSockJSNoCallback
	}
	for i := 0; i < len(cb); i++ {
		c := cb[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '.') {
			return errSockJSBadCallback
		}
	}
	return nil
}

// decodeSockJSPayload decodes a client's send body: a JSON array of strings.
// An empty body is errSockJSPayloadExpected; anything else that is not
// exactly such an array (trailing data included) is errSockJSBrokenJSON.
func decodeSockJSPayload(b []byte) ([]string, error) {
	if len(bytes.TrimSpace(b)) == 0 {
		return nil, errSockJSPayloadExpected
	}
	var msgs []string
	if err := json.Unmarshal(b, &msgs); err != nil {
		return nil, errSockJSBrokenJSON
	}
	return msgs, nil
}

// decodeSockJSWebSocketMessage decodes one WebSocket message of the SockJS
// websocket transport: a JSON array of strings, or (as sockjs-node accepts)
// a single JSON string.
func decodeSockJSWebSocketMessage(b []byte) ([]string, error) {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return nil, errSockJSBrokenJSON
		}
		return []string{s}, nil
	}
	return decodeSockJSPayload(b)
}

// sockjsMustEscape lists the characters SockJS servers must send \u-escaped:
// [\x00-\x1f\u200c-\u200f\u2028-\u202f\u2060-\u206f\ufff0-\uffff], which
// browsers or proxies mangle or treat as line breaks. encoding/json already
// escapes the control characters and U+2028/U+2029.
func sockjsMustEscape(r rune) bool {
	return r < 0x20 ||
		0x200c <= r && r <= 0x200f ||
		0x2028 <= r && r <= 0x202f ||
		0x2060 <= r && r <= 0x206f ||
		0xfff0 <= r && r <= 0xffff
}

// escapeSockJSUnicode replaces the non-ASCII characters sockjsMustEscape
// lists with \uXXXX escapes in an encoded frame. Such characters can occur
// only inside JSON (or JavaScript) string literals there, since all framing
// is ASCII, and inside a string literal an escape means the same character.
// ASCII passes through untouched, frame delimiters included. It returns b
// itself when there is nothing to escape.
func escapeSockJSUnicode(b []byte) []byte {
	var out []byte
	last := 0
	for i := 0; i < len(b); {
		if b[i] < utf8.RuneSelf {
			i++
			continue
		}
		r, size := utf8.DecodeRune(b[i:])
		if sockjsMustEscape(r) {
			if out == nil {
				out = make([]byte, 0, len(b)+32)
			}
			out = append(out, b[last:i]...)
			out = appendUnicodeEscape(out, r)
			last = i + size
		}
		i += size
	}
	if out == nil {
		return b
	}
	return append(out, b[last:]...)
}

// appendUnicodeEscape appends \uXXXX with lower-case hex, as JSON encoders
// and the protocol suite write it.
func appendUnicodeEscape(b []byte, r rune) []byte {
	const hexDigits = "0123456789abcdef"
	return append(b, '\\', 'u', hexDigits[r>>12&0xf], hexDigits[r>>8&0xf], hexDigits[r>>4&0xf], hexDigits[r&0xf])
}

// sockjsQuote encodes s as a JSON string for a SockJS frame.
func sockjsQuote(b []byte, s []byte) []byte {
	q, err := json.Marshal(string(s))
	if err != nil { // a string always marshals; keep the frame valid anyway
		q = []byte(`""`)
	}
	return append(b, escapeSockJSUnicode(q)...)
}

// sockjsMessageFrame is the frame a["msg"] for one message.
func sockjsMessageFrame(msg []byte) []byte {
	b := make([]byte, 0, len(msg)+len(msg)/8+8)
	b = append(b, 'a', '[')
	b = sockjsQuote(b, msg)
	return append(b, ']')
}

// sockjsCloseFrame is the frame c[code,"reason"].
func sockjsCloseFrame(code int, reason string) []byte {
	b := append([]byte("c["), strconv.Itoa(code)...)
	b = append(b, ',')
	b = sockjsQuote(b, []byte(reason))
	return append(b, ']')
}

// sockjsCloseCode maps a Transport close code (WebSocket-style, see
// transport.go) to the code of a SockJS close frame c[code,"reason"]:
//
//   - 1000 (CloseNormal) stays 1000, the code sockjs-client itself uses for
//     a normal close;
//   - 1001 (CloseGoingAway) becomes 3000, SockJS's conventional application
//     "Go away!", the same code a draining edge sends (CloseServerShutdown);
//   - other 1xxx codes become 3xxx (1002 protocol error after a STOMP ERROR
//     → 3002, 1008 policy → 3008, 1009 too big → 3009, 1011 internal →
//     3011): sockjs-client gives 1002 and 1006 its own meanings ("Connection
//     interrupted", "lost session"), and SockJS leaves 3000–4999 to
//     applications;
//   - 3000–4999 pass through;
//   - anything else becomes 3000.
//
// An empty reason gets a short text, since the frame always carries one.
// The raw /websocket endpoint is plain WebSocket and sends the codes as
// they are (see sockjsWSTransport.Close).
func sockjsCloseCode(code int, reason string) (int, string) {
	switch {
	case code == CloseNormal:
	case code == CloseGoingAway:
		code = CloseServerShutdown
	case 1000 < code && code < 2000:
		code += 2000
	case 3000 <= code && code <= 4999:
	default:
		code = CloseServerShutdown
	}
	if reason == "" {
		if code == CloseNormal {
			reason = "Normal closure"
		} else {
			reason = "Go away!"
		}
	}
	return code, reason
}
