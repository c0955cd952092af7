package catalog

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
)

// MaxMask is the largest permission mask: 2^52. The OR of a domain's masks
// then stays below 2^53, an integer that every JSON parser reads exactly.
const MaxMask uint64 = 1 << 52

// Catalog is the validated, immutable set of domains, permissions and method
// requirements read from a set of descriptors. It is safe for concurrent use.
type Catalog struct {
	files       *protoregistry.Files
	domains     []*Domain
	domainIndex map[string]*Domain
	services    []protoreflect.ServiceDescriptor
	methods     map[string]*Method // by procedure
	ordered     []*Method          // by procedure
	warnings    []Problem
}

// Domain is a permission domain: an enum annotated with (gateway.v1.domain).
type Domain struct {
	Name        string                // short name, such as "LIC"
	Description string                // for people
	Enum        protoreflect.FullName // the enum that declares it
	Permissions []*Permission         // in declaration order
	byName      map[string]*Permission
}

// Permission is one permission of a domain.
type Permission struct {
	Domain      string                // the domain's name, such as "LIC"
	Name        string                // the permission's name, such as "READ_ORDERS"
	Mask        uint64                // its bit, a power of two
	Description string                // for people
	Value       protoreflect.FullName // the enum value that declares it
}

// String returns the permission's reference, DOMAIN.NAME.
func (p *Permission) String() string { return p.Domain + "." + p.Name }

// DomainMask is the union of the masks a method requires in one domain.
type DomainMask struct {
	Domain string
	Mask   uint64
}

// RateLimit is a declared rate: Requests per Period, Burst at once.
type RateLimit struct {
	Requests uint32
	Period   time.Duration
	Burst    uint32 // at least 1
}

// String formats the rate as "10 per 1s, burst 5".
func (r *RateLimit) String() string {
	return fmt.Sprintf("%d per %s, burst %d", r.Requests, r.Period, r.Burst)
}

// Method is one RPC and the access it needs.
type Method struct {
	// Procedure is the method's path, "/package.Service/Method".
	Procedure string
	// Descriptor describes the method.
	Descriptor protoreflect.MethodDescriptor
	// Public methods need no token.
	Public bool
	// Requires lists the permissions required, all of them, sorted by
	// domain and mask.
	Requires []*Permission
	// Need holds one required mask per domain, sorted by domain: the caller
	// is allowed when, for each, have&Mask == Mask.
	Need []DomainMask
	// RateLimit is the declared call rate, or nil.
	RateLimit *RateLimit
	// StreamMessageLimit is the declared per-stream message rate, or nil.
	StreamMessageLimit *RateLimit
	// MaxTokenAge is the oldest a caller's token may be, since its
	// auth_time or else its iat, or 0 for no limit: an older token is
	// refused with an RFC 9470 step-up challenge.
	MaxTokenAge time.Duration
	// HighValue methods fail closed while the revocations are stale.
	HighValue bool
	// SenderConstrained methods need a token bound to the call's client
	// certificate or DPoP key (see [token.Confirmation]): a bearer token
	// is refused.
	SenderConstrained bool
}

// Allows reports whether a caller holding masks (domain → mask) holds every
// permission the method requires. It does not allocate.
func (m *Method) Allows(masks map[string]uint64) bool {
	for _, need := range m.Need {
		if masks[need.Domain]&need.Mask != need.Mask {
			return false
		}
	}
	return true
}

// Missing returns the required permissions that a caller holding masks
// lacks, in the order of Requires.
func (m *Method) Missing(masks map[string]uint64) []*Permission {
	var missing []*Permission
	for _, p := range m.Requires {
		if masks[p.Domain]&p.Mask == 0 {
			missing = append(missing, p)
		}
	}
	return missing
}

// Method returns the method with the given procedure, "/pkg.Service/Method".
// It does not allocate.
func (c *Catalog) Method(procedure string) (*Method, bool) {
	m, ok := c.methods[procedure]
	return m, ok
}

// Methods returns every method, sorted by procedure.
func (c *Catalog) Methods() []*Method { return c.ordered }

// Services returns the services the catalog covers, sorted by name: those
// of the files that import the vocabulary, less any that a problem touches.
func (c *Catalog) Services() []protoreflect.ServiceDescriptor { return c.services }

// Domains returns the domains, sorted by name.
func (c *Catalog) Domains() []*Domain { return c.domains }

// Warnings returns the problems that did not stop [New] because they touch
// none of the services named by [WithServices], sorted by position. The
// services they touch are left out of the catalog.
func (c *Catalog) Warnings() []Problem { return c.warnings }

// Files returns the descriptors the catalog was built from.
func (c *Catalog) Files() *protoregistry.Files { return c.files }

// Domain returns the domain with the given name.
func (c *Catalog) Domain(name string) (*Domain, bool) {
	d, ok := c.domainIndex[name]
	return d, ok
}

// Permission returns the permission with the given reference, DOMAIN.NAME.
func (c *Catalog) Permission(ref string) (*Permission, bool) {
	domain, name, ok := strings.Cut(ref, ".")
	if !ok {
		return nil, false
	}
	d, ok := c.domainIndex[domain]
	if !ok {
		return nil, false
	}
	p, ok := d.byName[name]
	return p, ok
}

// Masks returns the per-domain masks that grant the named permissions
// (references such as "LIC.READ_ORDERS"), or an error naming every
// reference that is not in the catalog: `unknown permission "LIC.FLY",
// "NOPE": not in the catalog`.
func (c *Catalog) Masks(refs []string) (map[string]uint64, error) {
	masks := make(map[string]uint64)
	var unknown []string
	for _, ref := range refs {
		p, ok := c.Permission(ref)
		if !ok {
			unknown = append(unknown, fmt.Sprintf("%q", ref))
			continue
		}
		masks[p.Domain] |= p.Mask
	}
	if len(unknown) > 0 {
		return nil, fmt.Errorf("unknown permission %s: not in the catalog", strings.Join(unknown, ", "))
	}
	return masks, nil
}

// Granted returns the permissions that masks grant, sorted by domain and
// mask. Bits that name no permission are ignored.
func (c *Catalog) Granted(masks map[string]uint64) []*Permission {
	var granted []*Permission
	for _, d := range c.domains {
		for _, p := range d.Permissions {
			if masks[d.Name]&p.Mask != 0 {
				granted = append(granted, p)
			}
		}
	}
	sortPermissions(granted)
	return granted
}

// New builds the catalog of files: every domain declared in them, and every
// method of every service whose file imports the vocabulary
func sortPermissions(ps []*Permission) {
	slices.SortFunc(ps, func(x, y *Permission) int {
		if c := strings.Compare(x.Domain, y.Domain); c != 0 {
			return c
		}
		switch {
		case x.Mask < y.Mask:
			return -1
		case x.Mask > y.Mask:
			return 1
		}
		return 0
	})
}
