package main

import (
	"context"
	"io"
	"net"
	"time"

	"github.com/pushgate/pushgate/pushsvc"
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
	reg := newRegistry()
	pool, err := bf.pool("pushsvc", reg, log)
	if err != nil {
		return err
	}
	defer pool.Close()
	router, err := pushsvc.NewRouter(pushsvc.RouterConfig{Settle: pf.settle, Logger: log, Registerer: reg}, pool)
	if err != nil {
		return err
	}
	defer router.Close()
	srv, err := pushsvc.NewServer(pushsvc.Config{
		APIToken:           pf.apiToken,
		InsecureNoAPIToken: pf.insecure,
		MaxPayloadBytes:    pf.maxPayload,
		Ready:              router.Ready,
		Logger:             log,
		Registerer:         reg,
		Gatherer:           reg,
	}, router)
	if err != nil {
		return err
	}
	gl, err := net.Listen("tcp", *grpcAddr)
	if err != nil {
		return err
	}
	hl, err := net.Listen("tcp", *httpAddr)
	if err != nil {
		gl.Close()
		return err
	}
	log.Info("pushsvc listening", "grpc", gl.Addr().String(), "http", hl.Addr().String())
	return runAll(ctx,
		func(ctx context.Context) error { return srv.ServeGRPC(ctx, gl) },
		func(ctx context.Context) error { return srv.ServeHTTP(ctx, hl) },
	)
}
