// Package config reads the gateway's YAML configuration: listeners, trusted
// issuers, descriptor sources, routes, limits, rate limiting and telemetry.
//
// [Load] reads a file, applies environment overrides for secrets, fills in
// defaults and validates everything at once, reporting each mistake with
// its path in the file:
//
//	cfg, err := config.Load("portcullis.yaml")
//	if err != nil {
//		log.Fatal(err) // routes[2].backend: "localhost:8082" is not an http:// or https:// URL
//	}
//
// Validation here is about the file alone; whether a routed service exists
// in the descriptors is checked when the gateway is assembled.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"strings"
	"time"

	"sigs.k8s.io/yaml"
)

// Config is the whole gateway configuration.
type Config struct {
	// Listen is the main listener's address (Connect, gRPC, gRPC-Web and
	// HTTP/JSON on one port). Default "127.0.0.1:8080".
	Listen string `json:"listen"`
	// Admin is the operator listener's address (/healthz, /readyz,
	// /metrics). Default "127.0.0.1:9090".
	Admin string `json:"admin"`
	// TLS, when set, serves the main listener over TLS; otherwise it
	// serves cleartext HTTP/1.1 and HTTP/2 (h2c).
	TLS *TLS `json:"tls,omitempty"`
	// Descriptors says where the services' descriptors come from.
	Descriptors Descriptors `json:"descriptors"`
	// Issuers lists the trusted token issuers. At least one is needed
	// unless every routed method is public.
	Issuers []Issuer `json:"issuers"`
	// Routes maps services to backends.
	Routes []Route `json:"routes"`
	// Limits bounds what one caller can make the gateway do.
	Limits Limits `json:"limits"`
	// RateLimit configures per-client rate limiting.
	RateLimit RateLimit `json:"rate_limit"`
	// Reflection serves gRPC server reflection for the routed services on
	// the main listener. Default true.
	Reflection *bool `json:"reflection,omitempty"`
	// Telemetry configures logs, traces and metrics.
	Telemetry Telemetry `json:"telemetry"`
}

// TLS names a certificate and key in PEM files.
type TLS struct {
	CertFile string `json:"cert_file"`
	KeyFile  string `json:"key_file"`
}

// Descriptors lists descriptor sources. Files from every source are merged.
type Descriptors struct {
	// CompiledIn uses the descriptors compiled into the binary (the
	// example services). Default true when Images is empty.
	CompiledIn *bool `json:"compiled_in,omitempty"`
	// Images are buf images (`buf build -o FILE`) loaded at start.
	Images []string `json:"images,omitempty"`
}

// Issuer is one trusted token issuer and where its keys come from. Exactly
// one of IssuerURL, JWKSURL, JWKSFile and HMACSecretEnv is set.
type Issuer struct {
	// Issuer is the expected iss claim.
	Issuer string `json:"issuer"`
	// Audiences are the accepted aud values; a token must name one.
	Audiences []string `json:"audiences"`
	// Discovery fetches the issuer's metadata (RFC 8414 or OpenID
	// Connect discovery) from Issuer to find its JWKS.
	Discovery bool `json:"discovery,omitempty"`
	// JWKSURL is a JWKS kept fresh in the background.
	JWKSURL string `json:"jwks_url,omitempty"`
	// JWKSFile is a local JWKS file.
	JWKSFile string `json:"jwks_file,omitempty"`
	// HMACSecretEnv names the environment variable holding an HS256 shared
	// secret (at least 32 bytes), for single-party deployments.
	HMACSecretEnv string `json:"hmac_secret_env,omitempty"`
	// Algorithms allowed for this issuer's tokens. Default: ES256, RS256,
	// EdDSA for keys; HS256 for a secret.
	Algorithms []string `json:"algorithms,omitempty"`
	// Type, when set, is the required typ header, such as "at+jwt".
	Type string `json:"type,omitempty"`

	// HMACSecret is the secret read from HMACSecretEnv. Never in the file.
	HMACSecret []byte `json:"-"`
}

// Route sends a service's calls to a backend.
type Route struct {
	// Service is the fully qualified service name, such as
	// "example.licensing.v1.LicensingService".
	Service string `json:"service"`
	// Backend is the backend's base URL: http:// for h2c, https:// for TLS.
	Backend string `json:"backend"`
	// Protocol is the outbound protocol: "grpc" (default), "connect" or
	// "grpcweb".
	Protocol string `json:"protocol,omitempty"`
	// CAFile, for https backends, is a PEM file of CAs to trust instead of
	// the system's.
	CAFile string `json:"ca_file,omitempty"`
}

// Limits bounds message sizes, streams, timeouts and deadlines.
type Limits struct {
	// MaxMessageBytes is the largest message accepted or forwarded.
	// Default 4 MiB.
	MaxMessageBytes int `json:"max_message_bytes,omitempty"`
	// MaxConcurrentStreams per HTTP/2 connection. Default 250.
	MaxConcurrentStreams uint32 `json:"max_concurrent_streams,omitempty"`
	// ReadHeaderTimeout for the listeners. Default 10s.
	ReadHeaderTimeout Duration `json:"read_header_timeout,omitempty"`
	// IdleTimeout closes idle connections. Default 2m.
	IdleTimeout Duration `json:"idle_timeout,omitempty"`
	// MaxTimeout caps the deadline forwarded to backends; calls without a
	// deadline get it. Default 30s.
	MaxTimeout Duration `json:"max_timeout,omitempty"`
	// ShutdownTimeout bounds the drain of in-flight calls. Default 15s.
	ShutdownTimeout Duration `json:"shutdown_timeout,omitempty"`
	// SensitiveHeaders are request headers never forwarded to backends.
	// Cookie is always dropped, and so are the caller's W3C trace context
	// headers: the gateway sends its own.
	SensitiveHeaders []string `json:"sensitive_headers,omitempty"`
}

// RateLimit configures rate limiting.
type RateLimit struct {
	// Store is "memory" (default) or "redis".
	Store string `json:"store,omitempty"`
	// Redis configures the shared store.
	Redis Redis `json:"redis"`
	// Default applies to methods that declare no limit. Unset: unlimited.
	Default *Rate `json:"default,omitempty"`
	// Tiers scale limits by the token's tier claim.
	Tiers map[string]Tier `json:"tiers,omitempty"`
	// TrustedProxies are CIDRs whose X-Forwarded-For is believed when
	// limiting public calls per client address.
	TrustedProxies []string `json:"trusted_proxies,omitempty"`
	// MaxKeys bounds the in-memory store. Default 100000.
	MaxKeys int `json:"max_keys,omitempty"`
}

// Redis is a Redis server shared by gateway replicas.
type Redis struct {
	// Addr is host:port. Default "127.0.0.1:6379".
	Addr string `json:"addr,omitempty"`
	// PasswordEnv names the environment variable holding the password.
	PasswordEnv string `json:"password_env,omitempty"`
	// DB is the database number.
	DB int `json:"db,omitempty"`
	// Prefix starts every key. Default "portcullis:rl:".
	Prefix string `json:"prefix,omitempty"`
	// Timeout bounds one decision. Default 50ms.
	Timeout Duration `json:"timeout,omitempty"`
	// OnFailure is "open" (default: fall back to the local limiter) or
	// "closed" (refuse calls while Redis is unreachable).
	OnFailure string `json:"on_failure,omitempty"`

	// Password is read from PasswordEnv. Never in the file.
	Password string `json:"-"`
}

// Rate is requests per period with a burst.
type Rate struct {
	Requests uint32   `json:"requests"`
	Period   Duration `json:"period"`
	Burst    uint32   `json:"burst,omitempty"`
}

// Tier scales the declared limits for callers of one tier: Override
// replaces them, else Multiplier scales them.
type Tier struct {
	Multiplier float64 `json:"multiplier,omitempty"`
	Override   *Rate   `json:"override,omitempty"`
}

// Telemetry configures logs, traces and metrics. Exporters are chosen by
// the standard OTEL_* environment variables.
type Telemetry struct {
	// LogLevel is debug, info (default), warn or error.
	LogLevel string `json:"log_level,omitempty"`
	// AccessLog writes one line per call. Default true.
	AccessLog *bool `json:"access_log,omitempty"`
	// TraceSampleRatio samples this share of new traces (parent-based).
	// Default 1.
	TraceSampleRatio *float64 `json:"trace_sample_ratio,omitempty"`
	// Profiling serves Go's pprof profiles under /debug/pprof/ on the admin
	// listener. Default false.
	Profiling bool `json:"profiling,omitempty"`
}

// Duration is a time.Duration written as "1.5s" or "2m".
type Duration time.Duration

// UnmarshalJSON reads a Go duration string.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := yaml.Unmarshal(b, &s); err != nil || len(b) == 0 || b[0] != '"' {
		return fmt.Errorf("want a duration such as \"1.5s\", got %s", b)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// MarshalJSON writes the duration as a string.
func (d Duration) MarshalJSON() ([]byte, error) {
	return []byte(`"` + time.Duration(d).String() + `"`), nil
}

// Std returns the duration as a time.Duration.
func (d Duration) Std() time.Duration { return time.Duration(d) }

// Error lists every mistake in a configuration, each with its path.
type Error struct {
	File     string
	Mistakes []string // "routes[2].backend: ..."
}

// Error formats the mistakes one per line.
func (e *Error) Error() string {
	return fmt.Sprintf("config %s: %d mistake(s):\n  %s", e.File, len(e.Mistakes), strings.Join(e.Mistakes, "\n  "))
}

// Load reads, completes and validates the configuration file at path.
// Environment variables named by *_env fields supply secrets.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return Parse(path, data, os.LookupEnv)
}

// Parse is [Load] on data already read; name labels errors and lookupEnv
// supplies environment variables.
func Parse(name string, data []byte, lookupEnv func(string) (string, bool)) (*Config, error) {
	cfg := new(Config)
	if len(bytes.TrimSpace(data)) > 0 {
		if err := yaml.UnmarshalStrict(data, cfg); err != nil {
			return nil, &Error{File: name, Mistakes: []string{cleanYAMLError(err)}}
		}
	}
	cfg.setDefaults()
	v := &validator{lookupEnv: lookupEnv}
	cfg.validate(v)
	if len(v.mistakes) > 0 {
		return nil, &Error{File: name, Mistakes: v.mistakes}
	}
	return cfg, nil
}

func cleanYAMLError(err error) string {
	msg := err.Error()
	msg = strings.TrimPrefix(msg, "error unmarshaling JSON: while decoding JSON: ")
	return msg
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

func (c *Config) setDefaults() {
	setString(&c.Listen, "127.0.0.1:8080")
	setString(&c.Admin, "127.0.0.1:9090")
	for i := range c.Routes {
		setString(&c.Routes[i].Protocol, "grpc")
	}
	l := &c.Limits
	if l.MaxMessageBytes == 0 {
		l.MaxMessageBytes = 4 << 20
	}
	if l.MaxConcurrentStreams == 0 {
		l.MaxConcurrentStreams = 250
	}
	setDuration(&l.ReadHeaderTimeout, 10*time.Second)
	setDuration(&l.IdleTimeout, 2*time.Minute)
	setDuration(&l.MaxTimeout, 30*time.Second)
	setDuration(&l.ShutdownTimeout, 15*time.Second)
	r := &c.RateLimit
	setString(&r.Store, "memory")
	setString(&r.Redis.Addr, "127.0.0.1:6379")
	setString(&r.Redis.Prefix, "portcullis:rl:")
	setString(&r.Redis.OnFailure, "open")
	setDuration(&r.Redis.Timeout, 50*time.Millisecond)
	if r.MaxKeys == 0 {
		r.MaxKeys = 100_000
	}
	setString(&c.Telemetry.LogLevel, "info")
}

func setString(s *string, def string) {
	if *s == "" {
		*s = def
	}
}

func setDuration(d *Duration, def time.Duration) {
	if *d == 0 {
		*d = Duration(def)
	}
}

type validator struct {
	lookupEnv func(string) (string, bool)
	mistakes  []string
}

func (v *validator) add(path, format string, args ...any) {
	v.mistakes = append(v.mistakes, path+": "+fmt.Sprintf(format, args...))
}

func (c *Config) validate(v *validator) {
	v.address("listen", c.Listen)
	v.address("admin", c.Admin)
	if c.Listen == c.Admin {
		v.add("admin", "must differ from listen (%s)", c.Listen)
	}
	if c.TLS != nil {
		v.file("tls.cert_file", c.TLS.CertFile)
		v.file("tls.key_file", c.TLS.KeyFile)
	}
	for i, img := range c.Descriptors.Images {
		v.file(fmt.Sprintf("descriptors.images[%d]", i), img)
	}
	if !c.Descriptors.UseCompiledIn() && len(c.Descriptors.Images) == 0 {
		v.add("descriptors", "compiled_in is false and no images are given: there is nothing to route")
	}
	seenIssuers := map[string]int{}
	for i := range c.Issuers {
		c.Issuers[i].validate(v, fmt.Sprintf("issuers[%d]", i))
		if j, dup := seenIssuers[c.Issuers[i].Issuer]; dup {
			v.add(fmt.Sprintf("issuers[%d].issuer", i), "%q is already issuers[%d]", c.Issuers[i].Issuer, j)
		}
		seenIssuers[c.Issuers[i].Issuer] = i
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
		if u, err := url.Parse(r.Backend); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			v.add(path+".backend", "%q is not an http:// (h2c) or https:// URL", r.Backend)
		} else if r.CAFile != "" && u.Scheme != "https" {
			v.add(path+".ca_file", "is set, but the backend is not https")
		}
		if r.Protocol != "grpc" && r.Protocol != "connect" && r.Protocol != "grpcweb" {
			v.add(path+".protocol", "%q is not grpc, connect or grpcweb", r.Protocol)
		}
		if r.CAFile != "" {
			v.file(path+".ca_file", r.CAFile)
		}
	}
	l := c.Limits
	if l.MaxMessageBytes < 0 {
		v.add("limits.max_message_bytes", "must be positive")
	}
	for name, d := range map[string]Duration{"read_header_timeout": l.ReadHeaderTimeout, "idle_timeout": l.IdleTimeout, "max_timeout": l.MaxTimeout, "shutdown_timeout": l.ShutdownTimeout} {
		if d < 0 {
			v.add("limits."+name, "must be positive")
		}
	}
	c.RateLimit.validate(v)
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
	if sources != 1 {
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
		switch alg {
		case "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA":
			if is.HMACSecretEnv != "" {
				v.add(fmt.Sprintf("%s.algorithms[%d]", path, i), "%s needs a public key, but this issuer has a shared secret", alg)
			}
		case "HS256", "HS384", "HS512":
			if is.HMACSecretEnv == "" {
				v.add(fmt.Sprintf("%s.algorithms[%d]", path, i), "%s needs a shared secret (hmac_secret_env)", alg)
			}
		default:
			v.add(fmt.Sprintf("%s.algorithms[%d]", path, i), "%q is not a supported algorithm", alg)
		}
	}
}

func (r *RateLimit) validate(v *validator) {
	switch r.Store {
	case "memory":
	case "redis":
		if _, _, err := net.SplitHostPort(r.Redis.Addr); err != nil {
			v.add("rate_limit.redis.addr", "%q is not host:port", r.Redis.Addr)
		}
		if r.Redis.PasswordEnv != "" {
			if pw, ok := v.lookupEnv(r.Redis.PasswordEnv); ok {
				r.Redis.Password = pw
			} else {
				v.add("rate_limit.redis.password_env", "environment variable %s is not set", r.Redis.PasswordEnv)
			}
		}
	default:
		v.add("rate_limit.store", "%q is not memory or redis", r.Store)
	}
	if r.Redis.OnFailure != "open" && r.Redis.OnFailure != "closed" {
		v.add("rate_limit.redis.on_failure", "%q is not open or closed", r.Redis.OnFailure)
	}
	if r.Redis.Timeout < 0 {
		v.add("rate_limit.redis.timeout", "must be positive")
	}
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
