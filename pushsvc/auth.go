package pushsvc

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"net/http"
	"strings"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// Token errors, also the messages callers see.
var (
	errNoToken    = errors.New("missing bearer token: send \"authorization: Bearer <api token>\"")
	errWrongToken = errors.New("invalid bearer token")
)

// tokenChecker checks the API bearer token. The zero value (no token
// configured) accepts every request.
type tokenChecker struct {
	enabled bool
	// sum is the SHA-256 of the token: comparing fixed-size digests in
	// constant time hides the token's length as well as its bytes.
	sum [sha256.Size]byte
}

// newTokenChecker returns a checker for token; "" disables the check.
func newTokenChecker(token string) tokenChecker {
	if token == "" {
		return tokenChecker{}
	}
	return tokenChecker{enabled: true, sum: sha256.Sum256([]byte(token))}
}

// check validates an Authorization header value ("Bearer TOKEN"; the scheme
// is case-insensitive, RFC 7235).
func (c tokenChecker) check(authorization string) error {
	if !c.enabled {
		return nil
	}
	scheme, token, ok := strings.Cut(strings.TrimSpace(authorization), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return errNoToken
	}
	sum := sha256.Sum256([]byte(strings.TrimSpace(token)))
	if subtle.ConstantTimeCompare(sum[:], c.sum[:]) != 1 {
		return errWrongToken
	}
	return nil
}

// publicMethod reports gRPC methods that need no token: health checks and
// reflection, which load balancers and tools such as grpcurl call without
// credentials (DESIGN.md "What needs the API token").
func publicMethod(fullMethod string) bool {
	return strings.HasPrefix(fullMethod, "/grpc.health.v1.Health/") ||
		strings.HasPrefix(fullMethod, "/grpc.reflection.v1.ServerReflection/") ||
		strings.HasPrefix(fullMethod, "/grpc.reflection.v1alpha.ServerReflection/")
}

// checkGRPC checks the token in the incoming metadata of a gRPC call.
func (c tokenChecker) checkGRPC(ctx context.Context, fullMethod string) error {
	if !c.enabled || publicMethod(fullMethod) {
		return nil
	}
	// ValueFromIncomingContext, not FromIncomingContext, which copies every
	// header of the call.
	var authorization string
	if v := metadata.ValueFromIncomingContext(ctx, "authorization"); len(v) > 0 {
		authorization = v[0]
	}
	if err := c.check(authorization); err != nil {
		return status.Error(codes.Unauthenticated, err.Error())
	}
	return nil
}

// unaryInterceptor refuses unary calls without the token.
func (c tokenChecker) unaryInterceptor(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	if err := c.checkGRPC(ctx, info.FullMethod); err != nil {
		return nil, err
	}
	return handler(ctx, req)
}

// streamInterceptor refuses streaming calls without the token; there are no
// streaming PushService methods, but a future one must not be open.
func (c tokenChecker) streamInterceptor(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	if err := c.checkGRPC(ss.Context(), info.FullMethod); err != nil {
		return err
	}
	return handler(srv, ss)
}

// requireToken wraps an HTTP handler with the token check. Refusals use
// grpc-gateway's error body ({"code":16,"message":...}) so that REST clients
// see one error format.
func (c tokenChecker) requireToken(gw *runtime.ServeMux, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := c.check(r.Header.Get("Authorization")); err != nil {
			writeError(gw, bearerChallenge{w}, r, status.Error(codes.Unauthenticated, err.Error()))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// writeError writes a gRPC status error as grpc-gateway does: the HTTP status
// of its code and a JSON body.
func writeError(gw *runtime.ServeMux, w http.ResponseWriter, r *http.Request, err error) {
	_, out := runtime.MarshalerForRequest(gw, r)
	runtime.HTTPError(r.Context(), gw, out, w, r, err)
}

// bearerChallenge sets a proper WWW-Authenticate challenge (RFC 6750) when
// the response starts: grpc-gateway's error handler puts the error message
// there instead.
type bearerChallenge struct{ http.ResponseWriter }

// WriteHeader sets the challenge, then writes the status.
func (w bearerChallenge) WriteHeader(code int) {
	w.Header().Set("WWW-Authenticate", `Bearer realm="pushgate"`)
	w.ResponseWriter.WriteHeader(code)
}
