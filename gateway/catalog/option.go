package catalog

import (
	"fmt"
	"strings"

	"google.golang.org/protobuf/reflect/protoreflect"
)

// An Option configures [New].
type Option interface {
	apply(*config)
}

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

type config struct {
	scoped   bool // WithServices was given
	services map[protoreflect.FullName]bool
	invalid  []string // reports of invalid names
}

func newConfig(opts []Option) (*config, error) {
	c := &config{services: make(map[protoreflect.FullName]bool)}
	for _, opt := range opts {
		opt.apply(c)
	}
	if len(c.invalid) > 0 {
		return nil, fmt.Errorf("catalog: WithServices: %s", strings.Join(c.invalid, "; "))
	}
	return c, nil
}

// WithServices names the services the catalog is for, such as the services
// a gateway routes. A problem then stops [New] only when it touches one of
// them: a problem in one of their methods, or in the definition of a domain
// that one of their methods requires. Any other problem is a warning
// ([Catalog.Warnings]), and the services it touches are left out of the
// catalog whole. Without WithServices, the catalog is for every service and
// every problem stops New. Names need not be in the descriptors; a name that
// is not a valid full name is an error. Repeated options add up.
func WithServices(names ...protoreflect.FullName) Option {
	return optionFunc(func(c *config) {
		c.scoped = true
		for _, name := range names {
			if !name.IsValid() {
				c.invalid = append(c.invalid, fmt.Sprintf("%q is not a full name", name))
				continue
			}
			c.services[name] = true
		}
	})
}

// severity returns the severity of a problem touching services.
func (c *config) severity(services []protoreflect.FullName) Severity {
	if !c.scoped {
		return SeverityError
	}
	for _, s := range services {
		if c.services[s] {
			return SeverityError
		}
	}
	return SeverityWarning
}
