package relay

import (
	"bytes"
	"errors"
	"fmt"
	"testing"

	"github.com/go-stomp/stomp/v3/frame"
)

func TestBatchRoundTrip(t *testing.T) {
	in := []*Message{
		{ContentType: "text/plain;charset=UTF-8", Header: frame.NewHeader(HeaderUser, "al%2Fice", HeaderMessageID, "m-1"), Body: []byte("hello")},
		{Body: []byte{0, '\n', ':', 0xff}},                                             // no content type, no header, any byte
		{ContentType: "application/json", Header: frame.NewHeader("x:y", "a\nb\x00c")}, // no body
	}
	body := encodeBatch(in)
	var out []*Message
	if err := decodeBatch("/topic/pushgate.edge.e1", body, func(m *Message) { out = append(out, m) }); err != nil {
		t.Fatal(err)
	}
	if len(out) != len(in) {
		t.Fatalf("decoded %d messages, want %d", len(out), len(in))
	}
	for i, m := range out {
		want := in[i]
		if m.Destination != "/topic/pushgate.edge.e1" || m.ContentType != want.ContentType || !bytes.Equal(m.Body, want.Body) {
			t.Errorf("message %d: got %q %q %q", i, m.Destination, m.ContentType, m.Body)
		}
		if got, wantH := headerString(m.Header), headerString(want.Header); got != wantH {
			t.Errorf("message %d headers: got %s, want %s", i, got, wantH)
		}
	}
}

func TestBatchRejectsMalformed(t *testing.T) {
	good := encodeBatch([]*Message{{ContentType: "t", Header: frame.NewHeader("k", "v"), Body: []byte("body")}})
	tooMany := encodeBatch(make([]*Message, maxBatchMessages+1))
	for name, body := range map[string][]byte{
		"truncated":         good[:len(good)-1],
		"length past end":   {0x05, 'a'},
		"bad varint":        {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff},
		"too many headers":  append([]byte{0}, 0x80, 0x01),
		"too many messages": tooMany,
		"trailing garbage":  append(good, 0x01),
	} {
		called := 0
		err := decodeBatch("/d", body, func(*Message) { called++ })
		if !errors.Is(err, errBadBatch) {
			t.Errorf("%s: got %v, want errBadBatch", name, err)
		}
		if called != 0 {
			t.Errorf("%s: delivered %d messages of a malformed batch", name, called)
		}
	}
}

func FuzzDecodeBatch(f *testing.F) {
	f.Add(encodeBatch([]*Message{{ContentType: "t", Header: frame.NewHeader("k", "v"), Body: []byte("b")}, {Body: []byte("c")}}))
	f.Add([]byte{0x00, 0x00, 0x00})
	f.Fuzz(func(t *testing.T, body []byte) {
		var msgs []*Message
		if err := decodeBatch("/d", body, func(m *Message) { msgs = append(msgs, m) }); err != nil {
			return
		}
		// What decodes survives a round trip (varints need not be minimal,
		// so the bytes may differ).
		var again []*Message
		if err := decodeBatch("/d", encodeBatch(msgs), func(m *Message) { again = append(again, m) }); err != nil {
			t.Fatalf("re-encoded batch does not decode: %v", err)
		}
		if len(again) != len(msgs) {
			t.Fatalf("round trip: %d messages, want %d", len(again), len(msgs))
		}
		for i, m := range again {
			if m.ContentType != msgs[i].ContentType || !bytes.Equal(m.Body, msgs[i].Body) || headerString(m.Header) != headerString(msgs[i].Header) {
				t.Fatalf("round trip changed message %d", i)
			}
		}
	})
}

func encodeBatch(msgs []*Message) []byte {
	var b []byte
	for _, m := range msgs {
		if m == nil {
			m = &Message{}
		}
		b = appendBatchEntry(b, m)
	}
	return b
}

func headerString(h *frame.Header) string {
	if h == nil {
		return "[]"
	}
	s := "["
	for i := 0; i < h.Len(); i++ {
		k, v := h.GetAt(i)
		s += fmt.Sprintf("%q:%q ", k, v)
	}
	return s + "]"
}

// BenchmarkBatch measures what a batch costs on each side per message: the
// sender's encoding and the receiving pool's decoding, for a typical push
// (pushsvc's headers and a 64-byte body).
func BenchmarkBatch(b *testing.B) {
	msgs := make([]*Message, 32)
	for i := range msgs {
		msgs[i] = &Message{
			ContentType: "text/plain;charset=UTF-8",
			Header: frame.NewHeader(HeaderMessageID, fmt.Sprintf("%032x", i), HeaderOrigin, "pushsvc-0123456789ab",
				HeaderUser, fmt.Sprintf("user-%d", i), HeaderUserDestination, "/topic/greetings"),
			Body: bytes.Repeat([]byte{'x'}, 64),
		}
	}
	body := encodeBatch(msgs)
	batch := make([]*outgoing, len(msgs))
	for i, m := range msgs {
		batch[i] = &outgoing{m: m, size: batchEntrySize(m)}
	}
	b.Run("encode", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = sendFrame(batch)
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(msgs)), "ns/message")
	})
	b.Run("decode", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := decodeBatch("/topic/pushgate.edge.e1", body, func(*Message) {}); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(msgs)), "ns/message")
	})
}
