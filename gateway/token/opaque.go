package token

import (
	"bytes"
	"context"
)

// Introspect answers for a token the verifier does not verify itself: it
// asks the token's issuer (RFC 7662 token introspection, see package
// gateway/introspect) and returns the principal, or an *[Error]: a refusal
// for a token that is not active, [ErrKeysUnavailable] when the issuer
// could not be asked.
type Introspect func(ctx context.Context, raw string) (*Principal, error)

// opaque is an issuer whose tokens are introspected.
type opaque struct {
	issuer     string
	introspect Introspect
}

// WithOpaque declares issuer opaque: its tokens are introspected with
// introspect instead of verified with keys. The verifier sends it every
// token that is not a compact JWS (three base64url segments), and every
// compact JWS whose iss claim names issuer; it verifies the others itself.
// Revocations ([WithRevocations]) apply to introspected tokens too. The
// issuer must not also be among the verifier's issuers; with an opaque
// issuer, the verifier may have none. One opaque issuer at most: an opaque
// token does not say whose it is.
func WithOpaque(issuer string, introspect Introspect) Option {
	return optionFunc(func(c *config) {
		switch {
		case issuer == "" || introspect == nil:
			c.invalid("WithOpaque needs an issuer and an introspection function")
		case c.opaque != nil:
			c.invalid("WithOpaque given twice: one opaque issuer at most")
		default:
			c.opaque = &opaque{issuer: issuer, introspect: introspect}
		}
	})
}

// owns reports whether raw goes to introspection: not a compact JWS,
// or one whose iss claim, read unverified, names the opaque issuer. It
// does not allocate for tokens of up to 2 KiB of claims.
func (o *opaque) owns(raw string) bool {
	b := bytesOf(raw)
	d1 := bytes.IndexByte(b, '.')
	if d1 < 0 {
		return true
	}
	d2 := bytes.IndexByte(b[d1+1:], '.')
	if d2 < 0 {
		return true
	}
	d2 += d1 + 1
	if bytes.IndexByte(b[d2+1:], '.') >= 0 {
		return true
	}
	var pbuf [2048]byte
	payload, err := decodeSegment(pbuf[:], b[d1+1:d2])
	if err != nil {
		return true
	}
	var m members
	for m.start(payload, maxClaims); m.next(payload); {
		if string(m.name(payload)) == "iss" {
			iss, ok := jsonString(m.value(payload))
			return ok && string(iss) == o.issuer
		}
	}
	return false
}

// introspected answers for a token of the opaque issuer.
func (v *Verifier) introspected(ctx context.Context, raw string) (*Principal, error) {
	p, err := v.cfg.opaque.introspect(ctx, raw)
	if err != nil {
		return nil, err
	}
	if err := v.revoked(p); err != nil {
		return nil, err
	}
	return p, nil
}
