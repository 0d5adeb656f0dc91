package pushsvc

import (
	"math"
	"strings"
	"testing"

	"google.golang.org/protobuf/types/known/structpb"

	"github.com/pushgate/pushgate/relay"
)

func TestValidateUser(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, user, wantErr string
	}{
		{"plain", "alice", ""},
		{"dots slashes wildcards", "a.b/c#d*e", ""},
		{"spaces and percent", "Alice Smith 100%", ""},
		{"unicode", "ユーザー/ü", ""},
		{"long 300 bytes", strings.Repeat("x", 300), ""},
		{"at the limit", strings.Repeat("é", MaxUserBytes/2), ""},
		{"empty", "", "user: must not be empty"},
		{"invalid utf8", "a\xffb", "user: must be valid UTF-8"},
		{"too long", strings.Repeat("x", MaxUserBytes+1), "user: 1025 bytes, at most 1024 allowed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkErrMsg(t, validateUser(tt.user), tt.wantErr)
		})
	}
}

func TestValidateDestination(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, dest string
		topicOnly  bool
		wantErr    string
	}{
		{"topic", "/topic/greetings", false, ""},
		{"queue", "/queue/jobs", false, ""},
		{"segments", "/topic/a/b.c/d_e~f-g/09AZ", false, ""},
		{"single dot segment", "/topic/.", false, ""},
		{"at the limit", "/topic/" + strings.Repeat("x", relay.MaxDestinationBytes-7), false, ""},
		{"broadcast topic", "/topic/news", true, ""},
		{"empty", "", false, "destination: must not be empty"},
		{"relative", "topic/x", false, `destination "topic/x": must start with /topic/ or /queue/`},
		{"app", "/app/x", false, `destination "/app/x": must start with /topic/ or /queue/`},
		{"exchange", "/exchange/amq.topic/x", false, `destination "/exchange/amq.topic/x": must start with /topic/ or /queue/`},
		{"user prefix", "/user/topic/x", false, `destination "/user/topic/x": must start with /topic/ or /queue/`},
		{"no name", "/topic/", false, `destination "/topic/": needs a name after the prefix`},
		{"bare topic", "/topic", false, `destination "/topic": must start with /topic/ or /queue/`},
		{"trailing slash", "/topic/a/", false, `destination "/topic/a/": empty segment (no leading, trailing or double /)`},
		{"double slash", "/topic/a//b", false, `destination "/topic/a//b": empty segment (no leading, trailing or double /)`},
		{"dotdot", "/topic/a/../b", false, `destination "/topic/a/../b": ".." segment not allowed`},
		{"space", "/topic/a b", false, `destination "/topic/a b": character ' ' not allowed (segments use A-Z a-z 0-9 . _ ~ -, separated by /)`},
		{"wildcard", "/topic/a.*", false, `destination "/topic/a.*": character '*' not allowed (segments use A-Z a-z 0-9 . _ ~ -, separated by /)`},
		{"hash", "/topic/#", false, `destination "/topic/#": character '#' not allowed (segments use A-Z a-z 0-9 . _ ~ -, separated by /)`},
		{"percent", "/topic/a%2Fb", false, `destination "/topic/a%2Fb": character '%' not allowed (segments use A-Z a-z 0-9 . _ ~ -, separated by /)`},
		{"unicode", "/topic/ü", false, `destination "/topic/ü": character 'ü' not allowed (segments use A-Z a-z 0-9 . _ ~ -, separated by /)`},
		{"too long", "/topic/" + strings.Repeat("x", relay.MaxDestinationBytes-6), false,
			`destination "/topic/xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"...: 201 bytes, at most 200 allowed`},
		{"broadcast queue", "/queue/jobs", true, `destination "/queue/jobs": a broadcast goes to a /topic/ destination, not a queue`},
		{"broadcast app", "/app/x", true, `destination "/app/x": must start with /topic/`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkErrMsg(t, relay.ValidateDestination(tt.dest, tt.topicOnly), tt.wantErr)
		})
	}
}

func TestValidateHeaders(t *testing.T) {
	t.Parallel()
	many := func(n, valueLen int) map[string]string {
		h := make(map[string]string, n)
		for i := range n {
			h["h-"+string(rune('a'+i))] = strings.Repeat("v", valueLen)
		}
		return h
	}
	tests := []struct {
		name    string
		headers map[string]string
		wantErr string
	}{
		{"none", nil, ""},
		{"some", map[string]string{"X-Trace": "abc", "priority-hint": "ünï"}, ""},
		{"max count", many(MaxHeaders, 10), ""},
		{"empty value", map[string]string{"x": ""}, ""},
		{"too many", many(MaxHeaders+1, 1), "headers: 17 given, at most 16 allowed"},
		{"empty name", map[string]string{"": "v"}, `header "": name must not be empty`},
		{"bad name", map[string]string{"x y": "v"}, `header "x y": name may only contain A-Z a-z 0-9 -`},
		{"colon in name", map[string]string{"x:y": "v"}, `header "x:y": name may only contain A-Z a-z 0-9 -`},
		{"long name", map[string]string{strings.Repeat("n", 65): "v"}, `header "nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn": name 65 bytes, at most 64 allowed`},
		{"destination", map[string]string{"destination": "/topic/x"}, `header "destination": reserved (set by pushgate, STOMP or the broker)`},
		{"reserved any case", map[string]string{"Content-Type": "x"}, `header "Content-Type": reserved (set by pushgate, STOMP or the broker)`},
		{"reply-to", map[string]string{"reply-to": "/queue/x"}, `header "reply-to": reserved (set by pushgate, STOMP or the broker)`},
		{"pushgate prefix", map[string]string{"Pushgate-User": "x"}, `header "Pushgate-User": reserved (set by pushgate, STOMP or the broker)`},
		{"invalid utf8", map[string]string{"x": "\xff"}, `header "x": value must be valid UTF-8`},
		{"newline", map[string]string{"x": "a\nb"}, `header "x": value must not contain control characters`},
		{"long value", map[string]string{"x": strings.Repeat("v", MaxHeaderValueBytes+1)}, `header "x": value 1025 bytes, at most 1024 allowed`},
		{"total", many(5, 1000), "headers: 5015 bytes of names and values, at most 4096 allowed"},
		{"first bad by name", map[string]string{"b": "\n", "a": "\xff"}, `header "a": value must be valid UTF-8`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkErrMsg(t, validateHeaders(tt.headers), tt.wantErr)
		})
	}
}

func TestEncodePayload(t *testing.T) {
	t.Parallel()
	obj, err := structpb.NewValue(map[string]any{"b": "<&>", "a": []any{1.0, true, nil}})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		p        pushPayload
		ct       string
		max      int
		wantBody string
		wantCT   string
		wantErr  string
	}{
		{"text", pushPayload{set: true, kind: "text", text: "hi"}, "", 100, "hi", "text/plain;charset=UTF-8", ""},
		{"empty text", pushPayload{set: true, kind: "text"}, "", 100, "", "text/plain;charset=UTF-8", ""},
		{"text html", pushPayload{set: true, kind: "text", text: "<b>"}, "text/html;charset=UTF-8", 100, "<b>", "text/html;charset=UTF-8", ""},
		{"json object", pushPayload{set: true, kind: "json", json: obj}, "", 100, `{"a":[1,true,null],"b":"<&>"}`, "application/json", ""},
		{"json null", pushPayload{set: true, kind: "json", json: structpb.NewNullValue()}, "", 100, "null", "application/json", ""},
		{"json string", pushPayload{set: true, kind: "json", json: structpb.NewStringValue("x")}, "", 100, `"x"`, "application/json", ""},
		{"json custom type", pushPayload{set: true, kind: "json", json: structpb.NewNumberValue(1)}, "application/vnd.x+json", 100, "1", "application/vnd.x+json", ""},
		{"data", pushPayload{set: true, kind: "data", data: []byte{0, 1, 2}}, "", 100, "\x00\x01\x02", "application/octet-stream", ""},
		{"data png", pushPayload{set: true, kind: "data", data: []byte{1}}, "image/png", 100, "\x01", "image/png", ""},
		{"at the limit", pushPayload{set: true, kind: "text", text: "12345"}, "", 5, "12345", "text/plain;charset=UTF-8", ""},
		{"none", pushPayload{}, "", 100, "", "", "payload: exactly one of text, json or data is required"},
		{"too big", pushPayload{set: true, kind: "text", text: "123456"}, "", 5, "", "", "payload: text is 6 bytes encoded, at most 5 allowed"},
		{"json too big", pushPayload{set: true, kind: "json", json: structpb.NewStringValue("1234")}, "", 5, "", "", "payload: json is 6 bytes encoded, at most 5 allowed"},
		{"json no kind", pushPayload{set: true, kind: "json", json: &structpb.Value{}}, "", 100, "", "", "json: the google.protobuf.Value has no kind set"},
		{"json NaN", pushPayload{set: true, kind: "json", json: structpb.NewNumberValue(math.NaN())}, "", 100, `"NaN"`, "application/json", ""},
		{"bad content type", pushPayload{set: true, kind: "text"}, "text", 100, "", "", `content_type "text": not a media type such as text/plain;charset=UTF-8: no type/subtype`},
		{"bad media type", pushPayload{set: true, kind: "text"}, "text/", 100, "", "", `content_type "text/": not a media type such as text/plain;charset=UTF-8: mime: expected token after slash`},
		{"content type newline", pushPayload{set: true, kind: "text"}, "text/plain\r\nx: y", 100, "", "", `content_type "text/plain\r\nx: y": must be printable UTF-8`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body, ct, err := encodePayload(tt.p, tt.ct, tt.max)
			checkErrMsg(t, err, tt.wantErr)
			if err != nil {
				return
			}
			if string(body) != tt.wantBody || ct != tt.wantCT {
				t.Errorf("got body %q, content type %q; want %q, %q", body, ct, tt.wantBody, tt.wantCT)
			}
		})
	}
}

func TestQuoteShortensLongInput(t *testing.T) {
	t.Parallel()
	got := quoteInput(strings.Repeat("é", 100))
	if want := `"` + strings.Repeat("é", 40) + `"...`; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
}

// checkErrMsg fails t unless err's message is wantErr ("" means no error).
func checkErrMsg(t *testing.T, err error, wantErr string) {
	t.Helper()
	switch {
	case err == nil && wantErr != "":
		t.Errorf("got no error, want %q", wantErr)
	case err != nil && wantErr == "":
		t.Errorf("got error %q, want none", err)
	case err != nil && err.Error() != wantErr:
		t.Errorf("got error %q\nwant       %q", err, wantErr)
	}
}
