package gateway

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"
)

// runHealth probes every instance of the service each Interval until ctx is done: GET Path,
// a 2xx answer within Timeout passes. The first round runs at once, and discovery can ask for an
// extra round when it adds instances (which start out of rotation).
func (s *service) runHealth(ctx context.Context, client *http.Client) {
	if s.health.Disabled {
		return
	}
	t := time.NewTicker(s.health.Interval)
	defer t.Stop()
	for {
		s.checkAll(ctx, client)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-s.recheck:
		}
	}
}

// checkAll probes all instances concurrently and waits for every probe, each bounded by Timeout.
func (s *service) checkAll(ctx context.Context, client *http.Client) {
	var wg sync.WaitGroup
	for _, in := range s.instances() {
		wg.Go(func() {
			err := s.probe(ctx, client, in)
			if ctx.Err() != nil {
				return // shutting down: a cancelled probe says nothing about the instance
			}
			s.report(in, err == nil, err)
		})
	}
	wg.Wait()
}

func (s *service) probe(ctx context.Context, client *http.Client, in *instance) error {
	ctx, cancel := context.WithTimeout(ctx, s.health.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, in.key+s.health.Path, nil)
	if err != nil {
		return fmt.Errorf("health request: %w", err)
	}
	req.Header.Set("User-Agent", "pushgate-gateway-health")
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("health check: %w", err)
	}
	// Drain a little so the connection can be reused, but never read an unbounded body.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
	_ = resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("health check: status %d", resp.StatusCode)
	}
	return nil
}
