package pushsvc

// The REST side of the push API: grpc-gateway's mux and marshaler as pushsvc
// configures them, exact decoding of user names in paths, the legacy /test
// and dev /dev/token endpoints, and opt-in CORS.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"

	pushgatev1 "github.com/pushgate/pushgate/gen/pushgate/v1"
)

// newGatewayMux returns the grpc-gateway mux for the REST API.
func (s *Server) newGatewayMux() *runtime.ServeMux {
	return runtime.NewServeMux(
		// Route on the escaped path, splitting only at real slashes, so that
		// /v1/users/alice%2Fbob/messages matches {user}. (grpc-gateway
		// v2.33's UnescapingModeAllCharacters splits at %2F as well and
		// answers 404; the legacy mode routes on the decoded path.) This
		// mode leaves %2F encoded in the parameter, so withRESTUser
		// supplies the exactly decoded name.
		runtime.WithUnescapingMode(runtime.UnescapingModeAllExceptSlash),
		runtime.WithMarshalerOption(runtime.MIMEWildcard, restMarshaler{&runtime.JSONPb{
			// Proto field names (content_type, message_id) in responses, as
			// DESIGN.md writes them; requests may use either spelling.
			MarshalOptions: protojson.MarshalOptions{UseProtoNames: true, EmitUnpopulated: true},
			// Unknown fields are an error, not silently dropped: a misspelt
			// "txt" gets a 400 naming it.
			UnmarshalOptions: protojson.UnmarshalOptions{DiscardUnknown: false},
		}}),
	)
}

// restMarshaler is grpc-gateway's JSON marshaler with clearer messages for
// request bodies it cannot decode (the gateway answers them with 400).
type restMarshaler struct{ *runtime.JSONPb }

// NewDecoder returns a decoder whose errors say what is wrong with the body.
func (m restMarshaler) NewDecoder(r io.Reader) runtime.Decoder {
	d := m.JSONPb.NewDecoder(r)
	return runtime.DecoderFunc(func(v any) error {
		err := d.Decode(v)
		var tooBig *http.MaxBytesError
		switch {
		case err == nil || errors.Is(err, io.EOF):
			// The gateway treats io.EOF (an empty body) as an empty
			// request, which validation then reports field by field.
			return err
		case errors.As(err, &tooBig):
			return fmt.Errorf("request body: more than %d bytes", tooBig.Limit)
		case strings.Contains(err.Error(), ".payload is already set"):
			// protojson's words for two members of the oneof.
			return fmt.Errorf("payload: exactly one of text, json or data is allowed, got more than one (%w)", err)
		}
		return fmt.Errorf("request body: %w", err)
	})
}

// handleTest serves the legacy GET /test?username=NAME: it sends the text
// "hello:NAME" to NAME's /topic/greetings and answers 200 with a short text.
func (s *Server) handleTest(gw *runtime.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet {
			// Not even HEAD: this GET sends a message.
			w.Header().Set("Allow", http.MethodGet)
			writeError(gw, w, r, &runtime.HTTPStatusError{HTTPStatus: http.StatusMethodNotAllowed,
				Err: status.Error(codes.Unimplemented, "/test: only GET is allowed")})
			return
		}
		name := r.URL.Query().Get("username")
		if name == "" {
			writeError(gw, w, r, status.Error(codes.InvalidArgument, "username: query parameter is required, as in /test?username=NAME"))
			return
		}
		_, err := s.svc.SendToUser(r.Context(), &pushgatev1.SendToUserRequest{
			User:        name,
			Destination: testDestination,
			Payload:     &pushgatev1.SendToUserRequest_Text{Text: "hello:" + name},
		})
		if err != nil {
			writeError(gw, w, r, err)
			return
		}
		writeText(w, http.StatusOK, "sent hello:"+name+"\n")
	})
}

// handleDevToken serves GET /dev/token?user=NAME in dev mode.
func (s *Server) handleDevToken(gw *runtime.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user := r.URL.Query().Get("user")
		if err := validateUser(user); err != nil {
			writeError(gw, w, r, status.Error(codes.InvalidArgument, err.Error()+" (use /dev/token?user=NAME)"))
			return
		}
		token, err := s.cfg.DevTokens(user)
		if err != nil {
			s.log.ErrorContext(r.Context(), "dev token", "user", user, "err", err)
			writeError(gw, w, r, status.Errorf(codes.Internal, "dev token: %v", err))
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		_ = json.NewEncoder(w).Encode(struct {
			Token string `json:"token"`
		}{token})
	})
}

// writeText writes a short plain-text response.
func writeText(w http.ResponseWriter, code int, body string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_, _ = w.Write([]byte(body))
}

// restUserKey is the context key of the user name that withRESTUser decoded
// from a REST path.
type restUserKey struct{}

// withRESTUser decodes the {user} segment of POST /v1/users/{user}/messages
// from the escaped request path, exactly once (alice%2Fbob is "alice/bob",
// 100%252F is "100%2F"), and passes it on in the request context for
// restService. grpc-gateway cannot do this by itself: it either splits the
// path at %2F or leaves %2F encoded in the value, which makes "a/b" and the
// literal "a%2Fb" the same name.
func withRESTUser(gw *runtime.ServeMux, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		segs := strings.Split(r.URL.EscapedPath(), "/")
		if len(segs) == 5 && segs[1] == "v1" && segs[2] == "users" && segs[4] == "messages" {
			user, err := url.PathUnescape(segs[3])
			if err != nil {
				writeError(gw, w, r, status.Errorf(codes.InvalidArgument, "user: bad percent-encoding in the path: %v", err))
				return
			}
			r = r.WithContext(context.WithValue(r.Context(), restUserKey{}, user))
		}
		next.ServeHTTP(w, r)
	})
}

// restService is the pushService as the REST gateway calls it: SendToUser takes
// the user name that withRESTUser decoded, not grpc-gateway's.
type restService struct{ *pushService }

// SendToUser sends req to the user named by the REST path.
func (rs restService) SendToUser(ctx context.Context, req *pushgatev1.SendToUserRequest) (*pushgatev1.SendToUserResponse, error) {
	user, ok := ctx.Value(restUserKey{}).(string)
	if !ok {
		// Unreachable while withRESTUser matches the same paths as the
		// HTTP rule; refuse rather than send to a half-decoded name.
		return nil, status.Error(codes.Internal, "user name not decoded from the REST path")
	}
	// req is the gateway's own copy, decoded for this call.
	req.User = user
	return rs.pushService.SendToUser(ctx, req)
}

// withCORS answers CORS preflight requests and marks responses readable by
// the Config.AllowedOrigins. Without allowed origins it adds nothing: the
// demo page calls the API same-origin through the gateway.
func (s *Server) withCORS(next http.Handler) http.Handler {
	if len(s.cfg.AllowedOrigins) == 0 {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Add("Vary", "Origin")
		origin := r.Header.Get("Origin")
		if origin == "" || !s.originAllowed(origin) {
			next.ServeHTTP(w, r)
			return
		}
		h.Set("Access-Control-Allow-Origin", origin)
		if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
			// A preflight carries no credentials: answer it before the
			// token check.
			h.Set("Access-Control-Allow-Methods", "GET, POST")
			h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type")
			h.Set("Access-Control-Max-Age", "600")
			w.WriteHeader(http.StatusNoContent)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// originAllowed reports whether origin (scheme://host[:port]) is one of
// Config.AllowedOrigins, or they include "*".
func (s *Server) originAllowed(origin string) bool {
	return slices.ContainsFunc(s.cfg.AllowedOrigins, func(o string) bool {
		return o == "*" || strings.EqualFold(o, origin)
	})
}
