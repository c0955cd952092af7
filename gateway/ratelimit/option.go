package ratelimit

import (
	"log/slog"
	"net/netip"
	"time"
)

// Option configures an [Interceptor].
type Option interface {
	applyToInterceptor(*interceptorConfig)
}

// MemoryOption configures a [Memory] store.
type MemoryOption interface {
	applyToMemory(*memoryConfig)
}

// RedisOption configures a [Redis] store.
type RedisOption interface {
	applyToRedis(*redisConfig)
}

// ClockOption is an option of both an [Interceptor] and a [Memory] store.
type ClockOption interface {
	Option
	MemoryOption
}

type interceptorOptionFunc func(*interceptorConfig)

func (f interceptorOptionFunc) applyToInterceptor(c *interceptorConfig) { f(c) }

type memoryOptionFunc func(*memoryConfig)

func (f memoryOptionFunc) applyToMemory(c *memoryConfig) { f(c) }

type redisOptionFunc func(*redisConfig)

func (f redisOptionFunc) applyToRedis(c *redisConfig) { f(c) }

type clockOption struct{ now func() time.Time }

func (o clockOption) applyToInterceptor(c *interceptorConfig) { c.now = o.now }
func (o clockOption) applyToMemory(c *memoryConfig)           { c.now = o.now }

// WithClock sets the clock: of a [Memory] store's decisions, and of an
// [Interceptor]'s per-stream message limits. By default both read the
// process's monotonic clock, anchored once to the wall clock. A nil now
// keeps the default.
func WithClock(now func() time.Time) ClockOption {
	return clockOption{now: now}
}

// WithPolicy sets the operator's policy: the default limit and the tiers.
// [NewInterceptor] returns the policy's [Policy.Validate] error, if any.
func WithPolicy(p Policy) Option {
	return interceptorOptionFunc(func(c *interceptorConfig) { c.policy = p })
}

// WithTrustedProxies lists the networks of the proxies in front of the
// gateway whose X-Forwarded-For header is believed. A public call from one
// of them is limited by the address it forwarded for: the rightmost
// address of X-Forwarded-For not itself in these networks. By default no
// proxy is trusted, and X-Forwarded-For is ignored.
func WithTrustedProxies(networks ...netip.Prefix) Option {
	return interceptorOptionFunc(func(c *interceptorConfig) {
		for _, n := range networks {
			c.trusted = append(c.trusted, n.Masked())
		}
	})
}

// WithIPv6Prefix sets how many leading bits of an IPv6 client address
// identify a client of a public method: 64 by default, since one subscriber
// commonly holds a whole /64. Values outside 1 to 128 are ignored.
func WithIPv6Prefix(bits int) Option {
	return interceptorOptionFunc(func(c *interceptorConfig) {
		if bits >= 1 && bits <= 128 {
			c.ipv6Bits = bits
		}
	})
}

// WithMaxKeys bounds the number of keys a [Memory] store holds (default
// 262144, which take about 26 MB). Values below 1 are ignored.
func WithMaxKeys(n int) MemoryOption {
	return memoryOptionFunc(func(c *memoryConfig) {
		if n >= 1 {
			c.maxKeys = n
		}
	})
}

// WithCleanupInterval sets how often a [Memory] store forgets the keys
// whose budget is back in full (default 30s). Non-positive values are
// ignored.
func WithCleanupInterval(d time.Duration) MemoryOption {
	return memoryOptionFunc(func(c *memoryConfig) {
		if d > 0 {
			c.cleanupInterval = d
		}
	})
}

// WithKeyPrefix sets the prefix of a [Redis] store's keys (default
// "portcullis:ratelimit:").
func WithKeyPrefix(prefix string) RedisOption {
	return redisOptionFunc(func(c *redisConfig) { c.prefix = prefix })
}

// WithTimeout bounds each decision's round trip to Redis (default 50ms).
// For the bound to cover socket reads, build the client with
// ContextTimeoutEnabled (or a short ReadTimeout). Non-positive values are
// ignored.
func WithTimeout(d time.Duration) RedisOption {
	return redisOptionFunc(func(c *redisConfig) {
		if d > 0 {
			c.timeout = d
		}
	})
}

// WithFailurePolicy sets what a [Redis] store does when Redis fails:
// [FailOpen] (the default) or [FailClosed].
func WithFailurePolicy(p FailurePolicy) RedisOption {
	return redisOptionFunc(func(c *redisConfig) { c.failure = p })
}

// WithProbeInterval sets how often, during an outage, a [Redis] store tries
// Redis again (default 1s); other decisions meanwhile follow the failure
// policy at once. Non-positive values are ignored.
func WithProbeInterval(d time.Duration) RedisOption {
	return redisOptionFunc(func(c *redisConfig) {
		if d > 0 {
			c.probeInterval = d
		}
	})
}

// WithLogger sets the logger of a [Redis] store, which logs each outage
// once when it starts and once when it ends (default slog.Default()).
func WithLogger(l *slog.Logger) RedisOption {
	return redisOptionFunc(func(c *redisConfig) {
		if l != nil {
			c.logger = l
		}
	})
}

// WithObserver sets a function that a [Redis] store calls on each failed
// round trip, and when an outage starts and ends: for metrics. It is
// called synchronously, so it must be quick.
func WithObserver(observe func(Event)) RedisOption {
	return redisOptionFunc(func(c *redisConfig) { c.observe = observe })
}
