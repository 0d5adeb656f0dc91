package edge

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/golang-jwt/jwt/v5"
)

// ErrInvalidToken is wrapped by every error Verify returns, so callers can
// tell a client's bad token (ERROR frame, HTTP 401) from their own mistakes
// with errors.Is.
var ErrInvalidToken = errors.New("invalid token")

// Defaults for AuthConfig's zero fields.
const (
	// authDefaultLeeway absorbs clock skew between the token issuer and the
	// edge: enough for NTP-synced hosts, too little to matter for expiry.
	authDefaultLeeway = 5 * time.Second
	// authDefaultMaxTokenBytes bounds what is parsed at all. Real tokens are
	// a few hundred bytes; 8 KiB matches the header limit of a frame.
	authDefaultMaxTokenBytes = 8 << 10
	// authMaxUserBytes bounds the sub claim, the user name that travels in
	// registry announcements and logs.
	authMaxUserBytes = 1024
	// authMinRSABits refuses keys that are too weak to pin trust on.
	authMinRSABits = 2048
)

// AuthConfig configures how client JWTs are verified. Exactly one of
// HMACSecret and PublicKeyPEM must be set, and it pins the algorithm: a token
// signed any other way (including "none") is refused.
type AuthConfig struct {
	// HMACSecret selects HS256 with this secret (--jwt-secret). RFC 7518
	// asks for at least 32 bytes; shorter secrets work but are guessable.
	HMACSecret []byte
	// PublicKeyPEM selects RS256 for an RSA key (at least 2048 bits) or
	// ES256 for a P-256 key (--jwt-public-key). It takes a PEM "PUBLIC KEY"
	// (PKIX), "RSA PUBLIC KEY" (PKCS #1) or "CERTIFICATE" block.
	PublicKeyPEM []byte
	// Leeway is the clock skew allowed when checking exp and nbf. Zero
	// means the default, 5s; a negative value means none.
	Leeway time.Duration
	// MaxTokenBytes bounds a token's length; longer ones are refused before
	// parsing. Default 8 KiB.
	MaxTokenBytes int
}

// Identity is who a verified token says the client is.
type Identity struct {
	// User is the token's sub claim.
	User string
	// Expires is the token's exp claim, zero when it has none. A session
	// may use it to end itself when the token runs out.
	Expires time.Time
}

// Authenticator verifies client JWTs with one pinned algorithm and key. It
// is safe for concurrent use.
type Authenticator struct {
	alg      string // the only accepted alg header value
	key      any    // []byte, *rsa.PublicKey or *ecdsa.PublicKey, to match alg
	parser   *jwt.Parser
	maxBytes int
}

// NewAuthenticator checks cfg and loads its key.
func NewAuthenticator(cfg AuthConfig) (*Authenticator, error) {
	a := &Authenticator{maxBytes: cfg.MaxTokenBytes}
	if a.maxBytes <= 0 {
		a.maxBytes = authDefaultMaxTokenBytes
	}
	switch {
	case len(cfg.HMACSecret) > 0 && len(cfg.PublicKeyPEM) > 0:
		return nil, errors.New("auth: set either a JWT secret or a public key, not both")
	case len(cfg.HMACSecret) > 0:
		a.alg = jwt.SigningMethodHS256.Alg()
		// Copy, so that a caller reusing its slice cannot change the key.
		a.key = append([]byte(nil), cfg.HMACSecret...)
	case len(cfg.PublicKeyPEM) > 0:
		alg, key, err := authParsePublicKey(cfg.PublicKeyPEM)
		if err != nil {
			return nil, fmt.Errorf("auth: public key: %w", err)
		}
		a.alg, a.key = alg, key
	default:
		return nil, errors.New("auth: a JWT secret or a public key is required")
	}

	leeway := cfg.Leeway
	if leeway == 0 {
		leeway = authDefaultLeeway
	}
	opts := []jwt.ParserOption{
		// Pinning the algorithm is what defeats alg "none" and the
		// HS256-with-the-RSA-public-key confusion: the header's alg is
		// attacker-controlled and must never choose how to verify.
		jwt.WithValidMethods([]string{a.alg}),
		// Tokens without exp are accepted (some issuers mint long-lived
		// service tokens); when exp is present it is enforced.
	}
	if leeway > 0 {
		opts = append(opts, jwt.WithLeeway(leeway))
	}
	a.parser = jwt.NewParser(opts...)
	return a, nil
}

// authParsePublicKey returns the pinned algorithm and key of the first PEM
// block.
func authParsePublicKey(data []byte) (string, any, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return "", nil, errors.New("no PEM block found")
	}
	var pub any
	var err error
	switch block.Type {
	case "PUBLIC KEY":
		pub, err = x509.ParsePKIXPublicKey(block.Bytes)
	case "RSA PUBLIC KEY":
		pub, err = x509.ParsePKCS1PublicKey(block.Bytes)
	case "CERTIFICATE":
		var cert *x509.Certificate
		if cert, err = x509.ParseCertificate(block.Bytes); err == nil {
			pub = cert.PublicKey
		}
	default:
		if strings.Contains(block.Type, "PRIVATE KEY") {
			return "", nil, fmt.Errorf("PEM block is a %s; give the public key, which is all an edge needs", block.Type)
		}
		return "", nil, fmt.Errorf("unsupported PEM block type %q", block.Type)
	}
	if err != nil {
		return "", nil, fmt.Errorf("parse %s: %w", block.Type, err)
	}
	switch k := pub.(type) {
	case *rsa.PublicKey:
		if k.N.BitLen() < authMinRSABits {
			return "", nil, fmt.Errorf("RSA key of %d bits is too small (at least %d)", k.N.BitLen(), authMinRSABits)
		}
		return jwt.SigningMethodRS256.Alg(), k, nil
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() {
			return "", nil, fmt.Errorf("EC key on curve %s is not supported (ES256 needs P-256)", k.Curve.Params().Name)
		}
		return jwt.SigningMethodES256.Alg(), k, nil
	}
	return "", nil, fmt.Errorf("unsupported public key type %T (want RSA or P-256 EC)", pub)
}

// authTokenError is a Verify failure. Its message says what is wrong without
// quoting the token (which is a credential, and attacker-chosen); it wraps
// ErrInvalidToken and, for logs, the library's own error.
type authTokenError struct {
	msg   string
	cause error
}

func (e *authTokenError) Error() string { return e.msg }

func (e *authTokenError) Unwrap() []error {
	if e.cause == nil {
		return []error{ErrInvalidToken}
	}
	return []error{ErrInvalidToken, e.cause}
}

func authInvalid(msg string, cause error) error {
	return &authTokenError{msg: msg, cause: cause}
}

// Verify checks the token's signature with the pinned algorithm and key,
// then exp and nbf (with the leeway), and returns the user named by sub,
// which must be a non-empty string of at most 1024 bytes. A kid header is
// ignored: there is exactly one key. Every error wraps ErrInvalidToken and
// reads well after "authentication failed: ".
func (a *Authenticator) Verify(token string) (Identity, error) {
	if token == "" {
		return Identity{}, authInvalid("no token", nil)
	}
	if len(token) > a.maxBytes {
		return Identity{}, authInvalid("token too large", nil)
	}
	var claims jwt.RegisteredClaims
	parsed, err := a.parser.ParseWithClaims(token, &claims, func(*jwt.Token) (any, error) {
		// Always the pinned key, whatever the header says (kid, jku, ...).
		return a.key, nil
	})
	if err != nil {
		return Identity{}, a.classify(parsed, err)
	}
	if claims.Subject == "" {
		return Identity{}, authInvalid("token has no sub", nil)
	}
	if len(claims.Subject) > authMaxUserBytes {
		return Identity{}, authInvalid(fmt.Sprintf("token sub longer than %d bytes", authMaxUserBytes), nil)
	}
	id := Identity{User: claims.Subject}
	if claims.ExpiresAt != nil {
		id.Expires = claims.ExpiresAt.Time
	}
	return id, nil
}

// classify turns a jwt error into a short message. The checks go from the
// outermost failure inwards, in the order the parser makes them.
func (a *Authenticator) classify(parsed *jwt.Token, err error) error {
	if errors.Is(err, jwt.ErrTokenMalformed) {
		return authInvalid("token malformed", err)
	}
	// A foreign or unknown alg: say which, since that is the usual
	// misconfiguration (RS256 tokens sent to an HS256 edge).
	if parsed != nil {
		alg, _ := parsed.Header["alg"].(string)
		if parsed.Method == nil || alg != a.alg {
			return authInvalid("unexpected signing method "+authPrintableAlg(alg), err)
		}
	}
	switch {
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return authInvalid("token signature invalid", err)
	case errors.Is(err, jwt.ErrTokenExpired):
		return authInvalid("token expired", err)
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		return authInvalid("token not valid yet", err)
	case errors.Is(err, jwt.ErrTokenInvalidClaims):
		return authInvalid("token claims invalid", err)
	}
	return authInvalid("token not verifiable", err)
}

// authPrintableAlg shows an attacker-supplied alg header safely in an error.
func authPrintableAlg(alg string) string {
	if alg == "" {
		return "(none given)"
	}
	if len(alg) <= 16 {
		plain := true
		for i := 0; i < len(alg); i++ {
			c := alg[i]
			if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				plain = false
				break
			}
		}
		if plain {
			return alg
		}
	}
	if len(alg) > 16 {
		alg = alg[:16]
		for !utf8.ValidString(alg) {
			alg = alg[:len(alg)-1]
		}
		return fmt.Sprintf("%q...", alg)
	}
	return fmt.Sprintf("%q", alg)
}

// TokenFromRequest returns the token a WebSocket or SockJS handshake
// carries: the access_token query parameter first (browsers cannot set
// headers on a WebSocket), then an "Authorization: Bearer" header. It
// returns "" when there is none; the token may still come in CONNECT.
func TokenFromRequest(r *http.Request) string {
	if t := strings.TrimSpace(r.URL.Query().Get("access_token")); t != "" {
		return t
	}
	if t, ok := authBearer(r.Header.Get("Authorization")); ok {
		return t
	}
	return ""
}

// TokenFromConnect returns the token of a CONNECT (or STOMP) frame: the
// passcode header, else an Authorization header (as stompjs's
// connectHeaders send it; "authorization" is accepted too), either
// "Bearer X" or the bare token. Surrounding spaces are dropped (a 1.0
// client may write "passcode: X"; a JWT never contains spaces). It returns
// "" when there is none.
func TokenFromConnect(f *Frame) string {
	if p, ok := f.Get("passcode"); ok {
		if p = strings.TrimSpace(p); p != "" {
			return p
		}
	}
	for _, name := range []string{"Authorization", "authorization"} {
		v, ok := f.Get(name)
		if !ok {
			continue
		}
		if t, ok := authBearer(v); ok {
			return t
		}
		if v = strings.TrimSpace(v); v != "" {
			return v
		}
	}
	return ""
}

// authBearer extracts the token of an RFC 6750 "Bearer TOKEN" credential; the
// scheme is case-insensitive (RFC 9110).
func authBearer(v string) (string, bool) {
	scheme, token, ok := strings.Cut(strings.TrimSpace(v), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimSpace(token)
	return token, token != ""
}

// IssueToken signs an HS256 token whose sub is user, issued now and valid
// for ttl (no exp when ttl <= 0). `pushgate dev` serves it at /dev/token,
// and tests use it.
func IssueToken(secret []byte, user string, ttl time.Duration) (string, error) {
	if len(secret) == 0 {
		return "", errors.New("issue token: empty secret")
	}
	if user == "" {
		return "", errors.New("issue token: empty user")
	}
	now := time.Now()
	claims := jwt.RegisteredClaims{
		Subject:  user,
		IssuedAt: jwt.NewNumericDate(now),
	}
	if ttl > 0 {
		claims.ExpiresAt = jwt.NewNumericDate(now.Add(ttl))
	}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(secret)
	if err != nil {
		return "", fmt.Errorf("issue token: %w", err)
	}
	return s, nil
}
