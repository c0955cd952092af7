package gateway

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/portcullis/portcullis/gateway/catalog"
	"github.com/portcullis/portcullis/gateway/config"
	"github.com/portcullis/portcullis/gateway/ratelimit"
	"github.com/portcullis/portcullis/gateway/redisclient"
)

// newLimiters builds the per-method limiter, on the rate limit store, and
// the address guard.
func (g *generation) newLimiters(c *chain) error {
	var err error
	proxies := trustedProxies(g.cfg.RateLimit.TrustedProxies)
	if c.limiter, err = ratelimit.NewInterceptor(g.catalog, g.store, rateLimitOptions(g.cfg.RateLimit, proxies)...); err != nil {
		return err
	}
	guard := g.cfg.Guard
	if !guard.IsEnabled() {
		return nil
	}
	authorizer := c.authorizer
	opts := []ratelimit.GuardOption{
		ratelimit.WithFailureBudget(guard.Failures, guard.Period.Std()),
		ratelimit.WithCooldown(guard.Cooldown.Std()),
		ratelimit.WithMaxAddresses(guard.MaxAddresses),
		ratelimit.WithGuardExempt(func(_ context.Context, header http.Header) bool {
			return authorizer.HoldsVerifiedToken(header)
		}),
	}
	if len(proxies) > 0 {
		opts = append(opts, ratelimit.WithTrustedProxies(proxies...))
	}
	if c.guard, err = ratelimit.NewGuard(opts...); err != nil {
		return fmt.Errorf("guard: %w", err)
	}
	g.closers = append(g.closers, c.guard.Close)
	return nil
}

// newDecisionRedis returns a client of r for decisions on the call path
// (rate limits, DPoP replays), which must fail fast: the timeout bounds
// each round trip through the context, and a failed one is not retried,
// so that an outage switches to the failure policy within one timeout.
func newDecisionRedis(r config.Redis) (redis.UniversalClient, error) {
	return redisclient.New(r.Servers(), redisclient.Timeouts{
		Dial:          max(r.Timeout.Std()*4, 200*time.Millisecond),
		Read:          r.Timeout.Std(),
		Write:         r.Timeout.Std(),
		DialerRetries: 1,
	})
}

// newStore returns the rate limit store: in memory, or in Redis shared by
// every replica.
func (g *generation) newStore(cfg config.RateLimit) (ratelimit.Store, error) {
	if cfg.Store != "redis" {
		memory, err := ratelimit.NewMemory(ratelimit.WithMaxKeys(cfg.MaxKeys))
		if err != nil {
			return nil, err
		}
		g.closers = append(g.closers, memory.Close)
		return memory, nil
	}
	client, err := newDecisionRedis(cfg.Redis)
	if err != nil {
		return nil, fmt.Errorf("rate_limit.redis: %w", err)
	}
	g.closers = append(g.closers, client.Close)
	redis.SetLogger(redisLogger{g.logger})
	policy := ratelimit.FailOpen
	if cfg.Redis.OnFailure == "closed" {
		policy = ratelimit.FailClosed
	}
	store, err := ratelimit.NewRedis(client,
		ratelimit.WithKeyPrefix(cfg.Redis.Prefix),
		ratelimit.WithTimeout(cfg.Redis.Timeout.Std()),
		ratelimit.WithFailurePolicy(policy),
		ratelimit.WithFailureThreshold(cfg.Redis.BreakerFailures),
		ratelimit.WithProbeInterval(cfg.Redis.ProbeInterval.Std()),
		ratelimit.WithLogger(g.logger),
		ratelimit.WithObserver(func(e ratelimit.Event) {
			if e.Kind == ratelimit.EventFailure {
				g.telemetry.RecordLimiterError(context.Background())
			}
		}),
	)
	if err != nil {
		return nil, err
	}
	g.closers = append(g.closers, store.Close)
	return store, nil
}

// rateLimitOptions returns the limiter's policy and trusted proxies.
func rateLimitOptions(cfg config.RateLimit, proxies []netip.Prefix) []ratelimit.Option {
	policy := ratelimit.Policy{Default: rate(cfg.Default), Tiers: map[string]ratelimit.Tier{}}
	for name, t := range cfg.Tiers {
		policy.Tiers[name] = ratelimit.Tier{Multiplier: t.Multiplier, Override: rate(t.Override)}
	}
	opts := []ratelimit.Option{ratelimit.WithPolicy(policy)}
	if len(proxies) > 0 {
		opts = append(opts, ratelimit.WithTrustedProxies(proxies...))
	}
	return opts
}

// trustedProxies parses the trusted proxies, networks or single
// addresses; the configuration has validated them.
func trustedProxies(list []string) []netip.Prefix {
	var proxies []netip.Prefix
	for _, p := range list {
		if prefix, err := netip.ParsePrefix(p); err == nil {
			proxies = append(proxies, prefix)
		} else if addr, err := netip.ParseAddr(p); err == nil {
			proxies = append(proxies, netip.PrefixFrom(addr, addr.BitLen()))
		}
	}
	return proxies
}

// rate converts a configured rate.
func rate(r *config.Rate) *catalog.RateLimit {
	if r == nil {
		return nil
	}
	return &catalog.RateLimit{Requests: r.Requests, Period: r.Period.Std(), Burst: max(r.Burst, 1)}
}

// redisLogger writes go-redis's own messages (reconnects, pool errors) to
// the structured log instead of the standard logger's plain text. go-redis
// has one logger per process: the gateway built last sets it.
type redisLogger struct{ logger *slog.Logger }

func (l redisLogger) Printf(ctx context.Context, format string, v ...any) {
	l.logger.WarnContext(ctx, fmt.Sprintf(format, v...), "component", "redis")
}
