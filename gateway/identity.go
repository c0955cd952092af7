package gateway

import (
	"context"
	"net/http"

	"github.com/portcullis/portcullis/gateway/config"
	"github.com/portcullis/portcullis/gateway/internaltoken"
	"github.com/portcullis/portcullis/gateway/token"
)

// JWKSPath is where the admin listener publishes the key set of the
// gateway's internal tokens, when a route has identity internal.
const JWKSPath = "/.well-known/jwks.json"

// newMinter builds the minter of internal tokens when a route needs one.
func (g *generation) newMinter() error {
	t := g.cfg.InternalTokens
	if t == nil {
		return nil
	}
	needed := false
	for _, r := range g.cfg.Routes {
		needed = needed || r.Identity == config.IdentityInternal
	}
	if !needed {
		return nil
	}
	key, err := internaltoken.LoadOrGenerateKey(t.KeyDir)
	if err != nil {
		return err
	}
	var opts []internaltoken.Option
	if t.Lifetime != 0 {
		opts = append(opts, internaltoken.WithLifetime(t.Lifetime.Std()))
	}
	g.minter, err = internaltoken.New(t.Issuer, key, opts...)
	return err
}

// requestHeaders returns the forwarded request's header hook of route:
// the principal headers and, with identity internal, an internal token in
// Authorization in place of the caller's.
func (g *generation) requestHeaders(route config.Route) func(context.Context, http.Header) {
	if route.Identity != config.IdentityInternal {
		return principalHeaders
	}
	audience := route.Audience
	if audience == "" {
		audience = route.Service
	}
	m := g.minter
	return func(ctx context.Context, h http.Header) {
		principalHeaders(ctx, h)
		caller := h.Get("Authorization")
		h.Del("Authorization") // the caller's token never reaches the backend
		p, ok := token.FromContext(ctx)
		if !ok {
			return // a public method called anonymously: no identity to vouch for
		}
		v, err := m.Authorization(p, caller, audience)
		if err != nil {
			g.logger.ErrorContext(ctx, "minting an internal token", "audience", audience, "error", err)
			return // the backend, verifying, refuses the call
		}
		h["Authorization"] = []string{v}
	}
}
