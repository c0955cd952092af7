// Package redistest gives tests a real Redis: the shared server at
// 127.0.0.1:6379 with a key prefix of the test's own, or a redis-server
// of the test's own that it stops and starts. Without Redis, tests are
// skipped, unless CI is true: then they fail.
//
//	client, prefix := redistest.Shared(t)
//	srv := redistest.Start(t)
//	srv.Stop()
//	srv.Start()
//
// StartCluster and StartSentinel give a test a Redis Cluster or a master,
// a replica and a Sentinel of its own, in redis-server processes that it
// may kill.
package redistest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/portcullis/portcullis/internal/freeport"
)

// SharedAddr is the address of the shared Redis.
const SharedAddr = "127.0.0.1:6379"

// Need skips the test when err says Redis cannot be reached, unless CI is
// true: then it fails.
func Need(t testing.TB, err error) {
	t.Helper()
	if err == nil {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("Redis is required under CI=true: %v", err)
	}
	t.Skipf("Redis not available: %v", err)
}

// Client connects to addr, and closes the client when the test ends.
func Client(t testing.TB, addr string) *redis.Client {
	t.Helper()
	client := redis.NewClient(&redis.Options{Addr: addr, DialTimeout: time.Second, MaxRetries: -1})
	t.Cleanup(func() { _ = client.Close() })
	return client
}

// Shared returns a client of the shared Redis and a key prefix of the
// test's own, whose keys it deletes when the test ends. It never flushes.
func Shared(t testing.TB) (*redis.Client, string) {
	t.Helper()
	client := Client(t, SharedAddr)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	Need(t, client.Ping(ctx).Err())
	return client, Prefix(t, client)
}

// Prefix returns a key prefix of the test's own in the Redis of client,
// whose keys it deletes when the test ends.
func Prefix(t testing.TB, client *redis.Client) string {
	t.Helper()
	b := make([]byte, 8)
	rand.Read(b)
	prefix := "portcullis-test:" + t.Name() + ":" + hex.EncodeToString(b) + ":"
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		iter := client.Scan(ctx, 0, prefix+"*", 1000).Iterator()
		for iter.Next(ctx) {
			client.Del(ctx, iter.Val())
		}
	})
	return prefix
}

// Server is a redis-server of the test's own, without persistence.
type Server struct {
	t     testing.TB
	port  int
	dir   string
	extra []string // more arguments: a configuration file first, then options
	cmd   *exec.Cmd
}

// Start starts a redis-server on a free port, stopped when the test ends,
// with the extra options given, such as "--enable-debug-command", "local".
func Start(t testing.TB, extra ...string) *Server {
	t.Helper()
	return start(t, freeport.Port(t), extra)
}

// start starts a redis-server on port with the extra arguments, stopped
// when the test ends.
func start(t testing.TB, port int, extra []string) *Server {
	t.Helper()
	_, err := exec.LookPath("redis-server")
	Need(t, err)
	s := &Server{t: t, port: port, dir: t.TempDir(), extra: extra}
	s.Start()
	t.Cleanup(s.Stop)
	return s
}

// Addr returns the server's host:port.
func (s *Server) Addr() string { return "127.0.0.1:" + strconv.Itoa(s.port) }

// Start starts the stopped server again, empty, on the same port.
func (s *Server) Start() {
	s.t.Helper()
	var args []string
	extra := s.extra
	if len(extra) > 0 && !strings.HasPrefix(extra[0], "--") {
		args, extra = append(args, extra[0]), extra[1:] // a configuration file
	}
	args = append(args, "--port", strconv.Itoa(s.port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", s.dir, "--daemonize", "no")
	s.cmd = exec.Command("redis-server", append(args, extra...)...)
	if err := s.cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		conn, err := net.DialTimeout("tcp", s.Addr(), 100*time.Millisecond)
		if err == nil {
			_ = conn.Close()
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("redis-server on %s did not start: %v", s.Addr(), err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Stop kills the server.
func (s *Server) Stop() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	_ = s.cmd.Wait()
	s.cmd = nil
}
