package integration

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	pushgatev1 "github.com/pushgate/pushgate/gen/pushgate/v1"
	"github.com/pushgate/pushgate/internal/stompclient"
	"github.com/pushgate/pushgate/internal/testbroker"
	"github.com/pushgate/pushgate/internal/testenv"
)

func grpcClient(t *testing.T, env *testenv.Env) pushgatev1.PushServiceClient {
	t.Helper()
	cc, err := grpc.NewClient(env.Pushsvc.GRPCAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return pushgatev1.NewPushServiceClient(cc)
}

func TestAPIAndIsolation(t *testing.T) {
	testbroker.Each(t, func(t *testing.T, brokerURL string) {
		env := testenv.Start(t, testenv.Options{Broker: brokerURL})
		alice := connect(t, env.Edges[0], "alice")
		bob := connect(t, env.Edges[1], "bob")
		subscribe(t, alice, "g", "/user/topic/greetings")
		subscribe(t, bob, "g", "/user/topic/greetings")

		// gRPC SendToUser.
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		resp, err := grpcClient(t, env).SendToUser(ctx, &pushgatev1.SendToUserRequest{
			User: "alice", Destination: "/topic/greetings",
			Payload: &pushgatev1.SendToUserRequest_Text{Text: "via grpc"},
		})
		if err != nil {
			t.Fatal(err)
		}
		if resp.GetMessageId() == "" {
			t.Error("SendToUser returned no message_id")
		}
		f, err := alice.Expect("MESSAGE", wait)
		if err != nil {
			t.Fatal(err)
		}
		if string(f.Body) != "via grpc" || f.Header.Get("message-id") != resp.GetMessageId() ||
			f.Header.Get("content-type") != "text/plain;charset=UTF-8" {
			t.Fatalf("MESSAGE %v %q: want body %q, message-id %q, text/plain;charset=UTF-8", f.Header, f.Body, "via grpc", resp.GetMessageId())
		}

		// The legacy /test endpoint.
		r, err := http.Get("http://" + env.Pushsvc.HTTPAddr + "/test?username=bob")
		if err != nil {
			t.Fatal(err)
		}
		r.Body.Close()
		if r.StatusCode != http.StatusOK {
			t.Fatalf("/test: HTTP %d", r.StatusCode)
		}
		expectMessage(t, bob, "/user/topic/greetings", "hello:bob")
		expectNothing(t, alice, 200*time.Millisecond)

		// alice may not reach bob's destinations nor the broker's names.
		for _, dest := range []string{"/user/bob/topic/greetings", "/exchange/amq.topic/pushgate.edges", "/topic/pushgate.edges/../x", "/queue/greetings-userbob", "/amq/queue/x"} {
			spy := connect(t, env.Edges[1], "alice")
			if err := spy.Send("SUBSCRIBE", nil, "id", "x", "destination", dest, "receipt", "r"); err != nil {
				t.Fatal(err)
			}
			f, err := spy.Expect("ERROR", wait)
			if err != nil {
				t.Fatalf("SUBSCRIBE %s: %v", dest, err)
			}
			if !strings.Contains(f.Header.Get("message"), dest) {
				t.Errorf("ERROR for %s does not name it: %q", dest, f.Header.Get("message"))
			}
			if f.Header.Get("receipt-id") != "r" {
				t.Errorf("ERROR for %s has receipt-id %q, want r", dest, f.Header.Get("receipt-id"))
			}
			if _, err := spy.Next(wait); err == nil {
				t.Errorf("connection stayed open after ERROR for %s", dest)
			}
		}
		sendToUser(t, env, "bob", "/topic/greetings", "for bob only")
		expectMessage(t, bob, "/user/topic/greetings", "for bob only")
		expectNothing(t, alice, 200*time.Millisecond)

		// A malformed frame closes only its own session.
		bad := connect(t, env.Edges[0], "mallory")
		if err := bad.SendRaw([]byte("FOO\n\n\x00")); err != nil {
			t.Fatal(err)
		}
		if _, err := bad.Expect("ERROR", wait); err != nil {
			t.Fatal(err)
		}
		sendToUser(t, env, "alice", "/topic/greetings", "still here")
		expectMessage(t, alice, "/user/topic/greetings", "still here")
	})
}

func signed(t *testing.T, method jwt.SigningMethod, key any, claims jwt.MapClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(method, claims).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestBadTokensAreRefused(t *testing.T) {
	env := testenv.Start(t, testenv.Options{Broker: embeddedURL(t)})
	now := time.Now()
	bad := map[string]string{
		"wrong signature": signed(t, jwt.SigningMethodHS256, []byte("not the secret"), jwt.MapClaims{"sub": "alice", "exp": now.Add(time.Hour).Unix()}),
		"expired":         signed(t, jwt.SigningMethodHS256, testenv.Secret, jwt.MapClaims{"sub": "alice", "exp": now.Add(-time.Minute).Unix()}),
		"not yet valid":   signed(t, jwt.SigningMethodHS256, testenv.Secret, jwt.MapClaims{"sub": "alice", "nbf": now.Add(time.Hour).Unix()}),
		"alg none":        signed(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, jwt.MapClaims{"sub": "alice"}),
		"garbage":         "not-a-jwt",
	}
	for name, token := range bad {
		t.Run(name+"/handshake", func(t *testing.T) {
			_, resp, err := stompclient.Dial(context.Background(), env.Edges[0].URL("/stomp?access_token="+url.QueryEscape(token)), nil)
			if err == nil {
				t.Fatal("handshake with a bad token succeeded")
			}
			if resp == nil || resp.StatusCode != http.StatusUnauthorized {
				t.Fatalf("handshake: got %v, want HTTP 401", resp)
			}
		})
		t.Run(name+"/connect", func(t *testing.T) {
			c, _, err := stompclient.Dial(context.Background(), env.Edges[0].URL("/stomp"), nil)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if err := c.Send("CONNECT", nil, "accept-version", "1.2", "passcode", token); err != nil {
				t.Fatal(err)
			}
			f, err := c.Expect("ERROR", wait)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(f.Header.Get("message"), "authentication") {
				t.Errorf("ERROR message %q does not say authentication failed", f.Header.Get("message"))
			}
		})
	}
	t.Run("no token", func(t *testing.T) {
		c, _, err := stompclient.Dial(context.Background(), env.Edges[0].URL("/stomp"), nil)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if err := c.Send("CONNECT", nil, "accept-version", "1.2"); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Expect("ERROR", wait); err != nil {
			t.Fatal(err)
		}
	})
}

func TestPushAPIErrors(t *testing.T) {
	env := testenv.Start(t, testenv.Options{Broker: embeddedURL(t), APIToken: "s3cret"})
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	_, err := grpcClient(t, env).SendToUser(ctx, &pushgatev1.SendToUserRequest{User: "a", Destination: "/topic/x", Payload: &pushgatev1.SendToUserRequest_Text{Text: "x"}})
	if status.Code(err) != codes.Unauthenticated {
		t.Fatalf("without token: got %v, want Unauthenticated", err)
	}
	code, body := restPost(t, env, "/v1/users/alice/messages", map[string]any{"destination": "/app/x", "text": "x"})
	if code != http.StatusBadRequest || !strings.Contains(body, "/app/x") {
		t.Fatalf("bad destination: HTTP %d %s, want 400 naming it", code, body)
	}
}
