package edge

import (
	"net/http"
)

// sockJSConfig completes the SockJS configuration from the edge's.
func (s *Server) sockJSConfig() SockJSConfig {
	c := s.cfg.SockJS
	c.Prefix = "/ws"
	c.AllowedOrigins = s.cfg.AllowedOrigins
	if c.MaxMessageBytes == 0 {
		c.MaxMessageBytes = 4 * s.cfg.Limits.MaxFrameBytes
	}
	if c.MaxSessions == 0 || c.MaxSessions > s.cfg.MaxSessions {
		c.MaxSessions = s.cfg.MaxSessions
	}
	return c
}

// admit refuses SockJS requests while draining and requests that carry an
// invalid token (401), before the SockJS handler creates any session.
func (s *Server) admit(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.refuseWhileDraining(w) {
			return
		}
		if _, ok := s.checkToken(w, r); !ok {
			return
		}
		h.ServeHTTP(w, r)
	})
}

// serveSockJS runs a STOMP session over a new SockJS session; r is the
// request that opened it.
func (s *Server) serveSockJS(t Transport, r *http.Request, recv func() ([]byte, error)) {
	// admit checked the token already; a token that expired in between
	// is refused here.
	ident, err := s.requestIdentity(r)
	if err != nil {
		_ = t.Close(CloseProtocolError, "invalid token")
		return
	}
	if !s.takeSession() {
		_ = t.Close(CloseServerShutdown, "too many sessions on this edge")
		return
	}
	s.serveSession(t, ident, recv)
}
