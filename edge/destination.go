package edge

import (
	"fmt"
	"path"
	"strings"

	"github.com/pushgate/pushgate/relay"
)

// destKind tells what a client destination addresses.
type destKind uint8

const (
	// destUser is "/user/topic/..." or "/user/queue/...": what is sent to
	// the session's own user at "/topic/..." or "/queue/...".
	destUser destKind = iota + 1
	// destTopic is "/topic/...": broadcasts.
	destTopic
	// destApp is "/app/...": an application handler on the edge.
	destApp
)

// userPrefix starts every user destination a client may use.
const userPrefix = "/user"

// parseSubscribeDestination checks a SUBSCRIBE destination. A client may
// subscribe to its own user destinations and to topics; everything else —
// another user's destinations, broker names such as /exchange/ or
// /amq/queue/, plain /queue/, wildcards, encodings, ".." — is refused with a
// reason that names the destination.
func parseSubscribeDestination(d string) (destKind, string, error) {
	switch {
	case strings.HasPrefix(d, "/user/topic/") || strings.HasPrefix(d, "/user/queue/"):
		rest := d[len(userPrefix):]
		if err := relay.ValidateDestination(rest, false); err != nil {
			return 0, "", fmt.Errorf("cannot subscribe to %s: %w", relay.Quote(d), err)
		}
		return destUser, rest, nil
	case strings.HasPrefix(d, "/user/"):
		return 0, "", fmt.Errorf("cannot subscribe to %s: only your own /user/topic/... and /user/queue/... destinations are allowed", relay.Quote(d))
	case strings.HasPrefix(d, "/topic/"):
		if err := relay.ValidateDestination(d, true); err != nil {
			return 0, "", fmt.Errorf("cannot subscribe to %s: %w", relay.Quote(d), err)
		}
		return destTopic, d, nil
	default:
		return 0, "", fmt.Errorf("cannot subscribe to %s: allowed are /user/topic/, /user/queue/ and /topic/ destinations", relay.Quote(d))
	}
}

// parseSendDestination checks a SEND destination: an application handler
// under /app/, or a /topic/ that --client-publish allows.
func (s *Server) parseSendDestination(d string) (destKind, string, error) {
	switch {
	case strings.HasPrefix(d, "/app/"):
		if _, ok := s.apps[d]; !ok {
			return 0, "", fmt.Errorf("cannot send to %s: no application handler for it", relay.Quote(d))
		}
		return destApp, d, nil
	case strings.HasPrefix(d, "/topic/"):
		if err := relay.ValidateDestination(d, true); err != nil {
			return 0, "", fmt.Errorf("cannot send to %s: %w", relay.Quote(d), err)
		}
		for _, p := range s.cfg.ClientPublish {
			if ok, _ := path.Match(p, d); ok {
				return destTopic, d, nil
			}
		}
		return 0, "", fmt.Errorf("cannot send to %s: clients may not publish to it (see --client-publish)", relay.Quote(d))
	default:
		return 0, "", fmt.Errorf("cannot send to %s: clients send to /app/... destinations", relay.Quote(d))
	}
}
