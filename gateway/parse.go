package gateway

import (
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// parser collects errors and ignored keys while walking a YAML document.
type parser struct {
	name    string
	errs    []error
	ignored []string
}

func (p *parser) errf(line int, format string, args ...any) {
	p.errs = append(p.errs, &ConfigError{File: p.name, Line: line, Err: fmt.Errorf(format, args...)})
}

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// yamlError turns yaml.v3's "yaml: line N: reason" into a ConfigError with that line.
func (p *parser) yamlError(err error) error {
	if m := yamlLine.FindStringSubmatch(err.Error()); m != nil {
		line, _ := strconv.Atoi(m[1])
		return &ConfigError{File: p.name, Line: line, Err: errors.New(m[2])}
	}
	return &ConfigError{File: p.name, Err: err}
}

// deref follows YAML aliases.
func deref(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && i < 16; i++ {
		n = n.Alias
	}
	return n
}

// walk visits a mapping whose keys may be nested or dotted ("spring.cloud.gateway.routes"), and
// calls the target for each known full key. Mappings on the way to a target are descended into;
// other keys are errors when strict and ignored otherwise.
func (p *parser) walk(n *yaml.Node, prefix string, targets map[string]func(k, v *yaml.Node), strict bool) {
	n = deref(n)
	if n.Kind != yaml.MappingNode {
		p.errf(n.Line, "%s must be a mapping", prefix)
		return
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], deref(n.Content[i+1])
		full := k.Value
		if prefix != "" {
			full = prefix + "." + k.Value
		}
		if seen[full] {
			p.errf(k.Line, "duplicate key %q", full)
			continue
		}
		seen[full] = true
		if set, ok := targets[full]; ok {
			set(k, v)
			continue
		}
		if v.Kind == yaml.MappingNode && hasTargetUnder(targets, full) {
			p.walk(v, full, targets, strict)
			continue
		}
		if strict {
			p.errf(k.Line, "unknown key %q", full)
		} else {
			p.ignored = append(p.ignored, fmt.Sprintf("%s:%d: %s", p.name, k.Line, full))
		}
	}
}

func hasTargetUnder(targets map[string]func(k, v *yaml.Node), prefix string) bool {
	for t := range targets {
		if strings.HasPrefix(t, prefix+".") {
			return true
		}
	}
	return false
}

// once returns v, reporting an error when a routes block was already seen (a file may hold
// pushgate's routes: or Spring's, not both).
func (p *parser) once(prev, k, v *yaml.Node) *yaml.Node {
	if prev != nil {
		p.errf(k.Line, "a second routes block (the first is at line %d)", prev.Line)
		return prev
	}
	return v
}

func (p *parser) str(v *yaml.Node) string {
	v = deref(v)
	if v.Kind != yaml.ScalarNode {
		p.errf(v.Line, "want a string")
		return ""
	}
	return v.Value
}

func (p *parser) intRange(v *yaml.Node, lo, hi int) int {
	v = deref(v)
	n, err := strconv.Atoi(strings.TrimSpace(v.Value))
	if v.Kind != yaml.ScalarNode || err != nil {
		p.errf(v.Line, "want an integer, got %q", v.Value)
		return 0
	}
	if n < lo || n > hi {
		p.errf(v.Line, "%d is out of range [%d, %d]", n, lo, hi)
		return 0
	}
	return n
}

func (p *parser) duration(v *yaml.Node) time.Duration {
	v = deref(v)
	d, err := time.ParseDuration(strings.TrimSpace(v.Value))
	if v.Kind != yaml.ScalarNode || err != nil {
		p.errf(v.Line, "want a duration such as 5s, got %q", v.Value)
		return 0
	}
	if d <= 0 {
		p.errf(v.Line, "duration %s must be positive", d)
		return 0
	}
	return d
}

func (p *parser) boolean(v *yaml.Node) bool {
	v = deref(v)
	var b bool
	if v.Kind != yaml.ScalarNode || v.Decode(&b) != nil {
		p.errf(v.Line, "want true or false, got %q", v.Value)
	}
	return b
}

// prefixes reads a list of CIDRs or single addresses.
func (p *parser) prefixes(v *yaml.Node) []netip.Prefix {
	var out []netip.Prefix
	items := p.strings(v)
	for i, s := range items {
		line := v.Line
		if v.Kind == yaml.SequenceNode {
			line = v.Content[i].Line
		}
		s = strings.TrimSpace(s)
		if pfx, err := netip.ParsePrefix(s); err == nil {
			out = append(out, pfx.Masked())
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			p.errf(line, "want a CIDR or an IP address, got %q", s)
			continue
		}
		out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
	}
	return out
}

// compression reads pushgate's server.compression: true|false. In a Spring file,
// server.compression is Spring's own block (enabled, mime-types); pushgate compresses the same
// static text types whatever it says, so it is listed as ignored.
func (p *parser) compression(cfg *Config, k, v *yaml.Node) {
	if v.Kind == yaml.MappingNode && cfg.Spring {
		p.ignored = append(p.ignored, fmt.Sprintf("%s:%d: server.compression", p.name, k.Line))
		return
	}
	cfg.Server.DisableCompression = !p.boolean(v)
}

func (p *parser) strings(v *yaml.Node) []string {
	v = deref(v)
	if v.Kind == yaml.ScalarNode {
		return []string{v.Value}
	}
	if v.Kind != yaml.SequenceNode {
		p.errf(v.Line, "want a list of strings")
		return nil
	}
	out := make([]string, 0, len(v.Content))
	for _, e := range v.Content {
		out = append(out, p.str(e))
	}
	return out
}

// routes reads a sequence of route mappings. In a Spring file, route keys that pushgate does not
// use (metadata, ...) are ignored; in pushgate's format they are errors.
func (p *parser) routes(n *yaml.Node, spring bool) []Route {
	n = deref(n)
	if n.Kind != yaml.SequenceNode {
		p.errf(n.Line, "routes must be a list")
		return nil
	}
	var out []Route
	for i, e := range n.Content {
		e = deref(e)
		r := Route{Line: e.Line}
		if e.Kind != yaml.MappingNode {
			p.errf(e.Line, "route %d must be a mapping", i+1)
			continue
		}
		seen := map[string]bool{}
		for j := 0; j+1 < len(e.Content); j += 2 {
			k, v := e.Content[j], deref(e.Content[j+1])
			if seen[k.Value] {
				p.errf(k.Line, "duplicate key %q", k.Value)
				continue
			}
			seen[k.Value] = true
			switch k.Value {
			case "id":
				r.ID = p.str(v)
			case "uri":
				r.URI = strings.TrimSpace(p.str(v))
				r.URILine = v.Line
			case "order":
				r.Order = p.intRange(v, -1<<31, 1<<31-1)
			case "predicates":
				r.Predicates = p.specs(v)
			case "filters":
				r.Filters = p.specs(v)
			default:
				if spring {
					p.ignored = append(p.ignored, fmt.Sprintf("%s:%d: routes[%d].%s", p.name, k.Line, i, k.Value))
				} else {
					p.errf(k.Line, "unknown key %q in route", k.Value)
				}
			}
		}
		if r.URI == "" {
			p.errf(e.Line, "route %q has no uri", r.ID)
		}
		out = append(out, r)
	}
	return out
}

// specs reads predicates or filters: shorthand strings ("Path=/a/**, /b") or Spring's full form
// ({name: Path, args: {patterns: /a/**}}).
func (p *parser) specs(n *yaml.Node) []Spec {
	n = deref(n)
	if n.Kind != yaml.SequenceNode {
		p.errf(n.Line, "want a list")
		return nil
	}
	var out []Spec
	for _, e := range n.Content {
		e = deref(e)
		switch e.Kind {
		case yaml.ScalarNode:
			out = append(out, parseShorthand(e.Value, e.Line))
		case yaml.MappingNode:
			s := Spec{Line: e.Line}
			for j := 0; j+1 < len(e.Content); j += 2 {
				k, v := e.Content[j], deref(e.Content[j+1])
				switch k.Value {
				case "name":
					s.Name = strings.TrimSpace(p.str(v))
				case "args":
					s.Args = p.args(v)
				default:
					p.errf(k.Line, "unknown key %q (want name and args)", k.Value)
				}
			}
			if s.Name == "" {
				p.errf(e.Line, "missing name")
			}
			out = append(out, s)
		default:
			p.errf(e.Line, "want \"Name=args\" or {name, args}")
		}
	}
	return out
}

// args reads the args of Spring's full form, in declaration order: a mapping's values (lists are
// flattened) or a list.
func (p *parser) args(v *yaml.Node) []string {
	switch v.Kind {
	case yaml.MappingNode:
		var out []string
		for j := 1; j < len(v.Content); j += 2 {
			out = append(out, p.strings(v.Content[j])...)
		}
		return out
	default:
		return p.strings(v)
	}
}

// parseShorthand splits "Name=a, b" into a Spec. The comma split is refined per predicate or
// filter later (see splitArgs), since a regex may itself hold commas.
func parseShorthand(s string, line int) Spec {
	name, args, found := strings.Cut(s, "=")
	sp := Spec{Name: strings.TrimSpace(name), Line: line}
	if found {
		sp.Args = splitComma(args)
		sp.raw, sp.shorthand = args, true
	}
	return sp
}

// splitComma splits on commas and trims, as Spring's shorthand does; empty items are dropped.
func splitComma(s string) []string {
	var out []string
	for _, a := range strings.Split(s, ",") {
		if a = strings.TrimSpace(a); a != "" {
			out = append(out, a)
		}
	}
	return out
}

var serviceName = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9._-]{0,126}[A-Za-z0-9])?$`)

// discovery reads the discovery: mapping of service name to {static | dns | srv}.
func (p *parser) discovery(cfg *Config, n *yaml.Node) {
	if n.Kind != yaml.MappingNode {
		p.errf(n.Line, "discovery must be a mapping of service name to {static: [...]} or {dns: NAME, port: N}")
		return
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], deref(n.Content[i+1])
		if _, dup := cfg.Discovery[k.Value]; dup {
			p.errf(k.Line, "duplicate service %q", k.Value)
			continue
		}
		if d, ok := p.service(k, v); ok {
			cfg.Discovery[k.Value] = d
		}
	}
}

func (p *parser) service(k, v *yaml.Node) (Discovery, bool) {
	d := Discovery{Line: k.Line}
	nerr := len(p.errs)
	if !serviceName.MatchString(k.Value) {
		p.errf(k.Line, "bad service name %q", k.Value)
	}
	if v.Kind != yaml.MappingNode {
		p.errf(v.Line, "service %q: want {static: [...]} or {dns: NAME, port: N}", k.Value)
		return d, false
	}
	for i := 0; i+1 < len(v.Content); i += 2 {
		kk, vv := v.Content[i], deref(v.Content[i+1])
		switch kk.Value {
		case "static":
			for j, s := range p.strings(vv) {
				line := vv.Line
				if vv.Kind == yaml.SequenceNode {
					line = vv.Content[j].Line
				}
				if _, err := instanceURL(s); err != nil {
					p.errf(line, "service %q: %v", k.Value, err)
				}
				d.Static = append(d.Static, s)
			}
		case "dns":
			d.DNS = strings.TrimSpace(p.str(vv))
		case "srv":
			d.SRV = strings.TrimSpace(p.str(vv))
		case "port":
			d.Port = p.intRange(vv, 1, 65535)
		case "scheme":
			d.Scheme = p.str(vv)
			if d.Scheme != "http" && d.Scheme != "https" {
				p.errf(vv.Line, "service %q: scheme must be http or https", k.Value)
			}
		case "interval":
			d.Interval = p.duration(vv)
		case "health":
			h := p.health(vv)
			d.Health = &h
		default:
			p.errf(kk.Line, "unknown key %q in service %q", kk.Value, k.Value)
		}
	}
	n := 0
	for _, set := range []bool{len(d.Static) > 0, d.DNS != "", d.SRV != ""} {
		if set {
			n++
		}
	}
	switch {
	case n != 1:
		p.errf(k.Line, "service %q: set exactly one of static, dns or srv", k.Value)
	case d.DNS != "" && d.Port == 0:
		p.errf(k.Line, "service %q: dns discovery needs a port", k.Value)
	}
	return d, len(p.errs) == nerr
}

func (p *parser) health(v *yaml.Node) Health {
	var h Health
	if v.Kind != yaml.MappingNode {
		p.errf(v.Line, "health must be a mapping")
		return h
	}
	for i := 0; i+1 < len(v.Content); i += 2 {
		k, vv := v.Content[i], deref(v.Content[i+1])
		switch k.Value {
		case "enabled":
			h.Disabled, h.set.enabled = !p.boolean(vv), true
		case "path":
			h.Path, h.set.path = p.str(vv), true
			if !strings.HasPrefix(h.Path, "/") {
				p.errf(vv.Line, "health path must start with /")
			}
		case "interval":
			h.Interval, h.set.interval = p.duration(vv), true
		case "timeout":
			h.Timeout, h.set.timeout = p.duration(vv), true
		case "healthy_threshold":
			h.HealthyThreshold, h.set.healthy = p.intRange(vv, 1, 100), true
		case "unhealthy_threshold":
			h.UnhealthyThreshold, h.set.unhealthy = p.intRange(vv, 1, 100), true
		default:
			p.errf(k.Line, "unknown key %q in health", k.Value)
		}
	}
	return h
}

// instanceURL parses an instance base URL: http, https, ws or wss with a host; ws maps to http and
// wss to https, since the upgrade is an HTTP request.
func instanceURL(s string) (*url.URL, error) {
	if !strings.Contains(s, "://") {
		s = "http://" + s
	}
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("bad instance url %q: %w", s, err)
	}
	switch u.Scheme {
	case "http", "https":
	case "ws":
		u.Scheme = "http"
	case "wss":
		u.Scheme = "https"
	default:
		return nil, fmt.Errorf("bad instance url %q: scheme must be http, https, ws or wss", s)
	}
	if u.Host == "" || u.User != nil {
		return nil, fmt.Errorf("bad instance url %q: want scheme://host:port", s)
	}
	return &url.URL{Scheme: u.Scheme, Host: u.Host}, nil
}
