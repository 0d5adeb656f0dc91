package integration

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/pushgate/pushgate/internal/stompclient"
	"github.com/pushgate/pushgate/internal/testbroker"
	"github.com/pushgate/pushgate/internal/testenv"
)

// userNames returns the names of the property test: the awkward ones the
// issue lists, plus random UTF-8 strings. Pairs that differ only in
// escaping-sensitive ways must never receive each other's messages.
func userNames(r *rand.Rand, n int) []string {
	names := []string{
		"alice", "alice.smith", "alice/smith", "alice%2Fsmith", "alice%2fsmith", "a#b", "a*b", "a b", "a+b",
		"100%", "%", "..", "/", "#", "*", "ünïcødé", "用户", "emoji 🎉", "a\\b", "a:b", "a\"b", "a,b",
		strings.Repeat("x", 250), strings.Repeat("é", 120),
	}
	alphabet := []rune("ab./#*% :\\é用🎉-_~+")
	for len(names) < n {
		l := 1 + r.IntN(24)
		var b strings.Builder
		for i := 0; i < l; i++ {
			b.WriteRune(alphabet[r.IntN(len(alphabet))])
		}
		names = append(names, b.String())
	}
	return names
}

// TestAnyUserNameReachesExactlyThatUser is the property test: for every
// name, a push reaches that user's session and no other.
func TestAnyUserNameReachesExactlyThatUser(t *testing.T) {
	testbroker.Each(t, func(t *testing.T, brokerURL string) {
		env := testenv.Start(t, testenv.Options{Broker: brokerURL})
		r := rand.New(rand.NewPCG(1, 2))
		seen := map[string]bool{}
		var names []string
		for _, n := range userNames(r, 60) {
			if !seen[n] && utf8.ValidString(n) {
				seen[n] = true
				names = append(names, n)
			}
		}
		clients := make([]*stompclient.Client, len(names))
		for i, n := range names {
			clients[i] = connect(t, env.Edges[i%2], n)
			subscribe(t, clients[i], "g", "/user/topic/greetings")
		}
		for i, n := range names {
			sendToUser(t, env, n, "/topic/greetings", fmt.Sprintf("for #%d", i))
		}
		for i, c := range clients {
			f, err := c.Expect("MESSAGE", wait)
			if err != nil {
				t.Fatalf("user %q: %v", names[i], err)
			}
			if want := fmt.Sprintf("for #%d", i); string(f.Body) != want {
				t.Fatalf("user %q got %q, want %q", names[i], f.Body, want)
			}
		}
		for i, c := range clients {
			if f, err := c.Next(20 * time.Millisecond); err == nil {
				t.Fatalf("user %q got an extra %s %q", names[i], f.Command, f.Body)
			}
		}
	})
}
