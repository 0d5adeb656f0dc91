package gateway

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Resolver is the DNS lookup that discovery uses; *net.Resolver implements it, and tests pass a
// fake.
type Resolver interface {
	LookupIPAddr(ctx context.Context, host string) ([]net.IPAddr, error)
	LookupSRV(ctx context.Context, service, proto, name string) (string, []*net.SRV, error)
}

var _ Resolver = (*net.Resolver)(nil)

// dynamic reports whether the service's instances come from DNS and need re-resolution.
func (d Discovery) dynamic() bool { return d.DNS != "" || d.SRV != "" }

// staticURLs parses the static instance list; ParseConfig has checked it already.
func (d Discovery) staticURLs() ([]*url.URL, error) {
	out := make([]*url.URL, 0, len(d.Static))
	for _, s := range d.Static {
		u, err := instanceURL(s)
		if err != nil {
			return nil, err
		}
		out = append(out, u)
	}
	return out, nil
}

// resolve looks the service's DNS or SRV name up and returns its instances, sorted so that an
// unchanged answer gives an unchanged set.
func (d Discovery) resolve(ctx context.Context, r Resolver) ([]*url.URL, error) {
	scheme := d.Scheme
	if scheme == "" {
		scheme = "http"
	}
	var hosts []string
	if d.SRV != "" {
		// An empty service and proto make LookupSRV query the name as given (_svc._proto.name).
		_, srvs, err := r.LookupSRV(ctx, "", "", d.SRV)
		if err != nil {
			return nil, fmt.Errorf("lookup srv %s: %w", d.SRV, err)
		}
		for _, s := range srvs {
			hosts = append(hosts, net.JoinHostPort(strings.TrimSuffix(s.Target, "."), strconv.Itoa(int(s.Port))))
		}
	} else {
		addrs, err := r.LookupIPAddr(ctx, d.DNS)
		if err != nil {
			return nil, fmt.Errorf("lookup %s: %w", d.DNS, err)
		}
		for _, a := range addrs {
			hosts = append(hosts, net.JoinHostPort(a.IP.String(), strconv.Itoa(d.Port)))
		}
	}
	if len(hosts) == 0 {
		return nil, errors.New("no addresses")
	}
	sort.Strings(hosts)
	out := make([]*url.URL, 0, len(hosts))
	for _, h := range hosts {
		out = append(out, &url.URL{Scheme: scheme, Host: h})
	}
	return out, nil
}

// runDiscovery re-resolves a DNS or SRV service every Interval until ctx is done. A failed
// lookup keeps the previous instances: a DNS hiccup must not empty the rotation.
func (s *service) runDiscovery(ctx context.Context, r Resolver) {
	interval := s.disc.Interval
	if interval <= 0 {
		interval = DefaultDNSInterval
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	first := true
	for {
		lctx, cancel := context.WithTimeout(ctx, interval)
		urls, err := s.disc.resolve(lctx, r)
		cancel()
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			s.log.Warn("gateway: discovery failed, keeping previous instances", "err", err)
		default:
			s.setInstances(urls, first)
			first = false
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
