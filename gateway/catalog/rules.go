package catalog

// The rules of [Diff]: each [Change] says which one it follows. A change
// rule reports changes of one [ChangeKind].
const (
	RuleMethodPublic       Rule = "method-public"       // loosened: a method that required permissions is public
	RuleRequirementRemoved Rule = "requirement-removed" // loosened: a method no longer requires a permission
	RuleMaskReused         Rule = "mask-reused"         // loosened: a domain's mask belongs to another permission than before
	RuleMaskChanged        Rule = "mask-changed"        // breaking: a permission's mask is another
	RuleDomainRenamed      Rule = "domain-renamed"      // breaking: a domain's name is another
	RuleMethodProtected    Rule = "method-protected"    // tightened: a public method requires permissions
	RuleRequirementAdded   Rule = "requirement-added"   // tightened: a method requires one more permission
	RuleMethodAdded        Rule = "method-added"        // added: a method is new
	RuleMethodRemoved      Rule = "method-removed"      // removed: a method is gone
	RuleSafeguardDropped   Rule = "safeguard-dropped"   // loosened: a method drops high_value or sender_constrained, allows older tokens, or admits more calls
	RuleSafeguardAdded     Rule = "safeguard-added"     // tightened: a method becomes high_value or sender_constrained, allows only younger tokens, or admits fewer calls
)

// ruleInfo is what a rule is for and, for a change rule, the kind of the
// changes it reports.
type ruleInfo struct {
	purpose string
	kind    ChangeKind
}

// validationRules lists the rules of [New], in the order of their
// declaration.
var validationRules = []Rule{
	RuleDomainName, RuleDuplicateDomain, RulePermissionName, RuleDuplicatePermission,
	RuleMaskPowerOfTwo, RuleMaskRange, RuleDuplicateMask, RuleMissingPermission, RuleStrayPermission,
	RuleNoAccess, RuleEmptyAccess, RulePublicAndRequires, RuleBadReference, RuleUnknownDomain,
	RuleUnknownPermission, RuleRateLimit, RuleUnreadableOption, RuleStreamMessageLimit, RuleMaxTokenAge,
	RuleSenderConstrained,
}

// changeRules lists the rules of [Diff], loosening first.
var changeRules = []Rule{
	RuleMethodPublic, RuleRequirementRemoved, RuleMaskReused, RuleSafeguardDropped,
	RuleMaskChanged, RuleDomainRenamed,
	RuleMethodProtected, RuleRequirementAdded, RuleSafeguardAdded,
	RuleMethodAdded, RuleMethodRemoved,
}

var rules = map[Rule]ruleInfo{
	RuleDomainName:          {purpose: "A domain's name is 1 to 16 upper-case letters, digits or underscores, starting with a letter."},
	RuleDuplicateDomain:     {purpose: "Domain names are unique in the catalog."},
	RulePermissionName:      {purpose: "A permission's name is an upper-case identifier."},
	RuleDuplicatePermission: {purpose: "Permission names are unique in a domain."},
	RuleMaskPowerOfTwo:      {purpose: "A permission's mask is a power of two: exactly one bit."},
	RuleMaskRange:           {purpose: "A permission's mask is at most 2^52, so that JSON carries a domain's masks exactly."},
	RuleDuplicateMask:       {purpose: "Masks are unique in a domain."},
	RuleMissingPermission:   {purpose: "Every non-zero value of a domain enum is a permission."},
	RuleStrayPermission:     {purpose: "Permissions belong to a domain enum, and never to its zero value."},
	RuleNoAccess:            {purpose: "Every method declares its access, or its service declares a default_access."},
	RuleEmptyAccess:         {purpose: "An access declaration is public or requires permissions."},
	RulePublicAndRequires:   {purpose: "A method is public or requires permissions, not both."},
	RuleBadReference:        {purpose: "A requirement is written DOMAIN.NAME."},
	RuleUnknownDomain:       {purpose: "A requirement names a declared domain."},
	RuleUnknownPermission:   {purpose: "A requirement names a declared permission."},
	RuleRateLimit:           {purpose: "A rate limit admits at least one request per period of at least 1ms."},
	RuleUnreadableOption:    {purpose: "The access options can be decoded."},
	RuleStreamMessageLimit:  {purpose: "A stream message limit is set only on client and bidi streaming methods."},
	RuleMaxTokenAge:         {purpose: "A maximum token age is whole seconds, at least 1s, on a method that needs a token."},
	RuleSenderConstrained:   {purpose: "A method that needs a sender-constrained token is not public: it needs a token."},

	RuleMethodPublic:       {purpose: "A method that required permissions does not become public.", kind: Loosened},
	RuleRequirementRemoved: {purpose: "A method does not stop requiring a permission.", kind: Loosened},
	RuleMaskReused:         {purpose: "A mask of a domain is not given to another permission.", kind: Loosened},
	RuleMaskChanged:        {purpose: "A permission keeps its mask, which tokens already issued carry.", kind: Breaking},
	RuleDomainRenamed:      {purpose: "A domain keeps its name, which tokens already issued carry.", kind: Breaking},
	RuleMethodProtected:    {purpose: "A public method does not start requiring permissions.", kind: Tightened},
	RuleRequirementAdded:   {purpose: "A method does not start requiring another permission.", kind: Tightened},
	RuleSafeguardDropped:   {purpose: "A method keeps its safeguards: high_value, sender_constrained, max_token_age and its rate limits.", kind: Loosened},
	RuleSafeguardAdded:     {purpose: "A method does not gain safeguards that refuse callers it served: high_value, sender_constrained, a lower max_token_age or rate limit.", kind: Tightened},
	RuleMethodAdded:        {purpose: "A new method and the access it declares.", kind: Added},
	RuleMethodRemoved:      {purpose: "A method that is gone.", kind: Removed},
}

// Rules returns every rule of [New], each of which a [Problem] may name.
func Rules() []Rule { return append([]Rule(nil), validationRules...) }

// ChangeRules returns every rule of [Diff], each of which a [Change] may
// name: those of loosened changes first, then breaking, tightened, added
// and removed.
func ChangeRules() []Rule { return append([]Rule(nil), changeRules...) }

// Purpose says what the rule requires, or for a change rule what it keeps
// from changing, in a sentence; "" for a rule of neither list.
func (r Rule) Purpose() string { return rules[r].purpose }

// Kind returns the kind of the changes a change rule reports; "" for a
// validation rule.
func (r Rule) Kind() ChangeKind { return rules[r].kind }
