package config_test

import (
	"slices"
	"testing"
	"time"

	"github.com/portcullis/portcullis/gateway/config"
)

// TestIdentitySettings reads a route's identity and the internal_tokens
// section, and names each mistake in them.
func TestIdentitySettings(t *testing.T) {
	t.Parallel()
	cfg, err := config.Parse("ok.yaml", []byte(`
descriptors: {compiled_in: true}
routes:
  - service: example.licensing.v1.LicensingService
    backend: http://lic:1
    identity: internal
    audience: licensing
  - service: example.orders.v1.OrdersService
    backend: http://ord:1
internal_tokens: {issuer: https://gateway.internal, lifetime: 30s, key_dir: keys}
`), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	r, it := cfg.Routes, cfg.InternalTokens
	if r[0].Identity != config.IdentityInternal || r[0].Audience != "licensing" || r[1].Identity != "" ||
		it.Issuer != "https://gateway.internal" || it.Lifetime.Std() != 30*time.Second || it.KeyDir != "keys" {
		t.Errorf("routes %+v, internal_tokens %+v", r, it)
	}

	for _, tc := range []struct{ name, yaml, want string }{
		{"unknown identity", "identity: proxy\n", `routes[0].identity: "proxy" is not forward or internal`},
		{"internal without internal_tokens", "identity: internal\n", "routes[0].identity: is internal, but internal_tokens is not configured"},
		{"issuer not a URL", "identity: internal\ninternal_tokens: {issuer: gateway}\n", `internal_tokens.issuer: "gateway" is not an absolute URL`},
		{"lifetime too short", "identity: internal\ninternal_tokens: {issuer: https://gw, lifetime: 10ms}\n", "internal_tokens.lifetime: 10ms is under 1s"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := config.Parse("bad.yaml", []byte(`
descriptors: {compiled_in: true}
routes:
  - service: example.licensing.v1.LicensingService
    backend: http://lic:1
    `+tc.yaml), env(nil))
			if got := mistakes(t, err); !slices.Contains(got, tc.want) {
				t.Errorf("mistakes %q, want %q", got, tc.want)
			}
		})
	}
}
