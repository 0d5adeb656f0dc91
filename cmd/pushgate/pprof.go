package main

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"time"
)

// pprofFlag is --pprof-listen: an opt-in net/http/pprof endpoint for
// profiling (bench/, `go tool pprof http://ADDR/debug/pprof/profile`). It
// is off by default and serves on its own listener, never on a port that
// browsers or API callers reach: profiles expose memory contents.
func (fs *flagSet) pprofFlag() *string {
	return fs.String("pprof-listen", "", "serve net/http/pprof on this address (host:port), for profiling; default: off. Bind it to loopback")
}

// startPprof serves /debug/pprof/ on addr until ctx ends. An empty addr
// does nothing.
func startPprof(ctx context.Context, addr string, log *slog.Logger) error {
	if addr == "" {
		return nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Warn("pprof server stopped", "err", err)
		}
	}()
	context.AfterFunc(ctx, func() { _ = srv.Close() })
	log.Info("pprof listening", "addr", ln.Addr().String())
	return nil
}
