package edge

import (
	"net/http/httptest"
	"testing"
)

func TestOriginAllowed(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		host    string
		origin  string // "" sends no Origin header
		allowed []string
		want    bool
	}{
		{"no origin, not a browser", "edge:8080", "", nil, true},
		{"no origin with a list", "edge:8080", "", []string{"https://app.example.com"}, true},

		{"same host and port", "edge:8080", "http://edge:8080", nil, true},
		{"same host, case differs", "EDGE:8080", "http://Edge:8080", nil, true},
		{"same host, other port", "edge:8080", "http://edge:8081", nil, false},
		{"other host", "edge:8080", "http://evil.example:8080", nil, false},
		{"host without port, https default", "app.example.com", "https://app.example.com", nil, true},
		{"host without port, http default", "app.example.com", "http://app.example.com", nil, true},
		{"host without port, explicit other port", "app.example.com", "https://app.example.com:8443", nil, false},
		{"host with default port written", "app.example.com:443", "https://app.example.com", nil, true},
		{"ipv6 same host", "[::1]:8080", "http://[::1]:8080", nil, true},
		{"null refused by default", "edge:8080", "null", nil, false},
		{"malformed refused by default", "edge:8080", "edge:8080", nil, false},
		{"origin with path refused", "edge:8080", "http://edge:8080/x", nil, false},

		{"star", "edge", "https://anything.example", []string{"*"}, true},
		{"star allows null", "edge", "null", []string{"*"}, true},
		{"star allows malformed", "edge", "%%%", []string{"*"}, true},
		{"null listed", "edge", "null", []string{"https://a.example", "null"}, true},
		{"null listed, other case", "edge", "NULL", []string{"Null"}, true},
		{"null not listed", "edge", "null", []string{"https://a.example"}, false},

		{"exact", "edge", "https://app.example.com", []string{"https://app.example.com"}, true},
		{"exact, case-insensitive", "edge", "HTTPS://APP.Example.com", []string{"https://app.EXAMPLE.com"}, true},
		{"exact, trailing slash in list", "edge", "https://app.example.com", []string{"https://app.example.com/"}, true},
		{"exact, default port written in list", "edge", "https://app.example.com", []string{"https://app.example.com:443"}, true},
		{"exact, other scheme", "edge", "http://app.example.com", []string{"https://app.example.com"}, false},
		{"exact, other port", "edge", "https://app.example.com:8443", []string{"https://app.example.com"}, false},
		{"exact, explicit port", "edge", "http://localhost:7000", []string{"http://localhost:7000"}, true},
		{"exact, suffix attack", "edge", "https://app.example.com.evil.net", []string{"https://app.example.com"}, false},
		{"exact, same host is not implied", "edge:8080", "http://edge:8080", []string{"https://app.example.com"}, false},

		{"wildcard with scheme", "edge", "https://a.example.com", []string{"https://*.example.com"}, true},
		{"wildcard, deep subdomain", "edge", "https://a.b.example.com", []string{"https://*.example.com"}, true},
		{"wildcard, not the apex", "edge", "https://example.com", []string{"https://*.example.com"}, false},
		{"wildcard, other scheme", "edge", "http://a.example.com", []string{"https://*.example.com"}, false},
		{"wildcard, lookalike", "edge", "https://aexample.com", []string{"https://*.example.com"}, false},
		{"wildcard, suffix attack", "edge", "https://a.example.com.evil.net", []string{"*.example.com"}, false},
		{"wildcard without scheme, any scheme and port", "edge", "http://a.example.com:8080", []string{"*.example.com"}, true},
		{"wildcard with port", "edge", "https://a.example.com:8443", []string{"*.example.com:8443"}, true},
		{"wildcard with other port", "edge", "https://a.example.com:9443", []string{"*.example.com:8443"}, false},
		{"wildcard, case-insensitive", "edge", "https://A.Example.COM", []string{"https://*.EXAMPLE.com"}, true},
		{"bare star-dot refused", "edge", "https://a.example.com", []string{"*."}, false},

		{"bare host", "edge", "https://app.example.com", []string{"app.example.com"}, true},
		{"bare host with port", "edge", "http://app.example.com:8080", []string{"app.example.com:8080"}, true},
		{"bare host with other port", "edge", "http://app.example.com:8081", []string{"app.example.com:8080"}, false},
		{"empty entry ignored", "edge", "https://app.example.com", []string{"", " "}, false},
		{"malformed origin, specific list", "edge", "app.example.com", []string{"app.example.com"}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := httptest.NewRequest("GET", "http://"+tc.host+"/stomp", nil)
			r.Host = tc.host
			if tc.origin != "" {
				r.Header.Set("Origin", tc.origin)
			}
			if got := originAllowed(r, tc.allowed); got != tc.want {
				t.Errorf("originAllowed(Host %q, Origin %q, %q) = %v, want %v", tc.host, tc.origin, tc.allowed, got, tc.want)
			}
		})
	}
}
