package gateway

import (
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
)

// pathFilter rewrites the escaped (raw) request path, as Spring's path filters work on the raw
// path: "%2F" in a segment is text to them, not a separator.
type pathFilter interface {
	rewrite(escapedPath string) string
}

// headerFilter edits the forwarded request's headers; vars are the URI template variables the
// predicates captured, usable as {name} in values.
type headerFilter interface {
	edit(h http.Header, vars map[string]string)
}

// compiledFilters are a route's filters split by what they act on.
type compiledFilters struct {
	paths        []pathFilter
	headers      []headerFilter
	preserveHost bool
}

func (cf *compiledFilters) add(s Spec) error {
	switch s.Name {
	case "RewritePath":
		f, err := newRewritePath(s)
		if err != nil {
			return err
		}
		cf.paths = append(cf.paths, f)
	case "StripPrefix":
		if len(s.Args) != 1 {
			return errors.New("filter StripPrefix wants one number")
		}
		n, err := strconv.Atoi(s.Args[0])
		if err != nil || n < 0 || n > 64 {
			return fmt.Errorf("filter StripPrefix wants a number of segments in [0, 64], got %q", s.Args[0])
		}
		cf.paths = append(cf.paths, stripPrefix(n))
	case "SetRequestHeader", "AddRequestHeader":
		name, value, err := nameAndValue(s)
		if err != nil {
			return err
		}
		cf.headers = append(cf.headers, setHeader{name: http.CanonicalHeaderKey(name), value: value, add: s.Name == "AddRequestHeader"})
	case "RemoveRequestHeader":
		if len(s.Args) != 1 || !validToken(s.Args[0]) {
			return errors.New("filter RemoveRequestHeader wants one header name")
		}
		cf.headers = append(cf.headers, removeHeader(http.CanonicalHeaderKey(s.Args[0])))
	case "PreserveHostHeader":
		if len(s.Args) != 0 {
			return errors.New("filter PreserveHostHeader takes no arguments")
		}
		cf.preserveHost = true
	default:
		return fmt.Errorf("unknown filter %q (known: RewritePath, StripPrefix, SetRequestHeader, AddRequestHeader, RemoveRequestHeader, PreserveHostHeader)", s.Name)
	}
	return nil
}

// rewritePath is Spring's RewritePath=REGEX, REPLACEMENT: path.replaceAll(regex, replacement).
type rewritePath struct {
	re   *regexp.Regexp
	repl string // in Go's Expand syntax
}

func newRewritePath(s Spec) (rewritePath, error) {
	args := s.Args
	if s.shorthand {
		// The replacement follows the last comma: a regex may hold commas ({1,3}), a replacement
		// path rarely does.
		i := strings.LastIndexByte(s.raw, ',')
		if i < 0 {
			return rewritePath{}, errors.New("filter RewritePath wants REGEX, REPLACEMENT")
		}
		args = []string{strings.TrimSpace(s.raw[:i]), strings.TrimSpace(s.raw[i+1:])}
	}
	if len(args) != 2 || args[0] == "" {
		return rewritePath{}, errors.New("filter RewritePath wants REGEX, REPLACEMENT")
	}
	re, err := compileJavaRegex(args[0], false)
	if err != nil {
		return rewritePath{}, err
	}
	repl, err := javaReplacement(args[1])
	if err != nil {
		return rewritePath{}, err
	}
	return rewritePath{re: re, repl: repl}, nil
}

func (f rewritePath) rewrite(p string) string { return f.re.ReplaceAllString(p, f.repl) }

// javaReplacement converts a Java replacement string to Go's Expand syntax. "$\{name}" (Spring's
// escape, since ${...} is a property placeholder in Spring's YAML) and "${name}" name a group,
// "$1" a numbered group, "\x" a literal x; a literal "$" becomes "$$".
func javaReplacement(s string) (string, error) {
	s = strings.ReplaceAll(s, `$\{`, `${`)
	var b strings.Builder
	for i := 0; i < len(s); {
		switch c := s[i]; {
		case c == '\\':
			if i+1 == len(s) {
				return "", fmt.Errorf("bad replacement %q: trailing backslash", s)
			}
			if s[i+1] == '$' {
				b.WriteString("$$")
			} else {
				b.WriteByte(s[i+1])
			}
			i += 2
		case c == '$' && i+1 < len(s) && s[i+1] == '{':
			end := strings.IndexByte(s[i:], '}')
			if end < 0 {
				return "", fmt.Errorf("bad replacement %q: unclosed ${", s)
			}
			name := s[i+2 : i+end]
			if !varName.MatchString(name) {
				return "", fmt.Errorf("bad replacement %q: bad group name %q", s, name)
			}
			b.WriteString("${" + name + "}")
			i += end + 1
		case c == '$' && i+1 < len(s) && s[i+1] >= '0' && s[i+1] <= '9':
			j := i + 1
			for j < len(s) && s[j] >= '0' && s[j] <= '9' {
				j++
			}
			b.WriteString("${" + s[i+1:j] + "}")
			i = j
		case c == '$':
			return "", fmt.Errorf("bad replacement %q: $ must name a group (write \\$ for a dollar)", s)
		default:
			b.WriteByte(c)
			i++
		}
	}
	return b.String(), nil
}

// stripPrefix is Spring's StripPrefix=N: drop the first N segments (empty segments do not count)
// and keep a trailing slash.
type stripPrefix int

func (n stripPrefix) rewrite(p string) string {
	var parts []string
	for _, s := range strings.Split(p, "/") {
		if s != "" {
			parts = append(parts, s)
		}
	}
	if int(n) >= len(parts) {
		return "/"
	}
	out := "/" + strings.Join(parts[n:], "/")
	if strings.HasSuffix(p, "/") {
		out += "/"
	}
	return out
}

// nameAndValue reads "NAME, VALUE"; the value is everything after the first comma.
func nameAndValue(s Spec) (string, string, error) {
	var name, value string
	if s.shorthand {
		n, v, found := strings.Cut(s.raw, ",")
		if !found {
			return "", "", fmt.Errorf("filter %s wants NAME, VALUE", s.Name)
		}
		name, value = strings.TrimSpace(n), strings.TrimSpace(v)
	} else {
		if len(s.Args) != 2 {
			return "", "", fmt.Errorf("filter %s wants NAME, VALUE", s.Name)
		}
		name, value = s.Args[0], s.Args[1]
	}
	if !validToken(name) {
		return "", "", fmt.Errorf("%s: bad header name %q", s.Name, name)
	}
	if strings.ContainsAny(value, "\r\n\x00") {
		return "", "", fmt.Errorf("%s: header value contains a control character", s.Name)
	}
	return name, value, nil
}

// setHeader is SetRequestHeader (replace) or AddRequestHeader (append). {name} in the value is
// replaced by the URI template variable of that name, as in Spring.
type setHeader struct {
	name, value string
	add         bool
}

func (f setHeader) edit(h http.Header, vars map[string]string) {
	v := expandVars(f.value, vars)
	if f.add {
		h.Add(f.name, v)
	} else {
		h.Set(f.name, v)
	}
}

type removeHeader string

func (f removeHeader) edit(h http.Header, _ map[string]string) { h.Del(string(f)) }

// expandVars replaces {name} by vars[name]; unknown names stay as written. Control characters
// from a variable are dropped so that a path cannot inject headers.
func expandVars(s string, vars map[string]string) string {
	if len(vars) == 0 || !strings.Contains(s, "{") {
		return s
	}
	for k, v := range vars {
		v = strings.Map(func(r rune) rune {
			if r < ' ' || r == 0x7f {
				return -1
			}
			return r
		}, v)
		s = strings.ReplaceAll(s, "{"+k+"}", v)
	}
	return s
}
