package main

import (
	"context"
	"errors"
	"io"
	"log/slog"
)

// TEMPORARY until the gateway package lands.
func runGateway(ctx context.Context, args []string, stderr io.Writer) error {
	return errors.New("gateway: not built yet")
}

func devGateway(addr string, edges []string, pushsvcURL string, log *slog.Logger) (func(context.Context) error, error) {
	return nil, nil
}
