// Command pushgate pushes messages from backend services to users' browsers
// over STOMP, SockJS and WebSocket, across many edge instances.
//
// Subcommands: dev (everything in one process), edge, pushsvc, gateway.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

const usage = `pushgate pushes messages from backend services to browsers over STOMP.

Usage:
  pushgate dev      everything in one process, with an embedded broker
  pushgate edge     one edge (browser sessions)
  pushgate pushsvc  the push API (gRPC and REST)
  pushgate gateway  the gateway (routes, load balancing)
  pushgate version  print the version

Run "pushgate COMMAND --help" for a command's flags.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "pushgate:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errors.New("no command given")
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "dev":
		return runDev(ctx, rest, stdout, stderr)
	case "edge":
		return runEdge(ctx, rest, stderr)
	case "pushsvc":
		return runPushsvc(ctx, rest, stderr)
	case "gateway":
		return runGateway(ctx, rest, stderr)
	case "version", "--version":
		fmt.Fprintln(stdout, "pushgate", version())
		return nil
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("unknown command %q", cmd)
	}
}
