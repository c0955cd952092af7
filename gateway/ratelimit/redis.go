package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// gcraScript is the algorithm of gcra, run atomically inside Redis on the
// Redis server's clock, in microseconds: replicas' clocks do not matter,
// nor do the gateways'. KEYS[1] is the key; ARGV holds the emission
// interval in nanoseconds, the burst and the cost. The stored value is the
// theoretical arrival time; the key expires when it is reached, when
// forgetting it loses nothing. The reply is {allowed (0 or 1), remaining,
// retry after, reset after}, durations in whole microseconds rounded up.
var gcraScript = redis.NewScript(`
if redis.replicate_commands then redis.replicate_commands() end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1]) / 1000
local tolerance = interval * tonumber(ARGV[2])
local n = tonumber(ARGV[3])
local tat = now
local stored = redis.call('GET', KEYS[1])
if stored then
  tat = math.max(tonumber(stored) or now, now)
end
local new_tat = tat + interval * n
local allow_at = new_tat - tolerance
if now < allow_at then
  local remaining = math.floor(math.max(tolerance - (tat - now), 0) / interval + 1e-6)
  return {0, remaining, math.ceil(allow_at - now), math.ceil(tat - now)}
end
local ttl = math.ceil((new_tat - now) / 1000)
if ttl > 0 then
  redis.call('SET', KEYS[1], string.format('%.3f', new_tat), 'PX', ttl)
end
return {1, math.floor((tolerance - (new_tat - now)) / interval + 1e-6), 0, math.ceil(new_tat - now)}
`)

// FailurePolicy is what a [Redis] store does when Redis fails.
type FailurePolicy int

const (
	// FailOpen decides with a local in-memory limiter while Redis is
	// unavailable: each gateway replica then enforces the limits on its
	// own, so a client may get up to its budget from each replica. Calls go
	// on; limits stay in force.
	FailOpen FailurePolicy = iota
	// FailClosed refuses every limited call while Redis is unavailable:
	// [Redis.Allow] returns an error wrapping [ErrUnavailable], which the
	// [Interceptor] answers with Unavailable (HTTP 503), not
	// ResourceExhausted: the client is not over its limit, and can retry
	// as soon as Redis is back.
	FailClosed
)

// String returns "fail open" or "fail closed".
func (p FailurePolicy) String() string {
	if p == FailClosed {
		return "fail closed"
	}
	return "fail open"
}

// EventKind says what an [Event] reports.
type EventKind int

const (
	// EventFailure is one failed round trip to Redis.
	EventFailure EventKind = iota + 1
	// EventOutage is the first failure after Redis was available.
	EventOutage
	// EventRecovery is the first success after an outage.
	EventRecovery
)

// String returns "failure", "outage" or "recovery".
func (k EventKind) String() string {
	switch k {
	case EventFailure:
		return "failure"
	case EventOutage:
		return "outage"
	case EventRecovery:
		return "recovery"
	}
	return fmt.Sprintf("EventKind(%d)", int(k))
}

// Event is what a [Redis] store reports to the function of [WithObserver].
type Event struct {
	// Kind says what happened.
	Kind EventKind
	// Err is the failure, for EventFailure and EventOutage.
	Err error
	// Outage is how long the outage lasted, for EventRecovery.
	Outage time.Duration
}

// RedisStats counts what a [Redis] store did since it was created.
type RedisStats struct {
	// Failures counts the failed round trips to Redis.
	Failures uint64
	// Fallbacks counts the decisions taken without Redis: by the local
	// limiter when failing open, refused when failing closed.
	Fallbacks uint64
	// Outages counts the outages: runs of failures, each ended by a
	// successful probe.
	Outages uint64
	// Down reports whether Redis is currently considered unavailable.
	Down bool
}

type redisConfig struct {
	prefix        string
	timeout       time.Duration
	failure       FailurePolicy
	probeInterval time.Duration
	logger        *slog.Logger
	observe       func(Event)
}

// Redis is a [Store] in Redis, shared by every gateway replica that uses
// the same server and key prefix. Each decision is one script run (EVALSHA)
// in one round trip, on the Redis server's clock.
//
// When Redis fails, the store follows its [FailurePolicy], logs the outage
// once, and tries Redis again every probe interval until it answers.
type Redis struct {
	client    redis.Scripter
	cfg       redisConfig
	local     *Memory
	down      atomic.Bool
	downSince atomic.Int64 // Unix ns
	nextProbe atomic.Int64 // Unix ns
	failures  atomic.Uint64
	fallbacks atomic.Uint64
	outages   atomic.Uint64
}

var _ Store = (*Redis)(nil)

// NewRedis returns a store that keeps its state in Redis through client,
// such as a *redis.Client, *redis.ClusterClient or redis.UniversalClient;
// the client's pool is shared by all decisions. Call Close to release the
// local limiter it fails open to.
func NewRedis(client redis.Scripter, opts ...RedisOption) (*Redis, error) {
	if client == nil {
		return nil, errors.New("ratelimit: nil Redis client")
	}
	cfg := redisConfig{
		prefix:        "portcullis:ratelimit:",
		timeout:       50 * time.Millisecond,
		probeInterval: time.Second,
		logger:        slog.Default(),
	}
	for _, opt := range opts {
		opt.applyToRedis(&cfg)
	}
	if cfg.failure != FailOpen && cfg.failure != FailClosed {
		return nil, fmt.Errorf("ratelimit: unknown failure policy %d", int(cfg.failure))
	}
	r := &Redis{client: client, cfg: cfg}
	if cfg.failure == FailOpen {
		r.local = NewMemory()
	}
	return r, nil
}

// Allow implements [Store].
func (r *Redis) Allow(ctx context.Context, key string, limit Limit, n int) (Result, error) {
	if !limit.Valid() {
		return Result{Limit: limit}, ErrInvalidLimit
	}
	probe := false
	if r.down.Load() {
		now := time.Now().UnixNano()
		next := r.nextProbe.Load()
		if now < next || !r.nextProbe.CompareAndSwap(next, now+int64(r.cfg.probeInterval)) {
			return r.fallback(ctx, key, limit, n, nil)
		}
		probe = true
	}
	res, err := r.eval(ctx, key, limit, n)
	if err != nil {
		if ctx.Err() != nil {
			// The caller gave up: not Redis's failure.
			return Result{Limit: limit}, ctx.Err()
		}
		r.fail(err)
		return r.fallback(ctx, key, limit, n, err)
	}
	if probe {
		r.recover()
	}
	return res, nil
}

func (r *Redis) eval(ctx context.Context, key string, limit Limit, n int) (Result, error) {
	ctx, cancel := context.WithTimeout(ctx, r.cfg.timeout)
	defer cancel()
	reply, err := gcraScript.Run(ctx, r.client, []string{r.cfg.prefix + key},
		int64(limit.Interval()), limit.Burst, max(n, 0)).Int64Slice()
	if err != nil {
		return Result{Limit: limit}, err
	}
	if len(reply) != 4 {
		return Result{Limit: limit}, fmt.Errorf("ratelimit: unexpected reply of %d values from Redis", len(reply))
	}
	return Result{
		Allowed:    reply[0] == 1,
		Limit:      limit,
		Remaining:  int(reply[1]),
		RetryAfter: time.Duration(reply[2]) * time.Microsecond,
		ResetAfter: time.Duration(reply[3]) * time.Microsecond,
	}, nil
}

func (r *Redis) fallback(ctx context.Context, key string, limit Limit, n int, cause error) (Result, error) {
	r.fallbacks.Add(1)
	if r.local != nil {
		return r.local.Allow(ctx, key, limit, n)
	}
	if cause == nil {
		return Result{Limit: limit}, ErrUnavailable
	}
	return Result{Limit: limit}, fmt.Errorf("%w: %w", ErrUnavailable, cause)
}

func (r *Redis) fail(err error) {
	r.failures.Add(1)
	r.notify(Event{Kind: EventFailure, Err: err})
	if !r.down.CompareAndSwap(false, true) {
		return
	}
	r.outages.Add(1)
	now := time.Now()
	r.downSince.Store(now.UnixNano())
	r.nextProbe.Store(now.Add(r.cfg.probeInterval).UnixNano())
	r.cfg.logger.Warn("rate limit store unavailable",
		slog.String("store", "redis"),
		slog.String("policy", r.cfg.failure.String()),
		slog.Any("error", err))
	r.notify(Event{Kind: EventOutage, Err: err})
}

func (r *Redis) recover() {
	if !r.down.CompareAndSwap(true, false) {
		return
	}
	outage := time.Duration(time.Now().UnixNano() - r.downSince.Load())
	r.cfg.logger.Info("rate limit store recovered",
		slog.String("store", "redis"),
		slog.Duration("outage", outage))
	r.notify(Event{Kind: EventRecovery, Outage: outage})
}

func (r *Redis) notify(e Event) {
	if r.cfg.observe != nil {
		r.cfg.observe(e)
	}
}

// Stats returns the store's counters.
func (r *Redis) Stats() RedisStats {
	return RedisStats{
		Failures:  r.failures.Load(),
		Fallbacks: r.fallbacks.Load(),
		Outages:   r.outages.Load(),
		Down:      r.down.Load(),
	}
}

// Close releases the local limiter. It does not close the Redis client,
// which belongs to the caller.
func (r *Redis) Close() error {
	if r.local != nil {
		return r.local.Close()
	}
	return nil
}
