package gateway

import (
	"context"
	"fmt"

	"go.opentelemetry.io/otel/metric"

	"github.com/portcullis/portcullis/gateway/redisclient"
	"github.com/portcullis/portcullis/gateway/revocation"
	"github.com/portcullis/portcullis/gateway/token"
)

// newRevocations builds the set of revocations the configuration names a
// source of, and has the verifier check every token against it. A gateway
// without issuers, or with source none, has none.
func (g *generation) newRevocations(ctx context.Context, o *options) error {
	r := g.cfg.Revocation
	if len(g.cfg.Issuers) == 0 || r.Source == "none" {
		return nil
	}
	opts := []revocation.Option{
		revocation.WithLogger(g.logger),
		revocation.WithStaleness(r.Staleness.Std()),
		revocation.WithMaxEntries(r.MaxEntries),
	}
	switch r.Source {
	case "redis":
		// The set retries, reading everything again.
		client, err := redisclient.New(r.Redis.Servers(), redisclient.Timeouts{Dial: r.Redis.Timeout.Std()})
		if err != nil {
			return fmt.Errorf("revocation.redis: %w", err)
		}
		g.closers = append(g.closers, client.Close)
		store, err := revocation.NewRedis(client, revocation.WithPrefix(r.Redis.Prefix), revocation.WithTimeout(r.Redis.Timeout.Std()))
		if err != nil {
			return err
		}
		opts = append(opts, revocation.WithRedis(store))
	default:
		feeds := make(map[string]string, len(r.Feeds))
		for _, f := range r.Feeds {
			feeds[f.Issuer] = f.URL
		}
		for _, is := range g.cfg.Issuers {
			if u, ok := feeds[is.Issuer]; ok {
				opts = append(opts, revocation.WithFeed(is.Issuer, u))
			} else if is.Discovery {
				opts = append(opts, revocation.WithDiscoveredFeed(is.Issuer))
			}
		}
	}
	set, err := revocation.New(ctx, opts...)
	if err != nil {
		return err
	}
	g.revocations = set
	g.closers = append(g.closers, func() error { set.Close(); return nil })
	o.tokenOptions = append([]token.Option{token.WithRevocations(set)}, o.tokenOptions...)
	return g.revocationMetrics(set)
}

// revocationMetrics reports the state of the set: portcullis.revocation.stale
// (Prometheus portcullis_revocation_stale), 1 while it is stale and 0
// while fresh, and portcullis.revocation.entries, the revocations held.
func (g *generation) revocationMetrics(set *revocation.Set) error {
	m := g.telemetry.MeterProvider().Meter("github.com/portcullis/portcullis/gateway")
	stale, err := m.Int64ObservableGauge("portcullis.revocation.stale",
		metric.WithDescription("1 while the revocations are stale (a feed or Redis unheard for longer than revocation.staleness, or catching up), 0 while fresh."))
	if err != nil {
		return err
	}
	entries, err := m.Int64ObservableGauge("portcullis.revocation.entries",
		metric.WithUnit("{revocation}"),
		metric.WithDescription("Revocations held in memory: revoked tokens and revoked clients."))
	if err != nil {
		return err
	}
	reg, err := m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		var v int64
		if !set.Fresh() {
			v = 1
		}
		o.ObserveInt64(stale, v)
		o.ObserveInt64(entries, int64(set.Len()))
		return nil
	}, stale, entries)
	if err != nil {
		return fmt.Errorf("revocation metrics: %w", err)
	}
	g.closers = append(g.closers, reg.Unregister)
	return nil
}

// revocationStatus adds the state of the revocations to the body of
// /readyz: "fresh", "stale" with the reason, or "loading".
func (g *generation) revocationStatus(body map[string]any) {
	set := g.revocations
	if set == nil {
		return
	}
	status := map[string]any{"entries": set.Len(), "status": "fresh"}
	// Each asked once: the set may load or go stale between two calls.
	if err := set.Ready(); err != nil {
		status["status"], status["reason"] = "loading", err.Error()
	} else if err := set.Err(); err != nil {
		status["status"], status["reason"] = "stale", err.Error()
	}
	body["revocations"] = status
}
