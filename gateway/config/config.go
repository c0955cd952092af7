// Package config reads the gateway's YAML configuration: listeners, trusted
// issuers and token verification, descriptor sources, routes, limits, the
// address guard, backend health checks, rate limiting, token revocation
// and telemetry.
//
// [Load] reads a file, applies environment overrides for secrets, fills in
// defaults and validates everything at once. Every mistake is reported, not
// only the first: misspelt or misplaced keys (with a "did you mean"), values
// of the wrong type, duplicate keys and values that make no sense, each
// with its path and its line and column in the file:
//
//	cfg, err := config.Load("portcullis.yaml")
//	if err != nil {
//		log.Fatal(err) // portcullis.yaml:14:14: routes[2].backend: "localhost:8082" is not an http:// (h2c) or https:// URL
//	}
//
// portcullis.yaml beside this package is a sample holding every key with
// its default and a comment.
//
// The file is decoded here by walking the YAML node tree against [Config]
// rather than with a YAML library's strict decoding, because those stop at
// the first unknown key or type error and report neither its path nor a
// suggestion. Key names come from the json tags of the types below.
//
// Validation here is about the file alone; whether a routed service exists
// in the descriptors is checked when the gateway is assembled.
package config

// Config is the whole gateway configuration. A zero value of a field means
// its default unless its comment says otherwise.
type Config struct {
	// Listen is the main listener's address (Connect, gRPC, gRPC-Web and
	// HTTP/JSON on one port). Default "127.0.0.1:8080".
	Listen string `json:"listen"`
	// GRPCListen, when set, is the address of a listener for gRPC callers
	// alone, served by grpc-go's transport instead of net/http's HTTP/2
	// server: the same routes, decision, limits and telemetry as the main
	// listener, at less CPU per call. It serves TLS when the main listener
	// does, with the same certificate and client CAs. Connect, gRPC-Web
	// and REST callers, and browsers, use the main listener. Default: none.
	GRPCListen string `json:"grpc_listen,omitempty"`
	// Admin is the operator listener's address (/healthz, /readyz,
	// /metrics). Default "127.0.0.1:9090".
	Admin string `json:"admin"`
	// TLS, when it names a certificate, serves the main listener over TLS;
	// otherwise it serves cleartext HTTP/1.1 and HTTP/2 (h2c). It also
	// says how calls prove a client certificate: see [TLS.Serves].
	TLS *TLS `json:"tls,omitempty"`
	// Descriptors says where the services' descriptors come from.
	Descriptors Descriptors `json:"descriptors"`
	// Issuers lists the trusted token issuers. At least one is needed
	// unless every routed method is public.
	Issuers []Issuer `json:"issuers"`
	// Tokens holds the token verification settings shared by all issuers.
	Tokens Tokens `json:"tokens"`
	// Routes maps services to backends.
	Routes []Route `json:"routes"`
	// Limits bounds what one caller can make the gateway do.
	Limits Limits `json:"limits"`
	// Guard refuses, for a while, client addresses that keep presenting
	// bad tokens, before their tokens are verified.
	Guard Guard `json:"guard"`
	// Health configures the probing of backends.
	Health Health `json:"health"`
	// RateLimit configures per-client rate limiting.
	RateLimit RateLimit `json:"rate_limit"`
	// Resource names the gateway as an OAuth protected resource (RFC 9728).
	Resource *Resource `json:"resource,omitempty"`
	// CORS lets pages on other origins call the gateway from a browser.
	// Unset: no origin may (browsers refuse cross-origin calls).
	CORS *CORS `json:"cors,omitempty"`
	// REST serves the routes of the methods' google.api.http annotations.
	REST REST `json:"rest"`
	// Revocation says where revoked tokens are learnt of.
	Revocation Revocation `json:"revocation"`
	// DPoP accepts DPoP-bound tokens (RFC 9449).
	DPoP DPoP `json:"dpop"`
	// Reflection serves gRPC server reflection for the routed services on
	// the main listener. Default true; see [Config.ReflectionEnabled].
	Reflection *bool `json:"reflection,omitempty"`
	// Telemetry configures logs, traces and metrics.
	Telemetry Telemetry `json:"telemetry"`
	// InternalTokens configures the tokens the gateway mints for the
	// routes with identity internal. Required when a route has it.
	InternalTokens *InternalTokens `json:"internal_tokens,omitempty"`
	// Reload says when the configuration is read again while the gateway
	// runs.
	Reload Reload `json:"reload"`
}

// TLS names the main listener's certificate and key in PEM files, and
// says which client certificates calls may present. Every file is read
// again when it changes on disk: new handshakes use the new files.
type TLS struct {
	// CertFile is the certificate chain, leaf first. Unset (with KeyFile):
	// the listener serves cleartext, behind a proxy that terminates TLS.
	CertFile string `json:"cert_file,omitempty"`
	// KeyFile is the certificate's private key.
	KeyFile string `json:"key_file,omitempty"`
	// ClientCAFiles are PEM files of the CAs whose client certificates
	// are accepted, in the handshake and in ClientCertHeader.
	ClientCAFiles []string `json:"client_ca_files,omitempty"`
	// ClientAuth asks clients for a certificate in the handshake: "none"
	// (default), "request" (asked for, verified when presented) or
	// "require" (the handshake fails without a valid one). See
	// [ClientAuthNone] and the others.
	ClientAuth string `json:"client_auth,omitempty"`
	// ClientCertHeader names the request header in which a TLS-terminating
	// proxy passes the client's certificate: Envoy's
	// x-forwarded-client-cert, or a header holding a URL-encoded PEM.
	// Believed only from the peers in rate_limit.trusted_proxies, and
	// never forwarded to backends.
	ClientCertHeader string `json:"client_cert_header,omitempty"`
}

// Descriptors lists descriptor sources. Files from every source are merged.
type Descriptors struct {
	// CompiledIn uses the descriptors compiled into the binary (the
	// example services). Default true when Images is empty; see
	// [Descriptors.UseCompiledIn].
	CompiledIn *bool `json:"compiled_in,omitempty"`
	// Images are buf images (`buf build -o FILE`) loaded at start.
	Images []string `json:"images,omitempty"`
}

// Issuer is one trusted token issuer and where its keys come from. Exactly
// one of Discovery, JWKSURL, JWKSFile and HMACSecretEnv is set, or none
// for an opaque issuer (Introspection).
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
	// JWKSFile is a local JWKS file, read again within a second of a
	// change, with no reload.
	JWKSFile string `json:"jwks_file,omitempty"`
	// HMACSecretEnv names the environment variable holding an HS256 shared
	// secret (at least 32 bytes), for single-party deployments.
	HMACSecretEnv string `json:"hmac_secret_env,omitempty"`
	// Algorithms allowed for this issuer's tokens. Default: every RSA,
	// ECDSA and EdDSA algorithm for keys; HS256 for a secret.
	Algorithms []string `json:"algorithms,omitempty"`
	// Type is the typ header every token of this issuer must carry,
	// compared without case and with an optional "application/" prefix.
	//
	// THE DEFAULT IS "at+jwt", the type of OAuth 2.0 access tokens (RFC
	// 9068): an ID token or any other JWT the issuer signs is refused, even
	// with the right audience. The value "any" is the explicit opt-out: it
	// accepts tokens with any typ header or none, for issuers that do not
	// mint RFC 9068 tokens. Read it with [Issuer.RequiredType].
	Type string `json:"type,omitempty"`
	// AllowMissingKID accepts tokens without a kid header when the issuer
	// has a single key for the token's algorithm. Default false: every
	// token must name its key.
	AllowMissingKID bool `json:"allow_missing_kid,omitempty"`
	// Introspection, when set, makes the issuer opaque: its tokens are
	// introspected at the issuer (RFC 7662), and it has no key source.
	Introspection *Introspection `json:"introspection,omitempty"`
	// Permissions says where the issuer's tokens carry their permissions:
	// the permission claim (the default) or their OAuth scopes.
	Permissions *IssuerPermissions `json:"permissions,omitempty"`

	// HMACSecret is the secret read from HMACSecretEnv. Never in the file.
	HMACSecret []byte `json:"-"`
}

// Tokens holds the token verification settings shared by all issuers.
type Tokens struct {
	// Skew is the clock skew allowed between issuers and the gateway when
	// checking exp, nbf and iat. Default 60s; at most 10m.
	Skew Duration `json:"skew,omitempty"`
	// MaxAge refuses tokens issued (iat) longer ago than this, whatever
	// their exp, and then requires iat. Default 1h when the key is absent.
	// Unlike other durations, an explicit "0s" is not the default: it
	// sets no maximum age (and iat is not required). Read it with
	// [Tokens.MaxAgeLimit].
	MaxAge *Duration `json:"max_age,omitempty"`
	// MaxSize is the largest token accepted, in bytes. Default 8192;
	// between 1024 and 1048576.
	MaxSize int `json:"max_size,omitempty"`
	// CacheSize bounds the number of verified tokens remembered. Default
	// 10000.
	CacheSize int `json:"cache_size,omitempty"`
	// RefreshInterval is how often key sets are fetched in the background,
	// at least (a longer Cache-Control max-age of the key set wins).
	// Default 15m; at least 1m.
	RefreshInterval Duration `json:"refresh_interval,omitempty"`
	// RefetchCooldown is the least time between two fetches of an
	// issuer's key set caused by tokens naming an unknown key. Default
	// 30s; at least 1s.
	RefetchCooldown Duration `json:"refetch_cooldown,omitempty"`
	// RetryBackoff is the delay between attempts of the first fetch of an
	// issuer's keys, doubling from Min to Max.
	RetryBackoff Backoff `json:"retry_backoff"`
	// MaxConcurrentVerifications bounds the signature verifications in
	// progress at once. Default 0: the token package's default.
	MaxConcurrentVerifications int `json:"max_concurrent_verifications,omitempty"`
	// PermissionClaim names the claim holding the permission masks, an
	// object of domain → integer. Default "perms"; not a registered claim
	// name (iss, sub, aud, exp, nbf, iat, jti).
	PermissionClaim string `json:"permission_claim,omitempty"`
}

// Backoff is a delay that doubles, with jitter, from Min up to Max.
type Backoff struct {
	// Min is the first delay. Default 500ms.
	Min Duration `json:"min,omitempty"`
	// Max is the longest delay. Default 5s; at least Min.
	Max Duration `json:"max,omitempty"`
}

// Route sends a service's calls to a backend.
type Route struct {
	// Service is the fully qualified service name, such as
	// "example.licensing.v1.LicensingService".
	Service string `json:"service"`
	// Backend is the backend's base URL: http:// for h2c, https:// for TLS.
	// Set it, or Endpoints and/or DNS.
	Backend string `json:"backend,omitempty"`
	// Endpoints are the base URLs of the backend's replicas, all of one
	// scheme; calls are balanced over them.
	Endpoints []string `json:"endpoints,omitempty"`
	// DNS adds the replicas a name resolves to, resolved periodically.
	DNS *RouteDNS `json:"dns,omitempty"`
	// Balancer spreads the calls over the replicas: "round_robin"
	// (default) or "least_request" (the less busy of two picked at
	// random).
	Balancer string `json:"balancer,omitempty"`
	// Protocol is the outbound protocol: "grpc" (default), "connect" or
	// "grpcweb".
	Protocol string `json:"protocol,omitempty"`
	// CAFile, for https backends, is a PEM file of CAs to trust instead of
	// the system's; a change to it reloads the configuration when the
	// file is watched (see [Config.ReadFiles] and [Reload]).
	CAFile string `json:"ca_file,omitempty"`
	// CORS, when set, replaces the gateway's CORS policy for this
	// service's calls, RPC and REST alike.
	CORS *CORS `json:"cors,omitempty"`
	// Exchange, when set, lets the route accept an external issuer's
	// tokens, exchanged for internal ones at the bundled issuer.
	Exchange *RouteExchange `json:"exchange,omitempty"`
	// Identity says how the backend learns who is calling: "forward"
	// (default) forwards the caller's token unchanged in Authorization,
	// with the Portcullis-Client-Id and Portcullis-Tier headers, which the
	// backend can trust only when nothing but the gateway reaches it;
	// "internal" replaces Authorization with a short-lived token the
	// gateway mints and signs (see [InternalTokens]), which the backend
	// verifies against the gateway's key set.
	Identity string `json:"identity,omitempty"`
	// Audience is the aud of the internal tokens minted for this route.
	// Default: the service's name.
	Audience string `json:"audience,omitempty"`
	// ClientCertificate is "optional" (default) or "required": a call
	// without a verified client certificate is then refused with
	// Unauthenticated.
	ClientCertificate string `json:"client_certificate,omitempty"`
	// ClientCertFile, for https backends, is a PEM certificate chain the
	// gateway presents to the backend (mutual TLS), with ClientKeyFile.
	ClientCertFile string `json:"client_cert_file,omitempty"`
	// ClientKeyFile is ClientCertFile's private key.
	ClientKeyFile string `json:"client_key_file,omitempty"`
	// Descriptors says where the service's descriptors come from: "image"
	// (default), the gateway's descriptor sources; or "reflection", the
	// backend's gRPC server reflection, trusted for this service alone.
	Descriptors string `json:"descriptors,omitempty"`
	// ReflectionRefresh is how often, with descriptors reflection, the
	// backend is asked again; changed descriptors reload the gateway.
	// Default 30s; at least 100ms.
	ReflectionRefresh Duration `json:"reflection_refresh,omitempty"`
	// ReflectionAllowPublic lets, with descriptors reflection, the
	// backend's descriptors declare a method public. Default false: a
	// backend cannot open its methods to anonymous callers on its own.
	ReflectionAllowPublic bool `json:"reflection_allow_public,omitempty"`
}

// DescriptorsReflection is the [Route.Descriptors] of routes whose
// descriptors come from their backend's gRPC reflection.
const DescriptorsReflection = "reflection"

// IdentityInternal is the [Route.Identity] of routes whose backends get
// internal tokens.
const IdentityInternal = "internal"

// InternalTokens configures the gateway's internal tokens.
type InternalTokens struct {
	// Issuer is their iss: a URL naming the gateway, such as
	// "https://gateway.internal". Required.
	Issuer string `json:"issuer"`
	// Lifetime is how long one is valid, at most (never past the caller's
	// token). Default 60s.
	Lifetime Duration `json:"lifetime,omitempty"`
	// KeyDir holds the gateway's signing key (internal-signing-key.pem),
	// written there when absent. Unset: a key is generated at start, and
	// backends must fetch the key set again after a restart.
	KeyDir string `json:"key_dir,omitempty"`
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
	// RequestBodyTimeout bounds the time to receive the body of a unary
	// request. Default 10s.
	RequestBodyTimeout Duration `json:"request_body_timeout,omitempty"`
	// StreamIdleTimeout ends a stream whose caller sends nothing for this
	// long. Default 5m.
	StreamIdleTimeout Duration `json:"stream_idle_timeout,omitempty"`
	// MaxTimeout caps the deadline forwarded to backends for unary calls;
	// calls without a deadline get it. Default 30s.
	MaxTimeout Duration `json:"max_timeout,omitempty"`
	// MaxStreamTimeout caps the deadline of streaming calls; streams
	// without a deadline get it. Default 1h.
	MaxStreamTimeout Duration `json:"max_stream_timeout,omitempty"`
	// ShutdownTimeout is the drain time on SIGTERM: how long in-flight
	// calls may take to finish before they are cut. Default 15s.
	ShutdownTimeout Duration `json:"shutdown_timeout,omitempty"`
	// SensitiveHeaders are request headers never forwarded to backends.
	// Cookie is always dropped, and so are the caller's W3C trace context
	// headers: the gateway sends its own.
	SensitiveHeaders []string `json:"sensitive_headers,omitempty"`
}

// Guard is the pre-authentication address guard: a client address that
// presents Failures bad tokens within Period is refused for Cooldown
// before any verification work.
type Guard struct {
	// Enabled turns the guard on. Default true; see [Guard.IsEnabled].
	Enabled *bool `json:"enabled,omitempty"`
	// Failures is the number of bad tokens that trips the guard. Default 20.
	Failures int `json:"failures,omitempty"`
	// Period is the window in which Failures are counted. Default 10s.
	Period Duration `json:"period,omitempty"`
	// Cooldown is how long a tripped address is refused. Default 30s.
	Cooldown Duration `json:"cooldown,omitempty"`
	// MaxAddresses bounds the addresses tracked at once. Default 100000.
	MaxAddresses int `json:"max_addresses,omitempty"`
}

// Health configures the probing of backends' endpoints, their ejection
// and the retry of safe calls.
type Health struct {
	// Interval is how often each backend is probed. Default 5s when the
	// key is absent; at least 100ms. Unlike other durations, an explicit
	// "0s" is not the default: it turns probing off. Read it with
	// [Health.ProbeInterval].
	Interval *Duration `json:"interval,omitempty"`
	// Outlier ejects endpoints that fail calls in a row.
	Outlier Outlier `json:"outlier"`
	// Retries says when safe calls are retried on another endpoint.
	Retries Retries `json:"retries"`
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

// Redis is the Redis shared by gateway replicas: one server, a Cluster,
// or a master watched by Sentinels (see [RedisServers]).
type Redis struct {
	// Addr is host:port. Default "127.0.0.1:6379".
	Addr string `json:"addr,omitempty"`
	// PasswordEnv names the environment variable holding the password.
	PasswordEnv string `json:"password_env,omitempty"`
	// Addrs are the seed nodes of a Redis Cluster, host:port each, with
	// Cluster; Addr alone seeds it when Addrs is empty.
	Addrs []string `json:"addrs,omitempty"`
	// Cluster reports a Redis Cluster.
	Cluster bool `json:"cluster,omitempty"`
	// MasterName is the master that the Sentinels of SentinelAddrs watch:
	// set, the client asks them for the master and follows failovers, and
	// Addr is not used.
	MasterName string `json:"master_name,omitempty"`
	// SentinelAddrs are the Sentinels, host:port each, with MasterName.
	SentinelAddrs []string `json:"sentinel_addrs,omitempty"`
	// SentinelPasswordEnv names the environment variable holding the
	// Sentinels' password.
	SentinelPasswordEnv string `json:"sentinel_password_env,omitempty"`
	// UsernameEnv names the environment variable holding the ACL user.
	UsernameEnv string `json:"username_env,omitempty"`
	// TLS connects with TLS, verifying the servers against the system's
	// roots, or TLSCAFile's.
	TLS bool `json:"tls,omitempty"`
	// TLSCAFile is a PEM file of the CAs that sign the servers'
	// certificates, with TLS.
	TLSCAFile string `json:"tls_ca_file,omitempty"`
	// DB is the database number.
	DB int `json:"db,omitempty"`
	// Prefix starts every key. Default "portcullis:rl:".
	Prefix string `json:"prefix,omitempty"`
	// Timeout bounds one decision. Default 50ms.
	Timeout Duration `json:"timeout,omitempty"`
	// OnFailure is "open" (default: fall back to the local limiter) or
	// "closed" (refuse calls while Redis is unreachable).
	OnFailure string `json:"on_failure,omitempty"`
	// BreakerFailures is the number of consecutive failed decisions after
	// which Redis counts as down and OnFailure applies at once. Default 5.
	BreakerFailures int `json:"breaker_failures,omitempty"`
	// ProbeInterval is how often Redis is tried again while it is down.
	// Default 1s.
	ProbeInterval Duration `json:"probe_interval,omitempty"`

	// Password is read from PasswordEnv. Never in the file.
	Password string `json:"-"`
	// Username is read from UsernameEnv.
	Username string `json:"-"`
	// SentinelPassword is read from SentinelPasswordEnv.
	SentinelPassword string `json:"-"`
}

// Rate is requests per period with a burst.
type Rate struct {
	// Requests per Period; at least 1.
	Requests uint32 `json:"requests"`
	// Period; at least 1ms.
	Period Duration `json:"period"`
	// Burst is the number of requests allowed at once above the rate.
	Burst uint32 `json:"burst,omitempty"`
}

// Tier scales the declared limits for callers of one tier: Override
// replaces them, else Multiplier scales them.
type Tier struct {
	// Multiplier scales the declared limits; positive.
	Multiplier float64 `json:"multiplier,omitempty"`
	// Override replaces the declared limits.
	Override *Rate `json:"override,omitempty"`
}

// Telemetry configures logs, traces and metrics. Exporters are chosen by
// the standard OTEL_* environment variables.
type Telemetry struct {
	// LogLevel is debug, info (default), warn or error.
	LogLevel string `json:"log_level,omitempty"`
	// AccessLog writes one line per call. Default true; see
	// [Telemetry.AccessLogEnabled].
	AccessLog *bool `json:"access_log,omitempty"`
	// TraceSampleRatio samples this share of new traces (parent-based).
	// Default 1. At 0, no span is built at all: calls cost their metrics
	// and access line, not a trace.
	TraceSampleRatio *float64 `json:"trace_sample_ratio,omitempty"`
	// Profiling serves Go's pprof profiles under /debug/pprof/ on the admin
	// listener. Default false.
	Profiling bool `json:"profiling,omitempty"`
}
