package config_test

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/portcullis/portcullis/gateway/config"
)

func env(vars map[string]string) func(string) (string, bool) {
	return func(name string) (string, bool) {
		v, ok := vars[name]
		return v, ok
	}
}

func TestParseDefaults(t *testing.T) {
	t.Parallel()
	cfg, err := config.Parse("minimal.yaml", []byte(`
issuers:
  - issuer: http://127.0.0.1:8081
    audiences: [portcullis]
    discovery: true
routes:
  - service: example.licensing.v1.LicensingService
    backend: http://127.0.0.1:8082
`), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Listen != "127.0.0.1:8080" || cfg.Admin != "127.0.0.1:9090" || cfg.Routes[0].Protocol != "grpc" {
		t.Errorf("listeners/protocol defaults: %+v", cfg)
	}
	if cfg.Limits.MaxMessageBytes != 4<<20 || cfg.Limits.MaxTimeout.Std() != 30*time.Second || cfg.Limits.MaxConcurrentStreams != 250 {
		t.Errorf("limits defaults: %+v", cfg.Limits)
	}
	if cfg.RateLimit.Store != "memory" || cfg.RateLimit.Redis.OnFailure != "open" || cfg.RateLimit.Redis.Timeout.Std() != 50*time.Millisecond {
		t.Errorf("rate limit defaults: %+v", cfg.RateLimit)
	}
	if !cfg.ReflectionEnabled() || !cfg.Descriptors.UseCompiledIn() || !cfg.Telemetry.AccessLogEnabled() {
		t.Error("reflection, compiled-in descriptors and access log are on by default")
	}
}

func TestParseSecretsFromEnvironment(t *testing.T) {
	t.Parallel()
	secret := "0123456789abcdef0123456789abcdef"
	cfg, err := config.Parse("secrets.yaml", []byte(`
issuers:
  - {issuer: internal, audiences: [gw], hmac_secret_env: GW_SECRET, algorithms: [HS256]}
routes:
  - {service: a.B, backend: "https://backend:443", protocol: connect}
rate_limit:
  store: redis
  redis: {addr: "redis:6379", password_env: REDIS_PW, on_failure: closed}
`), env(map[string]string{"GW_SECRET": secret, "REDIS_PW": "hunter2"}))
	if err != nil {
		t.Fatal(err)
	}
	if string(cfg.Issuers[0].HMACSecret) != secret || cfg.RateLimit.Redis.Password != "hunter2" {
		t.Error("secrets were not read from the environment")
	}
}

func TestParseReportsEveryMistake(t *testing.T) {
	t.Parallel()
	_, err := config.Parse("bad.yaml", []byte(`
listen: ":notaport:"
admin: ":notaport:"
descriptors:
  images: [/nonexistent/image.binpb]
issuers:
  - issuer: http://idp
    audiences: []
  - issuer: http://idp
    audiences: [x]
    jwks_url: "ftp://keys"
    hmac_secret_env: SHORT
    algorithms: [none, ES256]
routes:
  - service: a.B
    backend: localhost:8082
  - service: a.B
    backend: http://ok:1
    protocol: soap
limits:
  max_timeout: -1s
rate_limit:
  store: etcd
  redis: {on_failure: sometimes}
  default: {requests: 0, period: 0s}
  tiers:
    pro: {multiplier: 2, override: {requests: 1, period: 1s}}
    free: {multiplier: -1}
  trusted_proxies: [10.0.0.0/8, "not-an-ip"]
telemetry:
  log_level: loud
  trace_sample_ratio: 2
`), env(map[string]string{"SHORT": "tooshort"}))
	got := mistakes(t, err)
	want := []string{
		`listen: ":notaport:" is not host:port`,
		`admin: ":notaport:" is not host:port`,
		`admin: must differ from listen (:notaport:)`,
		`descriptors.images[0]: "/nonexistent/image.binpb": no such file or directory`,
		`issuers[0].audiences: at least one audience is required`,
		`issuers[0]: set exactly one key source: discovery, jwks_url, jwks_file or hmac_secret_env`,
		`issuers[1]: set exactly one key source: discovery, jwks_url, jwks_file or hmac_secret_env`,
		`issuers[1].jwks_url: "ftp://keys" is not an http(s) URL`,
		`issuers[1].hmac_secret_env: the secret in SHORT is 8 bytes; HS256 needs at least 32`,
		`issuers[1].algorithms[0]: "none" is not a supported algorithm`,
		`issuers[1].algorithms[1]: ES256 needs a public key, but this issuer has a shared secret`,
		`issuers[1].issuer: "http://idp" is already issuers[0]`,
		`routes[0].backend: "localhost:8082" is not an http:// (h2c) or https:// URL`,
		`routes[1].service: "a.B" is already routed by routes[0]`,
		`routes[1].protocol: "soap" is not grpc, connect or grpcweb`,
		`limits.max_timeout: must be positive`,
		`rate_limit.store: "etcd" is not memory or redis`,
		`rate_limit.redis.on_failure: "sometimes" is not open or closed`,
		`rate_limit.default.requests: must be at least 1`,
		`rate_limit.default.period: must be at least 1ms`,
		`rate_limit.tiers.pro: set multiplier or override, not both`,
		`rate_limit.tiers.free.multiplier: must be positive`,
		`rate_limit.trusted_proxies[1]: "not-an-ip" is not an address or CIDR`,
		`telemetry.log_level: "loud" is not debug, info, warn or error`,
		`telemetry.trace_sample_ratio: 2 is not between 0 and 1`,
	}
	for _, w := range want {
		if !slices.Contains(got, w) {
			t.Errorf("missing mistake %q", w)
		}
	}
	if len(got) != len(want) {
		t.Errorf("got %d mistakes, want %d:\n%v", len(got), len(want), err)
	}
}

func TestParseRejectsUnknownFields(t *testing.T) {
	t.Parallel()
	_, err := config.Parse("typo.yaml", []byte("listne: 127.0.0.1:1\nroutes: []\n"), env(nil))
	if err == nil || !containsAll(err.Error(), "typo.yaml:1:1: listne: unknown key", `did you mean "listen"?`) {
		t.Errorf("Parse = %v", err)
	}
	_, err = config.Parse("dur.yaml", []byte("limits: {max_timeout: 5}\n"), env(nil))
	if err == nil || !containsAll(err.Error(), `dur.yaml:1:23: limits.max_timeout: want a duration such as "30s"`) {
		t.Errorf("Parse = %v", err)
	}
}

// mistakes returns the mistakes of a *config.Error as "path: message",
// failing the test for any other error.
func mistakes(t *testing.T, err error) []string {
	t.Helper()
	var cfgErr *config.Error
	if !errors.As(err, &cfgErr) {
		t.Fatalf("Parse = %v, want *config.Error", err)
	}
	out := make([]string, len(cfgErr.Mistakes))
	for i, m := range cfgErr.Mistakes {
		out[i] = m.Path + ": " + m.Message
	}
	return out
}

func containsAll(s string, subs ...string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}

// TestReadmeExample parses the configuration shown in README.md (its yaml
// block that starts with listen:), so that the example stays valid as the
// configuration changes.
func TestReadmeExample(t *testing.T) {
	t.Parallel()
	readme, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, rest, found := strings.Cut(string(readme), "```yaml\nlisten:")
	rest = "listen:" + rest
	yaml, _, closed := strings.Cut(rest, "```")
	if !found || !closed {
		t.Fatal("README.md has no yaml block")
	}
	_, err = config.Parse("README.md", []byte(yaml), env(map[string]string{"REDIS_PASSWORD": "secret"}))
	got := mistakes(t, err)
	// The example names an image file that exists only on the reader's machine.
	if len(got) != 1 || !strings.HasPrefix(got[0], `descriptors.images[0]: "image.binpb"`) {
		t.Errorf("README example has mistakes beyond the missing image:\n%v", err)
	}
}
