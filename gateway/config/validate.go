package config

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"time"
)

// validator checks a decoded, completed configuration, recording each
// mistake with its path. It reads secrets from the environment as it goes.
type validator struct {
	*report
	lookupEnv func(string) (string, bool)
}

func (c *Config) validate(v *validator) {
	v.address("listen", c.Listen)
	v.address("admin", c.Admin)
	if c.Listen == c.Admin {
		v.add("admin", "must differ from listen (%s)", c.Listen)
	}
	if c.GRPCListen != "" {
		v.address("grpc_listen", c.GRPCListen)
		if c.GRPCListen == c.Listen || c.GRPCListen == c.Admin {
			v.add("grpc_listen", "must differ from listen and admin")
		}
	}
	c.TLS.validate(v, c.RateLimit.TrustedProxies)
	for i, img := range c.Descriptors.Images {
		v.file(fmt.Sprintf("descriptors.images[%d]", i), img)
	}
	if !c.Descriptors.UseCompiledIn() && len(c.Descriptors.Images) == 0 {
		v.add("descriptors", "compiled_in is false and no images are given: there is nothing to route")
	}
	seenIssuers := map[string]int{}
	opaque := -1
	for i := range c.Issuers {
		if c.Issuers[i].Introspection != nil {
			if opaque >= 0 {
				v.add(fmt.Sprintf("issuers[%d].introspection", i), "issuers[%d] is already opaque; one issuer at most has introspection", opaque)
			}
			opaque = i
		}
		c.Issuers[i].validate(v, fmt.Sprintf("issuers[%d]", i))
		if j, dup := seenIssuers[c.Issuers[i].Issuer]; dup {
			v.add(fmt.Sprintf("issuers[%d].issuer", i), "%q is already issuers[%d]", c.Issuers[i].Issuer, j)
		}
		seenIssuers[c.Issuers[i].Issuer] = i
	}
	c.Tokens.validate(v)
	if t := c.InternalTokens; t != nil {
		if u, err := url.Parse(t.Issuer); err != nil || !u.IsAbs() || u.Host == "" {
			v.add("internal_tokens.issuer", "%q is not an absolute URL", t.Issuer)
		}
		if t.Lifetime != 0 && t.Lifetime.Std() < time.Second {
			v.add("internal_tokens.lifetime", "%v is under 1s", t.Lifetime)
		}
	}
	if len(c.Routes) == 0 {
		v.add("routes", "at least one route is needed")
	}
	seenRoutes := map[string]int{}
	for i, r := range c.Routes {
		path := fmt.Sprintf("routes[%d]", i)
		if r.Service == "" {
			v.add(path+".service", "is required")
		} else if j, dup := seenRoutes[r.Service]; dup {
			v.add(path+".service", "%q is already routed by routes[%d]", r.Service, j)
		}
		seenRoutes[r.Service] = i
		c.Routes[i].validateEndpoints(v, path)
		switch r.Identity {
		case "", "forward":
		case IdentityInternal:
			if c.InternalTokens == nil {
				v.add(path+".identity", "is internal, but internal_tokens is not configured")
			}
		default:
			v.add(path+".identity", "%q is not forward or internal", r.Identity)
		}
		if r.Protocol != "grpc" && r.Protocol != "connect" && r.Protocol != "grpcweb" {
			v.add(path+".protocol", "%q is not grpc, connect or grpcweb", r.Protocol)
		}
		if r.CAFile != "" {
			v.file(path+".ca_file", r.CAFile)
		}
		r.validateClientCertificates(v, path, c.TLS)
		r.validateReflection(v, path)
		r.CORS.validate(v, path+".cors")
		c.Routes[i].Exchange.validate(v, path+".exchange")
	}
	c.CORS.validate(v, "cors")
	c.Resource.validate(v)
	l := c.Limits
	if l.MaxMessageBytes < 0 {
		v.add("limits.max_message_bytes", "must be positive")
	}
	v.positive("limits.read_header_timeout", l.ReadHeaderTimeout)
	v.positive("limits.idle_timeout", l.IdleTimeout)
	v.positive("limits.request_body_timeout", l.RequestBodyTimeout)
	v.positive("limits.stream_idle_timeout", l.StreamIdleTimeout)
	v.positive("limits.max_timeout", l.MaxTimeout)
	v.positive("limits.max_stream_timeout", l.MaxStreamTimeout)
	v.positive("limits.shutdown_timeout", l.ShutdownTimeout)
	c.Guard.validate(v)
	c.Health.validate(v)
	c.RateLimit.validate(v)
	c.Reload.validate(v)
	c.Revocation.validate(v, c.Issuers)
	c.DPoP.validate(v)
	switch c.Telemetry.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		v.add("telemetry.log_level", "%q is not debug, info, warn or error", c.Telemetry.LogLevel)
	}
	if r := c.Telemetry.TraceSampleRatio; r != nil && (*r < 0 || *r > 1) {
		v.add("telemetry.trace_sample_ratio", "%v is not between 0 and 1", *r)
	}
}

func (is *Issuer) validate(v *validator, path string) {
	if is.Issuer == "" {
		v.add(path+".issuer", "is required")
	}
	if len(is.Audiences) == 0 {
		v.add(path+".audiences", "at least one audience is required")
	}
	sources := 0
	for _, set := range []bool{is.Discovery, is.JWKSURL != "", is.JWKSFile != "", is.HMACSecretEnv != ""} {
		if set {
			sources++
		}
	}
	switch {
	case is.Introspection != nil:
		is.Introspection.validate(v, path+".introspection")
		if sources != 0 {
			v.add(path, "an issuer with introspection has no key source: drop discovery, jwks_url, jwks_file and hmac_secret_env")
		}
	case sources != 1:
		v.add(path, "set exactly one key source: discovery, jwks_url, jwks_file or hmac_secret_env")
	}
	if is.Discovery || is.JWKSURL != "" {
		target, field := is.Issuer, ".issuer"
		if is.JWKSURL != "" {
			target, field = is.JWKSURL, ".jwks_url"
		}
		if u, err := url.Parse(target); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			v.add(path+field, "%q is not an http(s) URL", target)
		}
	}
	if is.JWKSFile != "" {
		v.file(path+".jwks_file", is.JWKSFile)
	}
	if is.HMACSecretEnv != "" {
		secret, ok := v.lookupEnv(is.HMACSecretEnv)
		switch {
		case !ok:
			v.add(path+".hmac_secret_env", "environment variable %s is not set", is.HMACSecretEnv)
		case len(secret) < 32:
			v.add(path+".hmac_secret_env", "the secret in %s is %d bytes; HS256 needs at least 32", is.HMACSecretEnv, len(secret))
		default:
			is.HMACSecret = []byte(secret)
		}
	}
	for i, alg := range is.Algorithms {
		at := fmt.Sprintf("%s.algorithms[%d]", path, i)
		switch publicKey, secret := algorithmKey(alg); {
		case publicKey && is.HMACSecretEnv != "":
			v.add(at, "%s needs a public key, but this issuer has a shared secret", alg)
		case secret && is.HMACSecretEnv == "":
			v.add(at, "%s needs a shared secret (hmac_secret_env)", alg)
		case !publicKey && !secret:
			v.add(at, "%q is not a supported algorithm", alg)
		}
	}
	is.Permissions.validate(v, path+".permissions")
	if !validType(is.Type) {
		v.add(path+".type", "%q is not a media type such as \"at+jwt\" (or \"any\" to accept every typ)", is.Type)
	}
}

// validType reports whether t can be a typ header: empty (the default) or
// printable ASCII with no space or quote, as media types are.
func validType(t string) bool {
	if len(t) > 127 {
		return false
	}
	for _, c := range []byte(t) {
		if c <= ' ' || c >= 0x7f || c == '"' || c == ',' || c == ';' {
			return false
		}
	}
	return true
}

// registeredClaims are the JWT claims (RFC 7519 §4.1) the verifier reads
// itself; none can hold the permissions.
var registeredClaims = []string{"iss", "sub", "aud", "exp", "nbf", "iat", "jti"}

func (t *Tokens) validate(v *validator) {
	if t.Skew < 0 || t.Skew.Std() > 10*time.Minute {
		v.add("tokens.skew", "%v is not between 0s and 10m", t.Skew)
	}
	if t.MaxAge != nil && *t.MaxAge < 0 {
		v.add("tokens.max_age", "must be positive, or 0s for no maximum")
	}
	if t.MaxSize < 1<<10 || t.MaxSize > 1<<20 {
		v.add("tokens.max_size", "%d is not between 1024 and 1048576", t.MaxSize)
	}
	if t.CacheSize < 0 {
		v.add("tokens.cache_size", "must be positive")
	}
	v.atLeast("tokens.refresh_interval", t.RefreshInterval, time.Minute)
	v.atLeast("tokens.refetch_cooldown", t.RefetchCooldown, time.Second)
	v.positive("tokens.retry_backoff.min", t.RetryBackoff.Min)
	v.positive("tokens.retry_backoff.max", t.RetryBackoff.Max)
	if t.RetryBackoff.Min > 0 && t.RetryBackoff.Max < t.RetryBackoff.Min {
		v.add("tokens.retry_backoff.max", "%v is less than min (%v)", t.RetryBackoff.Max, t.RetryBackoff.Min)
	}
	if t.MaxConcurrentVerifications < 0 {
		v.add("tokens.max_concurrent_verifications", "must be positive, or 0 for the default")
	}
	for _, c := range registeredClaims {
		if t.PermissionClaim == c {
			v.add("tokens.permission_claim", "%q is a registered claim, not one for permissions", c)
		}
	}
}

func (g *Guard) validate(v *validator) {
	if g.Failures < 1 {
		v.add("guard.failures", "must be at least 1")
	}
	v.positive("guard.period", g.Period)
	v.positive("guard.cooldown", g.Cooldown)
	if g.MaxAddresses < 1 {
		v.add("guard.max_addresses", "must be at least 1")
	}
}

func (r *RateLimit) validate(v *validator) {
	switch r.Store {
	case "memory":
	case "redis":
		rr := &r.Redis
		v.redis("rate_limit.redis", redisKeys{
			addr: rr.Addr, addrs: rr.Addrs, cluster: rr.Cluster, master: rr.MasterName, sentinels: rr.SentinelAddrs, db: rr.DB, tls: rr.TLS, tlsCAFile: rr.TLSCAFile,
			passwordEnv: rr.PasswordEnv, usernameEnv: rr.UsernameEnv, sentinelPasswordEnv: rr.SentinelPasswordEnv,
			password: &rr.Password, username: &rr.Username, sentinelPass: &rr.SentinelPassword,
		})
	default:
		v.add("rate_limit.store", "%q is not memory or redis", r.Store)
	}
	if r.Redis.OnFailure != "open" && r.Redis.OnFailure != "closed" {
		v.add("rate_limit.redis.on_failure", "%q is not open or closed", r.Redis.OnFailure)
	}
	v.positive("rate_limit.redis.timeout", r.Redis.Timeout)
	if r.Redis.BreakerFailures < 1 {
		v.add("rate_limit.redis.breaker_failures", "must be at least 1")
	}
	v.atLeast("rate_limit.redis.probe_interval", r.Redis.ProbeInterval, 10*time.Millisecond)
	if r.Default != nil {
		r.Default.validate(v, "rate_limit.default")
	}
	for name, t := range r.Tiers {
		path := "rate_limit.tiers." + name
		switch {
		case t.Override != nil && t.Multiplier != 0:
			v.add(path, "set multiplier or override, not both")
		case t.Override != nil:
			t.Override.validate(v, path+".override")
		case t.Multiplier <= 0:
			v.add(path+".multiplier", "must be positive")
		}
	}
	for i, cidr := range r.TrustedProxies {
		if _, err := netip.ParsePrefix(cidr); err != nil {
			if _, err := netip.ParseAddr(cidr); err != nil {
				v.add(fmt.Sprintf("rate_limit.trusted_proxies[%d]", i), "%q is not an address or CIDR", cidr)
			}
		}
	}
	if r.MaxKeys < 0 {
		v.add("rate_limit.max_keys", "must be positive")
	}
}

func (r *Rate) validate(v *validator, path string) {
	if r.Requests == 0 {
		v.add(path+".requests", "must be at least 1")
	}
	if r.Period.Std() < time.Millisecond {
		v.add(path+".period", "must be at least 1ms")
	}
}

// positive records a mistake for a negative duration; zero became the
// default before validation.
func (v *validator) positive(path string, d Duration) {
	if d < 0 {
		v.add(path, "must be positive")
	}
}

func (v *validator) atLeast(path string, d Duration, least time.Duration) {
	if d.Std() < least {
		v.add(path, "%v is less than %v", d, Duration(least))
	}
}

func (v *validator) address(path, addr string) {
	if _, _, err := net.SplitHostPort(addr); err != nil {
		v.add(path, "%q is not host:port", addr)
	}
}

func (v *validator) file(path, name string) {
	if name == "" {
		v.add(path, "is required")
		return
	}
	if _, err := os.Stat(name); err != nil {
		v.add(path, "%q: %v", name, errors.Unwrap(err))
	}
}
