package pushsvc

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"slices"
	"strings"
	"unicode/utf8"

	"google.golang.org/protobuf/types/known/structpb"

	"github.com/pushgate/pushgate/relay"
)

// Limits on push requests. Everything a request carries ends up in a STOMP
// frame that RabbitMQ and every edge must accept: an ERROR from RabbitMQ
// closes the whole shared broker connection (TOOLING.md), and edges refuse
// frames over 64 KiB with 32 headers of at most 8 KiB together (DESIGN.md).
// So requests are checked here, before anything reaches the broker.
const (
	// MaxUserBytes bounds a user name. Names are otherwise free-form UTF-8
	// (dots, slashes, #, *, spaces, %, any script); the Router encodes them
	// before they touch the broker. 1 KiB leaves room under the edge's 8 KiB
	// header budget wherever the name is carried.
	MaxUserBytes = 1024
	// MaxHeaders is the number of extra headers a push may carry; with the
	// headers pushgate and STOMP add it stays under the edge's 32.
	MaxHeaders = 16
	// MaxHeaderNameBytes bounds one header name.
	MaxHeaderNameBytes = 64
	// MaxHeaderValueBytes bounds one header value.
	MaxHeaderValueBytes = 1024
	// MaxHeadersBytes bounds the names and values of all extra headers
	// together: half of the edge's 8 KiB, leaving the rest for destination,
	// subscription, message-id and the broker's own headers.
	MaxHeadersBytes = 4096
	// MaxContentTypeBytes bounds content_type.
	MaxContentTypeBytes = 256
	// DefaultMaxPayloadBytes is the default Config.MaxPayloadBytes: the
	// edge's 64 KiB frame limit minus 8 KiB for the frame's headers.
	DefaultMaxPayloadBytes = 64<<10 - 8<<10
)

// Default content types per payload kind (DESIGN.md "Payload types").
const (
	contentTypeText = "text/plain;charset=UTF-8"
	contentTypeJSON = "application/json"
	contentTypeData = "application/octet-stream"
)

// reservedHeaders may not be set by a caller, compared case-insensitively.
// Most are STOMP's own frame headers, which pushgate, the relay or the edge
// set; the others RabbitMQ interprets on SEND and answers a bad value with an
// ERROR that would close the shared broker connection (user-id must equal
// the login, priority/expiration/timestamp must be numbers, reply-to must
// name a valid destination, transaction must be open). Names starting with
// "pushgate-" are reserved as well, for pushgate's internal headers.
var reservedHeaders = map[string]bool{
	"destination":     true,
	"content-type":    true,
	"content-length":  true,
	"message-id":      true,
	"subscription":    true,
	"ack":             true,
	"receipt":         true,
	"receipt-id":      true,
	"transaction":     true,
	"id":              true,
	"reply-to":        true,
	"persistent":      true,
	"expiration":      true,
	"priority":        true,
	"user-id":         true,
	"timestamp":       true,
	"amqp-message-id": true,
}

// reservedHeaderPrefix marks pushgate's internal headers.
const reservedHeaderPrefix = "pushgate-"

// validateUser checks a SendToUser user name.
func validateUser(user string) error {
	switch {
	case user == "":
		return errors.New("user: must not be empty")
	case !utf8.ValidString(user):
		return errors.New("user: must be valid UTF-8")
	case len(user) > MaxUserBytes:
		return fmt.Errorf("user: %d bytes, at most %d allowed", len(user), MaxUserBytes)
	}
	return nil
}

// validateHeaders checks the extra headers of a push.
func validateHeaders(h map[string]string) error {
	if len(h) > MaxHeaders {
		return fmt.Errorf("headers: %d given, at most %d allowed", len(h), MaxHeaders)
	}
	// Sorted, so that a request with several bad headers always gets the
	// same message.
	names := make([]string, 0, len(h))
	for name := range h {
		names = append(names, name)
	}
	slices.Sort(names)
	total := 0
	for _, name := range names {
		value := h[name]
		q := quoteInput(name)
		switch {
		case name == "":
			return errors.New("header \"\": name must not be empty")
		case len(name) > MaxHeaderNameBytes:
			return fmt.Errorf("header %s: name %d bytes, at most %d allowed", q, len(name), MaxHeaderNameBytes)
		case strings.IndexFunc(name, func(r rune) bool { return !isHeaderNameChar(r) }) >= 0:
			return fmt.Errorf("header %s: name may only contain A-Z a-z 0-9 -", q)
		}
		lower := strings.ToLower(name)
		if reservedHeaders[lower] || strings.HasPrefix(lower, reservedHeaderPrefix) {
			return fmt.Errorf("header %s: reserved (set by pushgate, STOMP or the broker)", q)
		}
		switch {
		case !utf8.ValidString(value):
			return fmt.Errorf("header %s: value must be valid UTF-8", q)
		case len(value) > MaxHeaderValueBytes:
			return fmt.Errorf("header %s: value %d bytes, at most %d allowed", q, len(value), MaxHeaderValueBytes)
		case strings.IndexFunc(value, isControl) >= 0:
			// STOMP 1.0 cannot escape CR or LF in a header value, and
			// browsers of any version would see a broken header.
			return fmt.Errorf("header %s: value must not contain control characters", q)
		}
		total += len(name) + len(value)
	}
	if total > MaxHeadersBytes {
		return fmt.Errorf("headers: %d bytes of names and values, at most %d allowed", total, MaxHeadersBytes)
	}
	return nil
}

// isHeaderNameChar reports whether r may appear in a header name.
func isHeaderNameChar(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-'
}

// isControl reports C0 control characters and DEL.
func isControl(r rune) bool { return r < 0x20 || r == 0x7f }

// validateContentType checks an explicit content_type; "" means the default
// of the payload kind.
func validateContentType(ct string) error {
	if ct == "" {
		return nil
	}
	q := quoteInput(ct)
	switch {
	case len(ct) > MaxContentTypeBytes:
		return fmt.Errorf("content_type %s: %d bytes, at most %d allowed", q, len(ct), MaxContentTypeBytes)
	case !utf8.ValidString(ct) || strings.IndexFunc(ct, isControl) >= 0:
		return fmt.Errorf("content_type %s: must be printable UTF-8", q)
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return fmt.Errorf("content_type %s: not a media type such as text/plain;charset=UTF-8: %w", q, err)
	}
	// ParseMediaType also takes dispositions such as "attachment".
	if !strings.Contains(mt, "/") {
		return fmt.Errorf("content_type %s: not a media type such as text/plain;charset=UTF-8: no type/subtype", q)
	}
	return nil
}

// pushPayload is the body of a request, whichever request type it came from.
type pushPayload struct {
	set  bool
	text string
	json *structpb.Value
	data []byte
	kind string // "text", "json" or "data"
}

// encodePayload turns a payload into a message body and its content type,
// applying the default content type of the kind unless ct is set.
func encodePayload(p pushPayload, ct string, maxBytes int) ([]byte, string, error) {
	var body []byte
	var defaultCT string
	switch {
	case !p.set:
		return nil, "", errors.New("payload: exactly one of text, json or data is required")
	case p.kind == "text":
		body, defaultCT = []byte(p.text), contentTypeText
	case p.kind == "data":
		body, defaultCT = p.data, contentTypeData
	case p.kind == "json":
		b, err := encodeJSON(p.json)
		if err != nil {
			return nil, "", err
		}
		body, defaultCT = b, contentTypeJSON
	default:
		// Unreachable: payloadOf only produces the kinds above.
		return nil, "", fmt.Errorf("payload: unknown kind %q", p.kind)
	}
	if len(body) > maxBytes {
		return nil, "", fmt.Errorf("payload: %s is %d bytes encoded, at most %d allowed", p.kind, len(body), maxBytes)
	}
	if err := validateContentType(ct); err != nil {
		return nil, "", err
	}
	if ct == "" {
		ct = defaultCT
	}
	return body, ct, nil
}

// encodeJSON serializes a JSON value compactly and deterministically.
// protojson is avoided on purpose: its output whitespace is randomized.
func encodeJSON(v *structpb.Value) ([]byte, error) {
	if v == nil || v.GetKind() == nil {
		// Only a gRPC client can send this: REST's JSON null arrives as
		// a null_value.
		return nil, errors.New("json: the google.protobuf.Value has no kind set")
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	// Browsers get the JSON the caller sent, not "\u003c" for "<".
	enc.SetEscapeHTML(false)
	// AsInterface turns NaN and ±Infinity, which JSON cannot express, into
	// the strings "NaN" and "Infinity", as protojson's JSON mapping does.
	if err := enc.Encode(v.AsInterface()); err != nil {
		return nil, fmt.Errorf("json: %w", err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// quoteInput quotes s for an error message, shortened so that a huge
// input does not make a huge message.
func quoteInput(s string) string { return relay.Quote(s) }
