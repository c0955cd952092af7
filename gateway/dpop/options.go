package dpop

import (
	"fmt"
	"time"
)

// Option configures a [Verifier].
type Option interface {
	apply(*config)
}

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

// Defaults of a [Verifier].
const (
	DefaultMaxAge    = 60 * time.Second
	DefaultSkew      = 5 * time.Second
	DefaultMaxSize   = 8 << 10
	DefaultMaxJTI    = 128
	defaultMaxMemory = 1 << 20
)

type config struct {
	maxAge  time.Duration
	skew    time.Duration
	maxSize int
	algs    []string
	replay  ReplayStore
	nonces  *Nonces
	now     func() time.Time

	problems []string
}

func newConfig(opts []Option) *config {
	c := &config{maxAge: DefaultMaxAge, skew: DefaultSkew, maxSize: DefaultMaxSize, algs: defaultAlgorithms, now: time.Now}
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

// WithWindow sets how old a proof's iat may be (maxAge, default
// [DefaultMaxAge]) and how far in the future (skew, for clocks that
// differ; default [DefaultSkew]). A proof is remembered against replay
// for maxAge+skew.
func WithWindow(maxAge, skew time.Duration) Option {
	return optionFunc(func(c *config) {
		if maxAge <= 0 || skew < 0 {
			c.invalid("window %v back, %v ahead: the first must be positive, the second not negative", maxAge, skew)
			return
		}
		c.maxAge, c.skew = maxAge, skew
	})
}

// WithAlgorithms sets the algorithms proofs may be signed with, from
// [Algorithms]. The default is ES256, ES384, EdDSA, RS256 and PS256.
func WithAlgorithms(names ...string) Option {
	return optionFunc(func(c *config) { c.algs = names })
}

// WithMaxSize bounds the size of a proof in bytes. Default
// [DefaultMaxSize].
func WithMaxSize(n int) Option {
	return optionFunc(func(c *config) {
		if n < 256 {
			c.invalid("max size %d is below 256 bytes", n)
			return
		}
		c.maxSize = n
	})
}

// WithReplayStore sets where seen proofs are remembered. The default is
// a [Memory] store of about a million proofs.
func WithReplayStore(s ReplayStore) Option {
	return optionFunc(func(c *config) {
		if s == nil {
			c.invalid("nil ReplayStore")
			return
		}
		c.replay = s
	})
}

// WithNonces makes every proof carry a nonce of n (RFC 9449 §8). A proof
// without one, or with a stale one, is refused with [ErrNonceRequired]
// and a fresh nonce. By default no nonce is required.
func WithNonces(n *Nonces) Option {
	return optionFunc(func(c *config) { c.nonces = n })
}

// WithClock sets the clock, for tests. The default is time.Now.
func WithClock(now func() time.Time) Option {
	return optionFunc(func(c *config) {
		if now == nil {
			c.invalid("nil clock")
			return
		}
		c.now = now
	})
}
