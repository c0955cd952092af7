package introspect

import (
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/portcullis/portcullis/gateway/token"
)

// Defaults of the options.
const (
	DefaultCacheMax    = 60 * time.Second
	DefaultCacheSize   = 10_000
	DefaultNegativeTTL = 5 * time.Second
	DefaultTimeout     = 5 * time.Second
	DefaultSkew        = token.DefaultSkew
)

// maxResponse bounds an introspection answer.
const maxResponse = 64 << 10

// Option configures an [Introspector]. [New] returns an error naming every
// option given an invalid value.
type Option interface {
	apply(*config)
}

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

type config struct {
	now             func() time.Time
	client          *http.Client
	cacheMax        time.Duration
	cacheSize       int
	negativeTTL     time.Duration
	timeout         time.Duration
	skew            time.Duration
	audiences       []string
	permissionClaim string
	logger          *slog.Logger

	problems []string
}

func newConfig(opts []Option) *config {
	c := &config{
		now:             time.Now,
		client:          &http.Client{},
		cacheMax:        DefaultCacheMax,
		cacheSize:       DefaultCacheSize,
		negativeTTL:     DefaultNegativeTTL,
		timeout:         DefaultTimeout,
		skew:            DefaultSkew,
		permissionClaim: token.DefaultPermissionClaim,
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

func (c *config) invalid(format string, args ...any) {
	c.problems = append(c.problems, fmt.Sprintf(format, args...))
}

// WithClock sets the clock expiry is judged by. Nil is invalid.
func WithClock(now func() time.Time) Option {
	return optionFunc(func(c *config) {
		if now == nil {
			c.invalid("WithClock(nil)")
			return
		}
		c.now = now
	})
}

// WithHTTPClient sets the client that calls the introspection endpoint
// (default: a new http.Client; the request timeout is [WithTimeout]). Nil
// is invalid.
func WithHTTPClient(client *http.Client) Option {
	return optionFunc(func(c *config) {
		if client == nil {
			c.invalid("WithHTTPClient(nil)")
			return
		}
		c.client = client
	})
}

// WithCacheMax bounds how long an active token's answer is reused
// (default 60s; never past its exp): the longest a revocation at the
// issuer goes unnoticed. 0 asks the issuer on every call.
func WithCacheMax(d time.Duration) Option {
	return optionFunc(func(c *config) {
		if d < 0 {
			c.invalid("WithCacheMax(%v): negative", d)
			return
		}
		c.cacheMax = d
	})
}

// WithCacheSize bounds the number of answers cached (default 10000). 0
// caches nothing.
func WithCacheSize(n int) Option {
	return optionFunc(func(c *config) {
		if n < 0 {
			c.invalid("WithCacheSize(%d): negative", n)
			return
		}
		c.cacheSize = n
	})
}

// WithNegativeTTL sets how long a token found inactive is refused without
// asking again (default 5s), so that a caller retrying a bad token does
// not reach the issuer each time. 0 caches no refusal.
func WithNegativeTTL(d time.Duration) Option {
	return optionFunc(func(c *config) {
		if d < 0 {
			c.invalid("WithNegativeTTL(%v): negative", d)
			return
		}
		c.negativeTTL = d
	})
}

// WithTimeout bounds one introspection request (default 5s).
func WithTimeout(d time.Duration) Option {
	return optionFunc(func(c *config) {
		if d <= 0 {
			c.invalid("WithTimeout(%v): not positive", d)
			return
		}
		c.timeout = d
	})
}

// WithSkew sets the clock skew allowed when checking exp and nbf (default
// 60s, as the token verifier's).
func WithSkew(d time.Duration) Option {
	return optionFunc(func(c *config) {
		if d < 0 || d > 10*time.Minute {
			c.invalid("WithSkew(%v): not between 0 and 10m", d)
			return
		}
		c.skew = d
	})
}

// WithAudiences makes an answer naming an aud refused unless it names one
// of audiences. An answer without aud is accepted.
func WithAudiences(audiences ...string) Option {
	return optionFunc(func(c *config) { c.audiences = append(c.audiences, audiences...) })
}

// WithPermissionClaim names the member holding the permission masks
// (default "perms").
func WithPermissionClaim(name string) Option {
	return optionFunc(func(c *config) {
		if name == "" {
			c.invalid(`WithPermissionClaim("")`)
			return
		}
		c.permissionClaim = name
	})
}

// WithLogger sets the logger of failed introspections (default: none).
// Nil is invalid.
func WithLogger(logger *slog.Logger) Option {
	return optionFunc(func(c *config) {
		if logger == nil {
			c.invalid("WithLogger(nil)")
			return
		}
		c.logger = logger
	})
}
