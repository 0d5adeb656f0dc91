package edge

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"math/big"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

var authTestSecret = []byte("0123456789abcdef0123456789abcdef")

// Keys are generated once: RSA key generation is slow.
var (
	authRSAKey = sync.OnceValue(func() *rsa.PrivateKey {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		return k
	})
	authECKey = sync.OnceValue(func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			panic(err)
		}
		return k
	})
)

func authPublicPEM(t testing.TB, pub any) []byte {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

func authNew(t testing.TB, cfg AuthConfig) *Authenticator {
	t.Helper()
	a, err := NewAuthenticator(cfg)
	if err != nil {
		t.Fatalf("NewAuthenticator: %v", err)
	}
	return a
}

// authSign signs claims with method and key, adding extra header fields.
func authSign(t testing.TB, method jwt.SigningMethod, key any, claims jwt.Claims, header map[string]any) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, claims)
	for k, v := range header {
		tok.Header[k] = v
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatalf("sign: %v", err)
	}
	return s
}

func authClaims(sub string, exp, nbf time.Duration) jwt.RegisteredClaims {
	now := time.Now()
	c := jwt.RegisteredClaims{Subject: sub, IssuedAt: jwt.NewNumericDate(now)}
	if exp != 0 {
		c.ExpiresAt = jwt.NewNumericDate(now.Add(exp))
	}
	if nbf != 0 {
		c.NotBefore = jwt.NewNumericDate(now.Add(nbf))
	}
	return c
}

func TestAuthVerify(t *testing.T) {
	t.Parallel()
	hs := authNew(t, AuthConfig{HMACSecret: authTestSecret})
	rsPEM := authPublicPEM(t, &authRSAKey().PublicKey)
	rs := authNew(t, AuthConfig{PublicKeyPEM: rsPEM})
	es := authNew(t, AuthConfig{PublicKeyPEM: authPublicPEM(t, &authECKey().PublicKey)})
	strict := authNew(t, AuthConfig{HMACSecret: authTestSecret, Leeway: -1})

	hour := time.Hour
	tests := []struct {
		name    string
		a       *Authenticator
		token   string
		user    string // want on success
		wantErr string
	}{
		{"HS256 ok", hs, authSign(t, jwt.SigningMethodHS256, authTestSecret, authClaims("alice", hour, 0), nil), "alice", ""},
		{"unicode user", hs, authSign(t, jwt.SigningMethodHS256, authTestSecret, authClaims("ålice/bob #*. %2F", hour, 0), nil), "ålice/bob #*. %2F", ""},
		{"no exp is allowed", hs, authSign(t, jwt.SigningMethodHS256, authTestSecret, authClaims("alice", 0, 0), nil), "alice", ""},
		{"unknown kid ignored", hs, authSign(t, jwt.SigningMethodHS256, authTestSecret, authClaims("alice", hour, 0), map[string]any{"kid": "nope"}), "alice", ""},
		{"RS256 ok", rs, authSign(t, jwt.SigningMethodRS256, authRSAKey(), authClaims("bob", hour, 0), map[string]any{"kid": "other"}), "bob", ""},
		{"ES256 ok", es, authSign(t, jwt.SigningMethodES256, authECKey(), authClaims("carol", hour, 0), nil), "carol", ""},
		{"expired within leeway", hs, authSign(t, jwt.SigningMethodHS256, authTestSecret, authClaims("alice", -2*time.Second, 0), nil), "alice", ""},
		{"nbf within leeway", hs, authSign(t, jwt.SigningMethodHS256, authTestSecret, authClaims("alice", hour, 2*time.Second), nil), "alice", ""},

		{"wrong secret", hs, authSign(t, jwt.SigningMethodHS256, []byte("another secret of enough length!"), authClaims("alice", hour, 0), nil), "", "token signature invalid"},
		{"expired", hs, authSign(t, jwt.SigningMethodHS256, authTestSecret, authClaims("alice", -time.Minute, 0), nil), "", "token expired"},
		{"expired without leeway", strict, authSign(t, jwt.SigningMethodHS256, authTestSecret, authClaims("alice", -2*time.Second, 0), nil), "", "token expired"},
		{"nbf in future", hs, authSign(t, jwt.SigningMethodHS256, authTestSecret, authClaims("alice", hour, time.Minute), nil), "", "token not valid yet"},
		{"alg none", hs, authSign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, authClaims("alice", hour, 0), nil), "", "unexpected signing method none"},
		{"alg none hand-made", hs, "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJzdWIiOiJhbGljZSJ9.", "", "unexpected signing method none"},
		// The classic confusion: an attacker signs HS256 with the server's
		// public key bytes as the HMAC secret.
		{"alg confusion HS256 with RSA public key", rs, authSign(t, jwt.SigningMethodHS256, rsPEM, authClaims("alice", hour, 0), nil), "", "unexpected signing method HS256"},
		{"RS256 token to HS256 edge", hs, authSign(t, jwt.SigningMethodRS256, authRSAKey(), authClaims("alice", hour, 0), nil), "", "unexpected signing method RS256"},
		{"ES256 token to RS256 edge", rs, authSign(t, jwt.SigningMethodES256, authECKey(), authClaims("alice", hour, 0), nil), "", "unexpected signing method ES256"},
		{"RS256 wrong key", rs, authSign(t, jwt.SigningMethodRS256, authOtherRSAKey(t), authClaims("alice", hour, 0), nil), "", "token signature invalid"},
		{"unknown alg", hs, authHandMade(`{"alg":"XYZ1"}`, `{"sub":"alice"}`), "", "unexpected signing method XYZ1"},
		{"weird alg quoted", hs, authHandMade(`{"alg":"a\nb"}`, `{"sub":"alice"}`), "", `unexpected signing method "a\nb"`},
		{"missing sub", hs, authSign(t, jwt.SigningMethodHS256, authTestSecret, authClaims("", hour, 0), nil), "", "token has no sub"},
		{"sub not a string", hs, authSign(t, jwt.SigningMethodHS256, authTestSecret, jwt.MapClaims{"sub": 42}, nil), "", "token malformed"},
		{"sub too long", hs, authSign(t, jwt.SigningMethodHS256, authTestSecret, authClaims(strings.Repeat("u", 1025), hour, 0), nil), "", "token sub longer than 1024 bytes"},
		{"garbage", hs, "not-a-jwt", "", "token malformed"},
		{"bad base64", hs, "a.b.c", "", "token malformed"},
		{"empty", hs, "", "", "no token"},
		{"too large", hs, strings.Repeat("a", 8<<10+1), "", "token too large"},
	}
	// Not parallel: the "within leeway" tokens are signed above, 3 s inside
	// the leeway, and a parallel subtest can wait longer than that for a slot.
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, err := tt.a.Verify(tt.token)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				if id.User != tt.user {
					t.Errorf("User = %q, want %q", id.User, tt.user)
				}
				return
			}
			if err == nil {
				t.Fatalf("Verify succeeded for %q, want error %q", id.User, tt.wantErr)
			}
			if got := err.Error(); got != tt.wantErr {
				t.Errorf("error %q, want %q", got, tt.wantErr)
			}
			if !errors.Is(err, ErrInvalidToken) {
				t.Errorf("error %v does not wrap ErrInvalidToken", err)
			}
			if len(tt.token) > 8 && strings.Contains(err.Error(), tt.token) {
				t.Errorf("error %q echoes the token", err)
			}
		})
	}
}

// authOtherRSAKey is a second RSA key, for signatures by the wrong key.
var authOtherRSAKeyOnce = sync.OnceValue(func() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
})

func authOtherRSAKey(testing.TB) *rsa.PrivateKey { return authOtherRSAKeyOnce() }

// authHandMade builds an HS256-signed-looking token from raw JSON parts,
// with a junk signature.
func authHandMade(header, claims string) string {
	enc := base64.RawURLEncoding
	return enc.EncodeToString([]byte(header)) + "." + enc.EncodeToString([]byte(claims)) + ".c2ln"
}

func TestAuthIdentityExpires(t *testing.T) {
	t.Parallel()
	a := authNew(t, AuthConfig{HMACSecret: authTestSecret})
	before := time.Now().Truncate(time.Second)
	tok, err := IssueToken(authTestSecret, "alice", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	id, err := a.Verify(tok)
	if err != nil {
		t.Fatal(err)
	}
	if id.User != "alice" {
		t.Errorf("User = %q, want alice", id.User)
	}
	if lo, hi := before.Add(time.Hour), time.Now().Add(time.Hour); id.Expires.Before(lo) || id.Expires.After(hi) {
		t.Errorf("Expires = %v, want between %v and %v", id.Expires, lo, hi)
	}

	tok, err = IssueToken(authTestSecret, "bob", 0)
	if err != nil {
		t.Fatal(err)
	}
	if id, err = a.Verify(tok); err != nil || id.User != "bob" || !id.Expires.IsZero() {
		t.Errorf("token without exp: got %+v, %v; want bob with zero Expires", id, err)
	}
}

func TestAuthMaxTokenBytes(t *testing.T) {
	t.Parallel()
	tok, err := IssueToken(authTestSecret, "alice", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := authNew(t, AuthConfig{HMACSecret: authTestSecret, MaxTokenBytes: len(tok)}).Verify(tok); err != nil {
		t.Errorf("token at the limit: %v", err)
	}
	_, err = authNew(t, AuthConfig{HMACSecret: authTestSecret, MaxTokenBytes: len(tok) - 1}).Verify(tok)
	if err == nil || err.Error() != "token too large" {
		t.Errorf("token one byte over the limit: %v, want token too large", err)
	}
}

func TestNewAuthenticatorConfig(t *testing.T) {
	t.Parallel()
	rsaKey := authRSAKey()
	pkcs1 := pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(&rsaKey.PublicKey)})
	privDER, err := x509.MarshalPKCS8PrivateKey(rsaKey)
	if err != nil {
		t.Fatal(err)
	}
	private := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: privDER})
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "issuer"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	certDER, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &authECKey().PublicKey, authECKey())
	if err != nil {
		t.Fatal(err)
	}
	cert := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: certDER})

	tests := []struct {
		name    string
		cfg     AuthConfig
		wantAlg string
		wantErr string // substring
	}{
		{"secret", AuthConfig{HMACSecret: authTestSecret}, "HS256", ""},
		{"PKIX RSA", AuthConfig{PublicKeyPEM: authPublicPEM(t, &rsaKey.PublicKey)}, "RS256", ""},
		{"PKCS1 RSA", AuthConfig{PublicKeyPEM: pkcs1}, "RS256", ""},
		{"P-256", AuthConfig{PublicKeyPEM: authPublicPEM(t, &authECKey().PublicKey)}, "ES256", ""},
		{"certificate", AuthConfig{PublicKeyPEM: cert}, "ES256", ""},
		{"neither", AuthConfig{}, "", "a JWT secret or a public key is required"},
		{"both", AuthConfig{HMACSecret: authTestSecret, PublicKeyPEM: pkcs1}, "", "not both"},
		{"not PEM", AuthConfig{PublicKeyPEM: []byte("hello")}, "", "no PEM block found"},
		{"private key", AuthConfig{PublicKeyPEM: private}, "", "give the public key"},
		{"small RSA", AuthConfig{PublicKeyPEM: authPublicPEM(t, &small.PublicKey)}, "", "1024 bits is too small"},
		{"P-384", AuthConfig{PublicKeyPEM: authPublicPEM(t, &p384.PublicKey)}, "", "P-384 is not supported"},
		{"corrupt DER", AuthConfig{PublicKeyPEM: pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: []byte{1, 2, 3}})}, "", "parse PUBLIC KEY"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			a, err := NewAuthenticator(tt.cfg)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("NewAuthenticator: %v", err)
			}
			if a.alg != tt.wantAlg {
				t.Errorf("alg %s, want %s", a.alg, tt.wantAlg)
			}
		})
	}
}

func TestAuthSecretIsCopied(t *testing.T) {
	t.Parallel()
	secret := append([]byte(nil), authTestSecret...)
	a := authNew(t, AuthConfig{HMACSecret: secret})
	tok, err := IssueToken(authTestSecret, "alice", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	secret[0] ^= 0xff
	if _, err := a.Verify(tok); err != nil {
		t.Errorf("Verify after the caller changed its slice: %v", err)
	}
}

func TestIssueTokenErrors(t *testing.T) {
	t.Parallel()
	if _, err := IssueToken(nil, "alice", time.Hour); err == nil {
		t.Error("IssueToken with no secret succeeded")
	}
	if _, err := IssueToken(authTestSecret, "", time.Hour); err == nil {
		t.Error("IssueToken with no user succeeded")
	}
}

func TestTokenFromRequest(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, target, auth, want string
	}{
		{"none", "/stomp", "", ""},
		{"query", "/stomp?access_token=q.q.q", "", "q.q.q"},
		{"query wins over header", "/stomp?access_token=q.q.q", "Bearer h.h.h", "q.q.q"},
		{"header", "/stomp", "Bearer h.h.h", "h.h.h"},
		{"scheme is case-insensitive", "/ws/info", "bearer h.h.h", "h.h.h"},
		{"empty query falls back to header", "/stomp?access_token=", "Bearer h.h.h", "h.h.h"},
		{"other scheme", "/stomp", "Basic dXNlcjpwYXNz", ""},
		{"bearer without token", "/stomp", "Bearer ", ""},
		{"escaped query", "/stomp?x=1&access_token=a%2Bb.c", "", "a+b.c"},
	}
	for _, tt := range tests {
		r := httptest.NewRequest("GET", tt.target, nil)
		if tt.auth != "" {
			r.Header.Set("Authorization", tt.auth)
		}
		if got := TokenFromRequest(r); got != tt.want {
			t.Errorf("%s: TokenFromRequest = %q, want %q", tt.name, got, tt.want)
		}
	}
}

func TestTokenFromConnect(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		headers []Header
		want    string
	}{
		{"none", []Header{{"login", "alice"}}, ""},
		{"passcode", []Header{{"passcode", "p.p.p"}}, "p.p.p"},
		{"passcode wins", []Header{{"Authorization", "Bearer a.a.a"}, {"passcode", "p.p.p"}}, "p.p.p"},
		{"passcode trimmed (1.0 style)", []Header{{"passcode", " p.p.p"}}, "p.p.p"},
		{"empty passcode falls back", []Header{{"passcode", ""}, {"Authorization", "Bearer a.a.a"}}, "a.a.a"},
		{"first passcode counts", []Header{{"passcode", "p1"}, {"passcode", "p2"}}, "p1"},
		{"Authorization bearer", []Header{{"Authorization", "Bearer a.a.a"}}, "a.a.a"},
		{"Authorization bare", []Header{{"Authorization", "a.a.a"}}, "a.a.a"},
		{"lowercase authorization", []Header{{"authorization", "bearer a.a.a"}}, "a.a.a"},
		{"blank authorization", []Header{{"Authorization", "  "}}, ""},
	}
	for _, tt := range tests {
		if got := TokenFromConnect(&Frame{Command: "CONNECT", Headers: tt.headers}); got != tt.want {
			t.Errorf("%s: TokenFromConnect = %q, want %q", tt.name, got, tt.want)
		}
	}
}

// FuzzVerify checks that no token, however malformed, makes Verify panic or
// fail without ErrInvalidToken, and that only properly signed tokens pass.
func FuzzVerify(f *testing.F) {
	valid, err := IssueToken(authTestSecret, "alice", time.Hour)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(valid)
	f.Add("eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJzdWIiOiJhbGljZSJ9.")
	f.Add(authHandMade(`{"alg":"HS256","kid":"x"}`, `{"sub":"a","exp":"soon"}`))
	f.Add(authHandMade(`{"alg":["HS256"]}`, `{"sub":["a"]}`))
	f.Add("..")
	f.Add("a.b")
	f.Add("")
	a, err := NewAuthenticator(AuthConfig{HMACSecret: authTestSecret})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, token string) {
		id, err := a.Verify(token)
		if err != nil {
			if !errors.Is(err, ErrInvalidToken) {
				t.Fatalf("error %v does not wrap ErrInvalidToken", err)
			}
			if len(token) > 16 && strings.Contains(err.Error(), token) {
				t.Fatalf("error %q echoes the token", err)
			}
			return
		}
		if id.User == "" {
			t.Fatal("Verify succeeded with an empty user")
		}
		// The fuzzer cannot forge a signature, so anything accepted must be
		// a valid HS256 token under the secret by jwt's own reading.
		_, err = jwt.NewParser(jwt.WithValidMethods([]string{"HS256"}), jwt.WithLeeway(time.Minute)).
			Parse(token, func(*jwt.Token) (any, error) { return authTestSecret, nil })
		if err != nil {
			t.Fatalf("Verify accepted a token that jwt rejects: %v", err)
		}
	})
}
