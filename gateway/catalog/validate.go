package catalog

import (
	"math/bits"
	"regexp"
	"slices"
	"strings"
	"time"

	"google.golang.org/protobuf/reflect/protoreflect"

	gatewayv1 "github.com/portcullis/portcullis/gen/gateway/v1"
)

// The rules of the declarations: each check reports the [Rule] it
// enforces.

var (
	domainName     = regexp.MustCompile(`^[A-Z][A-Z0-9_]{0,15}$`)
	permissionName = regexp.MustCompile(`^[A-Z][A-Z0-9_]*$`)
)

// enum reads an enum: a domain when annotated with (gateway.v1.domain).
func (b *builder) enum(ed protoreflect.EnumDescriptor) {
	decl, err := extension[*gatewayv1.Domain](ed, gatewayv1.E_Domain)
	if err != nil {
		b.report(scope{}, ed, RuleUnreadableOption, "(gateway.v1.domain): %v", err)
		return
	}
	if decl == nil {
		// Not a domain: none of its values may be a permission.
		for i := range ed.Values().Len() {
			vd := ed.Values().Get(i)
			if p, err := extension[*gatewayv1.Permission](vd, gatewayv1.E_Permission); err != nil || p != nil {
				b.report(scope{}, vd, RuleStrayPermission, "(gateway.v1.permission) is set, but enum %s has no (gateway.v1.domain)", ed.Name())
			}
		}
		return
	}
	domain := &Domain{Name: decl.GetName(), Description: decl.GetDescription(), Enum: ed.FullName(), byName: make(map[string]*Permission)}
	in := scope{domain: domain.Name}
	valid := true
	if !domainName.MatchString(domain.Name) {
		b.report(in, ed, RuleDomainName, "domain name %q is not 1 to 16 upper-case letters, digits or underscores starting with a letter", domain.Name)
		valid = false
	} else if other, dup := b.cat.domainIndex[domain.Name]; dup {
		b.report(in, ed, RuleDuplicateDomain, "domain %q is already declared by %s", domain.Name, other.Enum)
		valid = false
	}
	prefix := enumValuePrefix(string(ed.Name()))
	byMask := make(map[uint64]*Permission)
	for i := range ed.Values().Len() {
		vd := ed.Values().Get(i)
		decl, err := extension[*gatewayv1.Permission](vd, gatewayv1.E_Permission)
		if err != nil {
			b.report(in, vd, RuleUnreadableOption, "(gateway.v1.permission): %v", err)
			continue
		}
		if vd.Number() == 0 {
			if decl != nil {
				b.report(in, vd, RuleStrayPermission, "the zero value of a domain enum cannot be a permission")
			}
			continue
		}
		if decl == nil {
			b.report(in, vd, RuleMissingPermission, "value of domain %s has no (gateway.v1.permission)", domain.Name)
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
			b.report(in, vd, RulePermissionName, "permission name %q is not an upper-case identifier", p.Name)
			ok = false
		} else if other, dup := domain.byName[p.Name]; dup {
			b.report(in, vd, RuleDuplicatePermission, "permission %s is already declared by %s", p, other.Value)
			ok = false
		}
		switch {
		case bits.OnesCount64(p.Mask) != 1:
			b.report(in, vd, RuleMaskPowerOfTwo, "mask %d of %s is not a power of two", p.Mask, p)
			ok = false
		case p.Mask > MaxMask:
			b.report(in, vd, RuleMaskRange, "mask %d of %s is above 2^52", p.Mask, p)
			ok = false
		default:
			if other, dup := byMask[p.Mask]; dup {
				b.report(in, vd, RuleDuplicateMask, "mask %d of %s is already the mask of %s", p.Mask, p, other)
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

// method checks the access declared for md and returns the method it
// declares, reporting false when it is not valid.
func (b *builder) method(in scope, md protoreflect.MethodDescriptor, access *gatewayv1.Access, rateLimit, messageLimit *gatewayv1.RateLimit) (*Method, bool) {
	m := &Method{
		Procedure:  "/" + string(md.Parent().FullName()) + "/" + string(md.Name()),
		Descriptor: md,
		Public:     access.GetPublic(),
	}
	ok := true
	switch {
	case m.Public && len(access.GetRequires()) > 0:
		b.report(in, md, RulePublicAndRequires, "method is public and requires %s: choose one", strings.Join(access.GetRequires(), ", "))
		ok = false
	case !m.Public && len(access.GetRequires()) == 0:
		b.report(in, md, RuleEmptyAccess, "access declares neither public: true nor any requires")
		ok = false
	}
	for _, ref := range access.GetRequires() {
		domain, name, found := strings.Cut(ref, ".")
		if !found || domain == "" || name == "" {
			b.report(in, md, RuleBadReference, "requirement %q is not written DOMAIN.NAME", ref)
			ok = false
			continue
		}
		d, known := b.cat.domainIndex[domain]
		if !known {
			b.report(in, md, RuleUnknownDomain, "requirement %q names unknown domain %q", ref, domain)
			ok = false
			continue
		}
		p, known := d.byName[name]
		if !known {
			b.report(in, md, RuleUnknownPermission, "requirement %q names no permission of domain %s", ref, domain)
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
	if m.RateLimit, valid = b.rateLimit(in, md, "rate_limit", rateLimit); !valid {
		ok = false
	}
	if m.StreamMessageLimit, valid = b.rateLimit(in, md, "stream_message_limit", messageLimit); !valid {
		ok = false
	}
	m.HighValue = access.GetHighValue()
	if m.SenderConstrained = access.GetSenderConstrained(); m.SenderConstrained && m.Public {
		b.report(in, md, RuleSenderConstrained, "sender_constrained is set, but the method is public: it needs no token")
		ok = false
	}
	if m.MaxTokenAge, valid = b.maxTokenAge(in, md, m.Public, access); !valid {
		ok = false
	}
	if m.StreamMessageLimit != nil && !md.IsStreamingClient() {
		b.report(in, md, RuleStreamMessageLimit, "stream_message_limit is set, but the method has no client stream")
		ok = false
	}
	return m, ok
}

// maxTokenAge checks a declared maximum token age, if any.
func (b *builder) maxTokenAge(in scope, md protoreflect.MethodDescriptor, public bool, access *gatewayv1.Access) (time.Duration, bool) {
	age := access.GetMaxTokenAge()
	if age == nil {
		return 0, true
	}
	switch {
	case age.CheckValid() != nil || age.GetSeconds() < 1 || age.GetNanos() != 0:
		b.report(in, md, RuleMaxTokenAge, "max_token_age must be whole seconds, at least 1s")
		return 0, false
	case public:
		b.report(in, md, RuleMaxTokenAge, "max_token_age is set, but the method is public: it needs no token")
		return 0, false
	}
	return age.AsDuration(), true
}

// rateLimit checks a declared rate limit, if any.
func (b *builder) rateLimit(in scope, md protoreflect.MethodDescriptor, field string, rl *gatewayv1.RateLimit) (*RateLimit, bool) {
	if rl == nil {
		return nil, true
	}
	period := rl.GetPeriod()
	switch {
	case rl.GetRequests() == 0:
		b.report(in, md, RuleRateLimit, "%s.requests must be at least 1", field)
		return nil, false
	case period == nil || period.CheckValid() != nil || period.AsDuration() < time.Millisecond:
		b.report(in, md, RuleRateLimit, "%s.period must be at least 1ms", field)
		return nil, false
	}
	return &RateLimit{Requests: rl.GetRequests(), Period: period.AsDuration(), Burst: max(rl.GetBurst(), 1)}, true
}

// service reads the access of every method of a service, from the method's
// (gateway.v1.access) or the service's (gateway.v1.default_access).
func (b *builder) service(sd protoreflect.ServiceDescriptor) {
	in := scope{service: sd.FullName()}
	fallback, err := extension[*gatewayv1.Access](sd, gatewayv1.E_DefaultAccess)
	if err != nil {
		b.report(in, sd, RuleUnreadableOption, "(gateway.v1.default_access): %v", err)
		return
	}
	b.requires(sd, fallback)
	b.cat.services = append(b.cat.services, sd)
	for i := range sd.Methods().Len() {
		md := sd.Methods().Get(i)
		access, err := extension[*gatewayv1.Access](md, gatewayv1.E_Access)
		if err != nil {
			b.report(in, md, RuleUnreadableOption, "(gateway.v1.access): %v", err)
			continue
		}
		b.requires(sd, access)
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
			b.report(in, md, RuleNoAccess, "method declares no (gateway.v1.access) and service %s no (gateway.v1.default_access): it would be refused to everyone", sd.Name())
			continue
		}
		if m, ok := b.method(in, md, access, rateLimit, messageLimit); ok {
			b.cat.ordered = append(b.cat.ordered, m)
		}
	}
}
