package catalog

import (
	"fmt"
	"math/bits"
	"regexp"
	"slices"
	"strings"
	"time"

	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	gatewayv1 "github.com/portcullis/portcullis/gen/gateway/v1"
)

// MaxMask is the largest permission mask: 2^52. The OR of a domain's masks
// then stays below 2^53, an integer that every JSON parser reads exactly.
const MaxMask uint64 = 1 << 52

// vocabularyFile is the file that declares the options. The catalog covers
// the services of every file that imports it.
const vocabularyFile = "gateway/v1/options.proto"

var (
	domainName     = regexp.MustCompile(`^[A-Z][A-Z0-9_]{0,15}$`)
	permissionName = regexp.MustCompile(`^[A-Z][A-Z0-9_]*$`)
)

// Catalog is the validated, immutable set of domains, permissions and method
// requirements read from a set of descriptors. It is safe for concurrent use.
type Catalog struct {
	files       *protoregistry.Files
	domains     []*Domain
	domainIndex map[string]*Domain
	services    []protoreflect.ServiceDescriptor
	methods     map[string]*Method // by procedure
	ordered     []*Method          // by procedure
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

// Services returns the services the catalog covers, sorted by name.
func (c *Catalog) Services() []protoreflect.ServiceDescriptor { return c.services }

// Domains returns the domains, sorted by name.
func (c *Catalog) Domains() []*Domain { return c.domains }

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
// reference that is not in the catalog.
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
		return nil, fmt.Errorf("catalog: unknown permission %s", strings.Join(unknown, ", "))
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
// (gateway/v1/options.proto). It returns a [*ValidationError] listing every
// problem when the declarations are not valid.
func New(files *protoregistry.Files) (*Catalog, error) {
	b := &builder{
		cat: &Catalog{
			files:       files,
			domainIndex: make(map[string]*Domain),
			methods:     make(map[string]*Method),
		},
	}
	var governed []protoreflect.FileDescriptor
	files.RangeFiles(func(fd protoreflect.FileDescriptor) bool {
		b.domainsIn(fd.Path(), fd.Enums())
		for i := range fd.Messages().Len() {
			b.domainsInMessage(fd.Path(), fd.Messages().Get(i))
		}
		if importsVocabulary(fd) {
			governed = append(governed, fd)
		}
		return true
	})
	slices.SortFunc(b.cat.domains, func(a, b *Domain) int { return strings.Compare(a.Name, b.Name) })
	for _, fd := range governed {
		for i := range fd.Services().Len() {
			b.service(fd.Path(), fd.Services().Get(i))
		}
	}
	if len(b.problems) > 0 {
		slices.SortStableFunc(b.problems, func(x, y Problem) int {
			return strings.Compare(x.File+"\x00"+x.Element, y.File+"\x00"+y.Element)
		})
		return nil, &ValidationError{Problems: b.problems}
	}
	slices.SortFunc(b.cat.services, func(x, y protoreflect.ServiceDescriptor) int {
		return strings.Compare(string(x.FullName()), string(y.FullName()))
	})
	slices.SortFunc(b.cat.ordered, func(x, y *Method) int { return strings.Compare(x.Procedure, y.Procedure) })
	return b.cat, nil
}

func importsVocabulary(fd protoreflect.FileDescriptor) bool {
	imports := fd.Imports()
	for i := range imports.Len() {
		if imports.Get(i).Path() == vocabularyFile {
			return true
		}
	}
	return false
}

type builder struct {
	cat      *Catalog
	problems []Problem
}

func (b *builder) report(file string, element protoreflect.FullName, rule Rule, format string, args ...any) {
	b.problems = append(b.problems, Problem{File: file, Element: string(element), Rule: rule, Message: fmt.Sprintf(format, args...)})
}

func (b *builder) domainsInMessage(file string, md protoreflect.MessageDescriptor) {
	b.domainsIn(file, md.Enums())
	for i := range md.Messages().Len() {
		b.domainsInMessage(file, md.Messages().Get(i))
	}
}

func (b *builder) domainsIn(file string, enums protoreflect.EnumDescriptors) {
	for i := range enums.Len() {
		b.enum(file, enums.Get(i))
	}
}

func (b *builder) enum(file string, ed protoreflect.EnumDescriptor) {
	decl, err := option[*gatewayv1.Domain](ed, gatewayv1.E_Domain)
	if err != nil {
		b.report(file, ed.FullName(), RuleUnreadableOption, "(gateway.v1.domain): %v", err)
		return
	}
	if decl == nil {
		// Not a domain: none of its values may be a permission.
		for i := range ed.Values().Len() {
			vd := ed.Values().Get(i)
			if p, err := option[*gatewayv1.Permission](vd, gatewayv1.E_Permission); err != nil || p != nil {
				b.report(file, vd.FullName(), RuleStrayPermission, "(gateway.v1.permission) is set, but enum %s has no (gateway.v1.domain)", ed.Name())
			}
		}
		return
	}
	domain := &Domain{Name: decl.GetName(), Description: decl.GetDescription(), Enum: ed.FullName(), byName: make(map[string]*Permission)}
	valid := true
	if !domainName.MatchString(domain.Name) {
		b.report(file, ed.FullName(), RuleDomainName, "domain name %q is not 1 to 16 upper-case letters, digits or underscores starting with a letter", domain.Name)
		valid = false
	} else if other, dup := b.cat.domainIndex[domain.Name]; dup {
		b.report(file, ed.FullName(), RuleDuplicateDomain, "domain %q is already declared by %s", domain.Name, other.Enum)
		valid = false
	}
	prefix := enumValuePrefix(string(ed.Name()))
	byMask := make(map[uint64]*Permission)
	for i := range ed.Values().Len() {
		vd := ed.Values().Get(i)
		decl, err := option[*gatewayv1.Permission](vd, gatewayv1.E_Permission)
		if err != nil {
			b.report(file, vd.FullName(), RuleUnreadableOption, "(gateway.v1.permission): %v", err)
			continue
		}
		if vd.Number() == 0 {
			if decl != nil {
				b.report(file, vd.FullName(), RuleStrayPermission, "the zero value of a domain enum cannot be a permission")
			}
			continue
		}
		if decl == nil {
			b.report(file, vd.FullName(), RuleMissingPermission, "value of domain %s has no (gateway.v1.permission)", domain.Name)
			continue
		}
		p := &Permission{
			Domain:      domain.Name,
			Name:        strings.TrimPrefix(string(vd.Name()), prefix),
			Mask:        decl.GetMask(),
			Description: decl.GetDescription(),
			Value:       vd.FullName(),
		}
		ok := true
		if !permissionName.MatchString(p.Name) {
			b.report(file, vd.FullName(), RulePermissionName, "permission name %q is not an upper-case identifier", p.Name)
			ok = false
		} else if other, dup := domain.byName[p.Name]; dup {
			b.report(file, vd.FullName(), RuleDuplicatePermission, "permission %s is already declared by %s", p, other.Value)
			ok = false
		}
		switch {
		case bits.OnesCount64(p.Mask) != 1:
			b.report(file, vd.FullName(), RuleMaskPowerOfTwo, "mask %d of %s is not a power of two", p.Mask, p)
			ok = false
		case p.Mask > MaxMask:
			b.report(file, vd.FullName(), RuleMaskRange, "mask %d of %s is above 2^52", p.Mask, p)
			ok = false
		default:
			if other, dup := byMask[p.Mask]; dup {
				b.report(file, vd.FullName(), RuleDuplicateMask, "mask %d of %s is already the mask of %s", p.Mask, p, other)
				ok = false
			}
		}
		if ok {
			byMask[p.Mask] = p
			domain.byName[p.Name] = p
			domain.Permissions = append(domain.Permissions, p)
		}
	}
	if valid {
		b.cat.domainIndex[domain.Name] = domain
		b.cat.domains = append(b.cat.domains, domain)
	}
}

// enumValuePrefix returns the UPPER_SNAKE form of an enum name followed by
// an underscore: LicensingPermission → LICENSING_PERMISSION_.
func enumValuePrefix(enum string) string {
	var b strings.Builder
	for i, r := range enum {
		upper := r >= 'A' && r <= 'Z'
		if upper && i > 0 {
			prev := rune(enum[i-1])
			nextLower := i+1 < len(enum) && enum[i+1] >= 'a' && enum[i+1] <= 'z'
			if (prev >= 'a' && prev <= 'z') || (prev >= '0' && prev <= '9') || (prev >= 'A' && prev <= 'Z' && nextLower) {
				b.WriteByte('_')
			}
		}
		b.WriteString(strings.ToUpper(string(r)))
	}
	b.WriteByte('_')
	return b.String()
}

func (b *builder) service(file string, sd protoreflect.ServiceDescriptor) {
	fallback, err := option[*gatewayv1.Access](sd, gatewayv1.E_DefaultAccess)
	if err != nil {
		b.report(file, sd.FullName(), RuleUnreadableOption, "(gateway.v1.default_access): %v", err)
		return
	}
	b.cat.services = append(b.cat.services, sd)
	for i := range sd.Methods().Len() {
		md := sd.Methods().Get(i)
		access, err := option[*gatewayv1.Access](md, gatewayv1.E_Access)
		if err != nil {
			b.report(file, md.FullName(), RuleUnreadableOption, "(gateway.v1.access): %v", err)
			continue
		}
		rateLimit, messageLimit := access.GetRateLimit(), access.GetStreamMessageLimit()
		if access == nil {
			access = fallback
		}
		if rateLimit == nil {
			rateLimit = fallback.GetRateLimit()
		}
		if messageLimit == nil {
			messageLimit = fallback.GetStreamMessageLimit()
		}
		if access == nil {
			b.report(file, md.FullName(), RuleNoAccess, "method declares no (gateway.v1.access) and service %s no (gateway.v1.default_access): it would be refused to everyone", sd.Name())
			continue
		}
		if m, ok := b.method(file, md, access, rateLimit, messageLimit); ok {
			b.cat.methods[m.Procedure] = m
			b.cat.ordered = append(b.cat.ordered, m)
		}
	}
}

func (b *builder) method(file string, md protoreflect.MethodDescriptor, access *gatewayv1.Access, rateLimit, messageLimit *gatewayv1.RateLimit) (*Method, bool) {
	m := &Method{
		Procedure:  "/" + string(md.Parent().FullName()) + "/" + string(md.Name()),
		Descriptor: md,
		Public:     access.GetPublic(),
	}
	ok := true
	switch {
	case m.Public && len(access.GetRequires()) > 0:
		b.report(file, md.FullName(), RulePublicAndRequires, "method is public and requires %s: choose one", strings.Join(access.GetRequires(), ", "))
		ok = false
	case !m.Public && len(access.GetRequires()) == 0:
		b.report(file, md.FullName(), RuleEmptyAccess, "access declares neither public: true nor any requires")
		ok = false
	}
	for _, ref := range access.GetRequires() {
		domain, name, found := strings.Cut(ref, ".")
		if !found || domain == "" || name == "" {
			b.report(file, md.FullName(), RuleBadReference, "requirement %q is not written DOMAIN.NAME", ref)
			ok = false
			continue
		}
		d, known := b.cat.domainIndex[domain]
		if !known {
			b.report(file, md.FullName(), RuleUnknownDomain, "requirement %q names unknown domain %q", ref, domain)
			ok = false
			continue
		}
		p, known := d.byName[name]
		if !known {
			b.report(file, md.FullName(), RuleUnknownPermission, "requirement %q names no permission of domain %s", ref, domain)
			ok = false
			continue
		}
		if !slices.Contains(m.Requires, p) {
			m.Requires = append(m.Requires, p)
		}
	}
	sortPermissions(m.Requires)
	for _, p := range m.Requires {
		if n := len(m.Need); n > 0 && m.Need[n-1].Domain == p.Domain {
			m.Need[n-1].Mask |= p.Mask
		} else {
			m.Need = append(m.Need, DomainMask{Domain: p.Domain, Mask: p.Mask})
		}
	}
	var valid bool
	if m.RateLimit, valid = b.rateLimit(file, md, "rate_limit", rateLimit); !valid {
		ok = false
	}
	if m.StreamMessageLimit, valid = b.rateLimit(file, md, "stream_message_limit", messageLimit); !valid {
		ok = false
	}
	if m.StreamMessageLimit != nil && !md.IsStreamingClient() {
		b.report(file, md.FullName(), RuleStreamMessageLimit, "stream_message_limit is set, but the method has no client stream")
		ok = false
	}
	return m, ok
}

func (b *builder) rateLimit(file string, md protoreflect.MethodDescriptor, field string, rl *gatewayv1.RateLimit) (*RateLimit, bool) {
	if rl == nil {
		return nil, true
	}
	period := rl.GetPeriod()
	switch {
	case rl.GetRequests() == 0:
		b.report(file, md.FullName(), RuleRateLimit, "%s.requests must be at least 1", field)
		return nil, false
	case period == nil || period.CheckValid() != nil || period.AsDuration() < time.Millisecond:
		b.report(file, md.FullName(), RuleRateLimit, "%s.period must be at least 1ms", field)
		return nil, false
	}
	return &RateLimit{Requests: rl.GetRequests(), Period: period.AsDuration(), Burst: max(rl.GetBurst(), 1)}, true
}

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
