package main

import (
	"context"
	"io"
	"log/slog"
	"net"
	"os"
	"runtime/debug"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pushgate/pushgate/pushsvc"
	"github.com/pushgate/pushgate/relay"
)

// pushsvcFlags are the push service's flags, shared by `pushsvc` and `dev`.
type pushsvcFlags struct {
	apiToken   string
	insecure   bool
	maxPayload int
	settle     time.Duration
}

func (fs *flagSet) pushsvcFlags() *pushsvcFlags {
	p := &pushsvcFlags{}
	fs.StringVar(&p.apiToken, "api-token", "", "bearer token callers of the push API must present")
	fs.BoolVar(&p.insecure, "insecure-no-api-token", false, "serve the push API without a token (never in production)")
	fs.IntVar(&p.maxPayload, "max-payload-bytes", pushsvc.DefaultMaxPayloadBytes, "largest push payload")
	fs.DurationVar(&p.settle, "registry-settle", 7*time.Second, "how long the user registry is rebuilt from edge snapshots after start or a broker reconnect (pushes go to all edges meanwhile); at least the edges' --registry-interval")
	return p
}

func runPushsvc(ctx context.Context, args []string, stderr io.Writer) error {
	fs := newFlagSet("pushsvc", "Runs the push API: gRPC PushService and its REST mapping, /test.")
	grpcAddr := fs.String("grpc", ":9090", "gRPC address (host:port or :port)")
	httpAddr := fs.String("http", ":9091", "HTTP address for REST, /test, /healthz, /readyz, /metrics")
	bf := fs.brokerFlags()
	pf := fs.pushsvcFlags()
	lf := fs.logFlags()
	pprofAddr := fs.pprofFlag()
	fs.SetOutput(stderr)
	if err := fs.parse(args); err != nil {
		return err
	}
	log, err := lf.logger(stderr)
	if err != nil {
		return err
	}
	if err := startPprof(ctx, *pprofAddr, log); err != nil {
		return err
	}
	setPushsvcGC()
	reg := newRegistry()
	pool, err := bf.pool("pushsvc", reg, log)
	if err != nil {
		return err
	}
	defer pool.Close()
	ps, err := pf.start(pool, *grpcAddr, *httpAddr, nil, reg, log)
	if err != nil {
		return err
	}
	defer ps.router.Close()
	log.Info("pushsvc listening", "grpc", ps.grpc.Addr().String(), "http", ps.http.Addr().String())
	return runAll(ctx, ps.serve()...)
}

// pushsvcGCPercent is the push service's GOGC unless the environment sets
// one. Its live heap is a few megabytes whatever the load, while every call
// allocates (gRPC, mostly): at the default of 100 the collector ran so
// often that it took a fifth of pushsvc's CPU at 10k pushes/s. At 400 it
// runs a quarter as often, for a heap of tens of megabytes: pushsvc's CPU
// per push fell by about a sixth (bench/RESULTS.md). Edges keep the
// default, since their heap grows with sessions.
const pushsvcGCPercent = 400

func setPushsvcGC() {
	if _, set := os.LookupEnv("GOGC"); !set {
		debug.SetGCPercent(pushsvcGCPercent)
	}
}

// pushService is a push service ready to serve: its router, its server
// and the listeners of both.
type pushService struct {
	router     *pushsvc.BrokerRouter
	srv        *pushsvc.Server
	grpc, http net.Listener
}

// start builds the push service on pool and listens on its two addresses;
// devTokens is non-nil only in `pushgate dev`. The caller closes router.
func (pf *pushsvcFlags) start(pool *relay.Pool, grpcAddr, httpAddr string, devTokens func(string) (string, error), reg *prometheus.Registry, log *slog.Logger) (*pushService, error) {
	router, err := pushsvc.NewRouter(pushsvc.RouterConfig{Settle: pf.settle, Logger: log, Registerer: reg}, pool)
	if err != nil {
		return nil, err
	}
	ps := &pushService{router: router}
	if err := ps.listen(pf, devTokens, grpcAddr, httpAddr, reg, log); err != nil {
		router.Close()
		return nil, err
	}
	return ps, nil
}

func (ps *pushService) listen(pf *pushsvcFlags, devTokens func(string) (string, error), grpcAddr, httpAddr string, reg *prometheus.Registry, log *slog.Logger) error {
	var err error
	ps.srv, err = pushsvc.NewServer(pushsvc.Config{
		APIToken:           pf.apiToken,
		InsecureNoAPIToken: pf.insecure,
		MaxPayloadBytes:    pf.maxPayload,
		DevTokens:          devTokens,
		Ready:              ps.router.Ready,
		Logger:             log,
		Registerer:         reg,
		Gatherer:           reg,
	}, ps.router)
	if err != nil {
		return err
	}
	if ps.grpc, err = net.Listen("tcp", grpcAddr); err != nil {
		return err
	}
	if ps.http, err = net.Listen("tcp", httpAddr); err != nil {
		ps.grpc.Close()
		return err
	}
	return nil
}

// serve returns the functions that serve gRPC and HTTP, for runAll.
func (ps *pushService) serve() []func(context.Context) error {
	return []func(context.Context) error{
		func(ctx context.Context) error { return ps.srv.ServeGRPC(ctx, ps.grpc) },
		func(ctx context.Context) error { return ps.srv.ServeHTTP(ctx, ps.http) },
	}
}
