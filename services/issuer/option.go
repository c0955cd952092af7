package issuer

import (
	"log/slog"
	"net/http"
	"net/netip"
	"runtime"
	"time"

	"github.com/portcullis/portcullis/gateway/cors"
	"github.com/portcullis/portcullis/gateway/dpop"
	"github.com/portcullis/portcullis/gateway/revocation"
)

// Defaults of the options.
const (
	// DefaultMaxLifetime bounds every token's lifetime, and so how long a
	// retired signing key stays in the JWKS.
	DefaultMaxLifetime = 24 * time.Hour
	// DefaultReloadInterval is how often the issuer looks for changes to the
	// key directory and the client registry.
	DefaultReloadInterval = 2 * time.Second
	// DefaultJWKSMaxAge is the max-age of the JWKS and metadata responses.
	DefaultJWKSMaxAge = 5 * time.Minute
	// DefaultVerificationCacheTTL is how long a verified client secret is
	// remembered.
	DefaultVerificationCacheTTL = 5 * time.Minute
	// DefaultFailureBurst and DefaultFailureInterval limit failed
	// authentications: a burst of 10, then one more every 6 seconds, per
	// client id and per source address.
	DefaultFailureBurst    = 10
	DefaultFailureInterval = 6 * time.Second

	// RetentionMargin is kept on top of the maximum token lifetime before
	// a retired key leaves the JWKS. It covers clock skew between issuer
	// and verifiers and the delay before every issuer replica notices a
	// rotation (which is why the reload interval may not exceed a minute).
	RetentionMargin = 5 * time.Minute

	maxReloadInterval = time.Minute
	cacheSize         = 10_000 // verified secrets remembered at most
	limiterKeys       = 10_000 // keys each failure limiter tracks at most
)

// An Option configures [New], [RotateKey], [ListKeys] or [AddClient]; each
// option says which it applies to, and the others ignore it.
type Option interface {
	apply(*config)
}

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

type config struct {
	admin               *adminConfig
	exchange            *Exchange
	cors                *cors.Policy
	now                 func() time.Time
	logger              *slog.Logger
	reloadInterval      time.Duration
	maxLifetime         time.Duration
	hasher              Hasher
	cacheTTL            time.Duration
	failureBurst        int
	failureInterval     time.Duration
	clientAddr          func(*http.Request) (netip.Addr, bool)
	jwksMaxAge          time.Duration
	activationDelay     time.Duration
	maxConcurrentHashes int
	revocationPoll      time.Duration
	revocationStore     *revocation.Redis
	mtls                *mtlsConfig // nil: client certificates ignored
	dpop                *dpop.Verifier
}

func newConfig(opts []Option) *config {
	c := &config{
		now:                 time.Now,
		logger:              slog.Default(),
		reloadInterval:      DefaultReloadInterval,
		maxLifetime:         DefaultMaxLifetime,
		hasher:              DefaultHasher(),
		cacheTTL:            DefaultVerificationCacheTTL,
		failureBurst:        DefaultFailureBurst,
		failureInterval:     DefaultFailureInterval,
		clientAddr:          remoteAddr,
		jwksMaxAge:          DefaultJWKSMaxAge,
		maxConcurrentHashes: runtime.GOMAXPROCS(0),
		revocationPoll:      DefaultRevocationPollInterval,
	}
	for _, o := range opts {
		if o != nil {
			o.apply(c)
		}
	}
	if c.dpop == nil {
		c.dpop = defaultDPoP(c.now)
	}
	return c
}

// WithClock sets the source of the current time (default time.Now): token
// times, key activation and retirement, the failure limiter and the
// verification cache all read it. Applies to New, RotateKey and ListKeys.
func WithClock(now func() time.Time) Option {
	return optionFunc(func(c *config) {
		if now != nil {
			c.now = now
		}
	})
}

// WithLogger sets where the issuer logs reloads, refusals and failures
// (default slog.Default()). It never logs a secret or a token. Applies to
// New.
func WithLogger(l *slog.Logger) Option {
	return optionFunc(func(c *config) {
		if l != nil {
			c.logger = l
		}
	})
}

// WithReloadInterval sets how often the issuer polls the key directory and
// the client registry for changes (default 2s, at most 1m); 0 turns polling
// off, leaving [Server.Reload]. Applies to New.
func WithReloadInterval(d time.Duration) Option {
	return optionFunc(func(c *config) { c.reloadInterval = d })
}

// WithMaxLifetime bounds token lifetimes (default 24h): a client whose
// token_lifetime exceeds it is a registry error, and a retired key stays in
// the JWKS for this long plus [RetentionMargin]. Use the same value for
// New, RotateKey, ListKeys and AddClient.
func WithMaxLifetime(d time.Duration) Option {
	return optionFunc(func(c *config) { c.maxLifetime = d })
}

// WithHasher sets how client secrets are hashed (default [DefaultHasher]).
// New hashes its dummy secret with it, so that an unknown client costs what
// a known one does; AddClient hashes new secrets with it. Applies to New
// and AddClient.
func WithHasher(h Hasher) Option {
	return optionFunc(func(c *config) {
		if h != nil {
			c.hasher = h
		}
	})
}

// WithVerificationCache sets how long a verified client id and secret are
// remembered so that the next token request skips the deliberately slow
// hash (default 5m); 0 turns the cache off. Applies to New.
func WithVerificationCache(ttl time.Duration) Option {
	return optionFunc(func(c *config) { c.cacheTTL = ttl })
}

// WithFailureLimit limits failed client authentications per client id and
// per source address: burst failures at once, then one more per interval
// (default 10, then one per 6s). Over the limit, the token endpoint answers
// 429 without checking the secret. Applies to New.
func WithFailureLimit(burst int, interval time.Duration) Option {
	return optionFunc(func(c *config) {
		c.failureBurst, c.failureInterval = burst, interval
	})
}

// WithClientAddr sets how the source address of a token request is found,
// for the failure limit (default: the connection's address, r.RemoteAddr).
// Behind a trusted proxy, return the address it forwarded; report false
// when there is none. IPv6 addresses are limited per /64. Applies to New.
func WithClientAddr(f func(r *http.Request) (netip.Addr, bool)) Option {
	return optionFunc(func(c *config) {
		if f != nil {
			c.clientAddr = f
		}
	})
}

// WithJWKSMaxAge sets the Cache-Control max-age of the JWKS and metadata
// responses (default 5m). Applies to New.
func WithJWKSMaxAge(d time.Duration) Option {
	return optionFunc(func(c *config) { c.jwksMaxAge = d })
}

// WithActivationDelay makes RotateKey publish the new key now and sign with
// it only after d (default 0: at once), so that verifiers caching the JWKS
// know the key before they meet it. Applies to RotateKey.
func WithActivationDelay(d time.Duration) Option {
	return optionFunc(func(c *config) { c.activationDelay = d })
}

// WithMaxConcurrentVerifications bounds how many secret hashes are computed
// at once (default GOMAXPROCS); each argon2id verification holds its memory
// cost (19 MiB by default) while it runs. Applies to New.
func WithMaxConcurrentVerifications(n int) Option {
	return optionFunc(func(c *config) { c.maxConcurrentHashes = n })
}

// remoteAddr is the default client address: the connection's.
func remoteAddr(r *http.Request) (netip.Addr, bool) {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}, false
	}
	return ap.Addr(), true
}

// WithCORS lets pages of the policy's origins call the issuer from a
// browser: the token endpoint, the metadata and the key set. It is off by
// default, and rightly so for most clients: a page that holds a client
// secret gives it to everyone who loads the page. Allow it for development
// and for public demonstration clients only.
func WithCORS(p cors.Policy) Option {
	return optionFunc(func(c *config) { c.cors = &p })
}

// WithRevocationPollInterval sets how often the issuer reads what
// commands ("portcullis tokens revoke", "portcullis clients revoke")
// appended to the revocation file (default
// [DefaultRevocationPollInterval], at most a minute); 0 turns polling off,
// leaving [Server.Reload]. Revocations through the revocation endpoint
// are served at once either way. Applies to New.
func WithRevocationPollInterval(d time.Duration) Option {
	return optionFunc(func(c *config) { c.revocationPoll = d })
}

// WithRevocationStore publishes every revocation to Redis as well, for
// gateway replicas that share it (revocation.WithRedis), and retries
// those Redis refused at each revocation poll. Applies to New.
func WithRevocationStore(r *revocation.Redis) Option {
	return optionFunc(func(c *config) { c.revocationStore = r })
}
