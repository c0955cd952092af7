package forward

import (
	"context"
	"log/slog"
	"net"
	"net/url"
	"slices"
	"time"
)

// DefaultDNSRefresh is how often [WithDNS] resolves its name again.
const DefaultDNSRefresh = 10 * time.Second

type dnsConfig struct {
	name     string // host:port
	host     string
	port     string
	scheme   string
	refresh  time.Duration
	resolver *net.Resolver
}

// WithDNS adds the backend's endpoints from DNS: every A and AAAA record
// of the host of name ("orders.prod.svc.cluster.local:8080"), each an
// endpoint of the given scheme (http or https) at the name's port, such
// as the pods behind a Kubernetes headless service. The name is resolved
// when the Backend is created and again every refresh (zero means
// [DefaultDNSRefresh]): new addresses get calls at once; an address no
// longer listed takes no new calls, while its calls in flight finish. A
// failed lookup keeps the endpoints the last one found. Over TLS, the
// backend's certificate is checked against the host of name. resolver
// nil means net.DefaultResolver; a resolver whose Dial reaches another
// DNS server is how tests change the answers.
func WithDNS(name, scheme string, refresh time.Duration, resolver *net.Resolver) BackendOption {
	return backendOptionFunc(func(c *backendConfig) {
		host, port, err := net.SplitHostPort(name)
		switch {
		case err != nil || host == "" || port == "":
			c.invalid("WithDNS(%q): not host:port", name)
			return
		case scheme != "http" && scheme != "https":
			c.invalid("WithDNS(%q): scheme %q is not http or https", name, scheme)
			return
		case refresh < 0:
			c.invalid("WithDNS(%q): refresh %v is negative", name, refresh)
			return
		}
		if refresh == 0 {
			refresh = DefaultDNSRefresh
		}
		if resolver == nil {
			resolver = net.DefaultResolver
		}
		c.dns = &dnsConfig{name: name, host: host, port: port, scheme: scheme, refresh: refresh, resolver: resolver}
	})
}

// startDNS resolves the name once, then again every refresh until the
// backend is closed.
func (b *Backend) startDNS(d *dnsConfig) {
	b.resolve(d)
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		ticker := time.NewTicker(d.refresh)
		defer ticker.Stop()
		for {
			select {
			case <-b.ctx.Done():
				return
			case <-ticker.C:
				b.resolve(d)
			}
		}
	}()
}

// resolve looks the name up and makes its addresses the DNS endpoints.
func (b *Backend) resolve(d *dnsConfig) {
	ctx, cancel := context.WithTimeout(b.ctx, b.cfg.dialTimeout+d.refresh)
	defer cancel()
	addrs, err := d.resolver.LookupHost(ctx, d.host)
	if err != nil {
		if b.ctx.Err() == nil && b.cfg.logger != nil {
			b.cfg.logger.LogAttrs(ctx, slog.LevelWarn, "forward: DNS lookup failed; keeping the endpoints",
				slog.String("name", d.name), slog.String("error", err.Error()))
		}
		return
	}
	want := make(map[string]bool, len(addrs))
	for _, a := range addrs {
		want[net.JoinHostPort(a, d.port)] = true
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.ctx.Err() != nil {
		return
	}
	all := b.set.Load().all
	next := make([]*endpoint, 0, len(all)+len(want))
	var gone []*endpoint
	for _, e := range all {
		switch {
		case e.authority == "":
			next = append(next, e) // a fixed endpoint
		case want[e.host]:
			next = append(next, e)
			delete(want, e.host)
		default:
			gone = append(gone, e)
		}
	}
	added := make([]string, 0, len(want))
	for host := range want {
		added = append(added, host)
	}
	slices.Sort(added)
	for _, host := range added {
		next = append(next, b.newEndpoint(&url.URL{Scheme: d.scheme, Host: host}, d.name))
	}
	if len(gone) == 0 && len(added) == 0 {
		return
	}
	b.publish(next)
	for _, e := range gone {
		b.failedGone.Add(e.failures.Load())
		// Its calls in flight go on; its connections close once idle.
		b.retire(e)
		go func() {
			e.waitProbe()
			e.closeIdle()
		}()
	}
	if b.cfg.logger != nil {
		b.cfg.logger.LogAttrs(ctx, slog.LevelInfo, "forward: DNS endpoints changed",
			slog.String("name", d.name), slog.Int("added", len(added)), slog.Int("removed", len(gone)), slog.Int("endpoints", len(next)))
	}
}
