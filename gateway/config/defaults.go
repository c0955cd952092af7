package config

import (
	"strings"
	"time"
)

// Defaults of the settings that are not plain zero values. The doc
// comments of the fields say the same; the sample portcullis.yaml shows
// them too.
const (
	defaultType            = "at+jwt"
	anyType                = "any"
	defaultMaxAge          = time.Hour
	defaultHealthInterval  = 5 * time.Second
	defaultPermissionClaim = "perms"
)

func (c *Config) setDefaults() {
	setString(&c.Listen, "127.0.0.1:8080")
	setString(&c.Admin, "127.0.0.1:9090")
	for i := range c.Routes {
		setString(&c.Routes[i].Protocol, "grpc")
		setString(&c.Routes[i].ClientCertificate, "optional")
		setString(&c.Routes[i].Descriptors, "image")
		if c.Routes[i].Descriptors == DescriptorsReflection {
			setDuration(&c.Routes[i].ReflectionRefresh, 30*time.Second)
		}
	}
	if c.TLS != nil {
		setString(&c.TLS.ClientAuth, ClientAuthNone)
	}
	for i := range c.Issuers {
		if in := c.Issuers[i].Introspection; in != nil {
			in.setDefaults()
		}
	}

	t := &c.Tokens
	setDuration(&t.Skew, 60*time.Second)
	setInt(&t.MaxSize, 8<<10)
	setInt(&t.CacheSize, 10_000)
	setDuration(&t.RefreshInterval, 15*time.Minute)
	setDuration(&t.RefetchCooldown, 30*time.Second)
	setDuration(&t.RetryBackoff.Min, 500*time.Millisecond)
	setDuration(&t.RetryBackoff.Max, 5*time.Second)
	setString(&t.PermissionClaim, defaultPermissionClaim)

	l := &c.Limits
	setInt(&l.MaxMessageBytes, 4<<20)
	if l.MaxConcurrentStreams == 0 {
		l.MaxConcurrentStreams = 250
	}
	setDuration(&l.ReadHeaderTimeout, 10*time.Second)
	setDuration(&l.IdleTimeout, 2*time.Minute)
	setDuration(&l.RequestBodyTimeout, 10*time.Second)
	setDuration(&l.StreamIdleTimeout, 5*time.Minute)
	setDuration(&l.MaxTimeout, 30*time.Second)
	setDuration(&l.MaxStreamTimeout, time.Hour)
	setDuration(&l.ShutdownTimeout, 15*time.Second)

	g := &c.Guard
	setInt(&g.Failures, 20)
	setDuration(&g.Period, 10*time.Second)
	setDuration(&g.Cooldown, 30*time.Second)
	setInt(&g.MaxAddresses, 100_000)

	r := &c.RateLimit
	setString(&r.Store, "memory")
	setString(&r.Redis.Addr, "127.0.0.1:6379")
	setString(&r.Redis.Prefix, "portcullis:rl:")
	setString(&r.Redis.OnFailure, "open")
	setDuration(&r.Redis.Timeout, 50*time.Millisecond)
	setInt(&r.Redis.BreakerFailures, 5)
	setDuration(&r.Redis.ProbeInterval, time.Second)
	setInt(&r.MaxKeys, 100_000)
	c.Revocation.setDefaults()
	c.DPoP.setDefaults()

	setString(&c.Telemetry.LogLevel, "info")
}

func setString(s *string, def string) {
	if *s == "" {
		*s = def
	}
}

func setInt(n *int, def int) {
	if *n == 0 {
		*n = def
	}
}

func setDuration(d *Duration, def time.Duration) {
	if *d == 0 {
		*d = Duration(def)
	}
}

// ReflectionEnabled reports whether gRPC reflection is served.
func (c *Config) ReflectionEnabled() bool { return c.Reflection == nil || *c.Reflection }

// AccessLogEnabled reports whether access lines are written.
func (t Telemetry) AccessLogEnabled() bool { return t.AccessLog == nil || *t.AccessLog }

// UseCompiledIn reports whether the compiled-in descriptors are used.
func (d Descriptors) UseCompiledIn() bool {
	if d.CompiledIn != nil {
		return *d.CompiledIn
	}
	return len(d.Images) == 0
}

// RequiredType returns the typ header the issuer's tokens must carry:
// Type, "at+jwt" when Type is empty, or "" when Type is "any", meaning
// that any typ header, or none, is accepted.
func (is Issuer) RequiredType() string {
	switch {
	case is.Type == "":
		return defaultType
	case strings.EqualFold(is.Type, anyType):
		return ""
	}
	return is.Type
}

// MaxAgeLimit returns the maximum age of a token: MaxAge, one hour when it
// is unset, and zero, meaning no maximum, when it is explicitly "0s".
func (t Tokens) MaxAgeLimit() time.Duration {
	if t.MaxAge == nil {
		return defaultMaxAge
	}
	return t.MaxAge.Std()
}

// IsEnabled reports whether the address guard is on (the default).
func (g Guard) IsEnabled() bool { return g.Enabled == nil || *g.Enabled }

// ProbeInterval returns how often each backend is probed: Interval, five
// seconds when it is unset, and zero, meaning never, when it is explicitly
// "0s".
func (h Health) ProbeInterval() time.Duration {
	if h.Interval == nil {
		return defaultHealthInterval
	}
	return h.Interval.Std()
}
