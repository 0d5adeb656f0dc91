package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"github.com/pushgate/pushgate/broker"
	"github.com/pushgate/pushgate/edge"
	"github.com/pushgate/pushgate/web"
)

// devTokenTTL is the lifetime of tokens from /dev/token.
const devTokenTTL = time.Hour

func runDev(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("dev", "Runs everything in one process, with no outside services: an embedded STOMP broker\n(or --broker), the gateway, two edges and the push service.")
	gatewayAddr := fs.String("gateway-listen", "127.0.0.1:7000", "gateway address (demo page, /web-socket/**, /api/**)")
	edgeAddrs := fs.list("edge-listen", []string{"127.0.0.1:8080", "127.0.0.1:8081"}, "edge addresses, comma-separated: one edge each")
	grpcAddr := fs.String("grpc", "127.0.0.1:9090", "push service gRPC address")
	httpAddr := fs.String("http", "127.0.0.1:9091", "push service HTTP address (REST, /test, /dev/token)")
	brokerURL := fs.String("broker", "", "use this broker (stomp://user:pass@host:61613/vhost, comma-separated list) instead of the embedded one")
	embeddedAddr := fs.String("embedded-broker-listen", "127.0.0.1:0", "address of the embedded broker, to share it with other processes")
	connections := fs.Int("broker-connections", 2, "broker connections per component (1-8)")
	shutdown := fs.Duration("shutdown-timeout", 5*time.Second, "how long draining may take on Ctrl-C")
	ef := fs.edgeFlags()
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
	if ef.secret == "" && ef.publicKey == "" {
		ef.secret = randomSecret()
		fmt.Fprintf(stdout, "pushgate dev: signing tokens with the random secret %s (set --jwt-secret to choose one)\n", ef.secret)
	}
	if ef.secret == "" {
		return fmt.Errorf("pushgate dev issues tokens from /dev/token and needs --jwt-secret, not --jwt-public-key")
	}
	if pf.apiToken == "" {
		pf.insecure = true // dev's push API needs no token unless one is given
	}

	if *brokerURL == "" {
		b, err := broker.Start(*embeddedAddr, log)
		if err != nil {
			return err
		}
		defer b.Close()
		*brokerURL = b.URL()
		log.Info("embedded broker listening", "addr", b.Addr())
	}

	var serve []func(context.Context) error
	var edgeURLs []string
	for _, addr := range *edgeAddrs {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return err
		}
		defer ln.Close()
		_, port, _ := net.SplitHostPort(ln.Addr().String())
		id := "edge-" + port
		reg := newRegistry()
		pool, err := newPool(*brokerURL, *connections, id, reg, log)
		if err != nil {
			return err
		}
		defer pool.Close()
		cfg, err := ef.config(id)
		if err != nil {
			return err
		}
		cfg.Logger, cfg.Registerer = log, reg
		srv, err := edge.New(cfg, pool, reg)
		if err != nil {
			return err
		}
		edgeURLs = append(edgeURLs, "http://"+ln.Addr().String())
		serve = append(serve, func(ctx context.Context) error { return srv.Serve(ctx, ln, *shutdown) })
	}

	reg := newRegistry()
	pool, err := newPool(*brokerURL, *connections, "pushsvc", reg, log)
	if err != nil {
		return err
	}
	defer pool.Close()
	secret := []byte(ef.secret)
	devTokens := func(user string) (string, error) { return edge.IssueToken(secret, user, devTokenTTL) }
	ps, err := pf.start(pool, *grpcAddr, *httpAddr, devTokens, reg, log)
	if err != nil {
		return err
	}
	defer ps.router.Close()
	serve = append(serve, ps.serve()...)
	gw, gwAddr, err := devGateway(*gatewayAddr, edgeURLs, "http://"+ps.http.Addr().String(), log)
	if err != nil {
		return err
	}
	serve = append(serve, gw)
	printDevBanner(stdout, gwAddr, edgeURLs, ps.grpc.Addr().String(), ps.http.Addr().String())
	return runAll(ctx, serve...)
}

func randomSecret() string {
	var b [24]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func printDevBanner(w io.Writer, gateway string, edges []string, grpcAddr, httpAddr string) {
	var b strings.Builder
	fmt.Fprintf(&b, "\npushgate dev is running.\n")
	fmt.Fprintf(&b, "  demo page:   http://%s/\n", strings.Replace(gateway, "127.0.0.1", "localhost", 1))
	if !web.Built() {
		fmt.Fprintf(&b, "               (the page's bundle is not built: run `make web`, or use `make run`)\n")
	}
	for _, e := range edges {
		fmt.Fprintf(&b, "  edge:        %s  (STOMP over WebSocket at %s/stomp, SockJS at %s/ws)\n", e, strings.Replace(e, "http", "ws", 1), e)
	}
	fmt.Fprintf(&b, "  push API:    gRPC %s, REST http://%s\n", grpcAddr, httpAddr)
	fmt.Fprintf(&b, "  a token:     curl 'http://%s/dev/token?user=alice'\n", httpAddr)
	fmt.Fprintf(&b, "  push:        curl -d '{\"destination\":\"/topic/greetings\",\"text\":\"hi\"}' http://%s/v1/users/alice/messages\n", httpAddr)
	fmt.Fprintf(&b, "  through the gateway: /web-socket/ws (SockJS), /web-socket/stomp, /api/v1/...\n\n")
	fmt.Fprint(w, b.String())
}
