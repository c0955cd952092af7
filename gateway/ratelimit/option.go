package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
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

// GuardOption configures a [Guard].
type GuardOption interface {
	applyToGuard(*guardConfig)
}

// ClockOption is an option of an [Interceptor], a [Memory] store and a
// [Guard].
type ClockOption interface {
	Option
	MemoryOption
	GuardOption
}

// AddressOption is an option of both an [Interceptor] and a [Guard]: how
// they tell a client by its address.
type AddressOption interface {
	Option
	GuardOption
}

type interceptorOptionFunc func(*interceptorConfig)

func (f interceptorOptionFunc) applyToInterceptor(c *interceptorConfig) { f(c) }

type memoryOptionFunc func(*memoryConfig)

func (f memoryOptionFunc) applyToMemory(c *memoryConfig) { f(c) }

type redisOptionFunc func(*redisConfig)

func (f redisOptionFunc) applyToRedis(c *redisConfig) { f(c) }

type guardOptionFunc func(*guardConfig)

func (f guardOptionFunc) applyToGuard(c *guardConfig) { f(c) }

type clockOption struct{ now func() time.Time }

func (o clockOption) applyToInterceptor(c *interceptorConfig) { c.now = o.now }
func (o clockOption) applyToMemory(c *memoryConfig)           { c.now = o.now }
func (o clockOption) applyToGuard(c *guardConfig)             { c.now = o.now }

// WithClock sets the clock: of a [Memory] store's decisions, of an
// [Interceptor]'s per-stream message limits, and of a [Guard]'s counts and
// cool-downs. By default each reads the process's monotonic clock,
// anchored once to the wall clock. A nil now keeps the default.
func WithClock(now func() time.Time) ClockOption {
	return clockOption{now: now}
}

// addressConfig is how a client is told by its address.
type addressConfig struct {
	trusted  []netip.Prefix
	ipv6Bits int
}

func defaultAddressConfig() addressConfig { return addressConfig{ipv6Bits: 64} }

func (c addressConfig) validate() error {
	var problems []error
	for _, p := range c.trusted {
		if !p.IsValid() {
			problems = append(problems, errors.New("trusted proxies: invalid network"))
			break
		}
	}
	if c.ipv6Bits < 1 || c.ipv6Bits > 128 {
		problems = append(problems, fmt.Errorf("IPv6 prefix of %d bits is not between 1 and 128", c.ipv6Bits))
	}
	return errors.Join(problems...)
}

type addressOption func(*addressConfig)

func (f addressOption) applyToInterceptor(c *interceptorConfig) { f(&c.address) }
func (f addressOption) applyToGuard(c *guardConfig)             { f(&c.address) }

// WithTrustedProxies lists the networks of the proxies in front of the
// gateway whose X-Forwarded-For header is believed. A public call from one
// of them is limited by the address it forwarded for: the rightmost
// address of X-Forwarded-For not itself in these networks. By default no
// proxy is trusted, and X-Forwarded-For is ignored. Constructors report an
// invalid (zero) network.
func WithTrustedProxies(networks ...netip.Prefix) AddressOption {
	return addressOption(func(c *addressConfig) {
		for _, n := range networks {
			c.trusted = append(c.trusted, n.Masked())
		}
	})
}

// WithIPv6Prefix sets how many leading bits of an IPv6 client address
// identify a client: 64 by default, since one subscriber commonly holds a
// whole /64. Constructors report values outside 1 to 128.
func WithIPv6Prefix(bits int) AddressOption {
	return addressOption(func(c *addressConfig) { c.ipv6Bits = bits })
}

// WithPolicy sets the operator's policy: the default limit and the tiers.
// [NewInterceptor] returns the policy's [Policy.Validate] error, if any.
func WithPolicy(p Policy) Option {
	return interceptorOptionFunc(func(c *interceptorConfig) { c.policy = p })
}

// WithMaxKeys bounds the number of keys a [Memory] store holds (default
// 262144, which take about 26 MB). [NewMemory] reports values below 1.
func WithMaxKeys(n int) MemoryOption {
	return memoryOptionFunc(func(c *memoryConfig) { c.maxKeys = n })
}

// WithCleanupInterval sets how often a [Memory] store forgets the keys
// whose budget is back in full (default 30s). [NewMemory] reports
// non-positive values.
func WithCleanupInterval(d time.Duration) MemoryOption {
	return memoryOptionFunc(func(c *memoryConfig) { c.cleanupInterval = d })
}

// WithKeyPrefix sets the prefix of a [Redis] store's keys (default
// "portcullis:ratelimit:").
func WithKeyPrefix(prefix string) RedisOption {
	return redisOptionFunc(func(c *redisConfig) { c.prefix = prefix })
}

// WithTimeout bounds each decision's round trip to Redis (default 50ms): a
// decision that takes longer fails, and follows the failure policy. For the
// bound to cover socket reads, build the client with ContextTimeoutEnabled
// (or a short ReadTimeout). [NewRedis] reports non-positive values.
func WithTimeout(d time.Duration) RedisOption {
	return redisOptionFunc(func(c *redisConfig) { c.timeout = d })
}

// WithFailurePolicy sets what a [Redis] store does with a decision Redis
// fails to take: [FailOpen] (the default) or [FailClosed].
func WithFailurePolicy(p FailurePolicy) RedisOption {
	return redisOptionFunc(func(c *redisConfig) { c.failure = p })
}

// WithFailureThreshold sets how many failures in a row open a [Redis]
// store's breaker (default 5). Failures of decisions under way together,
// as when one slow reply times out every decision waiting behind it, count
// as one. Below the threshold, each failed decision follows the failure
// policy on its own and the next one asks Redis again; once the breaker is
// open, every decision follows the policy at once, without asking Redis,
// until a probe succeeds ([WithProbeInterval]). [NewRedis] reports values
// below 1.
func WithFailureThreshold(n int) RedisOption {
	return redisOptionFunc(func(c *redisConfig) { c.threshold = n })
}

// WithProbeInterval sets how often, while its breaker is open, a [Redis]
// store tries Redis again (default 1s); other decisions meanwhile follow
// the failure policy at once. [NewRedis] reports non-positive values.
func WithProbeInterval(d time.Duration) RedisOption {
	return redisOptionFunc(func(c *redisConfig) { c.probeInterval = d })
}

// WithLogger sets the logger of a [Redis] store, which logs each outage
// once when its breaker opens and once when it closes (default
// slog.Default(); nil keeps the default).
func WithLogger(l *slog.Logger) RedisOption {
	return redisOptionFunc(func(c *redisConfig) {
		if l != nil {
			c.logger = l
		}
	})
}

// WithObserver sets a function that a [Redis] store calls on each failed
// round trip, and when its breaker opens and closes: for metrics. It is
// called synchronously, so it must be quick.
func WithObserver(observe func(Event)) RedisOption {
	return redisOptionFunc(func(c *redisConfig) { c.observe = observe })
}

// WithFailureBudget sets how many failed authentications a [Guard] lets an
// address make: on average failures per period, all of them at once
// (default 20 per 10s). The failure that spends the budget starts the
// address's cool-down ([WithCooldown]). [NewGuard] reports a budget below
// one failure or a non-positive period.
func WithFailureBudget(failures int, per time.Duration) GuardOption {
	return guardOptionFunc(func(c *guardConfig) {
		c.budget = Limit{Requests: failures, Period: per, Burst: failures}
	})
}

// WithCooldown sets how long a [Guard] refuses an address that spent its
// failure budget (default 30s). [NewGuard] reports non-positive values.
func WithCooldown(d time.Duration) GuardOption {
	return guardOptionFunc(func(c *guardConfig) { c.cooldown = d })
}

// WithMaxAddresses bounds the number of addresses a [Guard] tracks
// (default 65536, about 6.5 MB). Addresses whose failures are forgotten
// go first; past the bound, the address closest to that. [NewGuard]
// reports values below 1.
func WithMaxAddresses(n int) GuardOption {
	return guardOptionFunc(func(c *guardConfig) { c.maxAddresses = n })
}

// WithGuardExempt sets a function that a [Guard] asks before it refuses a
// call from an address in cool-down: when it returns true, the call goes
// on to the gate the guard wraps. It is meant to let a caller whose
// credentials are already known good through at no cost, such as one whose
// token is in the verifier's cache, so that valid callers sharing an
// address with an attacker keep working. It runs only for addresses in
// cool-down, and must be quick and not verify anything itself. nil exempts
// no one.
func WithGuardExempt(exempt func(ctx context.Context, header http.Header) bool) GuardOption {
	return guardOptionFunc(func(c *guardConfig) { c.exempt = exempt })
}
