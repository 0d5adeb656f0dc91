package edge

import (
	"net"
	"net/http"
	"net/url"
	"strings"
)

// originAllowed reports whether a browser page served from the request's
// Origin may open a session: a WebSocket upgrade on /stomp or /ws, or any
// SockJS HTTP transport request. Browsers always send Origin on those
// requests, so checking it stops other sites from riding on a user's
// cookies or network position (cross-site WebSocket hijacking).
//
// The rules:
//   - no Origin header: allowed, the client is not a browser;
//   - allowed empty: only the same host, that is Origin's host and port equal
//     r.Host (a missing port means the default port of Origin's scheme);
//   - "*" allows any origin, "null" included;
//   - "null" allows the opaque origin of file:// pages and sandboxed frames,
//     which nothing else matches;
//   - an exact origin such as "https://app.example.com" (default ports may be
//     written or left out);
//   - a host pattern with a leading "*." such as "https://*.example.com" or
//     "*.example.com": any subdomain, at any depth, but not example.com itself;
//   - a bare host such as "app.example.com" or "app.example.com:8443": that
//     host over any scheme.
//
// An entry with a scheme and no port means the scheme's default port, as the
// browser serializes it; an entry without a scheme matches any scheme, and
// then any port unless it names one.
//
// Comparisons ignore case. A malformed Origin matches only "*".
func originAllowed(r *http.Request, allowed []string) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	if strings.EqualFold(origin, "null") {
		for _, a := range allowed {
			if a == "*" || strings.EqualFold(a, "null") {
				return true
			}
		}
		return false
	}
	o, ok := parseOrigin(origin)
	if len(allowed) == 0 {
		return ok && sameHost(o, r.Host)
	}
	for _, a := range allowed {
		if a == "*" {
			return true
		}
		if ok && originMatches(o, strings.TrimSpace(a)) {
			return true
		}
	}
	return false
}

// originParts is an origin split for comparison: lower-case scheme and host,
// and the port, filled in from the scheme when the origin omits it.
type originParts struct {
	scheme, host, port string
}

// parseOrigin splits a serialized origin ("scheme://host[:port]"). It refuses
// anything a browser would not send: no scheme, no host, a path or a query.
func parseOrigin(s string) (originParts, bool) {
	u, err := url.Parse(strings.TrimSpace(s))
	if err != nil || u.Scheme == "" || u.Host == "" || u.User != nil ||
		(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return originParts{}, false
	}
	scheme := strings.ToLower(u.Scheme)
	host := strings.ToLower(u.Hostname())
	port := u.Port()
	if port == "" {
		port = defaultPort(scheme)
	}
	return originParts{scheme: scheme, host: host, port: port}, true
}

// defaultPort is the port a scheme implies when the origin leaves it out.
func defaultPort(scheme string) string {
	switch scheme {
	case "https", "wss":
		return "443"
	case "http", "ws":
		return "80"
	}
	return ""
}

// sameHost compares an origin with the request's Host header. A Host without
// a port is taken to use the origin scheme's default port, since a
// TLS-terminating proxy in front of the edge hides the scheme from us.
func sameHost(o originParts, hostHeader string) bool {
	host, port := splitHostPort(hostHeader)
	if port == "" {
		port = defaultPort(o.scheme)
	}
	return host != "" && strings.EqualFold(host, o.host) && port == o.port
}

// splitHostPort splits "host", "host:port", "[v6]" or "[v6]:port".
func splitHostPort(hp string) (host, port string) {
	if h, p, err := net.SplitHostPort(hp); err == nil {
		return strings.ToLower(h), p
	}
	return strings.ToLower(strings.Trim(hp, "[]")), ""
}

// originMatches compares an origin with one entry of the allowed list (not
// "*", which the caller handles).
func originMatches(o originParts, entry string) bool {
	entry = strings.TrimSuffix(entry, "/")
	if entry == "" {
		return false
	}
	scheme := ""
	if i := strings.Index(entry, "://"); i >= 0 {
		scheme = strings.ToLower(entry[:i])
		entry = entry[i+3:]
		if scheme != o.scheme {
			return false
		}
	}
	hostPattern, port := splitHostPort(entry)
	if port == "" && scheme != "" {
		// "https://app.example.com" means port 443, exactly as the browser
		// would serialize it.
		port = defaultPort(scheme)
	}
	if port != "" && port != o.port {
		return false
	}
	if rest, ok := strings.CutPrefix(hostPattern, "*."); ok {
		return rest != "" && strings.HasSuffix(o.host, "."+rest)
	}
	return hostPattern == o.host
}
