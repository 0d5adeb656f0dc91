package relay

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// MaxDestinationBytes bounds a client-visible destination (DESIGN.md "Valid
// push destinations"); RabbitMQ routing keys are at most 255 bytes and the
// broker mapping adds a prefix.
const MaxDestinationBytes = 200

// ValidateDestination checks a client-visible destination: "/topic/" (or,
// unless topicOnly, "/queue/") followed by non-empty segments of
// A-Z a-z 0-9 . _ ~ - separated by "/", at most MaxDestinationBytes, without
// ".." segments. Edges check what browsers send and pushsvc what callers
// send with this one rule, so both sides agree on what reaches the broker.
func ValidateDestination(dest string, topicOnly bool) error {
	if dest == "" {
		return errors.New("destination: must not be empty")
	}
	if len(dest) > MaxDestinationBytes {
		return fmt.Errorf("destination %s: %d bytes, at most %d allowed", Quote(dest), len(dest), MaxDestinationBytes)
	}
	var rest string
	switch {
	case strings.HasPrefix(dest, "/topic/"):
		rest = dest[len("/topic/"):]
	case strings.HasPrefix(dest, "/queue/") && !topicOnly:
		rest = dest[len("/queue/"):]
	case strings.HasPrefix(dest, "/queue/"):
		return fmt.Errorf("destination %s: a broadcast goes to a /topic/ destination, not a queue", Quote(dest))
	case topicOnly:
		return fmt.Errorf("destination %s: must start with /topic/", Quote(dest))
	default:
		return fmt.Errorf("destination %s: must start with /topic/ or /queue/", Quote(dest))
	}
	if rest == "" {
		return fmt.Errorf("destination %s: needs a name after the prefix", Quote(dest))
	}
	for seg := range strings.SplitSeq(rest, "/") {
		if seg == "" {
			return fmt.Errorf("destination %s: empty segment (no leading, trailing or double /)", Quote(dest))
		}
		if seg == ".." {
			return fmt.Errorf("destination %s: \"..\" segment not allowed", Quote(dest))
		}
		for _, r := range seg {
			if !isDestinationChar(r) {
				return fmt.Errorf("destination %s: character %q not allowed (segments use A-Z a-z 0-9 . _ ~ -, separated by /)", Quote(dest), r)
			}
		}
	}
	return nil
}

func isDestinationChar(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' ||
		r == '.' || r == '_' || r == '~' || r == '-'
}

// Quote quotes s for an error message, cut to a readable length on a rune
// boundary.
func Quote(s string) string {
	const limit = 80
	if len(s) <= limit {
		return fmt.Sprintf("%q", s)
	}
	cut := limit
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return fmt.Sprintf("%q...", s[:cut])
}
