package token

import (
	"net/http"
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

// Option configures a [Verifier].
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
)

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
		retryMin:        500 * time.Millisecond,
		retryMax:        time.Minute,
		client:          &http.Client{Timeout: 10 * time.Second},
		fetchTimeout:    10 * time.Second,
		maxKeySetBytes:  1 << 20,
	}
	for _, o := range opts {
		o.apply(c)
	}
	return c
}

// WithClock sets the clock that expiry, not-before and the cache are
// checked against. The default is the system clock.
func WithClock(clock Clock) Option {
	return optionFunc(func(c *config) {
		if clock != nil {
			c.clock = clock
		}
	})
}

// WithSkew sets the clock skew allowed between the issuer and the verifier
// when checking exp, nbf and iat. The default is [DefaultSkew]; negative
// values count as zero. Any value is safe: date arithmetic saturates
// rather than overflows.
func WithSkew(d time.Duration) Option {
	return optionFunc(func(c *config) { c.skew = max(d, 0) })
}

// WithMaxAge refuses tokens issued (iat) more than d ago, allowing for the
// skew, whatever their exp, and then requires iat. Zero, the default, sets
// no limit. Any value is safe: iat plus d plus the skew saturates rather
// than overflows, so the largest [time.Duration] sets no practical limit
// but still requires iat.
func WithMaxAge(d time.Duration) Option {
	return optionFunc(func(c *config) { c.maxAge = max(d, 0) })
}

// WithMaxSize sets the largest token accepted, in bytes. The default is
// [DefaultMaxSize].
func WithMaxSize(n int) Option {
	return optionFunc(func(c *config) {
		if n > 0 {
			c.maxSize = n
		}
	})
}

// WithPermissionClaim names the claim that holds the permission masks,
// an object of domain → integer. The default is [DefaultPermissionClaim].
func WithPermissionClaim(name string) Option {
	return optionFunc(func(c *config) {
		if name != "" {
			c.permissionClaim = name
		}
	})
}

// WithClaims names further claims to keep in [Principal.Claims], decoded
// from JSON (numbers as [encoding/json.Number]). A token whose kept claim
// holds, at any depth, an object naming a member twice is refused.
func WithClaims(names ...string) Option {
	return optionFunc(func(c *config) { c.keepClaims = append(c.keepClaims, names...) })
}

// WithCacheSize bounds the number of verified tokens remembered. Zero
// disables the cache. The default is [DefaultCacheSize].
func WithCacheSize(n int) Option {
	return optionFunc(func(c *config) { c.cacheSize = max(n, 0) })
}

// WithRefetchCooldown sets the least time between two fetches of an
// issuer's key set caused by tokens signed with an unknown key, so that a
// flood of bogus key ids cannot hammer the issuer. The default is
// [DefaultRefetchCooldown].
func WithRefetchCooldown(d time.Duration) Option {
	return optionFunc(func(c *config) { c.cooldown = max(d, 0) })
}

// WithRefreshInterval sets how often key sets are fetched in the
// background, at least; a longer Cache-Control max-age of the key set
// response wins. The default is [DefaultRefreshInterval].
func WithRefreshInterval(d time.Duration) Option {
	return optionFunc(func(c *config) {
		if d >= time.Second {
			c.refreshInterval = d
		}
	})
}

// WithRetryBackoff sets the delays between attempts of the first fetch of
// an issuer's keys: from least, doubling up to most, with jitter. The
// default is 500ms to 1m.
func WithRetryBackoff(least, most time.Duration) Option {
	return optionFunc(func(c *config) {
		if least > 0 && most >= least {
			c.retryMin, c.retryMax = least, most
		}
	})
}

// WithHTTPClient sets the client that fetches metadata and key sets. The
// default has a 10 s timeout. The verifier uses a copy of it that follows
// no redirect from https to http or to another host, then applies the
// client's own CheckRedirect, if any.
func WithHTTPClient(client *http.Client) Option {
	return optionFunc(func(c *config) {
		if client != nil {
			c.client = client
		}
	})
}

// WithKeysObserver sets a function called after every fetch of an issuer's
// keys: with the number of usable keys installed and a nil error, or with
// zero and the error of the fetch. When the fetch failed, the previous keys
// stay in place; when the key set held no usable key, the issuer has none
// until the next fetch. Telemetry counts refreshes with it.
func WithKeysObserver(observe func(issuer string, keys int, err error)) Option {
	return optionFunc(func(c *config) { c.observeKeys = observe })
}
