package redistest_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/portcullis/portcullis/internal/redistest"
)

// TestCluster writes keys of every node's slots through a cluster client,
// and wants each node to hold a share of them.
func TestCluster(t *testing.T) {
	t.Parallel()
	c := redistest.StartCluster(t)
	client := c.Client(t)
	ctx := context.Background()
	for i := range 30 {
		if err := client.Set(ctx, fmt.Sprintf("k%d", i), i, 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	for _, addr := range c.Addrs() {
		n, err := redistest.Client(t, addr).DBSize(ctx).Result()
		if err != nil || n == 0 {
			t.Errorf("node %s holds %d keys (%v), want some", addr, n, err)
		}
	}
}

// TestSentinelFailover writes through a failover client, kills the
// master, and reads the value back from the promoted replica.
func TestSentinelFailover(t *testing.T) {
	t.Parallel()
	s := redistest.StartSentinel(t)
	client := redis.NewFailoverClient(&redis.FailoverOptions{MasterName: s.MasterName, SentinelAddrs: s.Addrs()})
	defer client.Close()
	ctx := context.Background()
	if err := client.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if err := client.Wait(ctx, 1, 0).Err(); err != nil {
		t.Fatal(err)
	}
	t.Logf("failover in %v", s.Failover(t))
	if got, err := client.Get(ctx, "k").Result(); err != nil || got != "v" {
		t.Fatalf("after the failover: %q, %v", got, err)
	}
	if s.CurrentMaster(t) != s.Replica.Addr() {
		t.Fatal("the replica is not the master")
	}
}
