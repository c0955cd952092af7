package config

import (
	"fmt"
	"net/url"
	"time"
)

// Revocation says where the gateway learns of revoked tokens. Every
// replica holds the revocations in memory and checks each token against
// them locally.
type Revocation struct {
	// Source is "feed" (default): follow the revocation feed of each issuer
	// in Feeds, and of each issuer with discovery whose metadata names one
	// (revocation_feed_endpoint); "redis": read them from Redis, where the
	// issuers publish them, shared by every replica; or "none".
	Source string `json:"source,omitempty"`
	// Feeds names the feed of issuers, by their iss, for source feed. An
	// issuer with discovery and no entry here has its feed discovered.
	Feeds []RevocationFeed `json:"feeds,omitempty"`
	// Redis is the Redis of source redis.
	Redis RevocationRedis `json:"redis"`
	// Staleness is how long a feed or Redis may go unheard before the
	// revocations count as stale (in /readyz and the metric
	// portcullis_revocation_stale). Default 10s; at least 100ms.
	Staleness Duration `json:"staleness,omitempty"`
	// MaxEntries is the number of revocations past which the gateway
	// reports them over capacity (about 40 bytes each); none is dropped.
	// Default 4194304.
	MaxEntries int `json:"max_entries,omitempty"`
}

// RevocationFeed is the revocation feed of one issuer.
type RevocationFeed struct {
	// Issuer is the iss of one of the issuers.
	Issuer string `json:"issuer"`
	// URL is the feed, such as "https://auth.example.com/revocations".
	URL string `json:"url"`
}

// RevocationRedis is the Redis that issuers publish revocations to.
type RevocationRedis struct {
	// Addr is host:port. Default "127.0.0.1:6379".
	Addr string `json:"addr,omitempty"`
	// PasswordEnv names the environment variable holding the password.
	PasswordEnv string `json:"password_env,omitempty"`
	// Addrs are the seed nodes of a Redis Cluster, host:port each, with
	// Cluster; Addr alone seeds it when Addrs is empty.
	Addrs []string `json:"addrs,omitempty"`
	// Cluster reports a Redis Cluster.
	Cluster bool `json:"cluster,omitempty"`
	// MasterName is the master that the Sentinels of SentinelAddrs watch:
	// set, the client asks them for the master and follows failovers, and
	// Addr is not used.
	MasterName string `json:"master_name,omitempty"`
	// SentinelAddrs are the Sentinels, host:port each, with MasterName.
	SentinelAddrs []string `json:"sentinel_addrs,omitempty"`
	// SentinelPasswordEnv names the environment variable holding the
	// Sentinels' password.
	SentinelPasswordEnv string `json:"sentinel_password_env,omitempty"`
	// UsernameEnv names the environment variable holding the ACL user.
	UsernameEnv string `json:"username_env,omitempty"`
	// TLS connects with TLS, verifying the servers against the system's
	// roots, or TLSCAFile's.
	TLS bool `json:"tls,omitempty"`
	// TLSCAFile is a PEM file of the CAs that sign the servers'
	// certificates, with TLS.
	TLSCAFile string `json:"tls_ca_file,omitempty"`
	// DB is the database number.
	DB int `json:"db,omitempty"`
	// Prefix starts the key and the channel of the revocations; the
	// issuers' must be the same. Default "portcullis:revocations:".
	Prefix string `json:"prefix,omitempty"`
	// Timeout bounds each round trip. Default 2s.
	Timeout Duration `json:"timeout,omitempty"`

	// Password is read from PasswordEnv. Never in the file.
	Password string `json:"-"`
	// Username is read from UsernameEnv.
	Username string `json:"-"`
	// SentinelPassword is read from SentinelPasswordEnv.
	SentinelPassword string `json:"-"`
}

func (r *Revocation) setDefaults() {
	setString(&r.Source, "feed")
	setString(&r.Redis.Addr, "127.0.0.1:6379")
	setString(&r.Redis.Prefix, "portcullis:revocations:")
	setDuration(&r.Redis.Timeout, 2*time.Second)
	setDuration(&r.Staleness, 10*time.Second)
	setInt(&r.MaxEntries, 4<<20)
}

func (r *Revocation) validate(v *validator, issuers []Issuer) {
	switch r.Source {
	case "feed", "none":
	case "redis":
		rr := &r.Redis
		v.redis("revocation.redis", redisKeys{
			addr: rr.Addr, addrs: rr.Addrs, cluster: rr.Cluster, master: rr.MasterName, sentinels: rr.SentinelAddrs, db: rr.DB, tls: rr.TLS, tlsCAFile: rr.TLSCAFile,
			passwordEnv: rr.PasswordEnv, usernameEnv: rr.UsernameEnv, sentinelPasswordEnv: rr.SentinelPasswordEnv,
			password: &rr.Password, username: &rr.Username, sentinelPass: &rr.SentinelPassword,
		})
	default:
		v.add("revocation.source", "%q is not feed, redis or none", r.Source)
	}
	seen := map[string]int{}
	for i, f := range r.Feeds {
		path := fmt.Sprintf("revocation.feeds[%d]", i)
		known := false
		for _, is := range issuers {
			known = known || is.Issuer == f.Issuer
		}
		switch j, dup := seen[f.Issuer]; {
		case f.Issuer == "":
			v.add(path+".issuer", "is required")
		case dup:
			v.add(path+".issuer", "%q already has a feed in revocation.feeds[%d]", f.Issuer, j)
		case !known:
			v.add(path+".issuer", "%q is not one of the issuers", f.Issuer)
		}
		seen[f.Issuer] = i
		if u, err := url.Parse(f.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			v.add(path+".url", "%q is not an http(s) URL", f.URL)
		}
	}
	if r.Redis.Prefix == "" {
		v.add("revocation.redis.prefix", "must not be empty")
	}
	v.positive("revocation.redis.timeout", r.Redis.Timeout)
	v.atLeast("revocation.staleness", r.Staleness, 100*time.Millisecond)
	if r.MaxEntries < 1 {
		v.add("revocation.max_entries", "must be at least 1")
	}
}
