package config_test

import (
	"testing"
	"time"

	"github.com/portcullis/portcullis/gateway/config"
)

func TestRevocationDefaults(t *testing.T) {
	t.Parallel()
	cfg, err := config.Parse("minimal.yaml", []byte(base), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	r := cfg.Revocation
	if r.Source != "feed" || len(r.Feeds) != 0 || r.Staleness.Std() != 10*time.Second || r.MaxEntries != 4<<20 ||
		r.Redis.Addr != "127.0.0.1:6379" || r.Redis.Prefix != "portcullis:revocations:" || r.Redis.Timeout.Std() != 2*time.Second {
		t.Fatalf("revocation defaults %+v", r)
	}
	cfg, err = config.Parse("redis.yaml", []byte(base+`
issuers: [{issuer: http://idp, audiences: [gw], discovery: true}]
revocation:
  source: redis
  feeds: [{issuer: http://idp, url: http://idp/revocations}]
  redis: {addr: "redis:6380", password_env: RV_PASSWORD, db: 2, prefix: "rv:"}
  staleness: 3s
`), env(map[string]string{"RV_PASSWORD": "pw"}))
	if err != nil {
		t.Fatal(err)
	}
	if r := cfg.Revocation; r.Source != "redis" || r.Redis.Password != "pw" || r.Redis.DB != 2 || r.Feeds[0].URL != "http://idp/revocations" || r.Staleness.Std() != 3*time.Second {
		t.Fatalf("revocation %+v", r)
	}
}

func TestRevocationMistakes(t *testing.T) {
	t.Parallel()
	const issuers = "issuers: [{issuer: http://idp, audiences: [gw], discovery: true}]\n"
	for _, tt := range []struct{ yaml, want string }{
		{"revocation: {source: pubsub}", `revocation.source: "pubsub" is not feed, redis or none`},
		{"revocation: {source: redis, redis: {addr: redis}}", `revocation.redis.addr: "redis" is not host:port`},
		{"revocation: {source: redis, redis: {password_env: NOPE}}", "revocation.redis.password_env: environment variable NOPE is not set"},
		{"revocation: {staleness: 10ms}", "revocation.staleness: 10ms is less than 100ms"},
		{"revocation: {max_entries: -1}", "revocation.max_entries: must be at least 1"},
		{"revocation: {redis: {timeout: -1s}}", "revocation.redis.timeout: must be positive"},
		{"revocation: {feeds: [{issuer: http://other, url: http://other/r}]}", `revocation.feeds[0].issuer: "http://other" is not one of the issuers`},
		{"revocation: {feeds: [{url: http://idp/r}]}", "revocation.feeds[0].issuer: is required"},
		{"revocation: {feeds: [{issuer: http://idp, url: idp/r}]}", `revocation.feeds[0].url: "idp/r" is not an http(s) URL`},
		{"revocation: {feeds: [{issuer: http://idp, url: http://idp/r}, {issuer: http://idp, url: http://idp/s}]}", `revocation.feeds[1].issuer: "http://idp" already has a feed in revocation.feeds[0]`},
	} {
		t.Run(tt.yaml, func(t *testing.T) {
			t.Parallel()
			got := parseMistakes(t, base+issuers+tt.yaml+"\n")
			if len(got) != 1 || got[0].Path+": "+got[0].Message != tt.want {
				t.Errorf("mistakes:\n%s\nwant one: %s", lines(got), tt.want)
			}
		})
	}
}
