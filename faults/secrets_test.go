package faults

import (
	"context"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	pushgatev1 "github.com/pushgate/pushgate/gen/pushgate/v1"
	"github.com/pushgate/pushgate/internal/testbroker"
	"github.com/pushgate/pushgate/internal/testenv"
)

// TestNoSecretsInLogs captures every log line (debug level) of two edges,
// their broker pools and pushsvc while sessions authenticate with tokens in
// the handshake and in CONNECT, bad tokens are refused, and pushes are made
// with right and wrong API tokens; then it stops everything and looks for
// the secrets in the logs.
func TestNoSecretsInLogs(t *testing.T) {
	testbroker.Each(t, func(t *testing.T, brokerURL string) {
		const apiToken = "faults-api-token-must-not-leak-7f3a"
		const wrongAPIToken = "wrong-api-token-must-not-leak-9c1e"
		sink := &logSink{}
		e := startEnv(t, envOptions{broker: brokerURL, apiToken: apiToken, logger: sink.logger()})
		good := testenv.Token(t, "alice")
		forged := signed(t, jwt.SigningMethodHS256, []byte("guessed secret"), jwt.MapClaims{"sub": "mallory", "exp": time.Now().Add(time.Hour).Unix()}, nil)
		expired := signed(t, jwt.SigningMethodHS256, testenv.Secret, jwt.MapClaims{"sub": "alice", "exp": time.Now().Add(-time.Hour).Unix()}, nil)

		// Token in the handshake, and in CONNECT.
		a := connectAt(t, "ws://"+e.Edges[0].Addr, "alice")
		subscribe(t, a, "g", "/user/topic/greetings")
		if msg := connectError(t, e.Edges[1], good); msg != "" {
			t.Fatalf("CONNECT with a passcode: %q", msg)
		}
		// Refused tokens, both ways.
		for _, tok := range []string{forged, expired} {
			handshakeStatus(t, e.Edges[0], tok)
			connectError(t, e.Edges[1], tok)
		}
		// Pushes with the API token, and attempts with a wrong one.
		for i := 0; i < 5; i++ {
			if code, body := e.sendToUser("alice", "/topic/greetings", "hi"); code != http.StatusOK {
				t.Fatalf("push: %d %s", code, body)
			}
		}
		e.post("/v1/users/alice/messages", map[string]any{"destination": "/topic/greetings", "text": "x"}, wrongAPIToken)
		e.post("/v1/users/alice/messages", map[string]any{"destination": "/topic/greetings", "text": "x"}, apiToken+"x")
		req, _ := http.NewRequest(http.MethodGet, "http://"+e.Pushsvc.HTTPAddr+"/test?username=alice&access_token="+url.QueryEscape(good), nil)
		req.Header.Set("Authorization", "Bearer "+wrongAPIToken)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
		cc, err := grpc.NewClient(e.Pushsvc.GRPCAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		client := pushgatev1.NewPushServiceClient(cc)
		for _, tok := range []string{apiToken, wrongAPIToken} {
			ctx, cancel := context.WithTimeout(context.Background(), wait)
			_, _ = client.SendToUser(metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+tok),
				&pushgatev1.SendToUserRequest{User: "alice", Destination: "/topic/greetings", Payload: &pushgatev1.SendToUserRequest_Text{Text: "hi"}})
			cancel()
		}
		cc.Close()
		// A session that ends with an error, and the components' shutdown.
		_ = a.Send("SUBSCRIBE", nil, "id", "x", "destination", "/user/bob/topic/x")
		time.Sleep(200 * time.Millisecond)
		for _, p := range e.Edges {
			p.Stop()
		}
		e.Pushsvc.Stop()

		logs := sink.String()
		secrets := map[string]string{
			"the client's JWT":            good,
			"the JWT's signature":         good[strings.LastIndex(good, ".")+1:],
			"the forged JWT":              forged,
			"the forged JWT's signature":  forged[strings.LastIndex(forged, ".")+1:],
			"the expired JWT's signature": expired[strings.LastIndex(expired, ".")+1:],
			"the JWT secret":              string(testenv.Secret),
			"the API token":               apiToken,
			"the wrong API token":         wrongAPIToken,
			"the broker password":         "guest:guest",
		}
		for what, s := range secrets {
			if strings.Contains(logs, s) {
				i := strings.Index(logs, s)
				line := logs[strings.LastIndex(logs[:i], "\n")+1:]
				if j := strings.IndexByte(line, '\n'); j >= 0 {
					line = line[:j]
				}
				t.Errorf("%s appears in the logs: %s", what, line)
			}
		}
		if testing.Verbose() && os.Getenv("FAULTS_DEBUG") != "" {
			t.Log(logs)
		}
		lines := strings.Count(logs, "\n")
		report(t, "%d log lines (%d bytes) captured at debug level; none holds a token or secret", lines, len(logs))
		if lines == 0 {
			t.Errorf("no log line captured: the check proves nothing")
		}
	})
}
