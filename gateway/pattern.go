package gateway

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// antPattern is a Spring/Ant-style pattern over segments (path segments split on '/', host labels
// split on '.'): "**" matches zero or more segments, "{*name}" the same and captures them, "*"
// any characters within a segment, "?" one character, "{name}" a non-empty segment part and
// "{name:regex}" a part matching regex.
type antPattern struct {
	src   string
	sep   byte
	elems []antElem
}

type antElemKind uint8

const (
	elemLiteral antElemKind = iota
	elemRegex
	elemMulti // "**" or "{*name}"
)

type antElem struct {
	kind    antElemKind
	lit     string
	re      *regexp.Regexp
	capture string // the name of a {*name} element
}

// maxPatternSegments bounds patterns so that matching stays cheap whatever the configuration.
const maxPatternSegments = 64

var varName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// compileAnt compiles a pattern without its leading separator. fold makes literals and regexes
// case-insensitive (host names).
func compileAnt(pattern string, sep byte, fold bool) (*antPattern, error) {
	p := &antPattern{src: pattern, sep: sep}
	if pattern == "" {
		return p, nil
	}
	parts := strings.Split(pattern, string(sep))
	if len(parts) > maxPatternSegments {
		return nil, fmt.Errorf("more than %d segments", maxPatternSegments)
	}
	for _, s := range parts {
		switch {
		case s == "**":
			p.elems = append(p.elems, antElem{kind: elemMulti})
		case strings.HasPrefix(s, "{*") && strings.HasSuffix(s, "}"):
			name := s[2 : len(s)-1]
			if !varName.MatchString(name) {
				return nil, fmt.Errorf("bad variable name %q", name)
			}
			p.elems = append(p.elems, antElem{kind: elemMulti, capture: name})
		case !strings.ContainsAny(s, "*?{}"):
			if fold {
				s = strings.ToLower(s)
			}
			p.elems = append(p.elems, antElem{kind: elemLiteral, lit: s})
		default:
			re, err := segmentRegex(s, fold)
			if err != nil {
				return nil, err
			}
			p.elems = append(p.elems, antElem{kind: elemRegex, re: re})
		}
	}
	return p, nil
}

// segmentRegex translates one pattern segment with wildcards and variables to an anchored regex.
func segmentRegex(s string, fold bool) (*regexp.Regexp, error) {
	var b strings.Builder
	if fold {
		b.WriteString("(?i)")
	}
	b.WriteString("^")
	for i := 0; i < len(s); {
		switch c := s[i]; c {
		case '*':
			if i+1 < len(s) && s[i+1] == '*' {
				return nil, errors.New(`"**" must be a whole segment`)
			}
			b.WriteString(".*")
			i++
		case '?':
			b.WriteString(".")
			i++
		case '{':
			// Find the matching brace; a variable's regex may hold braces ({id:\d{3}}).
			depth, j := 0, i
			for ; j < len(s); j++ {
				if s[j] == '{' {
					depth++
				} else if s[j] == '}' {
					depth--
					if depth == 0 {
						break
					}
				}
			}
			if j == len(s) {
				return nil, fmt.Errorf("unclosed { in %q", s)
			}
			body := s[i+1 : j]
			name, expr, hasExpr := strings.Cut(body, ":")
			if !varName.MatchString(name) {
				return nil, fmt.Errorf("bad variable name %q", name)
			}
			if !hasExpr {
				expr = ".+"
			} else if _, err := regexp.Compile(expr); err != nil {
				return nil, fmt.Errorf("bad regex in {%s}: %w", body, err)
			}
			b.WriteString("(?P<" + name + ">" + expr + ")")
			i = j + 1
		case '}':
			return nil, fmt.Errorf("unopened } in %q", s)
		default:
			b.WriteString(regexp.QuoteMeta(string(c)))
			i++
		}
	}
	b.WriteString("$")
	re, err := regexp.Compile(b.String())
	if err != nil {
		return nil, fmt.Errorf("bad pattern segment %q: %w", s, err)
	}
	return re, nil
}

// match reports whether segs match the whole pattern, and the captured variables. It memoizes
// failed (segment, element) positions, so several "**" cost O(segments × elements), never
// exponential time.
func (p *antPattern) match(segs []string) (map[string]string, bool) {
	if len(p.elems) == 0 {
		return nil, len(segs) == 0
	}
	m := antMatcher{p: p, segs: segs, failed: make([]bool, (len(segs)+1)*(len(p.elems)+1))}
	if !m.from(0, 0) {
		return nil, false
	}
	return m.vars, true
}

type antMatcher struct {
	p      *antPattern
	segs   []string
	failed []bool
	vars   map[string]string
}

func (m *antMatcher) set(name, value string) {
	if m.vars == nil {
		m.vars = map[string]string{}
	}
	m.vars[name] = value
}

func (m *antMatcher) from(i, j int) bool {
	elems := m.p.elems
	if j == len(elems) {
		return i == len(m.segs)
	}
	idx := i*(len(elems)+1) + j
	if m.failed[idx] {
		return false
	}
	e := elems[j]
	switch e.kind {
	case elemMulti:
		for k := i; k <= len(m.segs); k++ {
			if m.from(k, j+1) {
				if e.capture != "" {
					v := strings.Join(m.segs[i:k], string(m.p.sep))
					if m.p.sep == '/' {
						v = "/" + v // Spring's {*path} value starts with the separator.
					}
					m.set(e.capture, v)
				}
				return true
			}
		}
	case elemLiteral:
		if i < len(m.segs) && m.segs[i] == e.lit && m.from(i+1, j+1) {
			return true
		}
	case elemRegex:
		if i < len(m.segs) {
			if sub := e.re.FindStringSubmatch(m.segs[i]); sub != nil && m.from(i+1, j+1) {
				for k, name := range e.re.SubexpNames() {
					if name != "" {
						m.set(name, sub[k])
					}
				}
				return true
			}
		}
	}
	m.failed[idx] = true
	return false
}
