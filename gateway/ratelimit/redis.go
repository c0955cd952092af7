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
	// FailOpen decides with a local in-memory limiter when Redis fails: each gateway replica then enforces the limits on its
	// own, so a client may get up to its budget from each replica. Calls go
	// on; limits stay in force.
	FailOpen FailurePolicy = iota
	// FailClosed refuses the limited calls that Redis fails to decide:
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
	// EventOutage is the failure that opens the breaker: the last of
	// [WithFailureThreshold] failures in a row.
	EventOutage
	// EventRecovery is the success that closes the breaker.
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
	// Outages counts the times the breaker opened.
	Outages uint64
	// Down reports whether the breaker is open: Redis is considered
	// unavailable, and only probes ask it.
	Down bool
}

type redisConfig struct {
	prefix        string
	timeout       time.Duration
	failure       FailurePolicy
	probeInterval time.Duration
	threshold     int
	logger        *slog.Logger
	observe       func(Event)
}

// Redis is a [Store] in Redis, shared by every gateway replica that uses
// the same server and key prefix. Each decision is one script run (EVALSHA)
// in one round trip, on the Redis server's clock.
//
// A decision that Redis fails to take, by an error or by taking longer
// than its timeout ([WithTimeout]), follows the [FailurePolicy], for that
// decision only. A breaker keeps a run of failures from costing a timeout
// each: it opens after [WithFailureThreshold] failures in a row, failures
// of decisions under way together counting as one, so that one slow reply
// is not taken for an outage. While it is open, every decision follows the
// policy at once, and one decision per probe interval
// ([WithProbeInterval]) asks Redis again; the first that succeeds closes
// the breaker. The store logs each outage once when the breaker opens, and
// once when it closes.
type Redis struct {
	client redis.Scripter
	cfg    redisConfig
	local  *Memory
	now    func() int64 // Unix ns, monotonic

	down        atomic.Bool  // the breaker is open
	downSince   atomic.Int64 // Unix ns
	nextProbe   atomic.Int64 // Unix ns
	lastFailure atomic.Int64 // Unix ns, when the last failure in a row was counted
	inARow      atomic.Int64 // failures in a row, counted once per lastFailure
	failures    atomic.Uint64
	fallbacks   atomic.Uint64
	outages     atomic.Uint64
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
		threshold:     5,
		logger:        slog.Default(),
	}
	for _, opt := range opts {
		opt.applyToRedis(&cfg)
	}
	var problems []error
	if cfg.failure != FailOpen && cfg.failure != FailClosed {
		problems = append(problems, fmt.Errorf("unknown failure policy %d", int(cfg.failure)))
	}
	if cfg.timeout <= 0 {
		problems = append(problems, fmt.Errorf("timeout %s is not positive", cfg.timeout))
	}
	if cfg.probeInterval <= 0 {
		problems = append(problems, fmt.Errorf("probe interval %s is not positive", cfg.probeInterval))
	}
	if cfg.threshold < 1 {
		problems = append(problems, fmt.Errorf("failure threshold %d is below 1", cfg.threshold))
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("ratelimit: invalid Redis store options: %w", errors.Join(problems...))
	}
	r := &Redis{client: client, cfg: cfg, now: unixNanoClock(nil)}
	if cfg.failure == FailOpen {
		r.local = newMemory(memoryConfig{maxKeys: defaultMaxKeys, cleanupInterval: defaultCleanupInterval})
	}
	return r, nil
}

// Allow implements [Store].
func (r *Redis) Allow(ctx context.Context, key string, limit Limit, n int) (Result, error) {
	if !limit.Valid() {
		return Result{Limit: limit}, ErrInvalidLimit
	}
	start := r.now()
	probe := false
	if r.down.Load() {
		next := r.nextProbe.Load()
		if start < next || !r.nextProbe.CompareAndSwap(next, start+int64(r.cfg.probeInterval)) {
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
		r.fail(err, start, probe)
		return r.fallback(ctx, key, limit, n, err)
	}
	r.succeed()
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

// fail counts a failure of a decision that started at start, and opens the
// breaker at the threshold. A failure of a decision that started before
// the last failure was counted is not counted again: the two were under
// way together, and most likely failed for one reason, such as one slow
// reply that every decision waiting behind it timed out on.
func (r *Redis) fail(err error, start int64, probe bool) {
	r.failures.Add(1)
	r.notify(Event{Kind: EventFailure, Err: err})
	if probe {
		return // the breaker stays open; the next probe is already due later
	}
	now := r.now()
	for {
		last := r.lastFailure.Load()
		if start <= last {
			return
		}
		if r.lastFailure.CompareAndSwap(last, now) {
			break
		}
	}
	if r.inARow.Add(1) < int64(r.cfg.threshold) || !r.down.CompareAndSwap(false, true) {
		return
	}
	r.outages.Add(1)
	r.downSince.Store(now)
	r.nextProbe.Store(now + int64(r.cfg.probeInterval))
	r.cfg.logger.Warn("rate limit store unavailable",
		slog.String("store", "redis"),
		slog.String("policy", r.cfg.failure.String()),
		slog.Any("error", err))
	r.notify(Event{Kind: EventOutage, Err: err})
}

// succeed ends a run of failures, and closes the breaker if it was open:
// Redis answered.
func (r *Redis) succeed() {
	if r.inARow.Load() != 0 {
		r.inARow.Store(0)
	}
	if !r.down.Load() || !r.down.CompareAndSwap(true, false) {
		return
	}
	outage := time.Duration(r.now() - r.downSince.Load())
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
