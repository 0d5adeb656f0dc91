package main

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"

	"github.com/pushgate/pushgate/gateway"
	"github.com/pushgate/pushgate/web"
)

// internalHandlers are the in-process targets of "internal://NAME" routes.
func internalHandlers() map[string]http.Handler {
	return map[string]http.Handler{"demo": web.Handler()}
}

func runGateway(ctx context.Context, args []string, stderr io.Writer) error {
	fs := newFlagSet("gateway", "Runs the gateway: Spring Cloud Gateway-style routes with WebSocket- and SockJS-aware\nload balancing. The demo page is the route target internal://demo.")
	config := fs.String("config", "gateway.yaml", "gateway YAML: pushgate's format or a Spring application.yml")
	discovery := fs.String("discovery", "", "YAML file with discovery: for the lb:// services (overrides the config's entries of the same name)")
	lf := fs.logFlags()
	fs.SetOutput(stderr)
	if err := fs.parse(args); err != nil {
		return err
	}
	log, err := lf.logger(stderr)
	if err != nil {
		return err
	}
	cfg, err := gateway.LoadConfig(*config)
	if err != nil {
		return err
	}
	opts := gateway.Options{Logger: log, Handlers: internalHandlers()}
	if *discovery != "" {
		if opts.Discovery, err = gateway.LoadDiscovery(*discovery); err != nil {
			return err
		}
	}
	return serveGateway(ctx, cfg, opts, log)
}

func serveGateway(ctx context.Context, cfg *gateway.Config, opts gateway.Options, log *slog.Logger) error {
	reg := newRegistry()
	opts.Registerer, opts.Gatherer = reg, reg
	g, err := gateway.New(cfg, opts)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", g.Addr())
	if err != nil {
		return err
	}
	log.Info("gateway listening", "addr", ln.Addr().String())
	return g.Run(ctx, ln)
}

// devGateway prepares the gateway of `pushgate dev` in front of its edges
// and push service, listening on addr; it returns the function that runs
// it and the address it got.
func devGateway(addr string, edges []string, pushsvcURL string, log *slog.Logger) (func(context.Context) error, string, error) {
	cfg, err := gateway.DevConfig(addr, edges, pushsvcURL)
	if err != nil {
		return nil, "", err
	}
	reg := newRegistry()
	g, err := gateway.New(cfg, gateway.Options{Logger: log, Handlers: internalHandlers(), Registerer: reg, Gatherer: reg})
	if err != nil {
		return nil, "", err
	}
	ln, err := net.Listen("tcp", g.Addr())
	if err != nil {
		return nil, "", err
	}
	return func(ctx context.Context) error { return g.Run(ctx, ln) }, ln.Addr().String(), nil
}
