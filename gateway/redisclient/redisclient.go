// Package redisclient connects every part of Portcullis that shares state
// in Redis (the rate limit store, the revocations, the issuer that
// publishes them) the same way, to one server, a Redis Cluster, or a master
// watched by Sentinels, from one [config.RedisServers]. It returns a
// go-redis [redis.UniversalClient], so that the parts need not know which.
//
//	client, err := redisclient.New(cfg.RateLimit.Redis.Servers(), redisclient.Timeouts{Read: 50 * time.Millisecond})
//
// A failed command is never retried by the client: each caller has its own
// policy for failures (the rate limiter's breaker, the revocation
// follower's reconnection). What the client does handle by itself: a
// Cluster's MOVED and ASK redirections, followed at once within the same
// command (up to three), and a Sentinel failover, after which it asks the
// Sentinels for the new master.
//
// Every key of one script or command that the parts send lies in one hash
// slot: the rate limiter and the revocations use one key per script, so
// they run unchanged in a Cluster. Pub/sub in a Cluster is broadcast to
// every node, so a subscriber on any node hears what is published on any
// other.
package redisclient

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/portcullis/portcullis/gateway/config"
)

// Timeouts bound the client's round trips. Zero values take go-redis's
// defaults (5s to dial, 3s to read and write).
type Timeouts struct {
	// Dial bounds connecting to one server.
	Dial time.Duration
	// Read and Write bound one command's reply and request.
	Read, Write time.Duration
	// DialerRetries is how many times a failed dial is tried again; 0
	// takes go-redis's default.
	DialerRetries int
}

// New returns a client of the Redis that s describes: a
// [*redis.ClusterClient] for a Cluster, a failover [*redis.Client] for
// Sentinels, a [*redis.Client] otherwise. Contexts bound every command
// (ContextTimeoutEnabled). With TLS, it verifies the servers (and with
// Sentinels, the Sentinels too) against the system's roots or the CAs of
// TLSCAFile. It fails when s names no address or an address that is not
// host:port, combines a Cluster with Sentinels, or names a CA file that
// cannot be read.
func New(s config.RedisServers, t Timeouts) (redis.UniversalClient, error) {
	if err := check(s); err != nil {
		return nil, err
	}
	opts := &redis.UniversalOptions{
		Addrs:                 s.Addrs,
		IsClusterMode:         s.Cluster,
		MasterName:            s.MasterName,
		Username:              s.Username,
		Password:              s.Password,
		SentinelPassword:      s.SentinelPassword,
		DB:                    s.DB,
		DialTimeout:           t.Dial,
		ReadTimeout:           t.Read,
		WriteTimeout:          t.Write,
		DialerRetries:         t.DialerRetries,
		ContextTimeoutEnabled: true,
		MaxRetries:            -1,
	}
	if s.TLS {
		opts.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12}
		if s.TLSCAFile != "" {
			pem, err := os.ReadFile(s.TLSCAFile)
			if err != nil {
				return nil, fmt.Errorf("redisclient: %w", err)
			}
			opts.TLSConfig.RootCAs = x509.NewCertPool()
			if !opts.TLSConfig.RootCAs.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("redisclient: %s holds no PEM certificate", s.TLSCAFile)
			}
		}
	}
	return redis.NewUniversalClient(opts), nil
}

func check(s config.RedisServers) error {
	var problems []error
	if len(s.Addrs) == 0 {
		problems = append(problems, errors.New("no address"))
	}
	for _, a := range s.Addrs {
		if _, _, err := net.SplitHostPort(a); err != nil {
			problems = append(problems, fmt.Errorf("%q is not host:port", a))
		}
	}
	if s.Cluster && s.MasterName != "" {
		problems = append(problems, errors.New("a Cluster has no Sentinels: a master name and a Cluster do not go together"))
	}
	if s.Cluster && s.DB != 0 {
		problems = append(problems, fmt.Errorf("database %d: a Cluster has only database 0", s.DB))
	}
	if s.TLSCAFile != "" && !s.TLS {
		problems = append(problems, errors.New("a CA file without TLS"))
	}
	if !s.Cluster && s.MasterName == "" && len(s.Addrs) > 1 {
		problems = append(problems, errors.New("several addresses name a Cluster's nodes or Sentinels: say which"))
	}
	if len(problems) > 0 {
		return fmt.Errorf("redisclient: %w", errors.Join(problems...))
	}
	return nil
}

// Describe names the Redis of s for logs and errors, without its secrets:
// "127.0.0.1:6379", "cluster a:7000,b:7001" or "sentinel master main via
// s1:26379,s2:26379".
func Describe(s config.RedisServers) string {
	addrs := strings.Join(s.Addrs, ",")
	switch {
	case s.MasterName != "":
		return "sentinel master " + s.MasterName + " via " + addrs
	case s.Cluster:
		return "cluster " + addrs
	}
	return addrs
}
