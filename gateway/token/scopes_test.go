package token_test

import (
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/portcullis/portcullis/gateway/token"
	"github.com/portcullis/portcullis/internal/jwttest"
)

// catalogLookup is a permission table as a catalog gives it.
func catalogLookup(ref string) (string, uint64, bool) {
	g, ok := map[string]struct {
		d string
		m uint64
	}{
		"LIC.READ_REQUIREMENTS": {"LIC", 1}, "LIC.READ_ORDERS": {"LIC", 2},
		"ORD.READ": {"ORD", 1}, "ORD.WRITE": {"ORD", 2},
	}[ref]
	return g.d, g.m, ok
}

// verifyOrRefused verifies tok and returns its principal when reason is
// "", and otherwise wants it refused for reason and returns nil.
func verifyOrRefused(t *testing.T, v *token.Verifier, tok, reason string) *token.Principal {
	t.Helper()
	p, err := v.Verify(t.Context(), tok)
	if reason != "" {
		if err == nil || err.Error() != reason {
			t.Fatalf("Verify = %v, want %q", err, reason)
		}
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// An issuer with Permissions "scopes" grants the permissions its tokens'
// scope and scp claims name or map to; other scopes, and the perms claim,
// grant nothing; a scope claim of the wrong type is refused.
func TestVerifyScopes(t *testing.T) {
	t.Parallel()
	k := jwttest.NewEC("k1")
	const iss = "https://okta.test"
	v, err := token.NewVerifier(t.Context(), []token.Issuer{{
		Issuer: iss, Audiences: []string{audience}, JWKS: jwttest.JWKS(k),
		Permissions: token.PermissionsFromScopes,
		Scopes:      map[string]string{"orders:read": "ORD.READ", "orders:write": "ORD.WRITE"},
	}}, token.WithClock(jwttest.NewClock(jwttest.Epoch)), token.WithPermissionLookup(catalogLookup))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(v.Close)
	for _, tc := range []struct {
		name   string
		claims map[string]any
		want   map[string]uint64
		reason string // of the refusal, or ""
	}{
		{"mapped", map[string]any{"scope": "openid orders:read"}, map[string]uint64{"ORD": 1}, ""},
		{"catalog names", map[string]any{"scope": "LIC.READ_ORDERS  LIC.READ_REQUIREMENTS\tORD.WRITE"}, map[string]uint64{"LIC": 3, "ORD": 2}, ""},
		{"scp array", map[string]any{"scp": []string{"orders:write", "LIC.READ_ORDERS"}}, map[string]uint64{"LIC": 2, "ORD": 2}, ""},
		{"scp string", map[string]any{"scp": "orders:read orders:write"}, map[string]uint64{"ORD": 3}, ""},
		{"scope and scp", map[string]any{"scope": "orders:read", "scp": []string{"LIC.READ_ORDERS"}}, map[string]uint64{"LIC": 2, "ORD": 1}, ""},
		{"unknown permission", map[string]any{"scope": "LIC.FLY ORD.READ.X lic.read_orders ORD"}, map[string]uint64{}, ""},
		{"perms ignored", map[string]any{"perms": map[string]any{"LIC": 3}}, map[string]uint64{}, ""},
		{"empty", map[string]any{"scope": "", "scp": []string{}}, map[string]uint64{}, ""},
		{"scope not a string", map[string]any{"scope": []string{"orders:read"}}, nil, "token scope claim is not a string"},
		{"scp of numbers", map[string]any{"scp": []any{"orders:read", 1}}, nil, "token scp claim is not a string or an array of strings"},
		{"scp object", map[string]any{"scp": map[string]any{"a": "b"}}, nil, "token scp claim is not a string or an array of strings"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			claims := jwttest.ClaimsAt(iss, audience, jwttest.Epoch)
			delete(claims, "perms")
			delete(claims, "scope")
			maps.Copy(claims, tc.claims)
			p := verifyOrRefused(t, v, k.Mint(nil, claims), tc.reason)
			if p == nil {
				return
			}
			if !maps.Equal(p.Masks, tc.want) {
				t.Errorf("masks %v, want %v", p.Masks, tc.want)
			}
		})
	}
}

// NewVerifier reports every mistake of an issuer's scope settings.
func TestScopeSettings(t *testing.T) {
	t.Parallel()
	k := jwttest.NewEC("k1")
	base := token.Issuer{Issuer: "https://okta.test", Audiences: []string{audience}, JWKS: jwttest.JWKS(k)}
	with := func(perms string, scopes map[string]string) []token.Issuer {
		is := base
		is.Permissions, is.Scopes = perms, scopes
		return []token.Issuer{is}
	}
	lookup := token.WithPermissionLookup(catalogLookup)
	for _, tc := range []struct {
		name    string
		issuers []token.Issuer
		opts    []token.Option
		want    string
	}{
		{"no lookup", with(token.PermissionsFromScopes, nil), nil, "Permissions scopes needs WithPermissionLookup"},
		{"unknown permission", with(token.PermissionsFromScopes, map[string]string{"orders:fly": "ORD.FLY", "orders:read": "ORD.READ"}), []token.Option{lookup},
			`Scopes: "orders:fly" maps to "ORD.FLY", an unknown permission`},
		{"bad scope name", with(token.PermissionsFromScopes, map[string]string{"orders read": "ORD.READ"}), []token.Option{lookup}, `Scopes: "orders read" is not a scope name`},
		{"scopes without from", with("", map[string]string{"orders:read": "ORD.READ"}), []token.Option{lookup}, "Scopes needs Permissions scopes"},
		{"unknown source", with("roles", nil), []token.Option{lookup}, `Permissions "roles" is neither "perms" nor "scopes"`},
		{"nil lookup", with("", nil), []token.Option{token.WithPermissionLookup(nil)}, "WithPermissionLookup(nil)"},
		{"permission claim hides scopes", with(token.PermissionsFromScopes, nil), []token.Option{lookup, token.WithPermissionClaim("scp")},
			`the permission claim "scp" is a scope claim`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			v, err := token.NewVerifier(t.Context(), tc.issuers, tc.opts...)
			if err == nil {
				v.Close()
				t.Fatalf("NewVerifier accepted it, want %q", tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("NewVerifier = %v, want it to say %q", err, tc.want)
			}
		})
	}
}

// BenchmarkVerifyCachedScopes is the cost of a cached token whose
// permissions are its scopes: the masks were computed when it was
// verified, so it costs what any cached token does.
func BenchmarkVerifyCachedScopes(b *testing.B) {
	k := jwttest.NewEC("k1")
	const iss = "https://okta.test"
	v, err := token.NewVerifier(b.Context(), []token.Issuer{{
		Issuer: iss, Audiences: []string{audience}, JWKS: jwttest.JWKS(k),
		Permissions: token.PermissionsFromScopes, Scopes: map[string]string{"orders:read": "ORD.READ"},
	}}, token.WithClock(jwttest.NewClock(jwttest.Epoch)), token.WithPermissionLookup(catalogLookup))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(v.Close)
	claims := jwttest.ClaimsAt(iss, audience, jwttest.Epoch)
	claims["scope"] = "openid orders:read LIC.READ_ORDERS"
	raw := k.Mint(nil, claims)
	if _, err := v.Verify(b.Context(), raw); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		p, err := v.Verify(b.Context(), raw)
		if err != nil || p.Masks["ORD"] != 1 {
			b.Fatal(p, err)
		}
	}
}

// The auth_time claim, when present, is the principal's AuthTime: a
// NumericDate, or the token is refused.
func TestAuthTime(t *testing.T) {
	t.Parallel()
	k := jwttest.NewEC("k1")
	const iss = "https://i.test"
	v, err := token.NewVerifier(t.Context(), []token.Issuer{{Issuer: iss, Audiences: []string{audience}, JWKS: jwttest.JWKS(k)}},
		token.WithClock(jwttest.NewClock(jwttest.Epoch)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(v.Close)
	for _, tc := range []struct {
		name     string
		authTime any
		want     int64 // unix seconds, 0 for none
		reason   string
	}{
		{"absent", nil, 0, ""},
		{"a date", jwttest.Epoch.Add(-time.Hour).Unix(), jwttest.Epoch.Add(-time.Hour).Unix(), ""},
		{"a string", "yesterday", 0, "token auth_time claim is not a NumericDate"},
		{"too late", int64(1) << 40, 0, "token auth_time claim is out of range: later than 2242-03-16"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			claims := jwttest.ClaimsAt(iss, audience, jwttest.Epoch)
			if tc.authTime != nil {
				claims["auth_time"] = tc.authTime
			}
			p := verifyOrRefused(t, v, k.Mint(nil, claims), tc.reason)
			if p == nil {
				return
			}
			if got := p.AuthTime; (tc.want == 0) != got.IsZero() || (tc.want != 0 && got.Unix() != tc.want) {
				t.Errorf("AuthTime %v, want %d", got, tc.want)
			}
		})
	}
}
