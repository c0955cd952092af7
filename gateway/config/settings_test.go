package config_test

import (
	"testing"
	"time"

	"github.com/portcullis/portcullis/gateway/config"
)

// TestParseNewSettingsDefaults checks the defaults of the token, guard,
// health, limit and Redis settings.
func TestParseNewSettingsDefaults(t *testing.T) {
	t.Parallel()
	cfg, err := config.Parse("minimal.yaml", []byte(base+"issuers: [{issuer: http://idp, audiences: [gw], discovery: true}]\n"), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	tok := cfg.Tokens
	durations := []struct {
		name      string
		got, want time.Duration
	}{
		{"tokens.skew", tok.Skew.Std(), time.Minute},
		{"tokens.max_age", tok.MaxAgeLimit(), time.Hour},
		{"tokens.refresh_interval", tok.RefreshInterval.Std(), 15 * time.Minute},
		{"tokens.refetch_cooldown", tok.RefetchCooldown.Std(), 30 * time.Second},
		{"tokens.retry_backoff.min", tok.RetryBackoff.Min.Std(), 500 * time.Millisecond},
		{"tokens.retry_backoff.max", tok.RetryBackoff.Max.Std(), 5 * time.Second},
		{"guard.period", cfg.Guard.Period.Std(), 10 * time.Second},
		{"guard.cooldown", cfg.Guard.Cooldown.Std(), 30 * time.Second},
		{"health.interval", cfg.Health.ProbeInterval(), 5 * time.Second},
		{"limits.request_body_timeout", cfg.Limits.RequestBodyTimeout.Std(), 10 * time.Second},
		{"limits.stream_idle_timeout", cfg.Limits.StreamIdleTimeout.Std(), 5 * time.Minute},
		{"limits.max_stream_timeout", cfg.Limits.MaxStreamTimeout.Std(), time.Hour},
		{"limits.shutdown_timeout", cfg.Limits.ShutdownTimeout.Std(), 15 * time.Second},
		{"rate_limit.redis.probe_interval", cfg.RateLimit.Redis.ProbeInterval.Std(), time.Second},
	}
	for _, d := range durations {
		if d.got != d.want {
			t.Errorf("%s = %v, want %v", d.name, d.got, d.want)
		}
	}
	ints := []struct {
		name      string
		got, want int
	}{
		{"tokens.max_size", tok.MaxSize, 8192},
		{"tokens.cache_size", tok.CacheSize, 10_000},
		{"tokens.max_concurrent_verifications", tok.MaxConcurrentVerifications, 0},
		{"guard.failures", cfg.Guard.Failures, 20},
		{"guard.max_addresses", cfg.Guard.MaxAddresses, 100_000},
		{"rate_limit.redis.breaker_failures", cfg.RateLimit.Redis.BreakerFailures, 5},
	}
	for _, n := range ints {
		if n.got != n.want {
			t.Errorf("%s = %d, want %d", n.name, n.got, n.want)
		}
	}
	if tok.PermissionClaim != "perms" || !cfg.Guard.IsEnabled() {
		t.Errorf("permission claim %q, guard enabled %v", tok.PermissionClaim, cfg.Guard.IsEnabled())
	}
	if is := cfg.Issuers[0]; is.RequiredType() != "at+jwt" || is.AllowMissingKID {
		t.Errorf("issuer type %q, allow missing kid %v; want at+jwt, false", is.RequiredType(), is.AllowMissingKID)
	}
}

// TestParseExplicitOff checks the settings where an explicit zero, or
// "any", turns a check off rather than meaning the default.
func TestParseExplicitOff(t *testing.T) {
	t.Parallel()
	cfg, err := config.Parse("off.yaml", []byte(base+`
issuers:
  - {issuer: http://a, audiences: [gw], discovery: true, type: any, allow_missing_kid: true}
  - {issuer: http://b, audiences: [gw], discovery: true, type: JWT}
tokens: {max_age: 0s}
health: {interval: 0s}
guard: {enabled: false}
`), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Tokens.MaxAgeLimit(); got != 0 {
		t.Errorf("max age %v, want 0 (none)", got)
	}
	if got := cfg.Health.ProbeInterval(); got != 0 {
		t.Errorf("health interval %v, want 0 (off)", got)
	}
	if cfg.Guard.IsEnabled() {
		t.Error("guard enabled, want off")
	}
	if a, b := cfg.Issuers[0], cfg.Issuers[1]; a.RequiredType() != "" || !a.AllowMissingKID || b.RequiredType() != "JWT" {
		t.Errorf("types %q and %q, allow missing kid %v", a.RequiredType(), b.RequiredType(), a.AllowMissingKID)
	}
}

// TestParseNewSettingsRanges wants a mistake for each value out of range.
func TestParseNewSettingsRanges(t *testing.T) {
	t.Parallel()
	tests := []struct{ yaml, want string }{
		{"tokens: {skew: 11m}", "tokens.skew: 11m is not between 0s and 10m"},
		{"tokens: {skew: -1s}", "tokens.skew: -1s is not between 0s and 10m"},
		{"tokens: {max_age: -1s}", "tokens.max_age: must be positive, or 0s for no maximum"},
		{"tokens: {max_size: 100}", "tokens.max_size: 100 is not between 1024 and 1048576"},
		{"tokens: {max_size: 2000000}", "tokens.max_size: 2000000 is not between 1024 and 1048576"},
		{"tokens: {cache_size: -1}", "tokens.cache_size: must be positive"},
		{"tokens: {refresh_interval: 30s}", "tokens.refresh_interval: 30s is less than 1m"},
		{"tokens: {refetch_cooldown: 10ms}", "tokens.refetch_cooldown: 10ms is less than 1s"},
		{"tokens: {retry_backoff: {min: -1s}}", "tokens.retry_backoff.min: must be positive"},
		{"tokens: {retry_backoff: {min: 10s}}", "tokens.retry_backoff.max: 5s is less than min (10s)"},
		{"tokens: {max_concurrent_verifications: -2}", "tokens.max_concurrent_verifications: must be positive, or 0 for the default"},
		{"tokens: {permission_claim: sub}", `tokens.permission_claim: "sub" is a registered claim, not one for permissions`},
		{"guard: {failures: -1}", "guard.failures: must be at least 1"},
		{"guard: {period: -1s}", "guard.period: must be positive"},
		{"guard: {cooldown: -1s}", "guard.cooldown: must be positive"},
		{"guard: {max_addresses: -5}", "guard.max_addresses: must be at least 1"},
		{"health: {interval: 10ms}", "health.interval: 10ms is less than 100ms"},
		{"health: {interval: -1s}", "health.interval: -1s is less than 100ms"},
		{"limits: {request_body_timeout: -1s}", "limits.request_body_timeout: must be positive"},
		{"limits: {stream_idle_timeout: -1s}", "limits.stream_idle_timeout: must be positive"},
		{"limits: {max_stream_timeout: -1s}", "limits.max_stream_timeout: must be positive"},
		{"rate_limit: {redis: {breaker_failures: -1}}", "rate_limit.redis.breaker_failures: must be at least 1"},
		{"rate_limit: {redis: {probe_interval: 1ms}}", "rate_limit.redis.probe_interval: 1ms is less than 10ms"},
		{"issuers: [{issuer: http://a, audiences: [gw], discovery: true, type: \"at jwt\"}]", `issuers[0].type: "at jwt" is not a media type such as "at+jwt" (or "any" to accept every typ)`},
	}
	for _, tt := range tests {
		t.Run(tt.yaml, func(t *testing.T) {
			t.Parallel()
			got := parseMistakes(t, base+tt.yaml+"\n")
			if len(got) != 1 || got[0].Path+": "+got[0].Message != tt.want {
				t.Errorf("mistakes:\n%s\nwant one: %s", lines(got), tt.want)
			}
			if len(got) == 1 && got[0].Line != 2 {
				t.Errorf("mistake on line %d, want 2", got[0].Line)
			}
		})
	}
}

// TestAccessorsOfZeroConfig checks that a Config built in code, without
// Parse, reads as the defaults.
func TestAccessorsOfZeroConfig(t *testing.T) {
	t.Parallel()
	var cfg config.Config
	if cfg.Tokens.MaxAgeLimit() != time.Hour || cfg.Health.ProbeInterval() != 5*time.Second || !cfg.Guard.IsEnabled() ||
		(config.Issuer{}).RequiredType() != "at+jwt" || !cfg.ReflectionEnabled() {
		t.Error("accessors of a zero Config do not give the defaults")
	}
}

func TestDurationString(t *testing.T) {
	t.Parallel()
	for d, want := range map[time.Duration]string{
		time.Hour: "1h", 90 * time.Minute: "1h30m", time.Minute: "1m", 90 * time.Second: "1m30s",
		time.Hour + time.Second: "1h0m1s", 500 * time.Millisecond: "500ms", 0: "0s",
	} {
		if got := config.Duration(d).String(); got != want {
			t.Errorf("Duration(%v).String() = %q, want %q", d, got, want)
		}
	}
}
