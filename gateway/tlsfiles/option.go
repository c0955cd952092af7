package tlsfiles

import (
	"log/slog"
	"time"
)

// DefaultCheckInterval is how often, at most, files are checked for a
// change when no [WithCheckInterval] is given.
const DefaultCheckInterval = time.Second

// Option configures a [KeyPair] or a [Pool].
type Option interface {
	apply(*options)
}

type optionFunc func(*options)

func (f optionFunc) apply(o *options) { f(o) }

type options struct {
	interval time.Duration
	logger   *slog.Logger
	now      func() time.Time
}

func newOptions(opts []Option) options {
	o := options{interval: DefaultCheckInterval, logger: slog.New(slog.DiscardHandler), now: time.Now}
	for _, opt := range opts {
		opt.apply(&o)
	}
	return o
}

// WithCheckInterval sets how often, at most, the files are checked for a
// change; 0 checks them at every use.
func WithCheckInterval(d time.Duration) Option {
	return optionFunc(func(o *options) { o.interval = max(d, 0) })
}

// WithLogger sets where reloads and refused files are logged. Default:
// nowhere.
func WithLogger(l *slog.Logger) Option {
	return optionFunc(func(o *options) {
		if l != nil {
			o.logger = l
		}
	})
}
