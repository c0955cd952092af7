package config_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/portcullis/portcullis/gateway/config"
)

const dpopBase = `
descriptors: {compiled_in: true}
routes:
  - service: example.licensing.v1.LicensingService
    backend: http://lic:1
`

// TestDPoPSettings reads the dpop section, its defaults, and names each
// mistake in it.
func TestDPoPSettings(t *testing.T) {
	t.Parallel()
	cfg, err := config.Parse("ok.yaml", []byte(dpopBase), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	d := cfg.DPoP
	if !d.IsEnabled() || d.MaxAge.Std() != time.Minute || d.Skew.Std() != 5*time.Second || d.Replay.Store != "memory" ||
		d.Replay.Prefix != "portcullis:dpop:" || d.Nonce.Required || d.Nonce.Rotation.Std() != 5*time.Minute ||
		!slices.Equal(d.Algorithms, []string{"ES256", "ES384", "EdDSA", "RS256", "PS256"}) {
		t.Errorf("defaults %+v", d)
	}
	cfg, err = config.Parse("ok.yaml", []byte(dpopBase+"dpop: {nonce: {required: true, secret_env: NONCE}, replay: {store: redis}}\n"),
		env(map[string]string{"NONCE": strings.Repeat("n", 32)}))
	if err != nil {
		t.Fatal(err)
	}
	if string(cfg.DPoP.Nonce.Secret) != strings.Repeat("n", 32) || cfg.DPoP.Replay.Store != "redis" {
		t.Errorf("nonce secret or replay store not read: %+v", cfg.DPoP)
	}

	for _, tc := range []struct{ name, yaml, want string }{
		{"HMAC algorithm", "dpop: {algorithms: [ES256, HS256]}\n", `dpop.algorithms: algorithms[1] "HS256" is not an asymmetric algorithm`},
		{"none", "dpop: {algorithms: [none]}\n", `dpop.algorithms: algorithms[0] "none" is not an asymmetric algorithm`},
		{"replay store", "dpop: {replay: {store: disk}}\n", `dpop.replay.store: "disk" is not memory or redis`},
		{"negative skew", "dpop: {skew: -1s}\n", "dpop.skew: must not be negative"},
		{"short rotation", "dpop: {nonce: {rotation: 10ms}}\n", "dpop.nonce.rotation"},
		{"secret unset", "dpop: {nonce: {secret_env: NOPE}}\n", "dpop.nonce.secret_env: environment variable NOPE is not set"},
		{"small proofs", "dpop: {max_proof_size: 10}\n", "dpop.max_proof_size: must be at least 256"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := config.Parse("bad.yaml", []byte(dpopBase+tc.yaml), env(nil))
			got := mistakes(t, err)
			if !slices.ContainsFunc(got, func(m string) bool { return strings.Contains(m, tc.want) }) {
				t.Errorf("mistakes %q, want %q", got, tc.want)
			}
		})
	}
}
