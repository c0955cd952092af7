package catalog

import (
	"fmt"
	"log/slog"
	"strconv"
	"strings"

	"google.golang.org/protobuf/reflect/protoreflect"
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
	RuleMaxTokenAge         Rule = "max-token-age"        // a maximum token age is whole seconds, at least 1s, on a method needing a token
	RuleSenderConstrained   Rule = "sender-constrained"   // a method that needs a sender-constrained token is not public
)

// Severity says whether a problem stops [New].
type Severity int

const (
	// SeverityError stops New: the problem touches a service the catalog
	// is for. It is the zero value, so that a problem fails closed.
	SeverityError Severity = iota
	// SeverityWarning does not stop New: the problem touches none of the
	// services named by [WithServices], and the services it touches are
	// left out of the catalog.
	SeverityWarning
)

// String returns "error" or "warning".
func (s Severity) String() string {
	switch s {
	case SeverityError:
		return "error"
	case SeverityWarning:
		return "warning"
	}
	return "severity(" + strconv.Itoa(int(s)) + ")"
}

// Problem is one thing wrong in the declarations.
type Problem struct {
	File string // the .proto file, such as "example/licensing/v1/licensing.proto"
	// Line and Column locate the element in File, from 1; both are 0 when
	// the descriptors carry no source info (Go descriptors compiled in;
	// buf images keep it unless built with --exclude-source-info).
	Line, Column int
	Element      string   // the full name of the enum, value, service or method
	Rule         Rule     // the rule broken
	Message      string   // what is wrong, for people
	Severity     Severity // whether it stopped New
	// Services are the services the problem touches, sorted: the one that
	// declares the element, or, for a problem in the definition of a domain
	// or of its permissions, every service requiring a permission of that
	// domain. Empty when the problem touches no service, such as a
	// permission outside any domain.
	Services []protoreflect.FullName
}

// Position returns where the problem is: "file:line:column", or the file
// alone when the descriptors carry no source info.
func (p Problem) Position() string { return formatPosition(p.File, p.Line, p.Column) }

// position returns the line and column, from 1, where desc is declared, or
// 0, 0 when its file carries no source info.
func position(desc protoreflect.Descriptor) (line, column int) {
	if loc := desc.ParentFile().SourceLocations().ByDescriptor(desc); loc.Path != nil {
		return loc.StartLine + 1, loc.StartColumn + 1
	}
	return 0, 0
}

// formatPosition formats "file:line:column", or the file alone without a
// line.
func formatPosition(file string, line, column int) string {
	if line == 0 {
		return file
	}
	return file + ":" + strconv.Itoa(line) + ":" + strconv.Itoa(column)
}

// String formats the problem as "file:line:column: element: rule:
// message", or "file: element: rule: message" without source info.
func (p Problem) String() string {
	return fmt.Sprintf("%s: %s: %s: %s", p.Position(), p.Element, p.Rule, p.Message)
}

// LogValue logs the problem as a group: at (its position), element, rule,
// message, severity, and services when it touches any.
func (p Problem) LogValue() slog.Value {
	attrs := []slog.Attr{
		slog.String("at", p.Position()),
		slog.String("element", p.Element),
		slog.String("rule", string(p.Rule)),
		slog.String("message", p.Message),
		slog.String("severity", p.Severity.String()),
	}
	if len(p.Services) > 0 {
		names := make([]string, len(p.Services))
		for i, s := range p.Services {
			names[i] = string(s)
		}
		attrs = append(attrs, slog.String("services", strings.Join(names, ",")))
	}
	return slog.GroupValue(attrs...)
}

// ValidationError lists the problems that stopped [New]: those of severity
// [SeverityError]. New returns it, never a catalog that is partly valid for
// the services it is for.
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
