package integration

import (
	"testing"
	"time"

	"github.com/pushgate/pushgate/internal/testbroker"
	"github.com/pushgate/pushgate/internal/testenv"
)

func TestSendToUserReachesEverySessionOfTheUser(t *testing.T) {
	testbroker.Each(t, func(t *testing.T, brokerURL string) {
		env := testenv.Start(t, testenv.Options{Broker: brokerURL})
		alice1 := connect(t, env.Edges[0], "alice")
		alice2 := connect(t, env.Edges[1], "alice")
		bob := connect(t, env.Edges[1], "bob")
		for _, c := range []struct {
			name string
			c    interface{}
		}{} {
			_ = c
		}
		subscribe(t, alice1, "g", "/user/topic/greetings")
		subscribe(t, alice2, "g", "/user/topic/greetings")
		subscribe(t, bob, "g", "/user/topic/greetings")

		sendToUser(t, env, "alice", "/topic/greetings", "hi alice")
		expectMessage(t, alice1, "/user/topic/greetings", "hi alice")
		expectMessage(t, alice2, "/user/topic/greetings", "hi alice")
		expectNothing(t, bob, 300*time.Millisecond)
		expectNothing(t, alice1, 100*time.Millisecond) // exactly once

		broadcast(t, env, "/topic/news", "before subscribe")
		subscribe(t, alice1, "n", "/topic/news")
		subscribe(t, bob, "n", "/topic/news")
		broadcast(t, env, "/topic/news", "extra")
		expectMessage(t, alice1, "/topic/news", "extra")
		expectMessage(t, bob, "/topic/news", "extra")

		if err := alice2.Send("SEND", nil, "destination", "/app/hello"); err != nil {
			t.Fatal(err)
		}
		expectMessage(t, alice1, "/user/topic/greetings", "hello")
		expectMessage(t, alice2, "/user/topic/greetings", "hello")
		expectNothing(t, bob, 200*time.Millisecond)
	})
}
