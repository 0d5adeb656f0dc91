package pushsvc

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/structpb"

	pushgatev1 "github.com/pushgate/pushgate/gen/pushgate/v1"
	"github.com/pushgate/pushgate/relay"
)

const testToken = "s3cret-token"

// apiCall is one call a apiFakeRouter received.
type apiCall struct {
	op   string // "user" or "broadcast"
	user string
	m    Message
}

// apiFakeRouter records calls and answers with err.
type apiFakeRouter struct {
	mu    sync.Mutex
	calls []apiCall
	err   error
}

func (r *apiFakeRouter) SendToUser(_ context.Context, user string, m Message) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, apiCall{op: "user", user: user, m: m})
	return r.err
}

func (r *apiFakeRouter) Broadcast(_ context.Context, m Message) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, apiCall{op: "broadcast", m: m})
	return r.err
}

func (r *apiFakeRouter) setErr(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.err = err
}

// take returns and forgets the recorded calls.
func (r *apiFakeRouter) take() []apiCall {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := r.calls
	r.calls = nil
	return c
}

// testAPI is a running Server on ephemeral loopback ports.
type testAPI struct {
	srv    *Server
	router *apiFakeRouter
	conn   *grpc.ClientConn
	client pushgatev1.PushServiceClient
	base   string // http://127.0.0.1:PORT
	http   *http.Client
}

// startAPI starts a Server with cfg (APIToken defaults to testToken) and a
// fake router; everything stops in t.Cleanup.
func startAPI(t *testing.T, cfg Config) *testAPI {
	t.Helper()
	if cfg.APIToken == "" && !cfg.InsecureNoAPIToken && cfg.DevTokens == nil {
		cfg.APIToken = testToken
	}
	router := &apiFakeRouter{}
	srv, err := NewServer(cfg, router)
	if err != nil {
		t.Fatal(err)
	}
	srv.readyPoll = 10 * time.Millisecond
	gln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	gdone, hdone := make(chan error, 1), make(chan error, 1)
	go func() { gdone <- srv.ServeGRPC(ctx, gln) }()
	go func() { hdone <- srv.ServeHTTP(ctx, hln) }()

	conn, err := grpc.NewClient(gln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	tr := &http.Transport{}
	a := &testAPI{
		srv:    srv,
		router: router,
		conn:   conn,
		client: pushgatev1.NewPushServiceClient(conn),
		base:   "http://" + hln.Addr().String(),
		http:   &http.Client{Transport: tr, Timeout: 10 * time.Second},
	}
	t.Cleanup(func() {
		_ = conn.Close()
		tr.CloseIdleConnections()
		cancel()
		for name, done := range map[string]chan error{"ServeGRPC": gdone, "ServeHTTP": hdone} {
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("%s returned %v", name, err)
				}
			case <-time.After(10 * time.Second):
				t.Errorf("%s did not return after cancel", name)
			}
		}
	})
	return a
}

// authCtx returns a context carrying the bearer token in gRPC metadata.
func authCtx(t *testing.T, token string) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	if token == "" {
		return ctx
	}
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+token)
}

func TestGRPCSendToUser(t *testing.T) {
	t.Parallel()
	a := startAPI(t, Config{})
	resp, err := a.client.SendToUser(authCtx(t, testToken), &pushgatev1.SendToUserRequest{
		User:        "alice/bob #1",
		Destination: "/topic/greetings",
		Payload:     &pushgatev1.SendToUserRequest_Text{Text: "hi"},
		Headers:     map[string]string{"X-Trace": "t1"},
	})
	if err != nil {
		t.Fatal(err)
	}
	calls := a.router.take()
	if len(calls) != 1 {
		t.Fatalf("router got %d calls, want 1", len(calls))
	}
	c := calls[0]
	want := Message{ID: resp.GetMessageId(), Destination: "/topic/greetings", Body: []byte("hi"),
		ContentType: "text/plain;charset=UTF-8", Headers: map[string]string{"X-Trace": "t1"}}
	if c.op != "user" || c.user != "alice/bob #1" {
		t.Errorf("router got %s(%q), want user(%q)", c.op, c.user, "alice/bob #1")
	}
	if diff := cmp.Diff(want, c.m); diff != "" {
		t.Errorf("message (-want +got):\n%s", diff)
	}
	if len(resp.GetMessageId()) != 32 {
		t.Errorf("message id %q, want 32 hex digits", resp.GetMessageId())
	}
}

func TestGRPCBroadcast(t *testing.T) {
	t.Parallel()
	a := startAPI(t, Config{})
	obj, _ := structpb.NewValue(map[string]any{"a": 1.0})
	resp, err := a.client.Broadcast(authCtx(t, testToken), &pushgatev1.BroadcastRequest{
		Destination: "/topic/news",
		Payload:     &pushgatev1.BroadcastRequest_Json{Json: obj},
	})
	if err != nil {
		t.Fatal(err)
	}
	calls := a.router.take()
	want := Message{ID: resp.GetMessageId(), Destination: "/topic/news", Body: []byte(`{"a":1}`), ContentType: "application/json"}
	wantCalls := []apiCall{{op: "broadcast", m: want}}
	if diff := cmp.Diff(wantCalls, calls, cmp.AllowUnexported(apiCall{})); diff != "" {
		t.Errorf("router calls (-want +got):\n%s", diff)
	}
}

func TestGRPCInvalidArgument(t *testing.T) {
	t.Parallel()
	a := startAPI(t, Config{MaxPayloadBytes: 100})
	text := func(s string) *pushgatev1.SendToUserRequest_Text { return &pushgatev1.SendToUserRequest_Text{Text: s} }
	users := []struct {
		name    string
		req     *pushgatev1.SendToUserRequest
		wantMsg string
	}{
		{"empty user", &pushgatev1.SendToUserRequest{Destination: "/topic/x", Payload: text("hi")}, "user: must not be empty"},
		{"empty destination", &pushgatev1.SendToUserRequest{User: "u", Payload: text("hi")}, "destination: must not be empty"},
		{"relative destination", &pushgatev1.SendToUserRequest{User: "u", Destination: "topic/x", Payload: text("hi")}, `destination "topic/x": must start with /topic/ or /queue/`},
		{"app destination", &pushgatev1.SendToUserRequest{User: "u", Destination: "/app/x", Payload: text("hi")}, `destination "/app/x": must start with /topic/ or /queue/`},
		{"slash in segment", &pushgatev1.SendToUserRequest{User: "u", Destination: "/topic/a//b", Payload: text("hi")}, `destination "/topic/a//b": empty segment (no leading, trailing or double /)`},
		{"no payload", &pushgatev1.SendToUserRequest{User: "u", Destination: "/topic/x"}, "payload: exactly one of text, json or data is required"},
		{"payload too big", &pushgatev1.SendToUserRequest{User: "u", Destination: "/topic/x", Payload: text(strings.Repeat("x", 101))}, "payload: text is 101 bytes encoded, at most 100 allowed"},
		{"empty json", &pushgatev1.SendToUserRequest{User: "u", Destination: "/topic/x", Payload: &pushgatev1.SendToUserRequest_Json{Json: &structpb.Value{}}}, "json: the google.protobuf.Value has no kind set"},
		{"reserved header", &pushgatev1.SendToUserRequest{User: "u", Destination: "/topic/x", Payload: text("hi"), Headers: map[string]string{"destination": "/topic/y"}}, `header "destination": reserved (set by pushgate, STOMP or the broker)`},
		{"bad content type", &pushgatev1.SendToUserRequest{User: "u", Destination: "/topic/x", Payload: text("hi"), ContentType: "plain"}, `content_type "plain": not a media type such as text/plain;charset=UTF-8: no type/subtype`},
	}
	for _, tt := range users {
		t.Run(tt.name, func(t *testing.T) {
			_, err := a.client.SendToUser(authCtx(t, testToken), tt.req)
			checkStatus(t, err, codes.InvalidArgument, tt.wantMsg)
		})
	}
	broadcasts := []struct {
		name    string
		req     *pushgatev1.BroadcastRequest
		wantMsg string
	}{
		{"queue", &pushgatev1.BroadcastRequest{Destination: "/queue/x", Payload: &pushgatev1.BroadcastRequest_Text{Text: "hi"}}, `destination "/queue/x": a broadcast goes to a /topic/ destination, not a queue`},
		{"no payload", &pushgatev1.BroadcastRequest{Destination: "/topic/x"}, "payload: exactly one of text, json or data is required"},
		{"data too big", &pushgatev1.BroadcastRequest{Destination: "/topic/x", Payload: &pushgatev1.BroadcastRequest_Data{Data: make([]byte, 101)}}, "payload: data is 101 bytes encoded, at most 100 allowed"},
	}
	for _, tt := range broadcasts {
		t.Run("broadcast "+tt.name, func(t *testing.T) {
			_, err := a.client.Broadcast(authCtx(t, testToken), tt.req)
			checkStatus(t, err, codes.InvalidArgument, tt.wantMsg)
		})
	}
	if calls := a.router.take(); len(calls) != 0 {
		t.Errorf("invalid requests reached the router: %+v", calls)
	}
}

func TestGRPCRouterErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		err      error
		wantCode codes.Code
		wantMsg  string
	}{
		{"unavailable", fmt.Errorf("send: %w", relay.ErrUnavailable), codes.Unavailable,
			"message not sent, the broker is unavailable: send: relay: broker unavailable"},
		{"deadline", fmt.Errorf("receipt: %w", context.DeadlineExceeded), codes.DeadlineExceeded,
			"message not confirmed by the broker in time: receipt: context deadline exceeded"},
		{"other", errors.New("boom"), codes.Internal, "message not sent: boom"},
		{"status passes", status.Error(codes.ResourceExhausted, "too many"), codes.ResourceExhausted, "too many"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			a := startAPI(t, Config{})
			a.router.setErr(tt.err)
			_, err := a.client.SendToUser(authCtx(t, testToken), &pushgatev1.SendToUserRequest{
				User: "u", Destination: "/topic/x", Payload: &pushgatev1.SendToUserRequest_Text{Text: "hi"}})
			checkStatus(t, err, tt.wantCode, tt.wantMsg)
			_, err = a.client.Broadcast(authCtx(t, testToken), &pushgatev1.BroadcastRequest{
				Destination: "/topic/x", Payload: &pushgatev1.BroadcastRequest_Text{Text: "hi"}})
			checkStatus(t, err, tt.wantCode, tt.wantMsg)
		})
	}
}

func TestGRPCAuth(t *testing.T) {
	t.Parallel()
	a := startAPI(t, Config{})
	req := &pushgatev1.SendToUserRequest{User: "u", Destination: "/topic/x", Payload: &pushgatev1.SendToUserRequest_Text{Text: "hi"}}
	tests := []struct {
		name     string
		md       []string
		wantCode codes.Code
		wantMsg  string
	}{
		{"missing", nil, codes.Unauthenticated, `missing bearer token: send "authorization: Bearer <api token>"`},
		{"not bearer", []string{"authorization", "Basic " + testToken}, codes.Unauthenticated, `missing bearer token: send "authorization: Bearer <api token>"`},
		{"wrong", []string{"authorization", "Bearer nope"}, codes.Unauthenticated, "invalid bearer token"},
		{"prefix of token", []string{"authorization", "Bearer " + testToken[:4]}, codes.Unauthenticated, "invalid bearer token"},
		{"right, lowercase scheme", []string{"authorization", "bearer " + testToken}, codes.OK, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := authCtx(t, "")
			if tt.md != nil {
				ctx = metadata.AppendToOutgoingContext(ctx, tt.md...)
			}
			_, err := a.client.SendToUser(ctx, req)
			checkStatus(t, err, tt.wantCode, tt.wantMsg)
		})
	}
	if n := len(a.router.take()); n != 1 {
		t.Errorf("router got %d calls, want 1 (only the authenticated one)", n)
	}
}

func TestGRPCHealthAndReflectionNeedNoToken(t *testing.T) {
	t.Parallel()
	var ready atomic.Bool
	a := startAPI(t, Config{Ready: ready.Load})
	hc := healthpb.NewHealthClient(a.conn)
	waitHealth := func(want healthpb.HealthCheckResponse_ServingStatus) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for {
			resp, err := hc.Check(authCtx(t, ""), &healthpb.HealthCheckRequest{Service: "pushgate.v1.PushService"})
			if err == nil && resp.GetStatus() == want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("health: got %v, %v; want %v", resp.GetStatus(), err, want)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	waitHealth(healthpb.HealthCheckResponse_NOT_SERVING)
	ready.Store(true)
	waitHealth(healthpb.HealthCheckResponse_SERVING)

	rc := reflectionpb.NewServerReflectionClient(a.conn)
	stream, err := rc.ServerReflectionInfo(authCtx(t, ""))
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&reflectionpb.ServerReflectionRequest{
		MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{}}); err != nil {
		t.Fatal(err)
	}
	resp, err := stream.Recv()
	if err != nil {
		t.Fatalf("reflection without token: %v", err)
	}
	var names []string
	for _, s := range resp.GetListServicesResponse().GetService() {
		names = append(names, s.GetName())
	}
	if !strings.Contains(strings.Join(names, ","), "pushgate.v1.PushService") {
		t.Errorf("reflection lists %v, want pushgate.v1.PushService among them", names)
	}
	_ = stream.CloseSend()
}

func TestNewServerConfig(t *testing.T) {
	t.Parallel()
	r := &apiFakeRouter{}
	dev := func(string) (string, error) { return "t", nil }
	tests := []struct {
		name    string
		cfg     Config
		router  Router
		wantErr bool
	}{
		{"token", Config{APIToken: "x"}, r, false},
		{"insecure", Config{InsecureNoAPIToken: true}, r, false},
		{"dev", Config{DevTokens: dev}, r, false},
		{"no token", Config{}, r, true},
		{"nil router", Config{APIToken: "x"}, nil, true},
		{"negative payload", Config{APIToken: "x", MaxPayloadBytes: -1}, r, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewServer(tt.cfg, tt.router)
			if (err != nil) != tt.wantErr {
				t.Errorf("NewServer: got error %v, want error %v", err, tt.wantErr)
			}
		})
	}
}

// checkStatus fails t unless err is a gRPC status with code and message
// (code OK means err is nil).
func checkStatus(t *testing.T, err error, code codes.Code, msg string) {
	t.Helper()
	st := status.Convert(err)
	if st.Code() != code || (code != codes.OK && st.Message() != msg) {
		t.Errorf("got %v: %q\nwant %v: %q", st.Code(), st.Message(), code, msg)
	}
}
