package revocation

import (
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"time"
)

// Option configures a [Set]. [New] returns an error naming every option
// given an invalid value.
type Option interface {
	apply(*config)
}

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

// Defaults of the options.
const (
	// DefaultStaleness is how long a source may go unheard before the set
	// reports itself stale.
	DefaultStaleness = 10 * time.Second
	// DefaultSweepInterval is how often expired revocations are dropped.
	DefaultSweepInterval = time.Minute
	// DefaultMaxEntries is the number of revocations past which the set
	// reports itself over capacity (about 40 bytes each).
	DefaultMaxEntries = 4 << 20
	// DefaultRetryBackoffMin and DefaultRetryBackoffMax bound the delays
	// between attempts to reach a source that failed.
	DefaultRetryBackoffMin = 100 * time.Millisecond
	DefaultRetryBackoffMax = 2 * time.Second
	// MaxFeedWait is the longest a feed request waits for news.
	MaxFeedWait = 30 * time.Second
)

type config struct {
	now        func() time.Time
	staleness  time.Duration
	sweepEvery time.Duration
	maxEntries int
	retryMin   time.Duration
	retryMax   time.Duration
	client     *http.Client
	logger     *slog.Logger
	feeds      []feedSource
	redis      []*Redis

	problems []string
}

// feedSource is a feed to follow: its URL, or "" to find it in the
// issuer's metadata.
type feedSource struct {
	issuer, url string
}

func newConfig(opts []Option) *config {
	c := &config{
		now:        time.Now,
		staleness:  DefaultStaleness,
		sweepEvery: DefaultSweepInterval,
		maxEntries: DefaultMaxEntries,
		retryMin:   DefaultRetryBackoffMin,
		retryMax:   DefaultRetryBackoffMax,
		client:     &http.Client{},
		logger:     slog.New(slog.DiscardHandler),
	}
	for _, o := range opts {
		if o == nil {
			c.invalid("nil Option")
			continue
		}
		o.apply(c)
	}
	seen := map[string]bool{}
	for _, f := range c.feeds {
		if seen[f.issuer] {
			c.invalid("issuer %q has two feeds", f.issuer)
		}
		seen[f.issuer] = true
	}
	return c
}

func (c *config) invalid(format string, args ...any) {
	c.problems = append(c.problems, fmt.Sprintf(format, args...))
}

// feedWait is how long a feed request waits for news: half the
// staleness, so that a source that answers stays fresh.
func (c *config) feedWait() time.Duration { return min(c.staleness/2, MaxFeedWait) }

// WithClock sets the clock that expiry and staleness are judged by. The
// default is time.Now; nil is invalid.
func WithClock(now func() time.Time) Option {
	return optionFunc(func(c *config) {
		if now == nil {
			c.invalid("WithClock(nil)")
			return
		}
		c.now = now
	})
}

// WithStaleness sets how long a source may go unheard before [Set.Err]
// reports the set stale. Feeds are asked to answer within half of it, and
// Redis is pinged four times within it. The default is
// [DefaultStaleness]; it must be at least 100ms.
func WithStaleness(d time.Duration) Option {
	return optionFunc(func(c *config) {
		if d < 100*time.Millisecond {
			c.invalid("WithStaleness(%v): the staleness must be at least 100ms", d)
			return
		}
		c.staleness = d
	})
}

// WithSweepInterval sets how often expired revocations are dropped. The
// default is [DefaultSweepInterval]; it must be positive.
func WithSweepInterval(d time.Duration) Option {
	return optionFunc(func(c *config) {
		if d <= 0 {
			c.invalid("WithSweepInterval(%v): the interval must be positive", d)
			return
		}
		c.sweepEvery = d
	})
}

// WithMaxEntries sets the number of revocations past which [Set.Err]
// reports the set over capacity. No revocation is dropped for it: a
// revocation forgotten would let its token through. The default is
// [DefaultMaxEntries]; it must be positive.
func WithMaxEntries(n int) Option {
	return optionFunc(func(c *config) {
		if n <= 0 {
			c.invalid("WithMaxEntries(%d): the bound must be positive", n)
			return
		}
		c.maxEntries = n
	})
}

// WithRetryBackoff sets the delays between attempts to reach a source
// that failed: from least, doubling up to most, with jitter. Both must be
// positive and least at most most. The default is
// [DefaultRetryBackoffMin] to [DefaultRetryBackoffMax].
func WithRetryBackoff(least, most time.Duration) Option {
	return optionFunc(func(c *config) {
		if least <= 0 || most < least {
			c.invalid("WithRetryBackoff(%v, %v): the delays must be positive, the first at most the second", least, most)
			return
		}
		c.retryMin, c.retryMax = least, most
	})
}

// WithHTTPClient sets the client that reads feeds and metadata. Its
// Timeout must be zero or longer than a feed's wait (half the staleness);
// the set bounds each request itself. The default is a plain
// [http.Client]; nil is invalid.
func WithHTTPClient(client *http.Client) Option {
	return optionFunc(func(c *config) {
		if client == nil {
			c.invalid("WithHTTPClient(nil)")
			return
		}
		c.client = client
	})
}

// WithLogger sets the logger that records each change of a source's state:
// synced, failing, recovered. It never logs tokens. The default logs
// nothing; nil is invalid.
func WithLogger(logger *slog.Logger) Option {
	return optionFunc(func(c *config) {
		if logger == nil {
			c.invalid("WithLogger(nil)")
			return
		}
		c.logger = logger
	})
}

// WithFeed follows the revocation feed of issuer at feedURL (see [Feed]):
// its revocations apply to tokens of that issuer only.
func WithFeed(issuer, feedURL string) Option {
	return optionFunc(func(c *config) {
		if issuer == "" {
			c.invalid("WithFeed(%q, %q): no issuer", issuer, feedURL)
			return
		}
		if u, err := url.Parse(feedURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			c.invalid("WithFeed(%q, %q): not an http(s) URL", issuer, feedURL)
			return
		}
		c.feeds = append(c.feeds, feedSource{issuer: issuer, url: feedURL})
	})
}

// WithDiscoveredFeed follows the revocation feed that the metadata of
// issuer (RFC 8414, or OpenID Connect discovery) names as
// revocation_feed_endpoint. An issuer whose metadata names none has no
// revocations to follow.
func WithDiscoveredFeed(issuer string) Option {
	return optionFunc(func(c *config) {
		if u, err := url.Parse(issuer); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			c.invalid("WithDiscoveredFeed(%q): not an http(s) issuer URL", issuer)
			return
		}
		c.feeds = append(c.feeds, feedSource{issuer: issuer})
	})
}

// WithRedis reads revocations from Redis, where every issuer publishes
// them ([Redis.Publish]), and follows them as they are published. Nil is
// invalid.
func WithRedis(r *Redis) Option {
	return optionFunc(func(c *config) {
		if r == nil {
			c.invalid("WithRedis(nil)")
			return
		}
		c.redis = append(c.redis, r)
	})
}
