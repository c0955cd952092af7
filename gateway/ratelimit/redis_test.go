package ratelimit_test

import (
	"context"
	"errors"
	"log/slog"
	"math"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"

	"github.com/portcullis/portcullis/gateway/catalog"
	"github.com/portcullis/portcullis/gateway/ratelimit"
	"github.com/portcullis/portcullis/internal/logtest"
	"github.com/portcullis/portcullis/internal/redistest"
)

func TestRedisGCRA(t *testing.T) {
	t.Parallel()
	client, prefix := sharedRedis(t, 4)
	store, err := ratelimit.NewRedis(client, ratelimit.WithKeyPrefix(prefix))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	ctx := context.Background()
	// One back every 36s: none comes back during the test.
	limit := ratelimit.Limit{Requests: 100, Period: time.Hour, Burst: 20}
	start := time.Now()
	for i := range 20 {
		r, err := store.Allow(ctx, "key", limit, 1)
		if err != nil {
			t.Fatal(err)
		}
		if !r.Allowed || r.Remaining != 19-i || r.RetryAfter != 0 || r.Limit != limit {
			t.Fatalf("request %d: got %+v, want allowed with %d remaining", i+1, r, 19-i)
		}
	}
	r, err := store.Allow(ctx, "key", limit, 1)
	elapsed := time.Since(start)
	if err != nil {
		t.Fatal(err)
	}
	// The server's clock moved by at most elapsed since the first request.
	if r.Allowed || r.Remaining != 0 ||
		r.RetryAfter > 36*time.Second || r.RetryAfter < 36*time.Second-elapsed ||
		r.ResetAfter > 720*time.Second || r.ResetAfter < 720*time.Second-elapsed {
		t.Fatalf("request 21: got %+v, want denied, retry within %s of 36s, reset within it of 12m", r, elapsed)
	}
	// The key expires when its budget is back in full.
	ttl, err := client.PTTL(ctx, prefix+"key").Result()
	if err != nil {
		t.Fatal(err)
	}
	if ttl <= 720*time.Second-elapsed-time.Second || ttl > 720*time.Second {
		t.Fatalf("PTTL = %s, want about 12m", ttl)
	}
	// Cost and peek.
	if r, err := store.Allow(ctx, "other", limit, 0); err != nil || !r.Allowed || r.Remaining != 20 {
		t.Fatalf("peek: %+v, %v; want allowed with 20 remaining", r, err)
	}
	if r, err := store.Allow(ctx, "other", limit, 15); err != nil || !r.Allowed || r.Remaining != 5 {
		t.Fatalf("cost 15: %+v, %v; want allowed with 5 remaining", r, err)
	}
	if r, err := store.Allow(ctx, "other", limit, 6); err != nil || r.Allowed || r.Remaining != 5 {
		t.Fatalf("cost 6: %+v, %v; want denied with 5 remaining", r, err)
	}
	if _, err := store.Allow(ctx, "k", ratelimit.Limit{}, 1); !errors.Is(err, ratelimit.ErrInvalidLimit) {
		t.Fatalf("zero limit: error %v, want ErrInvalidLimit", err)
	}
	if got := store.Stats(); got != (ratelimit.RedisStats{}) {
		t.Fatalf("Stats = %+v, want zero", got)
	}
}

func TestNewRedisNilClient(t *testing.T) {
	t.Parallel()
	if _, err := ratelimit.NewRedis(nil); err == nil {
		t.Fatal("NewRedis(nil) succeeded")
	}
}

// replicas returns n stores on n clients of the shared Redis, as n gateway
// replicas would have, sharing one key prefix.
func replicas(t *testing.T, n int) []*ratelimit.Redis {
	t.Helper()
	_, prefix := sharedRedis(t, 1)
	stores := make([]*ratelimit.Redis, n)
	for i := range stores {
		store, err := ratelimit.NewRedis(newRedisClient(t, redistest.SharedAddr, 16), ratelimit.WithKeyPrefix(prefix), ratelimit.WithTimeout(time.Second))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = store.Close() })
		stores[i] = store
	}
	return stores
}

// hammered is what hammer saw: the calls admitted per store, and two
// windows of time: wide, from before the first call was sent to after the
// last answer came back, which holds every decision; narrow, from the first
// answer to the sending of the last call, which every decision of a
// continuous load spans.
type hammered struct {
	admitted     []int64
	wide, narrow time.Duration
}

// hammer has workers goroutines per store call Allow until stop returns
// true, after warming up every connection.
func hammer(t *testing.T, stores []*ratelimit.Redis, workers int, limit ratelimit.Limit, stop func(attempts int64) bool) hammered {
	t.Helper()
	for _, store := range stores {
		var wg sync.WaitGroup
		for range workers {
			wg.Go(func() { _, _ = store.Allow(context.Background(), "warm-up", limit, 0) })
		}
		wg.Wait()
	}
	admitted := make([]atomic.Int64, len(stores))
	var (
		attempts   atomic.Int64
		failed     atomic.Value
		wg         sync.WaitGroup
		mu         sync.Mutex
		firstSent  time.Time
		firstReply time.Time
		lastSent   time.Time
		lastReply  time.Time
	)
	for i, store := range stores {
		for range workers {
			wg.Go(func() {
				var mySent, myFirstReply, myLastSent, myLastReply time.Time
				for !stop(attempts.Add(1)) {
					sent := time.Now()
					r, err := store.Allow(context.Background(), "budget", limit, 1)
					reply := time.Now()
					if err != nil {
						failed.Store(err)
						return
					}
					if mySent.IsZero() {
						mySent, myFirstReply = sent, reply
					}
					myLastSent, myLastReply = sent, reply
					if r.Allowed {
						admitted[i].Add(1)
					}
				}
				mu.Lock()
				defer mu.Unlock()
				if firstSent.IsZero() || mySent.Before(firstSent) {
					firstSent = mySent
				}
				if firstReply.IsZero() || myFirstReply.Before(firstReply) {
					firstReply = myFirstReply
				}
				if myLastSent.After(lastSent) {
					lastSent = myLastSent
				}
				if myLastReply.After(lastReply) {
					lastReply = myLastReply
				}
			})
		}
	}
	wg.Wait()
	if err, _ := failed.Load().(error); err != nil {
		t.Fatal(err)
	}
	for _, store := range stores {
		if s := store.Stats(); s.Failures != 0 || s.Fallbacks != 0 {
			t.Fatalf("a replica fell back: %+v", s)
		}
	}
	h := hammered{admitted: make([]int64, len(stores)), wide: lastReply.Sub(firstSent), narrow: lastSent.Sub(firstReply)}
	for i := range admitted {
		h.admitted[i] = admitted[i].Load()
	}
	return h
}

func TestRedisReplicasShareABudget(t *testing.T) {
	t.Parallel()
	stores := replicas(t, 2)
	// A budget that does not refill during the test: 1000 at once, then
	// one every 3.6s.
	limit := ratelimit.Limit{Requests: 1000, Period: time.Hour, Burst: 1000}
	h := hammer(t, stores, 8, limit, func(attempts int64) bool { return attempts > 3000 })
	total := h.admitted[0] + h.admitted[1]
	if want := 1000 + int64(h.wide/(3600*time.Millisecond)); total < 1000 || total > want {
		t.Fatalf("admitted %d (%v) in %s, want the budget of 1000", total, h.admitted, h.wide)
	}
	if h.admitted[0] == 0 || h.admitted[1] == 0 {
		t.Fatalf("admitted %v: one replica got nothing", h.admitted)
	}
}

func TestRedisReplicasShareARate(t *testing.T) {
	t.Parallel()
	stores := replicas(t, 2)
	// 200 a second, burst 100, for 3 seconds under a load well above it.
	// The burst covers pauses of the whole process of up to half a second,
	// after which admissions lost would not come back.
	limit := ratelimit.Limit{Requests: 200, Period: time.Second, Burst: 100}
	deadline := time.Now().Add(3 * time.Second)
	h := hammer(t, stores, 8, limit, func(int64) bool { return time.Now().After(deadline) })
	total := float64(h.admitted[0] + h.admitted[1])
	most := float64(limit.Burst) + float64(limit.Requests)*h.wide.Seconds()
	least := float64(limit.Burst) + float64(limit.Requests)*h.narrow.Seconds()
	if total > most+1 || total < 0.99*least {
		t.Fatalf("admitted %.0f (%v) in %s to %s, want at most %.1f, and at least 99%% of %.1f", total, h.admitted, h.narrow, h.wide, most, least)
	}
	t.Logf("admitted %.0f (%v); the rate allows %.1f to %.1f", total, h.admitted, least, most)
}

func TestRedisOutage(t *testing.T) {
	t.Parallel()
	limit := ratelimit.Limit{Requests: 5, Period: time.Hour, Burst: 5}
	tests := []struct {
		name   string
		policy ratelimit.FailurePolicy
		// during checks the decisions while Redis is down.
		during func(t *testing.T, allow func() (ratelimit.Result, error))
	}{
		{
			name:   "fail open to the local limiter",
			policy: ratelimit.FailOpen,
			during: func(t *testing.T, allow func() (ratelimit.Result, error)) {
				// The local limiter knows nothing of Redis's count: its own
				// burst of 5, then no more.
				for i := range 5 {
					r, err := allow()
					if err != nil || !r.Allowed || r.Remaining != 4-i {
						t.Fatalf("local request %d: %+v, %v; want allowed with %d remaining", i+1, r, err, 4-i)
					}
				}
				if r, err := allow(); err != nil || r.Allowed {
					t.Fatalf("local request 6: %+v, %v; want denied", r, err)
				}
			},
		},
		{
			name:   "fail closed",
			policy: ratelimit.FailClosed,
			during: func(t *testing.T, allow func() (ratelimit.Result, error)) {
				for range 5 {
					if r, err := allow(); !errors.Is(err, ratelimit.ErrUnavailable) || r.Allowed {
						t.Fatalf("got %+v, %v; want ErrUnavailable", r, err)
					}
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			server := newRedisServer(t)
			client := newRedisClient(t, server.Addr(), 4)
			logs := new(logtest.Buffer)
			var events sync.Map // EventKind → *atomic.Int64
			store, err := ratelimit.NewRedis(client,
				ratelimit.WithKeyPrefix("outage:"),
				ratelimit.WithFailurePolicy(tt.policy),
				ratelimit.WithTimeout(200*time.Millisecond),
				ratelimit.WithProbeInterval(20*time.Millisecond),
				ratelimit.WithLogger(slog.New(slog.NewTextHandler(logs, nil))),
				ratelimit.WithObserver(func(e ratelimit.Event) {
					n, _ := events.LoadOrStore(e.Kind, new(atomic.Int64))
					n.(*atomic.Int64).Add(1)
				}))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = store.Close() })
			event := func(k ratelimit.EventKind) int64 {
				n, ok := events.Load(k)
				if !ok {
					return 0
				}
				return n.(*atomic.Int64).Load()
			}
			allow := func() (ratelimit.Result, error) {
				return store.Allow(context.Background(), "client", limit, 1)
			}

			// Redis decides: 2 of the 5 are spent there.
			for i := range 2 {
				if r, err := allow(); err != nil || !r.Allowed || r.Remaining != 4-i {
					t.Fatalf("request %d: %+v, %v", i+1, r, err)
				}
			}

			server.Stop()
			tt.during(t, allow)
			stats := store.Stats()
			if !stats.Down || stats.Outages != 1 || stats.Failures < 1 || stats.Fallbacks < 5 {
				t.Fatalf("Stats during the outage = %+v", stats)
			}
			if got := strings.Count(logs.String(), "rate limit store unavailable"); got != 1 {
				t.Fatalf("the outage was logged %d times, want once:\n%s", got, logs.String())
			}
			if event(ratelimit.EventOutage) != 1 || event(ratelimit.EventFailure) != int64(stats.Failures) {
				t.Fatalf("observed %d outages and %d failures, want 1 and %d", event(ratelimit.EventOutage), event(ratelimit.EventFailure), stats.Failures)
			}

			// Redis comes back, empty: the store notices by itself.
			server.Start()
			deadline := time.Now().Add(10 * time.Second)
			for store.Stats().Down {
				if time.Now().After(deadline) {
					t.Fatalf("no recovery: %+v\n%s", store.Stats(), logs.String())
				}
				_, _ = allow()
				time.Sleep(5 * time.Millisecond)
			}
			// The probe that recovered was decided by the new Redis; the
			// next requests are too.
			r, err := allow()
			if err != nil || !r.Allowed || r.Remaining != 3 {
				t.Fatalf("after recovery: %+v, %v; want Redis's count (3 remaining)", r, err)
			}
			if got := strings.Count(logs.String(), "rate limit store recovered"); got != 1 {
				t.Fatalf("the recovery was logged %d times, want once:\n%s", got, logs.String())
			}
			if got := strings.Count(logs.String(), "rate limit store unavailable"); got != 1 {
				t.Fatalf("the outage was logged %d times, want once:\n%s", got, logs.String())
			}
			if event(ratelimit.EventRecovery) != 1 {
				t.Fatalf("observed %d recoveries, want 1", event(ratelimit.EventRecovery))
			}
			if s := store.Stats(); s.Down || s.Outages != 1 {
				t.Fatalf("Stats after recovery = %+v", s)
			}
		})
	}
}

func TestInterceptorWithRedis(t *testing.T) {
	t.Parallel()
	redisClient, prefix := sharedRedis(t, 4)
	store, err := ratelimit.NewRedis(redisClient, ratelimit.WithKeyPrefix(prefix))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	// 20 an hour, burst 20, for callers without a tier: none comes back
	// during the test.
	f := newFixture(t, compiledCatalog(t), store, ratelimit.WithPolicy(ratelimit.Policy{
		Tiers: map[string]ratelimit.Tier{"": {Override: &catalog.RateLimit{Requests: 20, Period: time.Hour, Burst: 20}}},
	}))
	retryIn := regexp.MustCompile(`^rate limit exceeded for /example\.orders\.v1\.OrdersService/GetOrder: retry in 2m5\d\.\d+s$`)
	for _, protocol := range protocols[:2] {
		client := f.orders(protocol.opts...)
		id := "acme-" + protocol.name
		start := time.Now()
		for i := range 20 {
			resp, err := getOrderAs(context.Background(), client, id, "")
			if err != nil {
				t.Fatalf("%s call %d: %v", protocol.name, i+1, err)
			}
			if i == 0 {
				wantFields(t, resp.Header(), `"default";q=20;w=3600`, `"default";r=19;t=180`, "")
			}
		}
		_, err := getOrderAs(context.Background(), client, id, "")
		var cerr *connect.Error
		if !errors.As(err, &cerr) || cerr.Code() != connect.CodeResourceExhausted || !retryIn.MatchString(cerr.Message()) {
			t.Fatalf("%s call 21: %v, want ResourceExhausted", protocol.name, err)
		}
		// The first token comes back 180s after the first call, less the
		// seconds the calls took on a loaded machine: at least least.
		least := int(math.Ceil((180*time.Second - time.Since(start)).Seconds()))
		wait := cerr.Meta().Get("Retry-After")
		if n, err := strconv.Atoi(wait); err != nil || n < least || n > 180 {
			t.Fatalf("Retry-After = %q, want %d to 180", wait, least)
		}
		wantFields(t, cerr.Meta(), `"default";q=20;w=3600`, `"default";r=0;t=`+wait, wait)
		// The decision is in Redis, under the prefix, by client id.
		if n, err := redisClient.Exists(context.Background(), prefix+getOrder+"|id:"+id).Result(); err != nil || n != 1 {
			t.Fatalf("key of %s in Redis: %d, %v", id, n, err)
		}
	}
}

// TestRedisSlowReplyIsNotAnOutage makes Redis answer nothing for 100ms
// (DEBUG SLEEP 0.1) under a steady load of decisions that time out after
// 50ms and fail closed: only the decisions under way while Redis sleeps
// fail, not a probe interval's worth of them after it.
func TestRedisSlowReplyIsNotAnOutage(t *testing.T) {
	t.Parallel()
	server := newRedisServer(t)
	store, err := ratelimit.NewRedis(newRedisClient(t, server.Addr(), 16),
		ratelimit.WithKeyPrefix("slow:"),
		ratelimit.WithFailurePolicy(ratelimit.FailClosed),
		ratelimit.WithTimeout(50*time.Millisecond),
		ratelimit.WithProbeInterval(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	limit := ratelimit.Limit{Requests: 1_000_000, Period: time.Second, Burst: 1_000_000}
	// Warm up: the script loaded, connections open. The first decisions
	// of a loaded machine may take longer than the timeout.
	for ok, deadline := 0, time.Now().Add(10*time.Second); ok < 20; {
		if _, err := store.Allow(context.Background(), "warm-up", limit, 1); err == nil {
			ok++
		} else if time.Now().After(deadline) {
			t.Fatal(err)
		}
	}
	base := store.Stats()

	type decision struct {
		sent   time.Time
		failed bool
	}
	var (
		mu        sync.Mutex
		decisions []decision
		wg        sync.WaitGroup
	)
	start := time.Now()
	stop := start.Add(1500 * time.Millisecond)
	for w := range 4 {
		wg.Go(func() {
			key := "worker-" + strconv.Itoa(w)
			for time.Now().Before(stop) {
				sent := time.Now()
				_, err := store.Allow(context.Background(), key, limit, 1)
				if err != nil && !errors.Is(err, ratelimit.ErrUnavailable) {
					t.Errorf("decision: %v", err)
					return
				}
				mu.Lock()
				decisions = append(decisions, decision{sent: sent, failed: err != nil})
				mu.Unlock()
				time.Sleep(2 * time.Millisecond)
			}
		})
	}
	time.Sleep(300 * time.Millisecond)
	sleepStart := time.Now()
	if err := newRedisClient(t, server.Addr(), 1).Do(context.Background(), "DEBUG", "SLEEP", "0.1").Err(); err != nil {
		t.Fatal(err)
	}
	sleepEnd := time.Now()
	wg.Wait()

	var failed, late, after int
	for _, d := range decisions {
		if d.sent.After(sleepEnd.Add(100 * time.Millisecond)) {
			after++
			if d.failed {
				late++
			}
		}
		if d.failed {
			failed++
		}
	}
	t.Logf("%d decisions, %d failed; Redis slept from %s to %s; %d decisions sent from 100ms after, %d of them failed; %+v",
		len(decisions), failed, sleepStart.Sub(start), sleepEnd.Sub(start), after, late, store.Stats())
	if failed == 0 {
		t.Fatal("no decision failed: Redis did not sleep")
	}
	// A spurious timeout of a loaded machine may fail a few decisions
	// anywhere; an outage taken for real fails all of them for a second.
	if late*20 > after || after < 20 {
		t.Fatalf("%d of the %d decisions sent from 100ms after Redis woke up failed", late, after)
	}
	if s := store.Stats(); s.Outages != base.Outages || s.Down {
		t.Fatalf("Stats = %+v, and %+v before: the breaker opened", s, base)
	}
}

// TestRedisBreaker stops Redis: each decision asks Redis and fails on its
// own until the threshold, then the breaker opens and decisions fail at
// once, until a probe finds Redis back.
func TestRedisBreaker(t *testing.T) {
	t.Parallel()
	server := newRedisServer(t)
	const probe = 200 * time.Millisecond
	store, err := ratelimit.NewRedis(newRedisClient(t, server.Addr(), 4),
		ratelimit.WithKeyPrefix("breaker:"),
		ratelimit.WithFailurePolicy(ratelimit.FailClosed),
		ratelimit.WithTimeout(200*time.Millisecond),
		ratelimit.WithFailureThreshold(3),
		ratelimit.WithProbeInterval(probe),
		ratelimit.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	limit := ratelimit.Limit{Requests: 5, Period: time.Hour, Burst: 5}
	allow := func() (ratelimit.Result, error) { return store.Allow(context.Background(), "client", limit, 1) }
	if r, err := allow(); err != nil || !r.Allowed {
		t.Fatalf("before the outage: %+v, %v", r, err)
	}

	server.Stop()
	for i := range 3 {
		if _, err := allow(); !errors.Is(err, ratelimit.ErrUnavailable) {
			t.Fatalf("failure %d: %v, want ErrUnavailable", i+1, err)
		}
		s := store.Stats()
		if s.Failures != uint64(i+1) || s.Down != (i == 2) {
			t.Fatalf("after failure %d: Stats = %+v, want %d failures and the breaker open only at the third", i+1, s, i+1)
		}
	}
	opened := time.Now()
	for range 100 {
		if _, err := allow(); !errors.Is(err, ratelimit.ErrUnavailable) {
			t.Fatalf("breaker open: %v, want ErrUnavailable", err)
		}
	}
	// Only probes asked Redis meanwhile: one per probe interval.
	if s, most := store.Stats(), 3+1+uint64(time.Since(opened)/probe); s.Failures > most || s.Fallbacks < 103 {
		t.Fatalf("breaker open: Stats = %+v, want at most %d failures", s, most)
	}

	server.Start()
	deadline := time.Now().Add(10 * time.Second)
	for store.Stats().Down {
		if time.Now().After(deadline) {
			t.Fatalf("no recovery: %+v", store.Stats())
		}
		_, _ = allow()
		time.Sleep(5 * time.Millisecond)
	}
	if r, err := allow(); err != nil || !r.Allowed {
		t.Fatalf("after recovery: %+v, %v", r, err)
	}
	if s := store.Stats(); s.Outages != 1 || s.Down {
		t.Fatalf("after recovery: Stats = %+v", s)
	}
}
