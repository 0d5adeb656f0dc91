package edge

import (
	"bytes"
	"encoding/json"
	"testing"
	"unicode/utf8"
)

// FuzzSockJSFraming decodes arbitrary client messages of the SockJS
// transports and re-encodes what they carry: decoding never panics; every
// message decoded goes out in an a[...] frame that decodes back to exactly
// that message and holds none of the characters SockJS requires escaped;
// close frames are c[code,"reason"] with a code the protocol allows; a
// callback name that is accepted cannot break out of JavaScript.
func FuzzSockJSFraming(f *testing.F) {
	for _, s := range []string{
		`["CONNECT\naccept-version:1.2\n\n\u0000"]`, `"one string"`, `[]`, `["a","b"]`, `[1]`, `["x"] trailing`,
		"[\"\u2028\u2029\ufff0\u200c\"]", `["\ud800"]`, `{"a":1}`, ``, ` `, `[`, `null`, `["\u0000"]`,
	} {
		f.Add([]byte(s), 1002, "reason", "cb_1.x")
	}
	f.Add([]byte(`["x"]`), 3000, "Go away!", "alert(1)//")
	f.Add([]byte(`["x"]`), -5, "\xff\xfe", "")
	f.Fuzz(func(t *testing.T, msg []byte, code int, reason, callback string) {
		msgs, err := decodeSockJSWebSocketMessage(msg)
		// A JSON array decodes the same on the WebSocket and HTTP paths.
		if m2, err2 := decodeSockJSPayload(msg); err == nil && err2 == nil && len(m2) != len(msgs) {
			t.Fatalf("%q: %d messages on the WebSocket path, %d on the HTTP path", msg, len(msgs), len(m2))
		}
		for _, m := range msgs {
			frame := sockjsMessageFrame([]byte(m))
			checkEscaped(t, frame)
			if len(frame) < 3 || frame[0] != 'a' {
				t.Fatalf("message frame %q", frame)
			}
			back, err := decodeSockJSPayload(frame[1:])
			if err != nil || len(back) != 1 {
				t.Fatalf("frame %q of %q does not decode: %v %q", frame, m, err, back)
			}
			if utf8.ValidString(m) && back[0] != m {
				t.Fatalf("frame %q decodes to %q, want %q", frame, back[0], m)
			}
		}

		c, r := sockjsCloseCode(code, reason)
		if c != CloseNormal && (c < 3000 || c > 4999) {
			t.Fatalf("sockjsCloseCode(%d) = %d", code, c)
		}
		frame := sockjsCloseFrame(c, r)
		checkEscaped(t, frame)
		var parts []any
		if len(frame) < 2 || frame[0] != 'c' || json.Unmarshal(frame[1:], &parts) != nil || len(parts) != 2 {
			t.Fatalf("close frame %q", frame)
		}
		if _, ok := parts[1].(string); !ok {
			t.Fatalf("close frame %q: reason is not a string", frame)
		}

		if checkSockJSCallback(callback) == nil {
			if callback == "" || bytes.ContainsAny([]byte(callback), "()'\"<>;/\\ \n=+-") {
				t.Fatalf("callback %q accepted", callback)
			}
		}
	})
}

// checkEscaped fails when an outgoing frame holds a raw character that
// SockJS requires \u-escaped.
func checkEscaped(t *testing.T, frame []byte) {
	t.Helper()
	for i := 0; i < len(frame); {
		r, size := utf8.DecodeRune(frame[i:])
		if r != utf8.RuneError && sockjsMustEscape(r) {
			t.Fatalf("frame %q holds a raw %U", frame, r)
		}
		i += size
	}
}
