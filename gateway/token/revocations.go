package token

import "time"

// Revocations tells the verifier which tokens were revoked before they
// expired; revocation.Set is one. Both methods are called on every
// verification, cached ones included, and must be cheap: no network
// round trip, no allocation.
type Revocations interface {
	// Revoked reports whether the token of issuer with id tokenID (its
	// jti, or ""), issued at issuedAt (its iat, or the zero time) to
	// clientID was revoked.
	Revoked(issuer, tokenID, clientID string, issuedAt time.Time) bool
	// Loaded reports whether the revocations are known: until then the
	// verifier refuses every token with [ErrRevocationsUnavailable].
	Loaded() bool
}

// WithRevocations makes the verifier refuse revoked tokens with
// [ErrRevoked], whether or not they are in its cache, and every token
// with [ErrRevocationsUnavailable] until r is loaded. Nil is invalid.
func WithRevocations(r Revocations) Option {
	return optionFunc(func(c *config) {
		if r == nil {
			c.invalid("WithRevocations(nil)")
			return
		}
		c.revocations = r
	})
}

// revoked returns why p may not be used now that its signature and
// claims hold, or nil.
func (v *Verifier) revoked(p *Principal) *Error {
	r := v.cfg.revocations
	if r == nil {
		return nil
	}
	if !r.Loaded() {
		return errNoRevocations
	}
	if r.Revoked(p.Issuer, p.TokenID, p.ClientID, p.IssuedAt) {
		return errRevoked
	}
	return nil
}
