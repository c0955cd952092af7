package gateway

import (
	"context"
	"fmt"

	"github.com/portcullis/portcullis/gateway/authz"
	"github.com/portcullis/portcullis/gateway/config"
	"github.com/portcullis/portcullis/gateway/introspect"
	"github.com/portcullis/portcullis/gateway/token"
)

// newVerifier builds the token verifier of the configured issuers, if any.
func (g *generation) newVerifier(ctx context.Context, o *options) error {
	if len(g.cfg.Issuers) > 0 {
		observe := token.WithKeysObserver(func(issuer string, keys int, err error) {
			g.telemetry.RecordJWKSRefresh(context.Background(), issuer, err, keys)
		})
		topts := append(tokenOptions(g.cfg.Tokens), observe, token.WithLogger(g.logger), token.WithPermissionLookup(g.permissionLookup))
		opaque, err := g.opaqueOptions()
		if err != nil {
			return fmt.Errorf("token introspection: %w", err)
		}
		topts = append(topts, opaque...)
		if g.verifier, err = token.NewVerifier(ctx, issuers(g.cfg.Issuers), append(topts, o.tokenOptions...)...); err != nil {
			return fmt.Errorf("token verification: %w", err)
		}
		verifier := g.verifier
		g.closers = append(g.closers, func() error { verifier.Close(); return nil })
	}
	return nil
}

// newAuthorizer builds the authorizer that uses the verifier.
func (g *generation) newAuthorizer(c *chain, opts ...authz.Option) error {
	if g.revocations != nil {
		opts = append(opts, authz.WithFreshness(g.revocations.Err))
	}
	var err error
	if c.authorizer, err = authz.New(g.catalog, g.verifier, opts...); err != nil {
		return fmt.Errorf("authorization: %w", err)
	}
	return nil
}

// permissionLookup finds a permission of the catalog by reference,
// DOMAIN.NAME, for the issuers whose tokens carry scopes.
func (g *generation) permissionLookup(ref string) (string, uint64, bool) {
	p, ok := g.catalog.Permission(ref)
	if !ok {
		return "", 0, false
	}
	return p.Domain, p.Mask, true
}

// opaqueOptions returns the verifier options of the issuer with
// introspection, if any: its tokens are introspected, and those with an
// active answer at hand count as verified for the address guard.
func (g *generation) opaqueOptions() ([]token.Option, error) {
	for _, c := range g.cfg.Issuers {
		in := c.Introspection
		if in == nil {
			continue
		}
		t := g.cfg.Tokens
		i, err := introspect.New(c.Issuer, in.URL, in.ClientID, in.ClientSecret,
			introspect.WithCacheMax(in.CacheMax.Std()),
			introspect.WithCacheSize(t.CacheSize),
			introspect.WithTimeout(in.Timeout.Std()),
			introspect.WithSkew(t.Skew.Std()),
			introspect.WithAudiences(c.Audiences...),
			introspect.WithPermissionClaim(t.PermissionClaim),
			introspect.WithLogger(g.logger))
		if err != nil {
			return nil, err
		}
		return []token.Option{token.WithOpaque(c.Issuer, i.Introspect), token.WithOpaqueCache(i.Cached)}, nil
	}
	return nil, nil
}

// issuers returns the verifier's view of the configured issuers whose
// tokens it verifies with keys: all but the opaque one.
func issuers(cfgs []config.Issuer) []token.Issuer {
	out := make([]token.Issuer, 0, len(cfgs))
	for _, c := range cfgs {
		if c.Introspection != nil {
			continue
		}
		typ := c.RequiredType()
		if typ == "" {
			typ = token.TypeAny
		}
		is := token.Issuer{
			Issuer:          c.Issuer,
			Audiences:       c.Audiences,
			Discover:        c.Discovery,
			JWKSURL:         c.JWKSURL,
			JWKSFile:        c.JWKSFile,
			Secret:          c.HMACSecret,
			Algorithms:      c.Algorithms,
			Type:            typ,
			AllowMissingKid: c.AllowMissingKID,
		}
		if c.Permissions.FromScopes() {
			is.Permissions = token.PermissionsFromScopes
			is.Scopes = c.Permissions.Scopes
		}
		out = append(out, is)
	}
	return out
}

// tokenOptions returns the verifier's settings from the tokens section.
func tokenOptions(t config.Tokens) []token.Option {
	opts := []token.Option{
		token.WithSkew(t.Skew.Std()),
		token.WithMaxAge(t.MaxAgeLimit()),
		token.WithMaxSize(t.MaxSize),
		token.WithCacheSize(t.CacheSize),
		token.WithRefreshInterval(t.RefreshInterval.Std()),
		token.WithRefetchCooldown(t.RefetchCooldown.Std()),
		token.WithRetryBackoff(t.RetryBackoff.Min.Std(), t.RetryBackoff.Max.Std()),
		token.WithPermissionClaim(t.PermissionClaim),
	}
	if t.MaxConcurrentVerifications > 0 { // else the token package's default
		opts = append(opts, token.WithMaxConcurrentVerifications(t.MaxConcurrentVerifications))
	}
	return opts
}
