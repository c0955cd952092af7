package revocation_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/portcullis/portcullis/gateway/revocation"
	"github.com/portcullis/portcullis/internal/redistest"
)

// newRedis returns revocations in Redis through client, under prefix.
func newRedis(t testing.TB, client redis.UniversalClient, prefix string) *revocation.Redis {
	t.Helper()
	r, err := revocation.NewRedis(client, revocation.WithPrefix(prefix))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// Three replicas sharing a Redis learn of a revocation within a second,
// each through its own connection; a replica that starts later reads
// every revocation before it is ready.
func TestRedisReplicas(t *testing.T) {
	t.Parallel()
	publisher, prefix := redistest.Shared(t)
	store := newRedis(t, publisher, prefix)
	if err := store.Publish(t.Context(), token("early"), revocation.Revocation{Issuer: iss, ClientID: "billing", Before: time.Unix(2000, 0), Expires: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	var sets []*revocation.Set
	for range 3 {
		set := newSet(t, revocation.WithRedis(newRedis(t, redistest.Client(t, redistest.SharedAddr), prefix)))
		ready(t, set)
		if !set.Revoked(iss, "early", "", time.Time{}) || !set.Revoked(iss, "", "billing", time.Unix(1999, 0)) {
			t.Fatal("a replica is ready without the revocations published before it started")
		}
		sets = append(sets, set)
	}
	p50, p99 := propagation(t, sets, func(jti string) error { return store.Publish(t.Context(), token(jti)) })
	t.Logf("redis: a revocation reached 3 replicas in p50 %v, p99 %v (100 revocations)", p50, p99)
	if p99 > time.Second {
		t.Fatalf("p99 propagation %v, want under a second", p99)
	}
	for _, set := range sets {
		if err := set.Err(); err != nil {
			t.Fatalf("Err = %v, want fresh", err)
		}
	}
}

// A revocation lives in Redis as long as its token: its score is its
// expiry, and the key expires with the latest revocation. Publishing
// again is harmless.
func TestRedisLifetime(t *testing.T) {
	t.Parallel()
	client, prefix := redistest.Shared(t)
	store := newRedis(t, client, prefix)
	exp := time.Now().Add(10 * time.Minute).Truncate(time.Second)
	r := revocation.Revocation{Issuer: iss, TokenID: "j", Expires: exp}
	for range 2 {
		if err := store.Publish(t.Context(), r); err != nil {
			t.Fatal(err)
		}
	}
	members, err := client.ZRangeWithScores(t.Context(), prefix+"set", 0, -1).Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(members) != 1 || members[0].Member != `{"iss":"https://issuer.test","jti":"j","exp":`+itoa(exp.Unix())+`}` || int64(members[0].Score) != exp.UnixMilli() {
		t.Fatalf("members %+v", members)
	}
	ttl, err := client.PTTL(t.Context(), prefix+"set").Result()
	if err != nil {
		t.Fatal(err)
	}
	if ttl > 10*time.Minute || ttl < 9*time.Minute {
		t.Fatalf("PTTL = %v, want about 10m, the revocation's lifetime", ttl)
	}
	// An expired revocation is not stored, and expired ones are dropped.
	if _, err := client.ZAdd(t.Context(), prefix+"set", redis.Z{Score: float64(time.Now().Add(-time.Second).UnixMilli()), Member: "old"}).Result(); err != nil {
		t.Fatal(err)
	}
	if err := store.Publish(t.Context(), revocation.Revocation{Issuer: iss, TokenID: "gone", Expires: time.Now().Add(-time.Minute)}); err != nil {
		t.Fatal(err)
	}
	if n, err := client.ZCard(t.Context(), prefix+"set").Result(); err != nil || n != 1 {
		t.Fatalf("ZCARD = %d, %v; want 1", n, err)
	}
}

// A replica that loses its connection is stale until it is back, then
// reads the whole set again: a revocation made while it was away is not
// missed.
func TestRedisReconnect(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	writer := redistest.Client(t, srv.Addr())
	store := newRedis(t, writer, "rv:")
	set := newSet(t, revocation.WithRedis(newRedis(t, redistest.Client(t, srv.Addr()), "rv:")),
		revocation.WithStaleness(400*time.Millisecond), revocation.WithRetryBackoff(10*time.Millisecond, 50*time.Millisecond))
	ready(t, set)
	srv.Stop()
	eventually(t, 10*time.Second, "stale while Redis is down", func() bool {
		err := set.Err()
		return err != nil && strings.Contains(err.Error(), "revocations stale: redis "+srv.Addr()+" rv:set: ")
	})
	srv.Start()
	// Written while the replica is away: stored, but its push is missed.
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	for store.Publish(ctx, token("while-away")) != nil {
		if ctx.Err() != nil {
			t.Fatal("cannot publish to the restarted Redis")
		}
		time.Sleep(10 * time.Millisecond)
	}
	eventually(t, 10*time.Second, "the revocation made while away", func() bool { return set.Revoked(iss, "while-away", "", time.Time{}) })
	eventually(t, 10*time.Second, "fresh again", set.Fresh)
}

// Until Redis answers, a replica is not ready, and says why.
func TestRedisUnreachable(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	addr := srv.Addr()
	srv.Stop()
	set := newSet(t, revocation.WithRedis(newRedis(t, redistest.Client(t, addr), "rv:")), revocation.WithRetryBackoff(10*time.Millisecond, 50*time.Millisecond))
	eventually(t, 10*time.Second, "the reason", func() bool {
		err := set.Ready()
		return err != nil && strings.Contains(err.Error(), "revocations: redis "+addr+" rv:set: not loaded yet: ") && strings.Contains(err.Error(), "connection refused")
	})
	if set.Loaded() {
		t.Fatal("loaded without Redis")
	}
}

func TestNewRedisInvalid(t *testing.T) {
	t.Parallel()
	_, err := revocation.NewRedis(nil, revocation.WithPrefix(""), revocation.WithTimeout(0))
	if err == nil || err.Error() != "revocation: invalid Redis options: nil Redis client\nempty key prefix\ntimeout 0s is not positive" {
		t.Fatalf("NewRedis = %v", err)
	}
}
