// Command stompbroker runs pushgate's embedded STOMP broker (the one
// `pushgate dev` starts in-process) alone, so that benchmarks can run edges
// and pushsvc as separate processes against it and measure its CPU apart.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/pushgate/pushgate/broker"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:61700", "address to serve STOMP on")
	flag.Parse()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	b, err := broker.Start(*listen, log)
	if err != nil {
		fmt.Fprintln(os.Stderr, "stompbroker:", err)
		os.Exit(1)
	}
	fmt.Fprintln(os.Stderr, "stompbroker: listening on", b.Addr())
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	<-ctx.Done()
	_ = b.Close()
}
