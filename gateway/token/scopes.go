package token

import (
	"bytes"
	"fmt"
	"slices"
	"sort"
	"strings"
)

// Values of [Issuer.Permissions].
const (
	// PermissionsFromClaim reads the permissions from the permission claim
	// (see [WithPermissionClaim]), an object of domain → mask: the default.
	PermissionsFromClaim = "perms"
	// PermissionsFromScopes reads the permissions from the token's OAuth
	// scopes: the scope claim, a space-delimited string (RFC 8693 §4.2,
	// RFC 9068 §2.2.3), and the scp claim, a string or an array of
	// strings, as Okta, Auth0 and Entra ID mint them.
	PermissionsFromScopes = "scopes"
)

// PermissionLookup finds a permission by reference, DOMAIN.NAME (such as
// "LIC.READ_ORDERS"): its domain and mask. The gateway passes its
// catalog's table; the token package knows no catalog.
type PermissionLookup func(ref string) (domain string, mask uint64, ok bool)

// WithPermissionLookup sets the table of permission names that the scopes
// of issuers with [PermissionsFromScopes] are read against. It is
// required when such an issuer is trusted; nil is invalid.
func WithPermissionLookup(lookup PermissionLookup) Option {
	return optionFunc(func(c *config) {
		if lookup == nil {
			c.invalid("WithPermissionLookup(nil)")
			return
		}
		c.permissionLookup = lookup
	})
}

// grant is what one scope grants: a mask in a domain.
type grant struct {
	domain string
	mask   uint64
}

// scopeTable is what the scopes of one issuer grant.
type scopeTable struct {
	mapped map[string]grant // by the issuer's scope name
	lookup PermissionLookup // for scopes named as permissions
}

// newScopeTable resolves the mapping of an issuer's scopes, reporting the
// mapped permissions that lookup does not know.
func newScopeTable(cfg Issuer, lookup PermissionLookup) (*scopeTable, []string) {
	if lookup == nil {
		return nil, []string{"Permissions " + PermissionsFromScopes + " needs WithPermissionLookup"}
	}
	t := &scopeTable{mapped: make(map[string]grant, len(cfg.Scopes)), lookup: lookup}
	var problems []string
	names := make([]string, 0, len(cfg.Scopes))
	for scope := range cfg.Scopes {
		names = append(names, scope)
	}
	sort.Strings(names)
	for _, scope := range names {
		ref := cfg.Scopes[scope]
		if scope == "" || strings.ContainsAny(scope, " \t\r\n") {
			problems = append(problems, fmt.Sprintf("Scopes: %q is not a scope name", scope))
			continue
		}
		domain, mask, ok := lookup(ref)
		if !ok {
			problems = append(problems, fmt.Sprintf("Scopes: %q maps to %q, an unknown permission", scope, ref))
			continue
		}
		t.mapped[scope] = grant{domain, mask}
	}
	return t, problems
}

// grantOf returns what one scope grants: its mapped permission, or else
// the permission it names. A scope that is neither grants nothing: it is
// another API's scope.
func (t *scopeTable) grantOf(scope []byte) (grant, bool) {
	if g, ok := t.mapped[string(scope)]; ok {
		return g, true
	}
	if bytes.IndexByte(scope, '.') < 0 {
		return grant{}, false
	}
	domain, mask, ok := t.lookup(string(scope))
	return grant{domain, mask}, ok
}

// scopeMasks returns the masks that the scope and scp claims grant.
func (t *scopeTable) scopeMasks(scope, scp []byte) (map[string]uint64, *Error) {
	masks := make(map[string]uint64, 2)
	add := func(list []byte) {
		for _, s := range bytes.Fields(list) {
			if g, ok := t.grantOf(s); ok {
				masks[g.domain] |= g.mask
			}
		}
	}
	if scope != nil {
		s, ok := jsonString(scope)
		if !ok {
			return nil, errScopeType
		}
		add(s)
	}
	if scp != nil {
		switch scp[0] {
		case '"':
			s, ok := jsonString(scp)
			if !ok {
				return nil, errScpType
			}
			add(s)
		case '[':
			i := skipSpace(scp, 1)
			for i < len(scp) && scp[i] != ']' {
				if scp[i] != '"' {
					return nil, errScpType
				}
				end, _, err := scanString(scp, i)
				if err != nil {
					return nil, errScpType
				}
				s, ok := jsonString(scp[i:end])
				if !ok {
					return nil, errScpType
				}
				add(s)
				i = skipSpace(scp, end)
				if i < len(scp) && scp[i] == ',' {
					i = skipSpace(scp, i+1)
				}
			}
		default:
			return nil, errScpType
		}
	}
	return masks, nil
}

// scopeClaims are the claims that carry scopes: the permission claim must
// not be one of them when an issuer reads scopes.
var scopeClaims = []string{"scope", "scp"}

// checkScopeClaims reports a permission claim that hides the scopes.
func checkScopeClaims(c *config) error {
	if slices.Contains(scopeClaims, c.permissionClaim) {
		return fmt.Errorf("the permission claim %q is a scope claim, read by issuers with Permissions %q", c.permissionClaim, PermissionsFromScopes)
	}
	return nil
}
