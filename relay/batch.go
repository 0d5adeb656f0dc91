package relay

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/go-stomp/stomp/v3/frame"
)

// Several messages for one destination travel as one broker message when
// they are sent while an earlier one to that destination still waits for
// its RECEIPT (publisher.go). The broker then routes and confirms once for
// the lot: with RabbitMQ, routing and the publisher confirm cost far more
// than the bytes, so this is what lets per-user pushes approach the
// broker's own message rate.
//
// A batch is a SEND whose HeaderBatch holds the message count and whose body
// holds, per message:
//
//	uvarint len, content type
//	uvarint n, then n × (uvarint len, name, uvarint len, value)
//	uvarint len, body
//
// A binary layout, not nested STOMP frames, because a body may hold any
// byte, and decoding must not copy bodies: every message's Body aliases the
// batch's.

// HeaderBatch marks a broker message that carries a batch; its value is the
// number of messages inside.
const HeaderBatch = "pushgate-batch"

// batchContentType labels a batch for anyone looking at the broker.
const batchContentType = "application/vnd.pushgate.batch"

// Bounds of one batch, and of what a decoder accepts.
const (
	// maxBatchMessages bounds the messages of one batch.
	maxBatchMessages = 256
	// maxBatchBytes bounds a batch's body; a single message larger than
	// that travels alone.
	maxBatchBytes = 64 << 10
	// maxBatchHeaders bounds the headers of one message in a batch.
	maxBatchHeaders = 64
)

var errBadBatch = errors.New("relay: malformed batch")

// batchEntrySize is an upper bound of m's encoded size in a batch.
func batchEntrySize(m *Message) int {
	n := 3*binary.MaxVarintLen32 + len(m.ContentType) + len(m.Body)
	if m.Header != nil {
		for i := 0; i < m.Header.Len(); i++ {
			k, v := m.Header.GetAt(i)
			n += 2*binary.MaxVarintLen32 + len(k) + len(v)
		}
	}
	return n
}

// appendBatchEntry appends m's encoding to dst.
func appendBatchEntry(dst []byte, m *Message) []byte {
	dst = appendString(dst, m.ContentType)
	n := 0
	if m.Header != nil {
		n = m.Header.Len()
	}
	dst = binary.AppendUvarint(dst, uint64(n))
	for i := 0; i < n; i++ {
		k, v := m.Header.GetAt(i)
		dst = appendString(dst, k)
		dst = appendString(dst, v)
	}
	dst = binary.AppendUvarint(dst, uint64(len(m.Body)))
	return append(dst, m.Body...)
}

func appendString(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

// decodeBatch calls fn for each message of a batch sent to dest, in order.
// It checks the whole batch before the first call, so a malformed batch
// delivers nothing rather than a prefix.
func decodeBatch(dest string, body []byte, fn func(*Message)) error {
	var msgs []*Message
	for rest := body; len(rest) > 0; {
		if len(msgs) == maxBatchMessages {
			return fmt.Errorf("%w: more than %d messages", errBadBatch, maxBatchMessages)
		}
		m, tail, err := decodeBatchEntry(dest, rest)
		if err != nil {
			return fmt.Errorf("%w: message %d: %w", errBadBatch, len(msgs)+1, err)
		}
		msgs = append(msgs, m)
		rest = tail
	}
	for _, m := range msgs {
		fn(m)
	}
	return nil
}

func decodeBatchEntry(dest string, b []byte) (*Message, []byte, error) {
	ct, b, err := readBytes(b)
	if err != nil {
		return nil, nil, fmt.Errorf("content type: %w", err)
	}
	n, k := binary.Uvarint(b)
	if k <= 0 || n > maxBatchHeaders {
		return nil, nil, errors.New("header count")
	}
	b = b[k:]
	kv := make([]string, 0, 2*n)
	for i := uint64(0); i < 2*n; i++ {
		var s []byte
		if s, b, err = readBytes(b); err != nil {
			return nil, nil, fmt.Errorf("header %d: %w", i/2+1, err)
		}
		kv = append(kv, string(s))
	}
	body, b, err := readBytes(b)
	if err != nil {
		return nil, nil, fmt.Errorf("body: %w", err)
	}
	return &Message{
		Destination: dest,
		ContentType: string(ct),
		Header:      frame.NewHeader(kv...),
		Body:        body,
	}, b, nil
}

// readBytes reads a uvarint length and that many bytes, without copying.
func readBytes(b []byte) (s, rest []byte, err error) {
	n, k := binary.Uvarint(b)
	if k <= 0 || n > uint64(len(b)-k) {
		return nil, nil, errors.New("length past the end")
	}
	b = b[k:]
	return b[:n:n], b[n:], nil
}
