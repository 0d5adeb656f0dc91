package edge

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// FuzzTokenExtraction feeds arbitrary CONNECT headers, handshake query
// strings and Authorization headers to TokenFromConnect and
// TokenFromRequest. They never panic; what they return is trimmed and comes
// from the place the documented order says (passcode before Authorization
// in CONNECT; access_token before a Bearer header at the handshake); and a
// Verify of it fails with ErrInvalidToken without quoting it.
func FuzzTokenExtraction(f *testing.F) {
	f.Add("eyJ.a.b", "Bearer eyJ.c.d", "access_token=eyJ.e.f", "Bearer eyJ.g.h")
	f.Add("", "bearer   x  ", "access_token=%20&access_token=y", "BEARER z")
	f.Add("  ", "Bearer", "a=1&access_token=", "Basic dXNlcjpwYXNz")
	f.Add("x\x00y", "Bearer \t", "access_token=%zz", "Bearer a b c")
	f.Add(strings.Repeat("A", 9000), "", ";access_token=q", "")
	auth, err := NewAuthenticator(AuthConfig{HMACSecret: []byte("fuzz-secret-fuzz-secret-fuzz-sec")})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, passcode, connectAuth, rawQuery, headerAuth string) {
		fr := &Frame{Command: "CONNECT"}
		if passcode != "" {
			fr.Add("passcode", passcode)
		}
		if connectAuth != "" {
			fr.Add("Authorization", connectAuth)
		}
		tok := TokenFromConnect(fr)
		if tok != strings.TrimSpace(tok) {
			t.Fatalf("TokenFromConnect returned untrimmed %q", tok)
		}
		switch p := strings.TrimSpace(passcode); {
		case p != "":
			if tok != p {
				t.Fatalf("TokenFromConnect = %q, want the passcode %q", tok, p)
			}
		case tok != "" && !strings.Contains(connectAuth, tok):
			t.Fatalf("TokenFromConnect = %q, not from Authorization %q", tok, connectAuth)
		case tok == "" && strings.TrimSpace(connectAuth) != "" && !strings.EqualFold(strings.TrimSpace(connectAuth), "bearer"):
			t.Fatalf("TokenFromConnect ignored Authorization %q", connectAuth)
		}
		checkVerify(t, auth, tok)

		r := &http.Request{URL: &url.URL{Path: "/stomp", RawQuery: rawQuery}, Header: http.Header{}}
		if headerAuth != "" {
			r.Header.Set("Authorization", headerAuth)
		}
		tok = TokenFromRequest(r)
		if tok != strings.TrimSpace(tok) {
			t.Fatalf("TokenFromRequest returned untrimmed %q", tok)
		}
		q := strings.TrimSpace(r.URL.Query().Get("access_token"))
		switch {
		case q != "":
			if tok != q {
				t.Fatalf("TokenFromRequest = %q, want access_token %q", tok, q)
			}
		case tok != "":
			scheme, rest, ok := strings.Cut(strings.TrimSpace(headerAuth), " ")
			if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(rest) != tok {
				t.Fatalf("TokenFromRequest = %q from Authorization %q", tok, headerAuth)
			}
		}
		checkVerify(t, auth, tok)
	})
}

// checkVerify: an arbitrary string never verifies (the fuzzer cannot forge
// an HMAC), the error wraps ErrInvalidToken, and it does not quote the token.
func checkVerify(t *testing.T, a *Authenticator, tok string) {
	_, err := a.Verify(tok)
	if err == nil {
		t.Fatalf("Verify(%q) accepted an arbitrary token", tok)
	}
	if !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("Verify(%q) = %v, does not wrap ErrInvalidToken", tok, err)
	}
	if len(tok) >= 8 && strings.Contains(err.Error(), tok) {
		t.Fatalf("Verify's error %q quotes the token", err)
	}
}
