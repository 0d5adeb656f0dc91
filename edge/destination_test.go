package edge

import (
	"strings"
	"testing"
)

func TestParseSubscribeDestination(t *testing.T) {
	tests := []struct {
		dest     string
		kind     destKind
		name     string
		errorHas string
	}{
		{"/user/topic/greetings", destUser, "/topic/greetings", ""},
		{"/user/queue/a/b.c", destUser, "/queue/a/b.c", ""},
		{"/topic/news", destTopic, "/topic/news", ""},
		{"/topic/a/b-c_d~e.f", destTopic, "/topic/a/b-c_d~e.f", ""},
		{"/user/bob/topic/greetings", 0, "", "only your own"},
		{"/user/topic/", 0, "", "needs a name"},
		{"/user/topic/a/../b", 0, "", `".." segment`},
		{"/topic/a/", 0, "", "empty segment"},
		{"/topic/a//b", 0, "", "empty segment"},
		{"/topic/*", 0, "", "not allowed"},
		{"/topic/#", 0, "", "not allowed"},
		{"/topic/%2e%2e", 0, "", "not allowed"},
		{"/topic/a b", 0, "", "not allowed"},
		{"/USER/topic/x", 0, "", "allowed are"},
		{"/queue/x", 0, "", "allowed are"},
		{"/exchange/amq.topic/x", 0, "", "allowed are"},
		{"/amq/queue/x", 0, "", "allowed are"},
		{"/temp-queue/x", 0, "", "allowed are"},
		{"", 0, "", "allowed are"},
		{"/topic/" + strings.Repeat("x", 200), 0, "", "bytes"},
	}
	for _, tt := range tests {
		kind, name, err := parseSubscribeDestination(tt.dest)
		if tt.errorHas != "" {
			if err == nil {
				t.Errorf("%q: accepted, want an error containing %q", tt.dest, tt.errorHas)
			} else if !strings.Contains(err.Error(), tt.errorHas) || !strings.Contains(err.Error(), tt.dest[:min(len(tt.dest), 20)]) {
				t.Errorf("%q: error %q, want it to contain %q and name the destination", tt.dest, err, tt.errorHas)
			}
			continue
		}
		if err != nil || kind != tt.kind || name != tt.name {
			t.Errorf("%q: got (%v, %q, %v), want (%v, %q, nil)", tt.dest, kind, name, err, tt.kind, tt.name)
		}
	}
}

func TestParseSendDestination(t *testing.T) {
	s := &Server{cfg: Config{ClientPublish: []string{"/topic/chat.*"}}, apps: map[string]appHandler{"/app/hello": nil}}
	tests := []struct {
		dest string
		kind destKind
		ok   bool
	}{
		{"/app/hello", destApp, true},
		{"/app/other", 0, false},
		{"/topic/chat.room", destTopic, true},
		{"/topic/chat.room/x", 0, false},
		{"/topic/news", 0, false},
		{"/user/topic/greetings", 0, false},
		{"/queue/x", 0, false},
		{"/exchange/amq.topic/chat.room", 0, false},
	}
	for _, tt := range tests {
		kind, _, err := s.parseSendDestination(tt.dest)
		if (err == nil) != tt.ok || kind != tt.kind {
			t.Errorf("%q: got (%v, %v), want kind %v ok %v", tt.dest, kind, err, tt.kind, tt.ok)
		}
		if err != nil && !strings.Contains(err.Error(), tt.dest) {
			t.Errorf("%q: error %q does not name the destination", tt.dest, err)
		}
	}
}
