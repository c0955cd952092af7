package gateway

import (
	"context"
	"fmt"

	"github.com/portcullis/portcullis/gateway/authz"
	"github.com/portcullis/portcullis/gateway/config"
	"github.com/portcullis/portcullis/gateway/token"
)

// newAuthorizer builds the token verifier of the configured issuers and
// the authorizer that uses it.
func (g *Gateway) newAuthorizer(ctx context.Context, c *chain, o *options, opts ...authz.Option) error {
	if len(g.cfg.Issuers) > 0 {
		observe := token.WithKeysObserver(func(issuer string, keys int, err error) {
			g.telemetry.RecordJWKSRefresh(context.Background(), issuer, err, keys)
		})
		topts := append(tokenOptions(g.cfg.Tokens), observe, token.WithLogger(g.logger), token.WithPermissionLookup(g.permissionLookup))
		var err error
		if g.verifier, err = token.NewVerifier(ctx, issuers(g.cfg.Issuers), append(topts, o.tokenOptions...)...); err != nil {
			return fmt.Errorf("token verification: %w", err)
		}
		g.closers = append(g.closers, func() error { g.verifier.Close(); return nil })
	}
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
func (g *Gateway) permissionLookup(ref string) (string, uint64, bool) {
	p, ok := g.catalog.Permission(ref)
	if !ok {
		return "", 0, false
	}
	return p.Domain, p.Mask, true
}

// issuers returns the verifier's view of the configured issuers.
func issuers(cfgs []config.Issuer) []token.Issuer {
	out := make([]token.Issuer, len(cfgs))
	for i, c := range cfgs {
		typ := c.RequiredType()
		if typ == "" {
			typ = token.TypeAny
		}
		out[i] = token.Issuer{
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
			out[i].Permissions = token.PermissionsFromScopes
			out[i].Scopes = c.Permissions.Scopes
		}
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
