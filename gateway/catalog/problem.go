package catalog

import (
	"fmt"
	"strings"
)

// Rule names one validation rule. A [Problem] says which rule an element
// breaks.
type Rule string

// The validation rules of a catalog.
const (
	RuleDomainName          Rule = "domain-name"          // a domain's name is a short upper-case identifier
	RuleDuplicateDomain     Rule = "duplicate-domain"     // domain names are unique in the catalog
	RulePermissionName      Rule = "permission-name"      // a permission's name is an upper-case identifier
	RuleDuplicatePermission Rule = "duplicate-permission" // permission names are unique in a domain
	RuleMaskPowerOfTwo      Rule = "mask-power-of-two"    // a mask has exactly one bit set
	RuleMaskRange           Rule = "mask-range"           // a mask is at most 2^52
	RuleDuplicateMask       Rule = "duplicate-mask"       // masks are unique in a domain
	RuleMissingPermission   Rule = "missing-permission"   // every non-zero value of a domain enum is a permission
	RuleStrayPermission     Rule = "stray-permission"     // permissions belong to a domain enum, never its zero value
	RuleNoAccess            Rule = "no-access"            // every method declares its access
	RuleEmptyAccess         Rule = "empty-access"         // an access declaration is public or requires something
	RulePublicAndRequires   Rule = "public-and-requires"  // a method is public or requires permissions, not both
	RuleBadReference        Rule = "bad-reference"        // a requirement is written DOMAIN.NAME
	RuleUnknownDomain       Rule = "unknown-domain"       // a requirement names a declared domain
	RuleUnknownPermission   Rule = "unknown-permission"   // a requirement names a declared permission
	RuleRateLimit           Rule = "rate-limit"           // a rate limit admits at least one request per positive period
	RuleUnreadableOption    Rule = "unreadable-option"    // an option can be decoded
	RuleStreamMessageLimit  Rule = "stream-message-limit" // message limits apply to client and bidi streams only
)

// Problem is one thing wrong in the declarations.
type Problem struct {
	File    string // the .proto file, such as "example/licensing/v1/licensing.proto"
	Element string // the full name of the enum, value, service or method
	Rule    Rule   // the rule broken
	Message string // what is wrong, for people
}

// String formats the problem as "file: element: rule: message".
func (p Problem) String() string {
	return fmt.Sprintf("%s: %s: %s: %s", p.File, p.Element, p.Rule, p.Message)
}

// ValidationError lists every problem found in a set of declarations. [New]
// returns it, never a catalog that is partly valid.
type ValidationError struct {
	Problems []Problem
}

// Error lists the problems, one per line.
func (e *ValidationError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "catalog: %d problem", len(e.Problems))
	if len(e.Problems) != 1 {
		b.WriteByte('s')
	}
	for _, p := range e.Problems {
		b.WriteString("\n  ")
		b.WriteString(p.String())
	}
	return b.String()
}
