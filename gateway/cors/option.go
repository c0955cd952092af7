package cors

// Option configures [New].
type Option interface {
	apply(*config)
}

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

type config struct {
	route func(method, path string) (string, bool)
}

func newConfig(opts []Option) *config {
	c := &config{}
	for _, o := range opts {
		if o != nil {
			o.apply(c)
		}
	}
	return c
}

// WithRouteResolver sets how requests whose path is not a service's RPC
// path find their route: route returns the service path ("/pkg.Service/")
// that serves the method (GET, POST, ...) on path, as
// [github.com/portcullis/portcullis/gateway/rest.Handler.ServicePath] does
// for REST routes. A preflight is looked up with the method it asks for.
// Without a resolver, such requests get the default policy.
func WithRouteResolver(route func(method, path string) (string, bool)) Option {
	return optionFunc(func(c *config) { c.route = route })
}
