package config_test

import (
	"testing"
	"time"

	"github.com/portcullis/portcullis/gateway/config"
)

func TestIntrospection(t *testing.T) {
	t.Parallel()
	cfg, err := config.Parse("ok.yaml", []byte(`routes: [{service: a.B, backend: "http://b:1"}]
issuers:
  - issuer: https://vault.example.com
    audiences: [api]
    introspection:
      url: https://vault.example.com/oauth2/introspect
      client_id: gw
      client_secret_env: GW_SECRET
`), env(map[string]string{"GW_SECRET": "s3cret"}))
	if err != nil {
		t.Fatal(err)
	}
	in := cfg.Issuers[0].Introspection
	if in.ClientSecret != "s3cret" || in.CacheMax.Std() != 60*time.Second || in.Timeout.Std() != 5*time.Second {
		t.Errorf("introspection %+v, want the secret read, cache_max 60s, timeout 5s", in)
	}
}

func TestIntrospectionMistakes(t *testing.T) {
	t.Parallel()
	got := parseMistakes(t, `routes: [{service: a.B, backend: "http://b:1"}]
issuers:
  - issuer: https://vault.example.com
    audiences: [api]
    discovery: true
    introspection:
      url: vault
      client_secret_env: UNSET
      cache_max: 2h
  - issuer: https://other.example.com
    audiences: [api]
    introspection:
      url: https://other.example.com/introspect
      client_id: gw
      client_secret_env: GW_SECRET
      timeout: -1s
`)
	want := map[string]string{
		"issuers[0]":                                 "an issuer with introspection has no key source: drop discovery, jwks_url, jwks_file and hmac_secret_env",
		"issuers[0].introspection.url":               `"vault" is not an http(s) URL`,
		"issuers[0].introspection.client_id":         "is required",
		"issuers[0].introspection.client_secret_env": "environment variable UNSET is not set",
		"issuers[0].introspection.cache_max":         "2h is above 1h",
		"issuers[1].introspection":                   "issuers[0] is already opaque; one issuer at most has introspection",
		"issuers[1].introspection.client_secret_env": "environment variable GW_SECRET is not set",
		"issuers[1].introspection.timeout":           "must be positive",
	}
	seen := map[string]bool{}
	for _, m := range got {
		seen[m.Path] = true
		if w, ok := want[m.Path]; !ok || m.Message != w {
			t.Errorf("%s: %q, want %q", m.Path, m.Message, w)
		}
	}
	for path := range want {
		if !seen[path] {
			t.Errorf("no mistake at %s", path)
		}
	}
}
