package config

import (
	"regexp"
	"slices"
	"strings"
)

// Values of [IssuerPermissions.From].
const (
	// PermissionsFromPerms reads the permission claim, such as
	// "perms": {"LIC": 3}: the default.
	PermissionsFromPerms = "perms"
	// PermissionsFromScopes reads the OAuth scopes: the scope claim (a
	// space-delimited string) and the scp claim (a string or an array).
	PermissionsFromScopes = "scopes"
)

// IssuerPermissions says where an issuer's tokens carry their
// permissions.
type IssuerPermissions struct {
	// From is "perms" (the default) or "scopes". With "scopes", a scope
	// grants the permission Scopes maps it to, or else the catalog
	// permission it names (such as "LIC.READ_ORDERS"); other scopes are
	// other APIs' and grant nothing; the permission claim is ignored.
	From string `json:"from,omitempty"`
	// Scopes maps the issuer's scope names to catalog permissions,
	// DOMAIN.NAME, such as "orders:read": ORD.READ; only with from: scopes.
	// The gateway refuses to start when one names a permission that is
	// not in the catalog.
	Scopes map[string]string `json:"scopes,omitempty"`
}

// FromScopes reports whether the issuer's permissions are its scopes.
func (p *IssuerPermissions) FromScopes() bool {
	return p != nil && p.From == PermissionsFromScopes
}

// permissionRef is the shape of a permission reference, DOMAIN.NAME.
var permissionRef = regexp.MustCompile(`^[A-Z][A-Z0-9_]{0,15}\.[A-Z][A-Z0-9_]*$`)

func (p *IssuerPermissions) validate(v *validator, path string) {
	if p == nil {
		return
	}
	if p.From != "" && p.From != PermissionsFromPerms && p.From != PermissionsFromScopes {
		v.add(path+".from", "%q is neither %q nor %q", p.From, PermissionsFromPerms, PermissionsFromScopes)
	}
	if len(p.Scopes) > 0 && p.From != PermissionsFromScopes {
		v.add(path+".scopes", "maps scopes, but from is not %q", PermissionsFromScopes)
	}
	names := make([]string, 0, len(p.Scopes))
	for name := range p.Scopes {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		at := path + ".scopes." + name
		if name == "" || strings.ContainsAny(name, " \t\r\n\"\\") {
			v.add(at, "%q is not a scope name", name)
		}
		if ref := p.Scopes[name]; !permissionRef.MatchString(ref) {
			v.add(at, "%q is not a permission such as LIC.READ_ORDERS", ref)
		}
	}
}
