package exchange

import (
	"fmt"
	"net/http"
	"time"
)

// Defaults of the options.
const (
	DefaultCacheSize   = 10_000
	DefaultNegativeTTL = 5 * time.Second
	DefaultTimeout     = 5 * time.Second
)

const maxResponse = 64 << 10

// Option configures an [Exchanger]. [New] returns an error naming every
// option given an invalid value.
type Option interface {
	apply(*config)
}

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

type config struct {
	now         func() time.Time
	client      *http.Client
	cacheSize   int
	negativeTTL time.Duration
	timeout     time.Duration
	audience    string
	problems    []string
}

func newConfig(opts []Option) *config {
	c := &config{now: time.Now, client: &http.Client{}, cacheSize: DefaultCacheSize, negativeTTL: DefaultNegativeTTL, timeout: DefaultTimeout}
	for _, o := range opts {
		if o == nil {
			c.problems = append(c.problems, "nil Option")
			continue
		}
		o.apply(c)
	}
	return c
}

// WithClock sets the clock cached answers expire by. Nil is invalid.
func WithClock(now func() time.Time) Option {
	return optionFunc(func(c *config) {
		if now == nil {
			c.problems = append(c.problems, "nil clock")
			return
		}
		c.now = now
	})
}

// WithHTTPClient sets the client requests are sent with. Nil is invalid.
func WithHTTPClient(client *http.Client) Option {
	return optionFunc(func(c *config) {
		if client == nil {
			c.problems = append(c.problems, "nil HTTP client")
			return
		}
		c.client = client
	})
}

// WithCacheSize bounds the answers held (default 10,000); at least 1.
func WithCacheSize(n int) Option {
	return optionFunc(func(c *config) {
		if n < 1 {
			c.problems = append(c.problems, fmt.Sprintf("cache size %d is below 1", n))
			return
		}
		c.cacheSize = n
	})
}

// WithNegativeTTL sets how long a refusal is remembered (default 5s);
// 0 remembers none.
func WithNegativeTTL(d time.Duration) Option {
	return optionFunc(func(c *config) {
		if d < 0 {
			c.problems = append(c.problems, fmt.Sprintf("negative TTL %s is below 0", d))
			return
		}
		c.negativeTTL = d
	})
}

// WithTimeout bounds each request (default 5s).
func WithTimeout(d time.Duration) Option {
	return optionFunc(func(c *config) {
		if d <= 0 {
			c.problems = append(c.problems, fmt.Sprintf("timeout %s is not positive", d))
			return
		}
		c.timeout = d
	})
}

// WithAudience asks for tokens of this audience (the audience parameter);
// by default the issuer's own.
func WithAudience(aud string) Option {
	return optionFunc(func(c *config) { c.audience = aud })
}
