package token

import (
	"context"
	"time"
)

// Principal is the verified caller of a call: who it is and what its token
// grants. A Principal is immutable once built; share it freely.
type Principal struct {
	// Subject is the token's sub claim.
	Subject string
	// ClientID is the OAuth client the token was issued to: the client_id
	// claim (RFC 9068), or the subject when the token has none.
	ClientID string
	// Issuer is the token's iss claim, one of the trusted issuers.
	Issuer string
	// Masks holds the permission claim: domain → mask. Never nil for a
	// verified token; empty when the token grants nothing. The map may be
	// shared with other principals whose tokens carry the same claim: read
	// it, never modify it.
	Masks map[string]uint64
	// Tier is the token's tier claim (such as "free" or "pro"), or "".
	Tier string
	// TokenID is the jti claim, or "": an identifier of the token that is
	// safe to log, unlike the token. A principal answered from the cache
	// is the one built when the token was verified: reading it costs
	// nothing.
	TokenID string
	// ExpiresAt is the token's exp claim.
	ExpiresAt time.Time
	// IssuedAt is the token's iat claim, or the zero time when it has
	// none.
	IssuedAt time.Time
	// AuthTime is the token's auth_time claim (OpenID Connect Core §2,
	// RFC 9470 §4): when the user behind it last authenticated; the zero
	// time when it has none.
	AuthTime time.Time
	// Confirmation is the token's cnf claim (RFC 7800): what the token is
	// bound to. Zero for a bearer token, which anyone holding it can use.
	Confirmation Confirmation
	// Claims holds the claims the verifier was configured to keep (see
	// WithClaims), by name, decoded from JSON with numbers as json.Number;
	// nil when there are none.
	Claims map[string]any
}

type principalKey struct{}

// NewContext returns a copy of ctx that carries p.
func NewContext(ctx context.Context, p *Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// FromContext returns the Principal in ctx, if any. Handlers behind the
// gateway's or a backend's interceptor call it to learn who is calling;
// public methods called without a token have none.
func FromContext(ctx context.Context) (*Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(*Principal)
	return p, ok && p != nil
}
