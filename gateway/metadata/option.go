package metadata

import (
	"fmt"
	"time"
)

// DefaultMaxAge is how long clients and caches may keep the document.
const DefaultMaxAge = 5 * time.Minute

// Option configures [New].
type Option interface {
	apply(*config) error
}

type optionFunc func(*config) error

func (f optionFunc) apply(c *config) error { return f(c) }

type config struct {
	maxAge time.Duration
}

// newConfig applies opts and returns the errors of those that are invalid.
func newConfig(opts []Option) (*config, []error) {
	c := &config{maxAge: DefaultMaxAge}
	var errs []error
	for _, o := range opts {
		if o == nil {
			continue
		}
		if err := o.apply(c); err != nil {
			errs = append(errs, err)
		}
	}
	return c, errs
}

// WithMaxAge sets the Cache-Control max-age of the document, in whole
// seconds from 0 (caches revalidate every time) to a day. The default is
// [DefaultMaxAge]: a reload that changes the catalog reaches clients
// within it.
func WithMaxAge(d time.Duration) Option {
	return optionFunc(func(c *config) error {
		if d < 0 || d > 24*time.Hour || d%time.Second != 0 {
			return fmt.Errorf("max age %s is not whole seconds from 0s to 24h", d)
		}
		c.maxAge = d
		return nil
	})
}
