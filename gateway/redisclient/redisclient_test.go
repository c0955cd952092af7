package redisclient_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/portcullis/portcullis/gateway/config"
	"github.com/portcullis/portcullis/gateway/ratelimit"
	"github.com/portcullis/portcullis/gateway/redisclient"
	"github.com/portcullis/portcullis/gateway/revocation"
	"github.com/portcullis/portcullis/internal/redistest"
)

// newClient returns a client of s, closed when the test ends.
func newClient(t *testing.T, s config.RedisServers) redis.UniversalClient {
	t.Helper()
	client, err := redisclient.New(s, redisclient.Timeouts{Dial: time.Second, Read: time.Second, Write: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.Close() })
	return client
}

// newStore returns a rate limit store through client, closed when the
// test ends.
func newStore(t *testing.T, client redis.UniversalClient, opts ...ratelimit.RedisOption) *ratelimit.Redis {
	t.Helper()
	store, err := ratelimit.NewRedis(client, append([]ratelimit.RedisOption{ratelimit.WithKeyPrefix("rl:"), ratelimit.WithTimeout(time.Second)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	return store
}

// spend has 8 goroutines per store ask for one call each of key's budget
// until attempts calls were asked in all, and returns the calls admitted
// per store. Any error fails the test.
func spend(t *testing.T, stores []*ratelimit.Redis, key string, limit ratelimit.Limit, attempts int64) []int64 {
	t.Helper()
	var asked atomic.Int64
	return spendUntil(t, stores, key, limit, func() bool { return asked.Add(1) > attempts })
}

// spendUntil is spend asking until stop returns true.
func spendUntil(t *testing.T, stores []*ratelimit.Redis, key string, limit ratelimit.Limit, stop func() bool) []int64 {
	t.Helper()
	admitted := make([]atomic.Int64, len(stores))
	var (
		failed atomic.Value
		wg     sync.WaitGroup
	)
	for i, store := range stores {
		for range 8 {
			wg.Go(func() {
				for !stop() {
					r, err := store.Allow(context.Background(), key, limit, 1)
					if err != nil {
						failed.Store(err)
						return
					}
					if r.Allowed {
						admitted[i].Add(1)
					}
				}
			})
		}
	}
	wg.Wait()
	if err, _ := failed.Load().(error); err != nil {
		t.Fatal(err)
	}
	out := make([]int64, len(stores))
	for i := range admitted {
		out[i] = admitted[i].Load()
	}
	return out
}

func sum(v []int64) (n int64) {
	for _, x := range v {
		n += x
	}
	return n
}

// Three gateway replicas' stores, each on its own client of a Redis
// Cluster seeded by a different node, share every budget exactly, for
// keys spread over the three nodes' slots: the script's one key routes
// it, and no decision fails or falls back.
func TestClusterSharesABudget(t *testing.T) {
	t.Parallel()
	cluster := redistest.StartCluster(t)
	var stores []*ratelimit.Redis
	for _, addr := range cluster.Addrs() {
		stores = append(stores, newStore(t, newClient(t, config.RedisServers{Addrs: []string{addr}, Cluster: true})))
	}
	// 300 at once, then one every 12s: nothing refills during the test.
	limit := ratelimit.Limit{Requests: 300, Period: time.Hour, Burst: 300}
	for i := range 6 {
		key := fmt.Sprintf("client-%d", i)
		start := time.Now()
		admitted := spend(t, stores, key, limit, 900)
		if total, most := sum(admitted), int64(300+time.Since(start)/(12*time.Second)); total < 300 || total > most {
			t.Errorf("%s: admitted %d %v, want the budget of 300", key, total, admitted)
		}
	}
	for i, s := range stores {
		if st := s.Stats(); st.Failures != 0 || st.Fallbacks != 0 {
			t.Errorf("store %d: %+v, want no failure", i, st)
		}
	}
	// The keys are spread over every node.
	for _, addr := range cluster.Addrs() {
		keys, err := redistest.Client(t, addr).Keys(context.Background(), "rl:client-*").Result()
		if err != nil || len(keys) == 0 {
			t.Errorf("node %s holds keys %v (%v), want some of the six", addr, keys, err)
		}
	}
}

// A revocation published through one node of a Cluster reaches followers
// whose subscriptions are on another node: pub/sub is broadcast across
// the Cluster. A follower that starts later reads it from the sorted set.
func TestClusterCarriesRevocations(t *testing.T) {
	t.Parallel()
	cluster := redistest.StartCluster(t)
	ctx := context.Background()
	admin := cluster.Client(t)
	// A prefix whose key and channel are on different nodes, so that the
	// publish crosses the Cluster.
	prefix := ""
	for i := 0; prefix == ""; i++ {
		p := fmt.Sprintf("rv%d:", i)
		if owner(t, admin, p+"set") != owner(t, admin, p+"events") {
			prefix = p
		}
	}
	open := func(seed string) *revocation.Redis {
		r, err := revocation.NewRedis(newClient(t, config.RedisServers{Addrs: []string{seed}, Cluster: true}), revocation.WithPrefix(prefix), revocation.WithTimeout(time.Second))
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	publisher := open(cluster.Addrs()[0])
	follow := func(seed string) *revocation.Set {
		set, err := revocation.New(ctx, revocation.WithRedis(open(seed)))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(set.Close)
		wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		if err := set.WaitReady(wctx); err != nil {
			t.Fatal(err)
		}
		return set
	}
	followers := []*revocation.Set{follow(cluster.Addrs()[1]), follow(cluster.Addrs()[2])}
	const iss = "https://issuer.test"
	start := time.Now()
	if err := publisher.Publish(ctx, revocation.Revocation{Issuer: iss, TokenID: "j1", Expires: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	for i, set := range followers {
		for !set.Revoked(iss, "j1", "", time.Time{}) {
			if time.Since(start) > time.Second {
				t.Fatalf("follower %d has not heard of the revocation after a second", i)
			}
			time.Sleep(time.Millisecond)
		}
	}
	t.Logf("a revocation published on one node reached two followers in %v", time.Since(start))
	if late := follow(cluster.Addrs()[0]); !late.Revoked(iss, "j1", "", time.Time{}) {
		t.Fatal("a follower started later is ready without the revocation")
	}
}

// owner returns the address of the node serving key's slot.
func owner(t *testing.T, c *redis.ClusterClient, key string) string {
	t.Helper()
	ctx := context.Background()
	slot, err := c.ClusterKeySlot(ctx, key).Result()
	if err != nil {
		t.Fatal(err)
	}
	slots, err := c.ClusterSlots(ctx).Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range slots {
		if int64(s.Start) <= slot && slot <= int64(s.End) {
			return s.Nodes[0].Addr
		}
	}
	t.Fatalf("no node serves slot %d", slot)
	return ""
}

// Two stores on failover clients share a budget through the master the
// Sentinel names. When the master dies, each store follows its failure
// policy until the Sentinel has promoted the replica: failing open, it
// decides with its local limiter (its own burst, not the shared budget);
// failing closed, it refuses with ErrUnavailable. Then the breaker closes
// by itself, and the budget spent before the failover is still spent: the
// replica had it.
func TestSentinelFailover(t *testing.T) {
	t.Parallel()
	for _, policy := range []ratelimit.FailurePolicy{ratelimit.FailOpen, ratelimit.FailClosed} {
		t.Run(policy.String(), func(t *testing.T) {
			t.Parallel()
			sentinel := redistest.StartSentinel(t)
			servers := config.RedisServers{Addrs: sentinel.Addrs(), MasterName: sentinel.MasterName}
			var outages, recoveries atomic.Int64
			var stores []*ratelimit.Redis
			for range 2 {
				stores = append(stores, newStore(t, newClient(t, servers),
					ratelimit.WithFailurePolicy(policy),
					ratelimit.WithTimeout(200*time.Millisecond),
					ratelimit.WithFailureThreshold(3), ratelimit.WithLogger(slog.New(slog.DiscardHandler)),
					ratelimit.WithProbeInterval(50*time.Millisecond),
					ratelimit.WithObserver(func(e ratelimit.Event) {
						switch e.Kind {
						case ratelimit.EventOutage:
							outages.Add(1)
						case ratelimit.EventRecovery:
							recoveries.Add(1)
						}
					})))
			}
			// Other stores, patient ones, spend and check the budget on
			// either side of the failover, so that a slow reply on a
			// loaded machine is not taken for it.
			patient := []*ratelimit.Redis{newStore(t, newClient(t, servers)), newStore(t, newClient(t, servers))}
			limit := ratelimit.Limit{Requests: 100, Period: time.Hour, Burst: 100}
			admitted := spend(t, patient, "shared", limit, 150)
			if total := sum(admitted); total != 100 {
				t.Fatalf("admitted %d %v before the failover, want the budget of 100", total, admitted)
			}
			time.Sleep(100 * time.Millisecond) // the replica catches up

			// The master dies. Until the promotion, decisions follow the policy.
			var during []string
			var mu sync.Mutex
			stop := make(chan struct{})
			var wg sync.WaitGroup
			for i, store := range stores {
				wg.Go(func() {
					for {
						select {
						case <-stop:
							return
						default:
						}
						r, err := store.Allow(context.Background(), fmt.Sprintf("during-%d", i), limit, 1)
						mu.Lock()
						switch {
						case errors.Is(err, ratelimit.ErrUnavailable):
							during = append(during, "unavailable")
						case err != nil:
							during = append(during, err.Error())
						case store.Stats().Down && r.Allowed:
							during = append(during, "local")
						}
						mu.Unlock()
						time.Sleep(5 * time.Millisecond)
					}
				})
			}
			took := sentinel.Failover(t)
			deadline := time.Now().Add(15 * time.Second)
			for stores[0].Stats().Down || stores[1].Stats().Down || recoveries.Load() < outages.Load() {
				if time.Now().After(deadline) {
					t.Fatalf("no recovery 15s after the failover: %+v %+v", stores[0].Stats(), stores[1].Stats())
				}
				time.Sleep(10 * time.Millisecond)
			}
			close(stop)
			wg.Wait()
			recovered := time.Since(deadline.Add(-15 * time.Second))
			if outages.Load() == 0 {
				t.Fatal("the breaker never opened")
			}
			want := map[ratelimit.FailurePolicy]string{ratelimit.FailOpen: "local", ratelimit.FailClosed: "unavailable"}[policy]
			counts := map[string]int{}
			for _, d := range during {
				counts[d]++
			}
			if counts[want] == 0 || len(counts) != 1 {
				t.Fatalf("decisions while the master was down: %v, want only %q", counts, want)
			}
			t.Logf("%s: promotion %v after the kill, breakers closed %v later; meanwhile %v", policy, took, recovered, counts)

			// The spent budget survived on the promoted replica.
			for i, store := range patient {
				r, err := store.Allow(context.Background(), "shared", limit, 1)
				if err != nil || r.Allowed {
					t.Fatalf("store %d after the failover: %+v, %v; want the budget still spent", i, r, err)
				}
			}
			if s := stores[0].Stats(); s.Down {
				t.Fatalf("stats %+v", s)
			}
		})
	}
}

// New refuses what names no Redis, and Describe names each kind without
// secrets.
func TestNewAndDescribe(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		s    config.RedisServers
		want string // an error, or the description
	}{
		{config.RedisServers{Addrs: []string{"a:1"}, Password: "hunter2"}, "a:1"},
		{config.RedisServers{Addrs: []string{"a:1", "b:2"}, Cluster: true}, "cluster a:1,b:2"},
		{config.RedisServers{Addrs: []string{"s:1"}, MasterName: "m", SentinelPassword: "hunter2"}, "sentinel master m via s:1"},
		{config.RedisServers{}, "redisclient: no address"},
		{config.RedisServers{Addrs: []string{"a"}}, `redisclient: "a" is not host:port`},
		{config.RedisServers{Addrs: []string{"a:1", "b:2"}}, "redisclient: several addresses name a Cluster's nodes or Sentinels: say which"},
		{config.RedisServers{Addrs: []string{"a:1"}, Cluster: true, DB: 1}, "redisclient: database 1: a Cluster has only database 0"},
		{config.RedisServers{Addrs: []string{"a:1"}, Cluster: true, MasterName: "m"}, "redisclient: a Cluster has no Sentinels: a master name and a Cluster do not go together"},
		{config.RedisServers{Addrs: []string{"a:1"}, TLSCAFile: "ca.pem"}, "redisclient: a CA file without TLS"},
	} {
		client, err := redisclient.New(tt.s, redisclient.Timeouts{})
		got := redisclient.Describe(tt.s)
		if err != nil {
			got = err.Error()
		} else {
			_ = client.Close()
		}
		if got != tt.want || strings.Contains(got, "hunter2") {
			t.Errorf("%+v: %q, want %q", tt.s, got, tt.want)
		}
	}
}

// A slot moves from one node to another while three stores decide on a
// key in it: the client follows the ASK redirections during the move and
// the MOVED ones after it, within each decision. None fails, and the
// budget is kept exactly, the key having moved with its count.
func TestClusterSlotMovesUnderLoad(t *testing.T) {
	t.Parallel()
	cluster := redistest.StartCluster(t)
	var stores []*ratelimit.Redis
	for _, addr := range cluster.Addrs() {
		stores = append(stores, newStore(t, newClient(t, config.RedisServers{Addrs: []string{addr}, Cluster: true})))
	}
	ctx := context.Background()
	admin := cluster.Client(t)
	const key = "rl:moving"
	src := owner(t, admin, key)
	dst := cluster.Addrs()[0]
	if dst == src {
		dst = cluster.Addrs()[1]
	}
	srcClient, dstClient := redistest.Client(t, src), redistest.Client(t, dst)
	srcID, err := srcClient.ClusterMyID(ctx).Result()
	if err != nil {
		t.Fatal(err)
	}
	dstID, err := dstClient.ClusterMyID(ctx).Result()
	if err != nil {
		t.Fatal(err)
	}
	slot, err := admin.ClusterKeySlot(ctx, key).Result()
	if err != nil {
		t.Fatal(err)
	}

	limit := ratelimit.Limit{Requests: 300, Period: time.Hour, Burst: 300}
	// Spend a third first, so that the key exists and moves with a count.
	if got := sum(spend(t, stores, "moving", limit, 100)); got != 100 {
		t.Fatalf("admitted %d of the first 100", got)
	}
	var moved atomic.Bool
	var asked atomic.Int64
	result := make(chan []int64, 1)
	go func() {
		result <- spendUntil(t, stores, "moving", limit, func() bool { return moved.Load() && asked.Add(1) > 1000 })
	}()
	do := func(c *redis.Client, args ...any) {
		t.Helper()
		if err := c.Do(ctx, args...).Err(); err != nil {
			t.Fatalf("%v: %v", args, err)
		}
		time.Sleep(50 * time.Millisecond) // decisions go on meanwhile
	}
	time.Sleep(50 * time.Millisecond)
	do(dstClient, "CLUSTER", "SETSLOT", slot, "IMPORTING", srcID)
	do(srcClient, "CLUSTER", "SETSLOT", slot, "MIGRATING", dstID)
	host, port, _ := strings.Cut(dst, ":")
	do(srcClient, "MIGRATE", host, port, "", 0, 5000, "KEYS", key)
	for _, addr := range cluster.Addrs() {
		do(redistest.Client(t, addr), "CLUSTER", "SETSLOT", slot, "NODE", dstID)
	}
	moved.Store(true)
	admitted := <-result
	if got := owner(t, admin, key); got != dst {
		t.Fatalf("the slot is served by %s, want %s", got, dst)
	}
	if n, err := dstClient.Exists(ctx, key).Result(); err != nil || n != 1 {
		t.Fatalf("the key is not on %s: %d, %v", dst, n, err)
	}
	if total := sum(admitted); total != 200 {
		t.Errorf("admitted %d %v during and after the move, want the 200 left of the budget", total, admitted)
	}
	for i, s := range stores {
		if st := s.Stats(); st.Failures != 0 || st.Fallbacks != 0 {
			t.Errorf("store %d: %+v, want no failure", i, st)
		}
	}
}

// A node of the Cluster is lost. The decisions on its slots fail, and
// after breaker_failures of them the breaker opens: it is the store's, not
// a node's, so every decision, on any node, then follows the policy (here
// closed: ErrUnavailable) until a probe succeeds. A probe may fall on a
// live node's slot, and close the breaker while the node is still lost:
// the keys of live nodes are then decided again, and those of the lost
// node fail, one by one, until it is back. It had no replica nor
// persistence, so the budgets it held start again full.
func TestClusterNodeLoss(t *testing.T) {
	t.Parallel()
	cluster := redistest.StartCluster(t)
	client := newClient(t, config.RedisServers{Addrs: cluster.Addrs(), Cluster: true})
	var outages, recoveries atomic.Int64
	store := newStore(t, client,
		ratelimit.WithFailurePolicy(ratelimit.FailClosed),
		ratelimit.WithTimeout(200*time.Millisecond),
		ratelimit.WithFailureThreshold(3),
		ratelimit.WithProbeInterval(50*time.Millisecond),
		ratelimit.WithLogger(slog.New(slog.DiscardHandler)),
		ratelimit.WithObserver(func(e ratelimit.Event) {
			switch e.Kind {
			case ratelimit.EventOutage:
				outages.Add(1)
			case ratelimit.EventRecovery:
				recoveries.Add(1)
			}
		}))
	admin := cluster.Client(t)
	// A key on the node to lose, and one on another node.
	lost := cluster.Nodes[2]
	var onLost, elsewhere string
	for i := 0; onLost == "" || elsewhere == ""; i++ {
		k := fmt.Sprintf("client-%d", i)
		if owner(t, admin, "rl:"+k) == lost.Addr() {
			onLost = k
		} else {
			elsewhere = k
		}
	}
	limit := ratelimit.Limit{Requests: 10, Period: time.Hour, Burst: 10}
	allow := func(key string) (ratelimit.Result, error) {
		return store.Allow(context.Background(), key, limit, 1)
	}
	for _, k := range []string{onLost, elsewhere} {
		for range 4 {
			if r, err := allow(k); err != nil || !r.Allowed {
				t.Fatalf("%s: %+v, %v", k, r, err)
			}
		}
	}

	lost.Stop()
	for range 3 {
		if _, err := allow(onLost); !errors.Is(err, ratelimit.ErrUnavailable) {
			t.Fatalf("a key of the lost node: %v, want ErrUnavailable", err)
		}
	}
	if s := store.Stats(); !s.Down || outages.Load() != 1 || s.Failures != 3 {
		t.Fatalf("after 3 failures: %+v, %d outages; want the breaker open", s, outages.Load())
	}
	if _, err := allow(elsewhere); !errors.Is(err, ratelimit.ErrUnavailable) || store.Stats().Failures != 3 {
		t.Fatalf("a key of a live node while the breaker is open: %v, %+v; want ErrUnavailable without asking Redis", err, store.Stats())
	}

	// A probe on a live node's key closes the breaker; its count was kept.
	time.Sleep(60 * time.Millisecond)
	if r, err := allow(elsewhere); err != nil || !r.Allowed || r.Remaining != 5 {
		t.Fatalf("the probe on a live node: %+v, %v; want allowed with its count kept (5 left)", r, err)
	}
	if store.Stats().Down || recoveries.Load() != 1 {
		t.Fatalf("after a probe succeeded: %+v, %d recoveries; want the breaker closed", store.Stats(), recoveries.Load())
	}
	if _, err := allow(onLost); !errors.Is(err, ratelimit.ErrUnavailable) {
		t.Fatalf("a key of the lost node, the breaker closed: %v, want ErrUnavailable", err)
	}

	lost.Start()
	deadline := time.Now().Add(20 * time.Second)
	for {
		r, err := allow(onLost)
		if err == nil {
			if !r.Allowed || r.Remaining != 9 {
				t.Fatalf("a key of the restarted node: %+v; want a fresh budget", r)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the restarted node's slots still fail 20s after it came back: %v", err)
		}
		time.Sleep(60 * time.Millisecond)
	}
	deadline = time.Now().Add(5 * time.Second)
	for store.Stats().Down {
		if time.Now().After(deadline) {
			t.Fatalf("the breaker is still open: %+v", store.Stats())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// With tls and the server's CA, the store decides over TLS; a client
// that does not trust the CA, or does not speak TLS, gets no answer.
func TestTLS(t *testing.T) {
	t.Parallel()
	server, ca := redistest.StartTLS(t)
	ctx := context.Background()
	client := newClient(t, config.RedisServers{Addrs: []string{server.Addr()}, TLS: true, TLSCAFile: ca})
	store := newStore(t, client)
	limit := ratelimit.Limit{Requests: 2, Period: time.Hour, Burst: 2}
	for i, want := range []bool{true, true, false} {
		if r, err := store.Allow(ctx, "tls", limit, 1); err != nil || r.Allowed != want {
			t.Fatalf("decision %d over TLS: %+v, %v; want allowed %v", i, r, err, want)
		}
	}
	if s := store.Stats(); s.Failures != 0 || s.Fallbacks != 0 {
		t.Fatalf("over TLS: %+v, want every decision taken by Redis", s)
	}
	for _, tt := range []struct {
		name string
		s    config.RedisServers
		want string
	}{
		{"the system's roots", config.RedisServers{Addrs: []string{server.Addr()}, TLS: true}, "certificate signed by unknown authority"},
		{"no TLS", config.RedisServers{Addrs: []string{server.Addr()}}, ""},
	} {
		err := newClient(t, tt.s).Ping(ctx).Err()
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v, want an error %q", tt.name, err, tt.want)
		}
	}
	if _, err := redisclient.New(config.RedisServers{Addrs: []string{server.Addr()}, TLS: true, TLSCAFile: server.Addr()}, redisclient.Timeouts{}); err == nil {
		t.Error("New read a CA file that does not exist")
	}
}
