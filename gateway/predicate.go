package gateway

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strings"
)

// predicate decides whether a route applies to a request.
type predicate interface {
	match(r *http.Request, m *matchState) bool
}

// matchState carries what predicates of one request share: the decoded path segments, the host
// without port, the parsed query (lazily) and the captured URI template variables.
type matchState struct {
	segs  []string
	host  string
	query url.Values
	vars  map[string]string
}

// newMatchState splits the request's escaped path into decoded segments, so that "%2F" stays
// inside its segment, as Spring's PathContainer does.
func newMatchState(r *http.Request) (*matchState, error) {
	segs, err := decodedSegments(r.URL.EscapedPath())
	if err != nil {
		return nil, err
	}
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	return &matchState{segs: segs, host: strings.ToLower(strings.TrimSuffix(host, "."))}, nil
}

// decodedSegments splits "/a/b%2Fc/" into ["a", "b/c", ""]; "/" gives none.
func decodedSegments(escaped string) ([]string, error) {
	p := strings.TrimPrefix(escaped, "/")
	if p == "" {
		return nil, nil
	}
	parts := strings.Split(p, "/")
	for i, s := range parts {
		if strings.IndexByte(s, '%') < 0 {
			continue
		}
		d, err := url.PathUnescape(s)
		if err != nil {
			return nil, fmt.Errorf("bad path encoding: %w", err)
		}
		parts[i] = d
	}
	return parts, nil
}

func (m *matchState) setVars(vars map[string]string) {
	if len(vars) == 0 {
		return
	}
	if m.vars == nil {
		m.vars = map[string]string{}
	}
	for k, v := range vars {
		m.vars[k] = v
	}
}

// compilePredicate builds one predicate from its spec.
func compilePredicate(s Spec) (predicate, error) {
	switch s.Name {
	case "Path":
		if len(s.Args) == 0 {
			return nil, errors.New("predicate Path needs at least one pattern")
		}
		pp := pathPredicate{}
		for _, a := range s.Args {
			if !strings.HasPrefix(a, "/") {
				a = "/" + a
			}
			pat, err := compileAnt(a[1:], '/', false)
			if err != nil {
				return nil, fmt.Errorf("path pattern %q: %w", a, err)
			}
			pp = append(pp, pat)
		}
		return pp, nil
	case "Host":
		if len(s.Args) == 0 {
			return nil, errors.New("predicate Host needs at least one pattern")
		}
		hp := hostPredicate{}
		for _, a := range s.Args {
			if h, _, err := net.SplitHostPort(a); err == nil {
				a = h // Spring matches the Host header with its port; patterns rarely carry one.
			}
			pat, err := compileAnt(strings.ToLower(a), '.', true)
			if err != nil {
				return nil, fmt.Errorf("host pattern %q: %w", a, err)
			}
			hp = append(hp, pat)
		}
		return hp, nil
	case "Method":
		if len(s.Args) == 0 {
			return nil, errors.New("predicate Method needs at least one method")
		}
		mp := methodPredicate{}
		for _, a := range s.Args {
			if !validToken(a) {
				return nil, fmt.Errorf("bad method %q", a)
			}
			mp = append(mp, strings.ToUpper(a))
		}
		return mp, nil
	case "Header", "Query":
		name, re, err := nameAndRegex(s)
		if err != nil {
			return nil, err
		}
		if s.Name == "Header" {
			if !validToken(name) {
				return nil, fmt.Errorf("bad header name %q", name)
			}
			return headerPredicate{name: http.CanonicalHeaderKey(name), re: re}, nil
		}
		return queryPredicate{name: name, re: re}, nil
	default:
		return nil, fmt.Errorf("unknown predicate %q (known: Path, Method, Header, Query, Host)", s.Name)
	}
}

// nameAndRegex reads "NAME[, REGEX]"; the regex is everything after the first comma, so it may
// itself hold commas (Spring would split it; pushgate is kinder).
func nameAndRegex(s Spec) (string, *regexp.Regexp, error) {
	args := s.Args
	if s.shorthand {
		name, rest, found := strings.Cut(s.raw, ",")
		args = []string{strings.TrimSpace(name)}
		if found && strings.TrimSpace(rest) != "" {
			args = append(args, strings.TrimSpace(rest))
		}
	}
	switch len(args) {
	case 1:
		if args[0] == "" {
			break
		}
		return args[0], nil, nil
	case 2:
		re, err := compileJavaRegex(args[1], true)
		if err != nil {
			return "", nil, err
		}
		return args[0], re, nil
	}
	return "", nil, fmt.Errorf("predicate %s wants NAME[, REGEX]", s.Name)
}

// compileJavaRegex compiles a Java regular expression as Go's RE2 would read it: named groups
// (?<name>...) become (?P<name>...). When whole is true the regex must match the whole value, as
// Java's Matcher.matches does.
func compileJavaRegex(expr string, whole bool) (*regexp.Regexp, error) {
	g := javaNamedGroup.ReplaceAllString(expr, "(?P<$1")
	if whole {
		g = `^(?:` + g + `)$`
	}
	re, err := regexp.Compile(g)
	if err != nil {
		return nil, fmt.Errorf("bad regex %q: %w", expr, err)
	}
	return re, nil
}

// javaNamedGroup finds "(?<" followed by a name start, not lookbehind "(?<=" or "(?<!", which
// RE2 rejects (and the error then says so).
var javaNamedGroup = regexp.MustCompile(`\(\?<([A-Za-z])`)

func validToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`"(),/:;<=>?@[\]{}`, c) >= 0 {
			return false
		}
	}
	return true
}

// pathPredicate matches when any pattern matches the decoded path segments. A trailing slash is
// optional, as with Spring's default matchTrailingSlash.
type pathPredicate []*antPattern

func (pp pathPredicate) match(_ *http.Request, m *matchState) bool {
	for _, p := range pp {
		if vars, ok := p.match(m.segs); ok {
			m.setVars(vars)
			return true
		}
		if n := len(m.segs); n > 0 && m.segs[n-1] == "" {
			if vars, ok := p.match(m.segs[:n-1]); ok {
				m.setVars(vars)
				return true
			}
		}
	}
	return false
}

// hostPredicate matches the Host header (without port, case-insensitively) against Ant-style
// patterns separated by dots ("**.example.org", "{sub}.example.org").
type hostPredicate []*antPattern

func (hp hostPredicate) match(_ *http.Request, m *matchState) bool {
	segs := strings.Split(m.host, ".")
	for _, p := range hp {
		if vars, ok := p.match(segs); ok {
			m.setVars(vars)
			return true
		}
	}
	return false
}

type methodPredicate []string

func (mp methodPredicate) match(r *http.Request, _ *matchState) bool {
	for _, m := range mp {
		if r.Method == m {
			return true
		}
	}
	return false
}

// headerPredicate matches when the header is present and, with a regex, any value matches it
// whole.
type headerPredicate struct {
	name string
	re   *regexp.Regexp
}

func (hp headerPredicate) match(r *http.Request, _ *matchState) bool {
	return anyMatch(r.Header.Values(hp.name), hp.re)
}

// queryPredicate matches when the query parameter is present and, with a regex, any value
// matches it whole.
type queryPredicate struct {
	name string
	re   *regexp.Regexp
}

func (qp queryPredicate) match(r *http.Request, m *matchState) bool {
	if m.query == nil {
		// ParseQuery keeps what it could parse; a malformed pair elsewhere must not hide this one.
		m.query, _ = url.ParseQuery(r.URL.RawQuery)
	}
	return anyMatch(m.query[qp.name], qp.re)
}

func anyMatch(values []string, re *regexp.Regexp) bool {
	if len(values) == 0 {
		return false
	}
	if re == nil {
		return true
	}
	for _, v := range values {
		if re.MatchString(v) {
			return true
		}
	}
	return false
}
