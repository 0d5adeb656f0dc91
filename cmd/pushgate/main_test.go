package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/pushgate/pushgate/broker"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction(broker.IgnoreLeak))
}

func TestHelpListsEveryFlagWithItsEnvironmentVariable(t *testing.T) {
	for _, cmd := range []string{"dev", "edge", "pushsvc"} {
		var out bytes.Buffer
		err := run(context.Background(), []string{cmd, "--help"}, &out, &out)
		if !errors.Is(err, flag.ErrHelp) {
			t.Fatalf("%s --help: %v", cmd, err)
		}
		for _, want := range []string{"--broker", "[$PUSHGATE_BROKER]", "--log-level"} {
			if !strings.Contains(out.String(), want) {
				t.Errorf("%s --help does not mention %s:\n%s", cmd, want, out.String())
			}
		}
	}
}

func TestEnvironmentFillsFlags(t *testing.T) {
	t.Setenv("PUSHGATE_JWT_SECRET", "from-env")
	t.Setenv("PUSHGATE_ALLOWED_ORIGINS", "https://a.example, https://b.example")
	fs := newFlagSet("edge", "")
	ef := fs.edgeFlags()
	if err := fs.parse([]string{"--max-subscriptions", "7"}); err != nil {
		t.Fatal(err)
	}
	cfg, err := ef.config("e1")
	if err != nil {
		t.Fatal(err)
	}
	if string(cfg.Auth.HMACSecret) != "from-env" || cfg.MaxSubscriptions != 7 || len(cfg.AllowedOrigins) != 2 {
		t.Fatalf("config from env and flags: secret %q, max-subscriptions %d, origins %v", cfg.Auth.HMACSecret, cfg.MaxSubscriptions, cfg.AllowedOrigins)
	}
	t.Setenv("PUSHGATE_HEART_BEAT", "soon")
	fs = newFlagSet("edge", "")
	fs.edgeFlags()
	fs.SetOutput(io.Discard)
	if err := fs.parse(nil); err == nil || !strings.Contains(err.Error(), "PUSHGATE_HEART_BEAT") {
		t.Fatalf("bad env value: got %v, want an error naming PUSHGATE_HEART_BEAT", err)
	}
}

func TestPushsvcRefusesToStartWithoutAPIToken(t *testing.T) {
	b, err := broker.Start("127.0.0.1:0", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	err = run(context.Background(), []string{"pushsvc", "--broker", b.URL(), "--grpc", "127.0.0.1:0", "--http", "127.0.0.1:0", "--log-level", "error"}, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "token") {
		t.Fatalf("pushsvc without --api-token: got %v, want an error about the token", err)
	}
}

// syncBuffer is a bytes.Buffer safe for the server's and the test's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestDevServesAndShutsDown(t *testing.T) {
	var out syncBuffer
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"dev", "--gateway-listen", "127.0.0.1:0", "--edge-listen", "127.0.0.1:0,127.0.0.1:0",
			"--grpc", "127.0.0.1:0", "--http", "127.0.0.1:0", "--log-level", "error"}, &out, io.Discard)
	}()
	re := regexp.MustCompile(`REST (http://[0-9.:]+)`)
	var rest string
	deadline := time.Now().Add(10 * time.Second)
	for rest == "" {
		if m := re.FindStringSubmatch(out.String()); m != nil {
			rest = m[1]
		}
		select {
		case err := <-done:
			t.Fatalf("dev exited early: %v\n%s", err, out.String())
		default:
		}
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("dev did not print its REST address:\n%s", out.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	for {
		resp, err := http.Get(rest + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("dev's pushsvc never became ready")
		}
		time.Sleep(20 * time.Millisecond)
	}
	resp, err := http.Get(rest + "/dev/token?user=alice")
	if err != nil {
		t.Fatal(err)
	}
	var tok struct{ Token string }
	err = json.NewDecoder(resp.Body).Decode(&tok)
	resp.Body.Close()
	if err != nil || tok.Token == "" {
		t.Fatalf("/dev/token: %v %+v", err, tok)
	}
	resp, err = http.Post(rest+"/v1/users/alice/messages", "application/json", strings.NewReader(`{"destination":"/topic/greetings","text":"hi"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("push in dev without API token: HTTP %d", resp.StatusCode)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("dev exited with %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("dev did not shut down")
	}
}
