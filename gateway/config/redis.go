package config

import "fmt"

// RedisServers says which Redis a part reaches and how, read from the
// keys that rate_limit.redis and revocation.redis share: one server
// (addr), a Redis Cluster (cluster: true, seed nodes in addrs), or a
// master watched by Sentinels (master_name, sentinel_addrs). Secrets are
// read from the environment variables the keys name.
type RedisServers struct {
	// Addrs is the one server's address, the Cluster's seed nodes, or the
	// Sentinels' addresses.
	Addrs []string
	// Cluster reports a Redis Cluster.
	Cluster bool
	// MasterName is the master the Sentinels watch; "" without Sentinels.
	MasterName string
	// Username and Password authenticate to Redis (ACL user, or the
	// default user when Username is "").
	Username, Password string
	// SentinelPassword authenticates to the Sentinels.
	SentinelPassword string
	// DB is the database number; always 0 in a Cluster.
	DB int
	// TLS connects with TLS, verifying the servers against the system's
	// roots, or against the CAs of the PEM file TLSCAFile.
	TLS       bool
	TLSCAFile string
}

// Servers returns the Redis that the rate limit store uses.
func (r Redis) Servers() RedisServers {
	return redisServers(r.Addr, r.Addrs, r.Cluster, r.MasterName, r.SentinelAddrs,
		RedisServers{Username: r.Username, Password: r.Password, SentinelPassword: r.SentinelPassword, DB: r.DB, TLS: r.TLS, TLSCAFile: r.TLSCAFile})
}

// Servers returns the Redis that revocations are read from.
func (r RevocationRedis) Servers() RedisServers {
	return redisServers(r.Addr, r.Addrs, r.Cluster, r.MasterName, r.SentinelAddrs,
		RedisServers{Username: r.Username, Password: r.Password, SentinelPassword: r.SentinelPassword, DB: r.DB, TLS: r.TLS, TLSCAFile: r.TLSCAFile})
}

func redisServers(addr string, addrs []string, cluster bool, master string, sentinels []string, s RedisServers) RedisServers {
	s.Cluster, s.MasterName = cluster, master
	switch {
	case master != "":
		s.Addrs = sentinels
	case cluster && len(addrs) > 0:
		s.Addrs = addrs
	default:
		s.Addrs = []string{addr}
	}
	return s
}

// redisKeys are the keys of one Redis section, to validate and complete.
type redisKeys struct {
	addr                             string
	addrs                            []string
	cluster                          bool
	master                           string
	sentinels                        []string
	db                               int
	tls                              bool
	tlsCAFile                        string
	passwordEnv, usernameEnv         string
	sentinelPasswordEnv              string
	password, username, sentinelPass *string
}

// redis validates the Redis section at path and reads its secrets.
func (v *validator) redis(path string, k redisKeys) {
	switch {
	case k.master != "" && k.cluster:
		v.add(path+".cluster", "a Cluster has no Sentinels: set cluster: true or master_name, not both")
	case k.master != "":
		if len(k.sentinels) == 0 {
			v.add(path+".sentinel_addrs", "is required with master_name: the Sentinels that find the master")
		}
		if len(k.addrs) > 0 {
			v.add(path+".addrs", "lists Cluster nodes; with master_name the Sentinels of sentinel_addrs find the master")
		}
	case len(k.sentinels) > 0:
		v.add(path+".master_name", "is required with sentinel_addrs: the name the Sentinels know the master by")
	case k.cluster:
		if k.db != 0 {
			v.add(path+".db", "must be 0 with cluster: true: a Cluster has only database 0")
		}
		if len(k.addrs) == 0 {
			v.address(path+".addr", k.addr)
		}
	case len(k.addrs) > 0:
		v.add(path+".addrs", "lists a Cluster's nodes: set cluster: true, or name the one server in addr")
	default:
		v.address(path+".addr", k.addr)
	}
	for i, a := range k.addrs {
		v.address(fmt.Sprintf("%s.addrs[%d]", path, i), a)
	}
	for i, a := range k.sentinels {
		v.address(fmt.Sprintf("%s.sentinel_addrs[%d]", path, i), a)
	}
	if k.tlsCAFile != "" {
		if !k.tls {
			v.add(path+".tls_ca_file", "needs tls: true")
		}
		v.file(path+".tls_ca_file", k.tlsCAFile)
	}
	v.secret(path+".password_env", k.passwordEnv, k.password)
	v.secret(path+".username_env", k.usernameEnv, k.username)
	v.secret(path+".sentinel_password_env", k.sentinelPasswordEnv, k.sentinelPass)
}

// secret reads the environment variable env, if named, into out.
func (v *validator) secret(path, env string, out *string) {
	if env == "" {
		return
	}
	if s, ok := v.lookupEnv(env); ok {
		*out = s
	} else {
		v.add(path, "environment variable %s is not set", env)
	}
}
