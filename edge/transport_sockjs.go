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
		if s.draining.Load() {
			http.Error(w, "edge is shutting down", http.StatusServiceUnavailable)
			return
		}
		if token := TokenFromRequest(r); token != "" {
			if _, err := s.auth.Verify(token); err != nil {
				s.metrics.authFailures.Inc()
				s.metrics.refusedHandshakes.WithLabelValues("token").Inc()
				http.Error(w, "invalid token: "+err.Error(), http.StatusUnauthorized)
				return
			}
		}
		h.ServeHTTP(w, r)
	})
}

// serveSockJS runs a STOMP session over a new SockJS session; r is the
// request that opened it.
func (s *Server) serveSockJS(t Transport, r *http.Request, recv func() ([]byte, error)) {
	var ident *Identity
	if token := TokenFromRequest(r); token != "" {
		id, err := s.auth.Verify(token)
		if err != nil {
			_ = t.Close(CloseProtocolError, "invalid token")
			return
		}
		ident = &id
	}
	if s.sessions.Add(1) > int64(s.cfg.MaxSessions) {
		s.sessions.Add(-1)
		_ = t.Close(CloseServerShutdown, "too many sessions on this edge")
		return
	}
	s.serveSession(t, ident, recv)
}
