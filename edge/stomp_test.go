package edge

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// stompDecodeChunks feeds chunks to d in order and collects the frames. It stops
// at the first error.
func stompDecodeChunks(d *Decoder, chunks ...[]byte) ([]*Frame, error) {
	var frames []*Frame
	emit := func(f *Frame) error {
		frames = append(frames, f)
		return nil
	}
	for _, c := range chunks {
		if err := d.Feed(c, emit); err != nil {
			return frames, err
		}
	}
	return frames, nil
}

// stompDecodeString decodes s in one chunk with a fresh decoder for version v
// (0: SetVersion not called).
func stompDecodeString(v Version, l Limits, s string) ([]*Frame, error) {
	d := NewDecoder(l)
	if v != 0 {
		d.SetVersion(v)
	}
	return stompDecodeChunks(d, []byte(s))
}

// reason returns the Reason of a *ProtocolError, "" for nil, and fails the
// test for any other error.
func stompReason(t *testing.T, err error) string {
	t.Helper()
	if err == nil {
		return ""
	}
	var pe *ProtocolError
	if !errors.As(err, &pe) {
		t.Fatalf("error %v (%T) is not a *ProtocolError", err, err)
	}
	return pe.Reason
}

// stompWithoutCL drops content-length headers, which AppendFrame
// recomputes, so that frames can be compared after a round trip.
func stompWithoutCL(f *Frame) *Frame {
	g := &Frame{Command: f.Command, Body: f.Body}
	for _, h := range f.Headers {
		if h.Name != "content-length" {
			g.Headers = append(g.Headers, h)
		}
	}
	return g
}

var stompFrameCmp = cmpopts.EquateEmpty()

func TestStompVersionString(t *testing.T) {
	t.Parallel()
	for v, want := range map[Version]string{V10: "1.0", V11: "1.1", V12: "1.2", 0: "unknown", 13: "unknown"} {
		if got := v.String(); got != want {
			t.Errorf("Version(%d).String() = %q, want %q", int(v), got, want)
		}
	}
}

func TestStompFrameGetAdd(t *testing.T) {
	t.Parallel()
	var f Frame
	f.Add("destination", "/topic/a")
	f.Add("destination", "/topic/b")
	f.Add("empty", "")
	if got, ok := f.Get("destination"); !ok || got != "/topic/a" {
		t.Errorf("Get(destination) = %q, %v; want the first occurrence /topic/a, true", got, ok)
	}
	if got, ok := f.Get("empty"); !ok || got != "" {
		t.Errorf("Get(empty) = %q, %v; want \"\", true", got, ok)
	}
	if got, ok := f.Get("missing"); ok || got != "" {
		t.Errorf("Get(missing) = %q, %v; want \"\", false", got, ok)
	}
}

func TestStompAppendFrameEncoding(t *testing.T) {
	t.Parallel()
	msg := &Frame{
		Command: "MESSAGE",
		Headers: []Header{
			{"destination", "/user/topic/greetings"},
			{"x:y", "a:b\nc\\d\re"},
			{"content-length", "999"}, // wrong on purpose: AppendFrame computes its own
		},
		Body: []byte("hi\x00there"),
	}
	tests := []struct {
		name string
		v    Version
		f    *Frame
		want string
	}{
		{"1.2 escapes", V12, msg,
			"MESSAGE\ndestination:/user/topic/greetings\nx\\cy:a\\cb\\nc\\\\d\\re\ncontent-length:8\n\nhi\x00there\x00"},
		{"unnegotiated escapes as 1.2", 0, msg,
			"MESSAGE\ndestination:/user/topic/greetings\nx\\cy:a\\cb\\nc\\\\d\\re\ncontent-length:8\n\nhi\x00there\x00"},
		{"1.1 has no CR escape", V11, msg,
			"MESSAGE\ndestination:/user/topic/greetings\nx\\cy:a\\cb\\nc\\\\d\re\ncontent-length:8\n\nhi\x00there\x00"},
		{"1.0 no escaping, LF neutralized", V10, msg,
			"MESSAGE\ndestination:/user/topic/greetings\nx:y:a:b c\\d\re\ncontent-length:8\n\nhi\x00there\x00"},
		{"CONNECTED never escaped", V12,
			&Frame{Command: "CONNECTED", Headers: []Header{{"version", "1.2"}, {"server", "a:b\\c\nd"}}},
			"CONNECTED\nversion:1.2\nserver:a:b\\c d\n\n\x00"},
		{"NUL in header neutralized", V12,
			&Frame{Command: "RECEIPT", Headers: []Header{{"receipt-id", "a\x00b"}}},
			"RECEIPT\nreceipt-id:a b\n\n\x00"},
		{"empty body has no content-length", V12,
			&Frame{Command: "ERROR", Headers: []Header{{"message", "bad"}, {"content-length", "0"}}},
			"ERROR\nmessage:bad\n\n\x00"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := string(AppendFrame(nil, tt.v, tt.f))
			if got != tt.want {
				t.Errorf("AppendFrame:\n got %q\nwant %q", got, tt.want)
			}
		})
	}
	t.Run("appends to dst", func(t *testing.T) {
		t.Parallel()
		got := string(AppendFrame([]byte("prefix"), V12, &Frame{Command: "RECEIPT"}))
		if want := "prefixRECEIPT\n\n\x00"; got != want {
			t.Errorf("got %q, want %q", got, want)
		}
	})
}

func TestStompRoundTripPerVersion(t *testing.T) {
	t.Parallel()
	frames := []*Frame{
		{Command: "SEND", Headers: []Header{{"destination", "/app/hello"}}, Body: []byte("hello")},
		{Command: "SEND", Headers: []Header{{"destination", "/app/x"}, {"content-type", "application/octet-stream"}}, Body: []byte{0, 1, 0, 255, 0}},
		{Command: "SUBSCRIBE", Headers: []Header{{"id", "sub-0"}, {"destination", "/user/topic/greetings"}, {"receipt", "r1"}}},
		{Command: "UNSUBSCRIBE", Headers: []Header{{"id", "sub-0"}}},
		{Command: "DISCONNECT", Headers: []Header{{"receipt", "bye"}}},
		{Command: "ACK", Headers: []Header{{"id", "m-1"}, {"id", "repeated"}}},
		{Command: "NACK", Headers: []Header{{"id", ""}}},
		{Command: "BEGIN", Headers: []Header{{"transaction", "tx 1"}}},
		{Command: "COMMIT", Headers: []Header{{"transaction", "tx 1"}}},
		{Command: "ABORT", Headers: []Header{{"transaction", "tx 1"}}},
		{Command: "SEND", Headers: []Header{{"destination", "/app/ünïcødé"}, {"x-json", `{"a":"b"}`}}, Body: []byte("\n\r\n")},
		{Command: "CONNECT", Headers: []Header{{"accept-version", "1.2,1.1,1.0"}, {"passcode", `a:b\c`}, {"heart-beat", "10000,10000"}}},
		{Command: "STOMP", Headers: []Header{{"accept-version", "1.2"}, {"login", "x:y"}}},
	}
	// Values that only the escaping versions can carry.
	escaped := &Frame{Command: "SEND", Headers: []Header{{"a:b", "c:d"}, {"multi", "line1\nline2"}, {`back\slash`, `\\`}}}
	crOnly := &Frame{Command: "SEND", Headers: []Header{{"cr", "x\ry"}, {"cr-end", "trailing\r\\"}}}

	for _, v := range []Version{V10, V11, V12} {
		cases := append([]*Frame(nil), frames...)
		if v != V10 {
			cases = append(cases, escaped, crOnly)
		}
		for i, want := range cases {
			t.Run(fmt.Sprintf("%v/%d-%s", v, i, want.Command), func(t *testing.T) {
				t.Parallel()
				enc := AppendFrame(nil, v, want)
				got, err := stompDecodeString(v, Limits{}, string(enc))
				if err != nil {
					t.Fatalf("decode %q: %v", enc, err)
				}
				if len(got) != 1 {
					t.Fatalf("decode %q: got %d frames, want 1", enc, len(got))
				}
				if diff := cmp.Diff(want, stompWithoutCL(got[0]), stompFrameCmp); diff != "" {
					t.Errorf("round trip of %q (-want +got):\n%s", enc, diff)
				}
			})
		}
	}
}

// stompStream is a sequence of frames with heart-beats, CRLF line ends, a NUL
// inside a content-length body and a frame whose body ends at the first NUL.
const stompStream = "\n\r\nCONNECT\r\naccept-version:1.2\r\nhost:h\r\n\r\n\x00\n\n" +
	"SUBSCRIBE\nid:0\ndestination:/topic/a\\cb\n\n\x00" +
	"\n" +
	"SEND\ndestination:/app/hello\ncontent-length:5\n\na\x00b\x00c\x00\r\n" +
	"SEND\ndestination:/app/x\n\nplain body\x00" +
	"DISCONNECT\nreceipt:77\n\n\x00\n"

var stompStreamFrames = []*Frame{
	{Command: "CONNECT", Headers: []Header{{"accept-version", "1.2"}, {"host", "h"}}},
	{Command: "SUBSCRIBE", Headers: []Header{{"id", "0"}, {"destination", "/topic/a:b"}}},
	{Command: "SEND", Headers: []Header{{"destination", "/app/hello"}, {"content-length", "5"}}, Body: []byte("a\x00b\x00c")},
	{Command: "SEND", Headers: []Header{{"destination", "/app/x"}}, Body: []byte("plain body")},
	{Command: "DISCONNECT", Headers: []Header{{"receipt", "77"}}},
}

func TestStompDecodeStreamWhole(t *testing.T) {
	t.Parallel()
	got, err := stompDecodeString(V12, Limits{}, stompStream)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(stompStreamFrames, got, stompFrameCmp); diff != "" {
		t.Errorf("frames (-want +got):\n%s", diff)
	}
}

// TestDecodeSplitEverywhere feeds the stream in two chunks cut at every byte
// position, as nats' parser fuzz does, then one byte at a time.
func TestStompDecodeSplitEverywhere(t *testing.T) {
	t.Parallel()
	for i := 0; i <= len(stompStream); i++ {
		d := NewDecoder(Limits{})
		d.SetVersion(V12)
		got, err := stompDecodeChunks(d, []byte(stompStream[:i]), []byte(stompStream[i:]))
		if err != nil {
			t.Fatalf("split at %d: %v", i, err)
		}
		if diff := cmp.Diff(stompStreamFrames, got, stompFrameCmp); diff != "" {
			t.Fatalf("split at %d (-want +got):\n%s", i, diff)
		}
		if n := d.Buffered(); n != 0 {
			t.Errorf("split at %d: Buffered() = %d after complete frames, want 0", i, n)
		}
	}
	d := NewDecoder(Limits{})
	d.SetVersion(V12)
	var chunks [][]byte
	for i := range len(stompStream) {
		chunks = append(chunks, []byte{stompStream[i]})
	}
	got, err := stompDecodeChunks(d, chunks...)
	if err != nil {
		t.Fatalf("byte by byte: %v", err)
	}
	if diff := cmp.Diff(stompStreamFrames, got, stompFrameCmp); diff != "" {
		t.Fatalf("byte by byte (-want +got):\n%s", diff)
	}
}

// TestDecodeDoesNotKeepInput checks that frames do not alias the caller's
// buffer, which transports reuse.
func TestStompDecodeDoesNotKeepInput(t *testing.T) {
	t.Parallel()
	in := []byte("SEND\ndestination:/app/x\n\nbody\x00")
	got, err := stompDecodeChunks(NewDecoder(Limits{}), in)
	if err != nil || len(got) != 1 {
		t.Fatalf("got %d frames, %v", len(got), err)
	}
	for i := range in {
		in[i] = 'X'
	}
	want := &Frame{Command: "SEND", Headers: []Header{{"destination", "/app/x"}}, Body: []byte("body")}
	if diff := cmp.Diff(want, got[0]); diff != "" {
		t.Errorf("frame changed with the input buffer (-want +got):\n%s", diff)
	}
}

func TestStompDecodeHeartBeatsOnly(t *testing.T) {
	t.Parallel()
	d := NewDecoder(Limits{})
	got, err := stompDecodeChunks(d, []byte("\n"), []byte("\r\n\n"), []byte("\r"), []byte("\n"))
	if err != nil || len(got) != 0 {
		t.Fatalf("heart-beats: got %d frames, %v; want none, nil", len(got), err)
	}
	if n := d.Buffered(); n != 0 {
		t.Errorf("Buffered() = %d after heart-beats, want 0", n)
	}
}

func TestStompDecodeVersionRules(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		v          Version // 0: SetVersion not called
		in         string
		wantHeader Header
		wantErr    string
	}{
		{"1.0 no unescaping", V10, "SEND\na\\cb:x\\ny\\t\n\n\x00", Header{`a\cb`, `x\ny\t`}, ""},
		{"1.0 trims leading spaces", V10, "SEND\nkey: \t value \n\n\x00", Header{"key", "value "}, ""},
		{"1.1 never trims", V11, "SEND\nkey: value \n\n\x00", Header{"key", " value "}, ""},
		{"1.2 never trims", V12, "SEND\nkey: value\n\n\x00", Header{"key", " value"}, ""},
		{"1.1 escapes", V11, "SEND\na\\cb:x\\ny\\\\z\\c\n\n\x00", Header{"a:b", "x\ny\\z:"}, ""},
		{"1.1 rejects \\r", V11, "SEND\nk:a\\rb\n\n\x00", Header{}, `invalid escape sequence \r in header value`},
		{"1.1 rejects \\t", V11, "SEND\nk:a\\tb\n\n\x00", Header{}, `invalid escape sequence \t in header value`},
		{"1.2 escapes", V12, "SEND\nk\\r:a\\rb\\n\\c\\\\\n\n\x00", Header{"k\r", "a\rb\n:\\"}, ""},
		{"1.2 rejects \\t", V12, "SEND\nk:a\\tb\n\n\x00", Header{}, `invalid escape sequence \t in header value`},
		{"1.2 rejects escape in name", V12, "SEND\nk\\x:a\n\n\x00", Header{}, `invalid escape sequence \x in header name`},
		{"1.2 rejects trailing backslash", V12, "SEND\nk:a\\\n\n\x00", Header{}, `invalid escape sequence \ at end of header value`},
		{"1.2 rejects unprintable escape", V12, "SEND\nk:a\\\x01\n\n\x00", Header{}, `invalid escape sequence \ followed by byte 0x01 in header value`},
		{"unnegotiated unescapes as 1.2", 0, "SEND\nk:a\\rb\n\n\x00", Header{"k", "a\rb"}, ""},
		{"unnegotiated rejects \\t", 0, "SEND\nk:\\t\n\n\x00", Header{}, `invalid escape sequence \t in header value`},
		{"CONNECT never unescaped", V12, "CONNECT\npasscode:a\\tb\\c\n\n\x00", Header{"passcode", `a\tb\c`}, ""},
		{"STOMP never unescaped", 0, "STOMP\nlogin:x\\y\n\n\x00", Header{"login", `x\y`}, ""},
		{"raw colon in value", V12, "SEND\nk:a:b\n\n\x00", Header{"k", "a:b"}, ""},
		{"raw CR inside value", V12, "SEND\nk:a\rb\r\n\n\x00", Header{"k", "a\rb"}, ""},
		{"empty value", V12, "SEND\nk:\n\n\x00", Header{"k", ""}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := stompDecodeString(tt.v, Limits{}, tt.in)
			if r := stompReason(t, err); r != tt.wantErr {
				t.Fatalf("error %q, want %q", r, tt.wantErr)
			}
			if tt.wantErr != "" {
				return
			}
			if len(got) != 1 || len(got[0].Headers) != 1 {
				t.Fatalf("got %+v, want one frame with one header", got)
			}
			if diff := cmp.Diff(tt.wantHeader, got[0].Headers[0]); diff != "" {
				t.Errorf("header (-want +got):\n%s", diff)
			}
		})
	}
}

// TestSetVersionWithinEmit is how a session uses the decoder: it negotiates
// while handling CONNECT, and the frames after it in the same chunk follow
// the new version's rules.
func TestStompSetVersionWithinEmit(t *testing.T) {
	t.Parallel()
	in := "CONNECT\naccept-version:1.0\n\n\x00SEND\nk: a\\nb\n\n\x00"
	d := NewDecoder(Limits{})
	var got []*Frame
	err := d.Feed([]byte(in), func(f *Frame) error {
		if f.Command == "CONNECT" {
			av, ok := f.Get("accept-version")
			d.SetVersion(NegotiateVersion(av, ok))
		}
		got = append(got, f)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("got %d frames, want 2", len(got))
	}
	if diff := cmp.Diff([]Header{{"k", `a\nb`}}, got[1].Headers); diff != "" {
		t.Errorf("SEND headers decoded as 1.0 (-want +got):\n%s", diff)
	}
}

func TestStompDecodeErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, in, want string
	}{
		{"unknown command", "FOO\n\n\x00", "unknown command FOO"},
		{"commands are case-sensitive", "send\n\n\x00", "unknown command send"},
		{"server command from client", "MESSAGE\n\n\x00", "unknown command MESSAGE"},
		{"long garbage command", strings.Repeat("A", 40) + "\n\n\x00", `unknown command "AAAAAAAAAAAAAAAA"...`},
		{"unprintable command", "S\x01\n\n\x00", `unknown command "S\x01"`},
		{"header without colon", "SEND\ndestination\n\n\x00", "header line without ':'"},
		{"empty header name", "SEND\n:x\n\n\x00", "empty header name"},
		{"invalid content-length", "SEND\ncontent-length:abc\n\n\x00", "invalid content-length"},
		{"negative content-length", "SEND\ncontent-length:-1\n\n\x00", "invalid content-length"},
		{"empty content-length", "SEND\ncontent-length:\n\n\x00", "invalid content-length"},
		{"content-length with space (1.2)", "SEND\ncontent-length: 1\n\nx\x00", "invalid content-length"},
		{"missing NUL after content-length body", "SEND\ncontent-length:5\n\nhelloX", "missing NUL after body of content-length 5"},
		{"NUL in command line", "SEND\x00\n", "NUL in frame headers"},
		{"NUL in header", "SEND\nk:v\x00\n\n\x00", "NUL in frame headers"},
		{"NUL instead of blank line", "DISCONNECT\n\x00", "NUL in frame headers"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := stompDecodeString(V12, Limits{}, tt.in)
			if got := stompReason(t, err); got != tt.want {
				t.Errorf("error %q, want %q", got, tt.want)
			}
		})
	}
}

func TestStompDecodeContentLength(t *testing.T) {
	t.Parallel()
	t.Run("first occurrence wins", func(t *testing.T) {
		t.Parallel()
		got, err := stompDecodeString(V12, Limits{}, "SEND\ncontent-length:3\ncontent-length:junk\n\na\x00b\x00")
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 || string(got[0].Body) != "a\x00b" {
			t.Fatalf("got %+v, want one frame with body a NUL b", got)
		}
	})
	t.Run("zero", func(t *testing.T) {
		t.Parallel()
		got, err := stompDecodeString(V12, Limits{}, "SEND\ncontent-length:0\n\n\x00")
		if err != nil || len(got) != 1 || got[0].Body != nil {
			t.Fatalf("got %+v, %v; want one frame without body", got, err)
		}
	})
	t.Run("1.0 value with space", func(t *testing.T) {
		t.Parallel()
		got, err := stompDecodeString(V10, Limits{}, "SEND\ncontent-length: 2\n\n\x00\x00\x00")
		if err != nil || len(got) != 1 || string(got[0].Body) != "\x00\x00" {
			t.Fatalf("got %+v, %v; want one frame with body of two NULs", got, err)
		}
	})
}

func TestStompDecodeErrorIsSticky(t *testing.T) {
	t.Parallel()
	d := NewDecoder(Limits{})
	n := 0
	emit := func(*Frame) error { n++; return nil }
	err1 := d.Feed([]byte("SEND\n\n\x00BAD\n\n\x00SEND\n\n\x00"), emit)
	if stompReason(t, err1) != "unknown command BAD" || n != 1 {
		t.Fatalf("got %v after %d frames, want unknown command BAD after 1", err1, n)
	}
	if err2 := d.Feed([]byte("SEND\n\n\x00"), emit); err2 != err1 || n != 1 {
		t.Errorf("second Feed: got %v after %d frames, want the same error and no frame", err2, n)
	}
}

func TestStompDecodeEmitError(t *testing.T) {
	t.Parallel()
	stop := errors.New("stop")
	d := NewDecoder(Limits{})
	n := 0
	err := d.Feed([]byte("SEND\n\n\x00SEND\n\n\x00"), func(*Frame) error { n++; return stop })
	if err != stop || n != 1 {
		t.Errorf("got %v after %d frames, want emit's error after 1", err, n)
	}
}

// stompFrameOfSize returns a SEND frame of exactly n bytes (n >= 16), with a body
// and with or without content-length.
func stompFrameOfSize(n int, withCL bool) string {
	if withCL {
		// "SEND\ncontent-length:" + digits + "\n\n" + body + "\x00"
		for digits := 1; digits < 8; digits++ {
			body := n - len("SEND\ncontent-length:\n\n\x00") - digits
			if len(fmt.Sprint(body)) == digits {
				return fmt.Sprintf("SEND\ncontent-length:%d\n\n%s\x00", body, strings.Repeat("b", body))
			}
		}
		panic("no size")
	}
	return "SEND\n\n" + strings.Repeat("b", n-len("SEND\n\n\x00")) + "\x00"
}

func TestStompDecodeFrameLimit(t *testing.T) {
	t.Parallel()
	const max = 1000
	lim := Limits{MaxFrameBytes: max}
	for _, withCL := range []bool{false, true} {
		for _, split := range []bool{false, true} {
			name := fmt.Sprintf("content-length=%v/split=%v", withCL, split)
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				for _, size := range []int{max, max + 1} {
					in := stompFrameOfSize(size, withCL)
					if len(in) != size {
						t.Fatalf("test frame has %d bytes, want %d", len(in), size)
					}
					d := NewDecoder(lim)
					var chunks [][]byte
					if split {
						for i := 0; i < len(in); i += 7 {
							chunks = append(chunks, []byte(in[i:min(i+7, len(in))]))
						}
					} else {
						chunks = [][]byte{[]byte(in)}
					}
					got, err := stompDecodeChunks(d, chunks...)
					r := stompReason(t, err)
					if size <= max {
						if r != "" || len(got) != 1 {
							t.Errorf("frame of %d bytes: got %d frames, error %q; want 1 frame", size, len(got), r)
						}
					} else if r != "frame exceeds 1000 bytes" {
						t.Errorf("frame of %d bytes: error %q, want frame exceeds 1000 bytes", size, r)
					}
					if d.Buffered() > max {
						t.Errorf("Buffered() = %d > limit %d", d.Buffered(), max)
					}
				}
			})
		}
	}
}

// TestDecodeFailsEarly checks that an oversized frame fails as soon as that
// is known, not after the decoder buffered it.
func TestStompDecodeFailsEarly(t *testing.T) {
	t.Parallel()
	lim := Limits{MaxFrameBytes: 1000}
	t.Run("content-length too large", func(t *testing.T) {
		t.Parallel()
		d := NewDecoder(lim)
		err := d.Feed([]byte("SEND\ncontent-length:1000000000000000000000\n\n"), func(*Frame) error { return nil })
		if r := stompReason(t, err); r != "frame exceeds 1000 bytes" {
			t.Errorf("error %q, want frame exceeds 1000 bytes", r)
		}
	})
	t.Run("body without NUL", func(t *testing.T) {
		t.Parallel()
		d := NewDecoder(lim)
		emit := func(*Frame) error { return nil }
		if err := d.Feed([]byte("SEND\n\n"), emit); err != nil {
			t.Fatal(err)
		}
		chunk := bytes.Repeat([]byte("x"), 100)
		for i := 0; ; i++ {
			err := d.Feed(chunk, emit)
			if err != nil {
				if d.Buffered() > 1000 {
					t.Errorf("Buffered() = %d when failing, want <= 1000", d.Buffered())
				}
				if r := stompReason(t, err); r != "frame exceeds 1000 bytes" {
					t.Errorf("error %q, want frame exceeds 1000 bytes", r)
				}
				return
			}
			if i > 20 {
				t.Fatal("no error after 2000 bytes")
			}
		}
	})
	t.Run("endless header line", func(t *testing.T) {
		t.Parallel()
		d := NewDecoder(Limits{})
		emit := func(*Frame) error { return nil }
		if err := d.Feed([]byte("SEND\nk:"), emit); err != nil {
			t.Fatal(err)
		}
		chunk := bytes.Repeat([]byte("v"), 1000)
		for i := 0; ; i++ {
			if err := d.Feed(chunk, emit); err != nil {
				if r := stompReason(t, err); r != "headers exceed 8192 bytes" {
					t.Errorf("error %q, want headers exceed 8192 bytes", r)
				}
				if i > 8 {
					t.Errorf("failed after %d KB, want by 9", i+1)
				}
				return
			}
		}
	})
	t.Run("endless command line", func(t *testing.T) {
		t.Parallel()
		d := NewDecoder(Limits{})
		err := d.Feed(bytes.Repeat([]byte("S"), 33), func(*Frame) error { return nil })
		if r := stompReason(t, err); !strings.HasPrefix(r, "unknown command") {
			t.Errorf("error %q, want unknown command", r)
		}
	})
}

// stompHeaderFrame returns a frame with n headers whose header lines take exactly
// size bytes together (size >= n*4).
func stompHeaderFrame(n, size int) string {
	var b strings.Builder
	b.WriteString("SEND\n")
	left := size
	for i := range n {
		line := left / (n - i) // bytes of this line including LF
		left -= line
		// "h" + digit-free padding + ":" + "\n" = line bytes
		fmt.Fprintf(&b, "h%s:\n", strings.Repeat("x", line-3))
	}
	b.WriteString("\n\x00")
	return b.String()
}

func TestStompDecodeHeaderLimits(t *testing.T) {
	t.Parallel()
	lim := Limits{MaxHeaders: 4, MaxHeaderBytes: 100}
	tests := []struct {
		name     string
		n, bytes int
		want     string
	}{
		{"at both limits", 4, 100, ""},
		{"one header too many", 5, 100, "too many headers (max 4)"},
		{"one byte too many", 4, 101, "headers exceed 100 bytes"},
		{"one line one byte too many", 1, 101, "headers exceed 100 bytes"},
		{"one line at the limit", 1, 100, ""},
	}
	for _, tt := range tests {
		for _, split := range []int{0, 1, 3} {
			t.Run(fmt.Sprintf("%s/split=%d", tt.name, split), func(t *testing.T) {
				t.Parallel()
				in := stompHeaderFrame(tt.n, tt.bytes)
				var chunks [][]byte
				if split == 0 {
					chunks = [][]byte{[]byte(in)}
				} else {
					for i := 0; i < len(in); i += split {
						chunks = append(chunks, []byte(in[i:min(i+split, len(in))]))
					}
				}
				got, err := stompDecodeChunks(NewDecoder(lim), chunks...)
				if r := stompReason(t, err); r != tt.want {
					t.Fatalf("error %q, want %q", r, tt.want)
				}
				if tt.want == "" && (len(got) != 1 || len(got[0].Headers) != tt.n) {
					t.Errorf("got %+v, want one frame with %d headers", got, tt.n)
				}
			})
		}
	}
	t.Run("CRLF counts", func(t *testing.T) {
		t.Parallel()
		// 10 bytes of header line with LF, 11 with CRLF.
		l := Limits{MaxHeaderBytes: 10}
		if _, err := stompDecodeString(V12, l, "SEND\nh2345678:\n\n\x00"); err != nil {
			t.Errorf("LF line of 10 bytes: %v", err)
		}
		_, err := stompDecodeString(V12, l, "SEND\r\nh2345678:\r\n\r\n\x00")
		if r := stompReason(t, err); r != "headers exceed 10 bytes" {
			t.Errorf("CRLF line of 11 bytes: error %q, want headers exceed 10 bytes", r)
		}
	})
}

func TestStompDefaultLimits(t *testing.T) {
	t.Parallel()
	got := NewDecoder(Limits{MaxHeaders: -1}).lim
	want := Limits{MaxFrameBytes: 64 << 10, MaxHeaders: 32, MaxHeaderBytes: 8 << 10}
	if got != want {
		t.Errorf("defaults %+v, want %+v", got, want)
	}
	_, err := stompDecodeString(V12, Limits{}, stompFrameOfSize(64<<10+1, true))
	if r := stompReason(t, err); r != "frame exceeds 65536 bytes" {
		t.Errorf("error %q, want frame exceeds 65536 bytes", r)
	}
	_, err = stompDecodeString(V12, Limits{}, stompHeaderFrame(33, 33*10))
	if r := stompReason(t, err); r != "too many headers (max 32)" {
		t.Errorf("error %q, want too many headers (max 32)", r)
	}
}

func TestStompNegotiateVersion(t *testing.T) {
	t.Parallel()
	tests := []struct {
		header  string
		present bool
		want    Version
	}{
		{"", false, V10},
		{"", true, 0},
		{"1.2,1.1,1.0", true, V12},
		{"1.0,1.1", true, V11},
		{"1.0", true, V10},
		{"1.1", true, V11},
		{" 1.2 , 1.1", true, V12},
		{"2.0,1.1", true, V11},
		{"2.0", true, 0},
		{"1.2.0", true, 0},
		{"1.3,1.2", true, V12},
	}
	for _, tt := range tests {
		if got := NegotiateVersion(tt.header, tt.present); got != tt.want {
			t.Errorf("NegotiateVersion(%q, %v) = %v, want %v", tt.header, tt.present, got, tt.want)
		}
	}
}

func TestStompParseHeartBeat(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		cx, cy  int
		wantErr bool
	}{
		{"", 0, 0, false},
		{"0,0", 0, 0, false},
		{"10000,10000", 10000, 10000, false},
		{"5000, 0", 5000, 0, false},
		{" 1 , 2 ", 1, 2, false},
		{"2147483647,0", 2147483647, 0, false},
		{"2147483648,0", 0, 0, true},
		{"99999999999,0", 0, 0, true},
		{"10000", 0, 0, true},
		{"-1,0", 0, 0, true},
		{"a,b", 0, 0, true},
		{"1,2,3", 0, 0, true},
		{",", 0, 0, true},
		{"1.5,2", 0, 0, true},
	}
	for _, tt := range tests {
		cx, cy, err := ParseHeartBeat(tt.in)
		if (err != nil) != tt.wantErr || cx != tt.cx || cy != tt.cy {
			t.Errorf("ParseHeartBeat(%q) = %d, %d, %v; want %d, %d, error %v", tt.in, cx, cy, err, tt.cx, tt.cy, tt.wantErr)
		}
		var pe *ProtocolError
		if err != nil && (!errors.As(err, &pe) || !strings.HasPrefix(pe.Reason, "invalid heart-beat")) {
			t.Errorf("ParseHeartBeat(%q) error %v, want a *ProtocolError invalid heart-beat", tt.in, err)
		}
	}
}

func TestStompNegotiateHeartBeat(t *testing.T) {
	t.Parallel()
	const ms = time.Millisecond
	tests := []struct {
		cx, cy, sx, sy int
		send, expect   time.Duration
	}{
		{0, 0, 10000, 10000, 0, 0},
		{10000, 10000, 10000, 10000, 10000 * ms, 20000 * ms},
		{4000, 20000, 10000, 10000, 20000 * ms, 20000 * ms}, // client wants beats every 20 s at most; it beats every max(4000,10000)
		{20000, 1000, 10000, 10000, 10000 * ms, 40000 * ms},
		{5000, 0, 10000, 10000, 0, 20000 * ms},
		{0, 5000, 10000, 10000, 10000 * ms, 0},
		{5000, 5000, 0, 0, 0, 0},
		{5000, 5000, 0, 3000, 0, 10000 * ms},
	}
	for _, tt := range tests {
		send, expect := NegotiateHeartBeat(tt.cx, tt.cy, tt.sx, tt.sy)
		if send != tt.send || expect != tt.expect {
			t.Errorf("NegotiateHeartBeat(%d, %d, %d, %d) = %v, %v; want %v, %v",
				tt.cx, tt.cy, tt.sx, tt.sy, send, expect, tt.send, tt.expect)
		}
	}
}

func TestStompProtocolErrorMessage(t *testing.T) {
	t.Parallel()
	var err error = &ProtocolError{Reason: "unknown command FOO"}
	if got := err.Error(); got != "unknown command FOO" {
		t.Errorf("Error() = %q, want the reason", got)
	}
}

// stompBenchStream is what a busy client sends: SENDs with a few headers and a
// small JSON body, some with content-length.
var stompBenchStream = func() []byte {
	var b []byte
	for i := range 64 {
		f := &Frame{Command: "SEND", Headers: []Header{
			{"destination", "/app/hello"},
			{"content-type", "application/json"},
			{"receipt", fmt.Sprintf("r-%d", i)},
		}, Body: []byte(`{"name":"alice","text":"hello world"}`)}
		b = AppendFrame(b, V12, f)
		b = append(b, '\n')
	}
	return b
}()

func BenchmarkDecode(b *testing.B) {
	for _, chunk := range []int{0, 512} {
		name := "whole"
		if chunk > 0 {
			name = fmt.Sprintf("chunks-%d", chunk)
		}
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(stompBenchStream)))
			emit := func(*Frame) error { return nil }
			d := NewDecoder(Limits{})
			d.SetVersion(V12)
			for b.Loop() {
				if chunk == 0 {
					if err := d.Feed(stompBenchStream, emit); err != nil {
						b.Fatal(err)
					}
					continue
				}
				for i := 0; i < len(stompBenchStream); i += chunk {
					if err := d.Feed(stompBenchStream[i:min(i+chunk, len(stompBenchStream))], emit); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}

func BenchmarkAppendFrame(b *testing.B) {
	f := &Frame{Command: "MESSAGE", Headers: []Header{
		{"destination", "/user/topic/greetings"},
		{"subscription", "sub-0"},
		{"message-id", "T_sub-0@@session-abc@@42"},
		{"content-type", "text/plain;charset=UTF-8"},
		{"x-note", "needs: escaping\n"},
	}, Body: []byte("hello, alice")}
	b.ReportAllocs()
	var buf []byte
	for b.Loop() {
		buf = AppendFrame(buf[:0], V12, f)
	}
	b.SetBytes(int64(len(buf)))
}
