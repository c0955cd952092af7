package config_test

import (
	"fmt"
	"reflect"
	"testing"

	"github.com/portcullis/portcullis/gateway/config"
)

// TestRedisServers reads one server, a Cluster and Sentinels, in both
// Redis sections, with their secrets from the environment.
func TestRedisServers(t *testing.T) {
	t.Parallel()
	const issuers = "issuers: [{issuer: http://idp, audiences: [gw], discovery: true}]\n"
	secrets := map[string]string{"PW": "pw", "USER": "gw", "SPW": "spw"}
	for _, tt := range []struct {
		name, keys string
		want       config.RedisServers
	}{
		{"default", "{}", config.RedisServers{Addrs: []string{"127.0.0.1:6379"}}},
		{"one server", "{addr: redis:6380, db: 2, tls: true, tls_ca_file: redis_test.go, password_env: PW, username_env: USER}",
			config.RedisServers{Addrs: []string{"redis:6380"}, DB: 2, TLS: true, TLSCAFile: "redis_test.go", Password: "pw", Username: "gw"}},
		{"cluster seeded by addr", "{addr: node:7000, cluster: true}",
			config.RedisServers{Addrs: []string{"node:7000"}, Cluster: true}},
		{"cluster", "{addrs: [a:7000, b:7001], cluster: true, password_env: PW}",
			config.RedisServers{Addrs: []string{"a:7000", "b:7001"}, Cluster: true, Password: "pw"}},
		{"sentinel", "{master_name: main, sentinel_addrs: [s1:26379, s2:26379], sentinel_password_env: SPW, password_env: PW}",
			config.RedisServers{Addrs: []string{"s1:26379", "s2:26379"}, MasterName: "main", SentinelPassword: "spw", Password: "pw"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			yaml := fmt.Sprintf("%srate_limit: {store: redis, redis: %s}\nrevocation: {source: redis, redis: %s}\n", base+issuers, tt.keys, tt.keys)
			cfg, err := config.Parse("redis.yaml", []byte(yaml), env(secrets))
			if err != nil {
				t.Fatal(err)
			}
			if got := cfg.RateLimit.Redis.Servers(); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("rate_limit.redis: %+v, want %+v", got, tt.want)
			}
			if got := cfg.Revocation.Redis.Servers(); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("revocation.redis: %+v, want %+v", got, tt.want)
			}
		})
	}
}

// TestRedisMistakes wants each mistake of a Redis section named with its
// place in the file, in both sections.
func TestRedisMistakes(t *testing.T) {
	t.Parallel()
	const issuers = "issuers: [{issuer: http://idp, audiences: [gw], discovery: true}]\n"
	for _, tt := range []struct{ keys, want string }{
		{"{addrs: [a:1, b:2]}", "5:%d: %s.redis.addrs: lists a Cluster's nodes: set cluster: true, or name the one server in addr"},
		{"{cluster: true, addrs: [a:1, b]}", `5:%d: %s.redis.addrs[1]: "b" is not host:port`},
		{"{cluster: true, addr: nope}", `5:%d: %s.redis.addr: "nope" is not host:port`},
		{"{cluster: true, db: 3}", "5:%d: %s.redis.db: must be 0 with cluster: true: a Cluster has only database 0"},
		{"{cluster: true, master_name: m, sentinel_addrs: [s:1]}", "5:%d: %s.redis.cluster: a Cluster has no Sentinels: set cluster: true or master_name, not both"},
		{"{master_name: m}", "5:%d: %s.redis.sentinel_addrs: is required with master_name: the Sentinels that find the master"},
		{"{sentinel_addrs: [s:1]}", "5:%d: %s.redis.master_name: is required with sentinel_addrs: the name the Sentinels know the master by"},
		{"{master_name: m, sentinel_addrs: [s]}", `5:%d: %s.redis.sentinel_addrs[0]: "s" is not host:port`},
		{"{master_name: m, sentinel_addrs: [s:1], addrs: [a:1]}", "5:%d: %s.redis.addrs: lists Cluster nodes; with master_name the Sentinels of sentinel_addrs find the master"},
		{"{tls_ca_file: /nonexistent/ca.pem, tls: true}", `5:%d: %s.redis.tls_ca_file: "/nonexistent/ca.pem": no such file or directory`},
		{"{tls_ca_file: redis_test.go}", "5:%d: %s.redis.tls_ca_file: needs tls: true"},
		{"{username_env: NOPE}", "5:%d: %s.redis.username_env: environment variable NOPE is not set"},
		{"{master_name: m, sentinel_addrs: [s:1], sentinel_password_env: NOPE}", "5:%d: %s.redis.sentinel_password_env: environment variable NOPE is not set"},
	} {
		for _, section := range []string{"rate_limit", "revocation"} {
			t.Run(section+tt.keys, func(t *testing.T) {
				t.Parallel()
				kind := map[string]string{"rate_limit": "store", "revocation": "source"}[section]
				yaml := fmt.Sprintf("%s%s:\n  %s: redis\n  redis: %s\n", base+issuers, section, kind, tt.keys)
				got := parseMistakes(t, yaml)
				if len(got) != 1 {
					t.Fatalf("mistakes:\n%s\nwant one", lines(got))
				}
				m := got[0]
				want := fmt.Sprintf(tt.want, m.Column, section)
				if s := fmt.Sprintf("%d:%d: %s: %s", m.Line, m.Column, m.Path, m.Message); s != want || m.Column < 10 {
					t.Errorf("mistake %s\nwant      %s", s, want)
				}
			})
		}
	}
}
