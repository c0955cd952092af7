package redistest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/portcullis/portcullis/internal/freeport"
)

// Cluster is a Redis Cluster of the test's own: three masters holding a
// third of the slots each, without replicas or persistence.
type Cluster struct {
	// Nodes are the three redis-server processes.
	Nodes []*Server
}

// StartCluster starts three redis-server nodes in cluster mode on free
// ports, joins them with redis-cli --cluster create, and waits until every
// node says cluster_state:ok. The nodes stop when the test ends.
func StartCluster(t testing.TB) *Cluster {
	t.Helper()
	_, err := exec.LookPath("redis-cli")
	Need(t, err)
	c := &Cluster{}
	dir := t.TempDir()
	args := []string{"--cluster", "create"}
	for i := range 3 {
		port := freeport.Port(t, 10000) // the cluster bus listens on port+10000
		c.Nodes = append(c.Nodes, start(t, port, []string{
			"--cluster-enabled", "yes",
			"--cluster-config-file", filepath.Join(dir, fmt.Sprintf("nodes-%d.conf", i)),
			"--cluster-node-timeout", "2000",
		}))
		args = append(args, c.Nodes[i].Addr())
	}
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "redis-cli", args...).CombinedOutput(); err != nil {
		t.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	for _, n := range c.Nodes {
		client := Client(t, n.Addr())
		waitFor(t, 20*time.Second, n.Addr()+" says cluster_state:ok", func() bool {
			info, err := client.ClusterInfo(ctx).Result()
			return err == nil && strings.Contains(info, "cluster_state:ok")
		})
	}
	return c
}

// Addrs returns the nodes' addresses, host:port.
func (c *Cluster) Addrs() []string {
	addrs := make([]string, len(c.Nodes))
	for i, n := range c.Nodes {
		addrs[i] = n.Addr()
	}
	return addrs
}

// Client returns a client of the Cluster, closed when the test ends.
func (c *Cluster) Client(t testing.TB) *redis.ClusterClient {
	t.Helper()
	client := redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs(), DialTimeout: time.Second, MaxRetries: -1})
	t.Cleanup(func() { _ = client.Close() })
	return client
}

// Sentinel is a master, its replica and one Sentinel watching the master
// with a quorum of one, of the test's own: killing the master makes the
// Sentinel promote the replica within seconds.
type Sentinel struct {
	// Master and Replica are the data servers, as started: after a
	// failover the replica is the master.
	Master, Replica *Server
	// Sentinel is the Sentinel process.
	Sentinel *Server
	// MasterName is the name the Sentinel knows the master by.
	MasterName string
}

// StartSentinel starts a master, a replica of it and a Sentinel, and
// waits until the replica is in sync and the Sentinel knows it. The
// Sentinel counts the master down after 500ms without an answer. All
// stop when the test ends.
func StartSentinel(t testing.TB) *Sentinel {
	t.Helper()
	s := &Sentinel{MasterName: "portcullis"}
	s.Master = Start(t)
	s.Replica = start(t, freeport.Port(t), []string{"--replicaof", "127.0.0.1", strconv.Itoa(s.Master.port)})
	conf := filepath.Join(t.TempDir(), "sentinel.conf")
	text := fmt.Sprintf(`sentinel monitor %[1]s 127.0.0.1 %[2]d 1
sentinel down-after-milliseconds %[1]s 500
sentinel failover-timeout %[1]s 5000
sentinel parallel-syncs %[1]s 1
`, s.MasterName, s.Master.port)
	if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	s.Sentinel = start(t, freeport.Port(t), []string{conf, "--sentinel"})

	ctx := context.Background()
	replica := Client(t, s.Replica.Addr())
	waitFor(t, 20*time.Second, "the replica in sync", func() bool {
		info, err := replica.Info(ctx, "replication").Result()
		return err == nil && strings.Contains(info, "master_link_status:up")
	})
	sentinel := redis.NewSentinelClient(&redis.Options{Addr: s.Sentinel.Addr(), DialTimeout: time.Second})
	t.Cleanup(func() { _ = sentinel.Close() })
	waitFor(t, 20*time.Second, "the Sentinel knowing the replica", func() bool {
		replicas, err := sentinel.Replicas(ctx, s.MasterName).Result()
		return err == nil && len(replicas) == 1
	})
	return s
}

// Addrs returns the Sentinel's address, as a list for a failover client.
func (s *Sentinel) Addrs() []string { return []string{s.Sentinel.Addr()} }

// CurrentMaster returns the address the Sentinel names as the master's.
func (s *Sentinel) CurrentMaster(t testing.TB) string {
	t.Helper()
	sentinel := redis.NewSentinelClient(&redis.Options{Addr: s.Sentinel.Addr(), DialTimeout: time.Second})
	defer sentinel.Close()
	addr, err := sentinel.GetMasterAddrByName(context.Background(), s.MasterName).Result()
	if err != nil || len(addr) != 2 {
		t.Fatalf("SENTINEL GET-MASTER-ADDR-BY-NAME: %v %v", addr, err)
	}
	return addr[0] + ":" + addr[1]
}

// Failover kills the master and waits until the Sentinel names the
// replica the master and the replica says so itself. It returns how long
// that took.
func (s *Sentinel) Failover(t testing.TB) time.Duration {
	t.Helper()
	start := time.Now()
	s.Master.Stop()
	replica := Client(t, s.Replica.Addr())
	waitFor(t, 30*time.Second, "the replica promoted", func() bool {
		if s.CurrentMaster(t) != s.Replica.Addr() {
			return false
		}
		info, err := replica.Info(context.Background(), "replication").Result()
		return err == nil && strings.Contains(info, "role:master")
	})
	return time.Since(start)
}

// waitFor polls ok every 20ms until it holds, failing the test after
// timeout.
func waitFor(t testing.TB, timeout time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("no %s after %v", what, timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
