package edge

import (
	"bytes"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// stompFuzzLimits are small so that the fuzzer reaches every limit quickly.
var stompFuzzLimits = Limits{MaxFrameBytes: 512, MaxHeaders: 8, MaxHeaderBytes: 160}

// stompFuzzDecode decodes chunks the way a session does: mode selects the version
// set before the first frame (0, 1.0, 1.1, 1.2), and when mode&4 is set, the
// version is instead negotiated from the first CONNECT or STOMP frame, from
// within emit. It returns the frames with the version each was decoded with.
func stompFuzzDecode(t *testing.T, mode uint8, chunks ...[]byte) ([]*Frame, []Version, error) {
	d := NewDecoder(stompFuzzLimits)
	var cur Version // the version the decoder applies to the next frame
	negotiate := mode&4 != 0
	if !negotiate {
		cur = [...]Version{0, V10, V11, V12}[mode&3]
		if cur != 0 {
			d.SetVersion(cur)
		}
	}
	var frames []*Frame
	var versions []Version
	emit := func(f *Frame) error {
		frames = append(frames, f)
		versions = append(versions, cur)
		if negotiate && (f.Command == "CONNECT" || f.Command == "STOMP") {
			av, ok := f.Get("accept-version")
			cur = NegotiateVersion(av, ok)
			d.SetVersion(cur)
			negotiate = false
		}
		return nil
	}
	for _, c := range chunks {
		if err := d.Feed(c, emit); err != nil {
			var pe *ProtocolError
			if pe, _ = err.(*ProtocolError); pe == nil || pe.Reason == "" {
				t.Fatalf("Feed returned %v (%T), want a *ProtocolError with a reason", err, err)
			}
			return frames, versions, err
		}
		if n := d.Buffered(); n > stompFuzzLimits.MaxFrameBytes {
			t.Fatalf("Buffered() = %d, beyond the frame limit %d", n, stompFuzzLimits.MaxFrameBytes)
		}
	}
	return frames, versions, nil
}

// FuzzDecoder feeds arbitrary input whole and split in two (as nats'
// FuzzParser does). Decoding must never panic, must not depend on where the
// input is split, and every decoded frame must re-encode (AppendFrame, same
// version) to bytes that decode to the same frame.
func FuzzDecoder(f *testing.F) {
	seeds := []string{
		stompStream,
		"CONNECT\naccept-version:1.2,1.1,1.0\nheart-beat:10000,10000\npasscode:eyJ.x.y\n\n\x00",
		"STOMP\naccept-version:1.1\nhost:/\n\n\x00SEND\nk:a\\cb\\nc\n\nbody\x00",
		"CONNECT\n\n\x00SEND\nk: v\n\n\x00",
		"SEND\ndestination:/app/x\ncontent-length:3\n\n\x00\x00\x00\x00\n\n",
		"SUBSCRIBE\r\nid:0\r\ndestination:/user/topic/greetings\r\nreceipt:r\r\n\r\n\x00\r\n",
		"SEND\nk:\\t\n\n\x00",
		"SEND\ncontent-length:2\n\nabc\x00",
		"FOO\n\n\x00",
		"\n\n\r\n",
	}
	for i, s := range seeds {
		f.Add([]byte(s), uint8(i), uint16(len(s)/2))
	}
	f.Fuzz(func(t *testing.T, data []byte, mode uint8, split uint16) {
		whole, wholeVersions, wholeErr := stompFuzzDecode(t, mode, data)
		cut := int(split) % (len(data) + 1)
		parts, _, partsErr := stompFuzzDecode(t, mode, data[:cut], data[cut:])

		// Where the input is split must not change the outcome. (An error
		// may name a different limit when a cut lets a partial-line check
		// fire first, so only its presence is compared.)
		if (wholeErr == nil) != (partsErr == nil) {
			t.Fatalf("whole: %v; split at %d: %v", wholeErr, cut, partsErr)
		}
		if diff := cmp.Diff(whole, parts, stompFrameCmp); diff != "" {
			t.Fatalf("frames differ when split at %d (-whole +split):\n%s", cut, diff)
		}

		for i, fr := range whole {
			v := wholeVersions[i]
			enc := AppendFrame(nil, v, fr)
			d := NewDecoder(Limits{MaxFrameBytes: 1 << 20, MaxHeaders: 1 << 10, MaxHeaderBytes: 1 << 20})
			if v != 0 {
				d.SetVersion(v)
			}
			again, err := stompDecodeChunks(d, enc)
			if err != nil {
				t.Fatalf("re-decoding frame %d (version %v) %q: %v", i, v, enc, err)
			}
			if len(again) != 1 {
				t.Fatalf("re-decoding frame %d (version %v) %q: got %d frames, want 1", i, v, enc, len(again))
			}
			if diff := cmp.Diff(stompWithoutCL(fr), stompWithoutCL(again[0]), stompFrameCmp); diff != "" {
				t.Fatalf("frame %d (version %v) changed through %q (-decoded +re-decoded):\n%s", i, v, enc, diff)
			}
			if !bytes.Equal(fr.Body, again[0].Body) {
				t.Fatalf("frame %d body changed", i)
			}
		}
	})
}
