package catalog

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	"google.golang.org/protobuf/reflect/protoreflect"
)

// ChangeKind says which way a [Change] moves access.
type ChangeKind string

// The kinds of change, in the order [Diff] sorts them.
const (
	// Loosened: a caller may call what it could not: a method became
	// public or requires less, or a bit that tokens carry grants another
	// permission than before.
	Loosened ChangeKind = "loosened"
	// Breaking: tokens already issued no longer mean what they did, a
	// permission's mask or a domain's name being another. Nobody gains
	// access, but callers need new tokens.
	Breaking ChangeKind = "breaking"
	// Tightened: a caller may no longer call what it could: a public
	// method requires permissions, or a method requires more.
	Tightened ChangeKind = "tightened"
	// Added: a method is new.
	Added ChangeKind = "added"
	// Removed: a method is gone.
	Removed ChangeKind = "removed"
)

var kindOrder = map[ChangeKind]int{Loosened: 0, Breaking: 1, Tightened: 2, Added: 3, Removed: 4}

// Change is one difference in access between two catalogs.
type Change struct {
	Kind ChangeKind
	Rule Rule // the change rule it follows; its Kind is the change's
	// Element is what changed: a method's procedure ("/pkg.Service/Method"),
	// a permission's reference (DOMAIN.NAME, as it is now) or a domain's
	// name (as it is now).
	Element string
	Message string // what changed, for people
	// File, Line and Column locate the element where it is declared now,
	// or was declared when it is gone; Line and Column are 0 without
	// source info.
	File         string
	Line, Column int
	// Descriptor declares the element now, Against declared it before;
	// each is nil on the side where the element is absent.
	Descriptor, Against protoreflect.Descriptor
}

// Position returns where the change is: "file:line:column", or the file
// alone without source info.
func (c Change) Position() string { return formatPosition(c.File, c.Line, c.Column) }

// String formats the change as "file:line:column: kind: rule: element:
// message".
func (c Change) String() string {
	return fmt.Sprintf("%s: %s: %s: %s: %s", c.Position(), c.Kind, c.Rule, c.Element, c.Message)
}

// Diff returns every change in access from catalog before to catalog after:
// methods that became public or protected, requirements dropped or added,
// masks and domain names that tokens already issued carry and that changed
// or now grant another permission, and methods added or removed. The
// changes are sorted by kind, loosened first, then by element.
//
// A permission is the same in both catalogs when its enum value is, or
// else when its reference (DOMAIN.NAME) is; a domain, when its enum is. A
// requirement is kept when the method requires the same permission, or
// one of the same domain and mask.
func Diff(before, after *Catalog) []Change {
	d := &differ{before: before, after: after, was: matchPermissions(before, after)}
	d.domains()
	d.permissions()
	d.methods()
	slices.SortStableFunc(d.changes, func(x, y Change) int {
		return cmp.Or(
			cmp.Compare(kindOrder[x.Kind], kindOrder[y.Kind]),
			strings.Compare(x.Element, y.Element),
			cmp.Compare(slices.Index(changeRules, x.Rule), slices.Index(changeRules, y.Rule)),
			strings.Compare(x.Message, y.Message),
		)
	})
	return d.changes
}

type differ struct {
	before, after *Catalog
	// was maps each permission of after to the same permission in before.
	was     map[*Permission]*Permission
	changes []Change
}

// matchPermissions maps the permissions of after to those of before: by
// enum value, then, among those left, by reference.
func matchPermissions(before, after *Catalog) map[*Permission]*Permission {
	byValue := make(map[protoreflect.FullName]*Permission)
	byRef := make(map[string]*Permission)
	for _, d := range before.domains {
		for _, p := range d.Permissions {
			byValue[p.Value] = p
			byRef[p.String()] = p
		}
	}
	was := make(map[*Permission]*Permission)
	taken := make(map[*Permission]bool)
	var rest []*Permission
	for _, d := range after.domains {
		for _, q := range d.Permissions {
			if p, ok := byValue[q.Value]; ok {
				was[q], taken[p] = p, true
			} else {
				rest = append(rest, q)
			}
		}
	}
	for _, q := range rest {
		if p, ok := byRef[q.String()]; ok && !taken[p] {
			was[q], taken[p] = p, true
		}
	}
	return was
}

// add records a change of the given rule, of its kind.
func (d *differ) add(rule Rule, element string, now, then protoreflect.Descriptor, format string, args ...any) {
	c := Change{Kind: rule.Kind(), Rule: rule, Element: element, Message: fmt.Sprintf(format, args...), Descriptor: now, Against: then}
	at := now
	if at == nil {
		at = then
	}
	if at != nil {
		c.File = at.ParentFile().Path()
		c.Line, c.Column = position(at)
	}
	d.changes = append(d.changes, c)
}

// descriptor returns the descriptor of name in c's files, or nil.
func descriptor(c *Catalog, name protoreflect.FullName) protoreflect.Descriptor {
	desc, err := c.files.FindDescriptorByName(name)
	if err != nil {
		return nil
	}
	return desc
}

func (d *differ) domains() {
	byEnum := make(map[protoreflect.FullName]*Domain)
	for _, b := range d.before.domains {
		byEnum[b.Enum] = b
	}
	for _, a := range d.after.domains {
		if b, ok := byEnum[a.Enum]; ok && b.Name != a.Name {
			d.add(RuleDomainRenamed, a.Name, descriptor(d.after, a.Enum), descriptor(d.before, b.Enum),
				"domain %s of %s is now %s: tokens issued for %s no longer grant its permissions", b.Name, a.Enum, a.Name, b.Name)
		}
	}
}

func (d *differ) permissions() {
	for _, a := range d.after.domains {
		old, _ := d.before.Domain(a.Name)
		for _, q := range a.Permissions {
			p, same := d.was[q]
			if same && p.Mask != q.Mask {
				d.add(RuleMaskChanged, q.String(), descriptor(d.after, q.Value), descriptor(d.before, p.Value),
					"mask of %s is now %d, was %d: tokens issued with %d no longer grant it", q, q.Mask, p.Mask, p.Mask)
			}
			if old == nil {
				continue
			}
			i := slices.IndexFunc(old.Permissions, func(o *Permission) bool { return o.Mask == q.Mask })
			if i < 0 {
				continue
			}
			if owner := old.Permissions[i]; !same || p != owner {
				d.add(RuleMaskReused, q.String(), descriptor(d.after, q.Value), descriptor(d.before, owner.Value),
					"mask %d of domain %s was the mask of %s: tokens granted %s now grant %s", q.Mask, a.Name, owner, owner, q)
			}
		}
	}
}

func (d *differ) methods() {
	for _, a := range d.after.ordered {
		b, ok := d.before.Method(a.Procedure)
		switch {
		case !ok:
			if a.Public {
				d.add(RuleMethodAdded, a.Procedure, a.Descriptor, nil, "new method, public")
			} else {
				d.add(RuleMethodAdded, a.Procedure, a.Descriptor, nil, "new method, requires %s", references(a.Requires))
			}
		case !b.Public && a.Public:
			d.add(RuleMethodPublic, a.Procedure, a.Descriptor, b.Descriptor, "method is now public: it required %s", references(b.Requires))
		case b.Public && !a.Public:
			d.add(RuleMethodProtected, a.Procedure, a.Descriptor, b.Descriptor, "public method now requires %s", references(a.Requires))
		case !a.Public:
			d.safeguards(a, b)
			for _, p := range b.Requires {
				if !slices.ContainsFunc(a.Requires, func(q *Permission) bool { return d.keeps(p, q) }) {
					d.add(RuleRequirementRemoved, a.Procedure, a.Descriptor, b.Descriptor, "method no longer requires %s", p)
				}
			}
			for _, q := range a.Requires {
				if !slices.ContainsFunc(b.Requires, func(p *Permission) bool { return d.keeps(p, q) }) {
					d.add(RuleRequirementAdded, a.Procedure, a.Descriptor, b.Descriptor, "method now also requires %s", q)
				}
			}
		default: // public, before and after
			d.safeguards(a, b)
		}
	}
	for _, b := range d.before.ordered {
		if _, ok := d.after.Method(b.Procedure); !ok {
			d.add(RuleMethodRemoved, b.Procedure, nil, b.Descriptor, "method removed")
		}
	}
}

// keeps reports whether requiring q, now, keeps the requirement of p: q is
// p, or has its domain and mask.
func (d *differ) keeps(p, q *Permission) bool {
	return d.was[q] == p || (q.Domain == p.Domain && q.Mask == p.Mask)
}

// references joins the references of ps: "LIC.READ, ORD.WRITE".
func references(ps []*Permission) string {
	refs := make([]string, len(ps))
	for i, p := range ps {
		refs[i] = p.String()
	}
	return strings.Join(refs, ", ")
}

// safeguards reports the changes of a protected method's safeguards: the
// ones that refuse or slow down callers who hold the permissions.
func (d *differ) safeguards(a, b *Method) {
	flag := func(now, then bool, name string) {
		switch {
		case then && !now:
			d.add(RuleSafeguardDropped, a.Procedure, a.Descriptor, b.Descriptor, "method is no longer %s", name)
		case now && !then:
			d.add(RuleSafeguardAdded, a.Procedure, a.Descriptor, b.Descriptor, "method is now %s", name)
		}
	}
	flag(a.HighValue, b.HighValue, "high_value")
	flag(a.SenderConstrained, b.SenderConstrained, "sender_constrained")
	switch then, now := b.MaxTokenAge, a.MaxTokenAge; {
	case then > 0 && now == 0:
		d.add(RuleSafeguardDropped, a.Procedure, a.Descriptor, b.Descriptor, "max_token_age removed, was %s", then)
	case then > 0 && now > then:
		d.add(RuleSafeguardDropped, a.Procedure, a.Descriptor, b.Descriptor, "max_token_age is now %s, was %s", now, then)
	case now > 0 && then == 0:
		d.add(RuleSafeguardAdded, a.Procedure, a.Descriptor, b.Descriptor, "max_token_age is now %s, was unset", now)
	case now > 0 && now < then:
		d.add(RuleSafeguardAdded, a.Procedure, a.Descriptor, b.Descriptor, "max_token_age is now %s, was %s", now, then)
	}
	d.rate(a, b, "rate_limit", a.RateLimit, b.RateLimit)
	d.rate(a, b, "stream_message_limit", a.StreamMessageLimit, b.StreamMessageLimit)
}

// rate reports a changed rate limit: more admitted (a higher rate or
// burst, or no limit) is dropped, fewer is added.
func (d *differ) rate(a, b *Method, field string, now, then *RateLimit) {
	switch {
	case now == nil && then == nil:
		return
	case now == nil:
		d.add(RuleSafeguardDropped, a.Procedure, a.Descriptor, b.Descriptor, "%s removed, was %s", field, then)
		return
	case then == nil:
		d.add(RuleSafeguardAdded, a.Procedure, a.Descriptor, b.Descriptor, "%s is now %s, was unset", field, now)
		return
	}
	// Compare rates as requests per period without division: r1/p1 vs r2/p2.
	faster := float64(now.Requests)*float64(then.Period) > float64(then.Requests)*float64(now.Period)
	slower := float64(now.Requests)*float64(then.Period) < float64(then.Requests)*float64(now.Period)
	switch {
	case faster || (!slower && now.Burst > then.Burst):
		d.add(RuleSafeguardDropped, a.Procedure, a.Descriptor, b.Descriptor, "%s now admits more: %s, was %s", field, now, then)
	case slower || now.Burst < then.Burst:
		d.add(RuleSafeguardAdded, a.Procedure, a.Descriptor, b.Descriptor, "%s now admits fewer: %s, was %s", field, now, then)
	}
}
