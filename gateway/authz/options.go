package authz

// Option configures an [Authorizer].
type Option interface {
	apply(*config)
}

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

// DefaultRealm is the realm of the WWW-Authenticate challenges.
const DefaultRealm = "portcullis"

type config struct {
	realm string
}

func newConfig(opts []Option) *config {
	c := &config{realm: DefaultRealm}
	for _, o := range opts {
		o.apply(c)
	}
	return c
}

// WithRealm sets the realm named in WWW-Authenticate challenges (RFC 6750
// §3). The default is [DefaultRealm].
func WithRealm(realm string) Option {
	return optionFunc(func(c *config) { c.realm = realm })
}
