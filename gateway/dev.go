package gateway

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"fmt"
	"net"
	"strconv"
	"text/template"
)

// devTemplate is the configuration of `pushgate dev`, a YAML file like any other so that dev
// exercises the same parser as production.
//
//go:embed dev.yaml.tmpl
var devTemplate string

var devTmpl = template.Must(template.New("dev").Funcs(template.FuncMap{
	// quote renders a YAML (JSON-compatible) double-quoted string, so no argument can inject keys.
	"quote": func(s string) (string, error) {
		b, err := json.Marshal(s)
		return string(b), err
	},
}).Parse(devTemplate))

// DevConfig returns the configuration `pushgate dev` uses, parsed from an embedded YAML
// template: /web-socket/** goes to lb://web-socket (RewritePath strips the prefix),
// /api/** to lb://pushsvc (StripPrefix=1), and everything else (/, the page's assets) to
// internal://demo at the lowest priority. The edges and pushsvc are static discovery lists,
// health-checked every second. The server listens on addr, 127.0.0.1:7000 when addr is empty;
// ":7000" means all interfaces.
func DevConfig(addr string, edgeURLs []string, pushsvcURL string) (*Config, error) {
	if addr == "" {
		addr = "127.0.0.1:7000"
	}
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("gateway: dev address %q: %w", addr, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port < 0 || port > 65535 {
		return nil, fmt.Errorf("gateway: dev address %q: bad port", addr)
	}
	if len(edgeURLs) == 0 || pushsvcURL == "" {
		return nil, fmt.Errorf("gateway: dev needs at least one edge and pushsvc")
	}
	var buf bytes.Buffer
	err = devTmpl.Execute(&buf, map[string]any{
		"Address": host, "Port": port, "Edges": edgeURLs, "Pushsvc": pushsvcURL,
	})
	if err != nil {
		return nil, fmt.Errorf("gateway: dev template: %w", err)
	}
	cfg, err := ParseConfig("dev.yaml", buf.Bytes())
	if err != nil {
		return nil, err
	}
	// In YAML an absent or zero port means the default 7000; here the
	// caller said exactly what it wants, and port 0 asks for any free port.
	cfg.Server.Port = port
	return cfg, nil
}
