package token

import (
	"fmt"
	"log/slog"
	"net/http"
	"runtime"
	"slices"
	"time"
)

// Clock tells the time. Tests inject one to check expiry at explicit times.
type Clock interface {
	Now() time.Time
}

// ClockFunc adapts a function to a [Clock].
type ClockFunc func() time.Time

// Now returns f().
func (f ClockFunc) Now() time.Time { return f() }

type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }

// Option configures a [Verifier]. [NewVerifier] returns an error naming
// every option given an invalid value.
type Option interface {
	apply(*config)
}

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

// Defaults of the options.
const (
	DefaultSkew            = 60 * time.Second
	DefaultMaxSize         = 8 << 10
	DefaultPermissionClaim = "perms"
	DefaultCacheSize       = 10_000
	DefaultRefetchCooldown = 30 * time.Second
	DefaultRefreshInterval = 15 * time.Minute
	// DefaultRetryBackoffMin and DefaultRetryBackoffMax bound the delays
	// between attempts of the first fetch of an issuer's keys: a verifier
	// started while its issuer is down is ready at most about 5 s after
	// the issuer is back.
	DefaultRetryBackoffMin = 500 * time.Millisecond
	DefaultRetryBackoffMax = 5 * time.Second
	// DefaultVerificationWait is how long a verification waits for one of
	// the [WithMaxConcurrentVerifications] slots before it is refused.
	DefaultVerificationWait = 50 * time.Millisecond
)

// DefaultMaxConcurrentVerifications returns the default bound of
// [WithMaxConcurrentVerifications]: 4 × GOMAXPROCS, enough to keep every
// processor verifying while others wait on the network, few enough that a
// flood of fresh tokens cannot queue unbounded work.
func DefaultMaxConcurrentVerifications() int { return 4 * runtime.GOMAXPROCS(0) }

// minRefreshInterval is the least background refresh interval accepted.
const minRefreshInterval = time.Second

// claimsRead are the claims the verifier reads itself: they cannot hold
// the permissions.
var claimsRead = []string{"iss", "aud", "exp", "nbf", "iat", "sub", "client_id", "jti", "tier"}

type config struct {
	clock           Clock
	skew            time.Duration
	maxAge          time.Duration
	maxSize         int
	permissionClaim string
	keepClaims      []string
	cacheSize       int
	cooldown        time.Duration
	refreshInterval time.Duration
	retryMin        time.Duration
	retryMax        time.Duration
	client          *http.Client
	fetchTimeout    time.Duration
	maxKeySetBytes  int64
	observeKeys     func(issuer string, keys int, err error)
	maxVerifying    int
	verifyWait      time.Duration
	logger          *slog.Logger
	revocations     Revocations
	opaque          *opaque // the issuer whose tokens are introspected
	opaqueCached    IntrospectCached
	// permissionLookup reads the scopes of issuers with
	// PermissionsFromScopes.
	permissionLookup PermissionLookup

	problems []string // invalid option values
}

func newConfig(opts []Option) *config {
	c := &config{
		clock:           systemClock{},
		skew:            DefaultSkew,
		maxSize:         DefaultMaxSize,
		permissionClaim: DefaultPermissionClaim,
		cacheSize:       DefaultCacheSize,
		cooldown:        DefaultRefetchCooldown,
		refreshInterval: DefaultRefreshInterval,
		retryMin:        DefaultRetryBackoffMin,
		retryMax:        DefaultRetryBackoffMax,
		client:          &http.Client{Timeout: 10 * time.Second},
		fetchTimeout:    10 * time.Second,
		maxKeySetBytes:  1 << 20,
		maxVerifying:    DefaultMaxConcurrentVerifications(),
		verifyWait:      DefaultVerificationWait,
		logger:          slog.New(slog.DiscardHandler),
	}
	for _, o := range opts {
		if o == nil {
			c.invalid("nil Option")
			continue
		}
		o.apply(c)
	}
	return c
}

// invalid records an option given an invalid value.
func (c *config) invalid(format string, args ...any) {
	c.problems = append(c.problems, fmt.Sprintf(format, args...))
}

// WithClock sets the clock that expiry, not-before and the cache are
// checked against. The default is the system clock; nil is invalid.
func WithClock(clock Clock) Option {
	return optionFunc(func(c *config) {
		if clock == nil {
			c.invalid("WithClock(nil)")
			return
		}
		c.clock = clock
	})
}

// WithSkew sets the clock skew allowed between the issuer and the verifier
// when checking exp, nbf and iat. The default is [DefaultSkew]; negative
// values are invalid. Any other value is safe: date arithmetic saturates
// rather than overflows.
func WithSkew(d time.Duration) Option {
	return optionFunc(func(c *config) {
		if d < 0 {
			c.invalid("WithSkew(%v): the skew must not be negative", d)
			return
		}
		c.skew = d
	})
}

// WithMaxAge refuses tokens issued (iat) more than d ago, allowing for the
// skew, whatever their exp, and then requires iat. Zero, the default, sets
// no limit; negative values are invalid. Any other value is safe: iat plus
// d plus the skew saturates rather than overflows, so the largest
// [time.Duration] sets no practical limit but still requires iat.
func WithMaxAge(d time.Duration) Option {
	return optionFunc(func(c *config) {
		if d < 0 {
			c.invalid("WithMaxAge(%v): the age must not be negative", d)
			return
		}
		c.maxAge = d
	})
}

// WithMaxSize sets the largest token accepted, in bytes; it must be
// positive. The default is [DefaultMaxSize].
func WithMaxSize(n int) Option {
	return optionFunc(func(c *config) {
		if n <= 0 {
			c.invalid("WithMaxSize(%d): the size must be positive", n)
			return
		}
		c.maxSize = n
	})
}

// WithPermissionClaim names the claim that holds the permission masks,
// an object of domain → integer. The default is [DefaultPermissionClaim].
// The name must not be empty nor one of the claims the verifier reads
// itself (iss, aud, exp, nbf, iat, sub, client_id, jti, tier).
func WithPermissionClaim(name string) Option {
	return optionFunc(func(c *config) {
		if name == "" || slices.Contains(claimsRead, name) {
			c.invalid("WithPermissionClaim(%q): not a name for the permission claim", name)
			return
		}
		c.permissionClaim = name
	})
}

// WithClaims names further claims to keep in [Principal.Claims], decoded
// from JSON (numbers as [encoding/json.Number]). A token whose kept claim
// holds, at any depth, an object naming a member twice is refused. Names
// must not be empty.
func WithClaims(names ...string) Option {
	return optionFunc(func(c *config) {
		for _, name := range names {
			if name == "" {
				c.invalid("WithClaims(%q): a claim name must not be empty", name)
				continue
			}
			if !slices.Contains(c.keepClaims, name) {
				c.keepClaims = append(c.keepClaims, name)
			}
		}
	})
}

// WithCacheSize bounds the number of verified tokens remembered. Zero
// disables the cache; negative values are invalid. The default is
// [DefaultCacheSize].
func WithCacheSize(n int) Option {
	return optionFunc(func(c *config) {
		if n < 0 {
			c.invalid("WithCacheSize(%d): the size must not be negative", n)
			return
		}
		c.cacheSize = n
	})
}

// WithRefetchCooldown sets the least time between two fetches of an
// issuer's key set caused by tokens signed with an unknown key, so that a
// flood of bogus key ids cannot hammer the issuer. The default is
// [DefaultRefetchCooldown]; negative values are invalid.
func WithRefetchCooldown(d time.Duration) Option {
	return optionFunc(func(c *config) {
		if d < 0 {
			c.invalid("WithRefetchCooldown(%v): the cooldown must not be negative", d)
			return
		}
		c.cooldown = d
	})
}

// WithRefreshInterval sets how often key sets are fetched in the
// background, at least; a longer Cache-Control max-age of the key set
// response wins. The default is [DefaultRefreshInterval]; values under a
// second are invalid.
func WithRefreshInterval(d time.Duration) Option {
	return optionFunc(func(c *config) {
		if d < minRefreshInterval {
			c.invalid("WithRefreshInterval(%v): the interval must be at least %v", d, minRefreshInterval)
			return
		}
		c.refreshInterval = d
	})
}

// WithRetryBackoff sets the delays between attempts of the first fetch of
// an issuer's keys: from least, doubling up to most, with jitter. Both
// must be positive, and least at most most. The default is
// [DefaultRetryBackoffMin] to [DefaultRetryBackoffMax]. [Verifier.Ready]
// says when the next attempt is.
func WithRetryBackoff(least, most time.Duration) Option {
	return optionFunc(func(c *config) {
		if least <= 0 || most < least {
			c.invalid("WithRetryBackoff(%v, %v): the delays must be positive, the first at most the second", least, most)
			return
		}
		c.retryMin, c.retryMax = least, most
	})
}

// WithHTTPClient sets the client that fetches metadata and key sets. The
// default has a 10 s timeout; nil is invalid. The verifier uses a copy of
// it that follows no redirect from https to http or to another host, then
// applies the client's own CheckRedirect, if any.
func WithHTTPClient(client *http.Client) Option {
	return optionFunc(func(c *config) {
		if client == nil {
			c.invalid("WithHTTPClient(nil)")
			return
		}
		c.client = client
	})
}

// WithKeysObserver sets a function called after every fetch of an issuer's
// keys: with the number of usable keys installed and a nil error, or with
// zero and the error of the fetch. When the fetch failed or the key set
// was refused for holding private key material, the previous keys stay in
// place; when the key set held no usable key, the issuer has none until
// the next fetch. Telemetry counts refreshes with it. Nil sets none.
func WithKeysObserver(observe func(issuer string, keys int, err error)) Option {
	return optionFunc(func(c *config) { c.observeKeys = observe })
}

// WithMaxConcurrentVerifications bounds the signature verifications of
// tokens not in the cache that run at once, so that a flood of fresh
// tokens costs bounded CPU. A verification that finds every slot taken
// waits up to [WithVerificationWait], never past its context, and is then
// refused with [ErrOverloaded]; tokens in the cache are never held up.
// n must be positive; the default is [DefaultMaxConcurrentVerifications].
func WithMaxConcurrentVerifications(n int) Option {
	return optionFunc(func(c *config) {
		if n <= 0 {
			c.invalid("WithMaxConcurrentVerifications(%d): the bound must be positive", n)
			return
		}
		c.maxVerifying = n
	})
}

// WithVerificationWait sets how long a verification waits for a slot of
// [WithMaxConcurrentVerifications] before it is refused with
// [ErrOverloaded]. Zero refuses at once; negative values are invalid. The
// default is [DefaultVerificationWait].
func WithVerificationWait(d time.Duration) Option {
	return optionFunc(func(c *config) {
		if d < 0 {
			c.invalid("WithVerificationWait(%v): the wait must not be negative", d)
			return
		}
		c.verifyWait = d
	})
}

// WithLogger sets the logger that records each change of an issuer's key
// state, once per change rather than per fetch: keys ready, fetch
// failing, recovered, key set refused. It never logs tokens or key
// material. The default logs nothing; nil is invalid.
func WithLogger(logger *slog.Logger) Option {
	return optionFunc(func(c *config) {
		if logger == nil {
			c.invalid("WithLogger(nil)")
			return
		}
		c.logger = logger
	})
}
