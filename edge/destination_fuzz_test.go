package edge

import (
	"strings"
	"testing"

	"github.com/pushgate/pushgate/relay"
)

// FuzzParseSubscribeDestination checks the rules that keep users apart on
// arbitrary destinations: parsing never panics; what it accepts is either
// the session's own /user/topic/... or /user/queue/... (never another
// user's, never a broker name), or a /topic/...; every accepted name is a
// valid push destination made only of safe segments; and every refusal
// names the destination.
func FuzzParseSubscribeDestination(f *testing.F) {
	for _, s := range []string{
		"/user/topic/greetings", "/user/queue/x", "/topic/news", "/topic/a/b.c_d~e-f",
		"/user/bob/topic/greetings", "/USER/topic/x", "/user/topic/../bob/topic/x", "/user/topic/x/",
		"/user//topic/x", "/user/%62ob/topic/x", "/user/topic/*", "/user/topic/#", "/topic/#",
		"/exchange/amq.topic/pushgate.edges", "/amq/queue/pushgate.registry", "/queue/x", "/user/topic/./x",
		"/user/topic/x\x00", "/user/topic/секрет", "", "/", "/user", "/user/",
		"/topic/" + strings.Repeat("a", 300),
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, d string) {
		kind, name, err := parseSubscribeDestination(d)
		if err != nil {
			if kind != 0 || name != "" {
				t.Fatalf("%q: error %v with kind %d name %q", d, err, kind, name)
			}
			if !strings.Contains(err.Error(), relay.Quote(d)) {
				t.Fatalf("%q: error %q does not name the destination", d, err)
			}
			return
		}
		var pushDest string
		switch kind {
		case destUser:
			if !strings.HasPrefix(d, "/user/topic/") && !strings.HasPrefix(d, "/user/queue/") {
				t.Fatalf("%q accepted as a user destination", d)
			}
			if name != d[len(userPrefix):] {
				t.Fatalf("%q: user-relative name %q", d, name)
			}
			pushDest = name
		case destTopic:
			if !strings.HasPrefix(d, "/topic/") || name != d {
				t.Fatalf("%q accepted as topic %q", d, name)
			}
			pushDest = name
		default:
			t.Fatalf("%q accepted as kind %d", d, kind)
		}
		// The name is exactly what the push API accepts: segments of
		// A-Z a-z 0-9 . _ ~ -, none empty, none "..", at most 200 bytes.
		if err := relay.ValidateDestination(pushDest, kind == destTopic); err != nil {
			t.Fatalf("%q accepted but the push API refuses %q: %v", d, pushDest, err)
		}
		rest := pushDest[strings.Index(pushDest[1:], "/")+2:]
		for _, seg := range strings.Split(rest, "/") {
			if seg == "" || seg == ".." {
				t.Fatalf("%q accepted with segment %q", d, seg)
			}
			for i := 0; i < len(seg); i++ {
				c := seg[i]
				if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '~' || c == '-') {
					t.Fatalf("%q accepted with byte %q", d, c)
				}
			}
		}
		// The broker name it maps to stays in the client topic namespace.
		if kind == destTopic {
			if b := relay.TopicDestination(name); !strings.HasPrefix(b, "/topic/pushgate.t.") || strings.ContainsAny(b[len("/topic/pushgate.t."):], "/*#") {
				t.Fatalf("%q maps to the broker destination %q, outside the client topic namespace", d, b)
			}
		}
	})
}
