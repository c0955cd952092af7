package token

import (
	"bytes"
	"context"
	"time"
)

// Introspect answers for a token the verifier does not verify itself: it
// asks the token's issuer (RFC 7662 token introspection, see package
// gateway/introspect) and returns the principal, or an *[Error]: a refusal
// for a token that is not active, [ErrKeysUnavailable] when the issuer
// could not be asked.
type Introspect func(ctx context.Context, raw string) (*Principal, error)

// IntrospectCached answers, with no request to the issuer, for a token
// whose introspection answer is at hand: the principal of an active answer
// that still holds, and true; false for any other token.
type IntrospectCached func(raw string) (*Principal, bool)

// opaque is an issuer whose tokens are introspected.
type opaque struct {
	issuer     string
	introspect Introspect
	cached     IntrospectCached // nil: no answer is known to be at hand
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

// WithOpaqueCache lets [Verifier.Cached] cover the tokens of the opaque
// issuer of [WithOpaque]: cached tells which of them have an active answer
// at hand (the Cached method of package introspect's Introspector), so that a guard
// that holds back callers before their tokens are checked lets those
// through, as it does callers with a verified JWT. It needs WithOpaque.
func WithOpaqueCache(cached IntrospectCached) Option {
	return optionFunc(func(c *config) {
		if cached == nil {
			c.invalid("WithOpaqueCache needs a function")
			return
		}
		c.opaqueCached = cached
	})
}

// owns reports whether raw goes to introspection: not a compact JWS,
// or one whose iss claim, read unverified, names the opaque issuer. It
// does not allocate for tokens of up to 2 KiB of claims.
func (o *opaque) owns(raw string) bool {
	var pbuf [2048]byte
	payload, jws := unverifiedPayload(raw, pbuf[:])
	if !jws {
		return true
	}
	iss, ok := unverifiedMember(payload, "iss")
	if !ok {
		return false
	}
	s, ok := jsonString(iss)
	return ok && string(s) == o.issuer
}

// unverifiedPayload returns the decoded payload of raw, a compact JWS,
// into buf when it fits; jws is false when raw is not one.
func unverifiedPayload(raw string, buf []byte) (payload []byte, jws bool) {
	b := bytesOf(raw)
	d1 := bytes.IndexByte(b, '.')
	if d1 < 0 {
		return nil, false
	}
	d2 := bytes.IndexByte(b[d1+1:], '.')
	if d2 < 0 {
		return nil, false
	}
	d2 += d1 + 1
	if bytes.IndexByte(b[d2+1:], '.') >= 0 {
		return nil, false
	}
	payload, err := decodeSegment(buf, b[d1+1:d2])
	if err != nil {
		return nil, false
	}
	return payload, true
}

// unverifiedMember returns the raw value of the member name of payload.
func unverifiedMember(payload []byte, name string) ([]byte, bool) {
	var m members
	for m.start(payload, maxClaims); m.next(payload); {
		if string(m.name(payload)) == name {
			return m.value(payload), true
		}
	}
	return nil, false
}

// Peek reads the iss and exp claims of raw, a compact JWS, WITHOUT
// verifying it: for sending a token to whoever verifies it, such as a
// token exchange, never for a decision; the caller bounds raw's size. ok
// is false when raw is not a compact JWS whose claims hold a string iss;
// exp is zero when absent or not a NumericDate.
func Peek(raw string) (iss string, exp time.Time, ok bool) {
	var pbuf [2048]byte
	payload, jws := unverifiedPayload(raw, pbuf[:])
	if !jws {
		return "", time.Time{}, false
	}
	v, ok := unverifiedMember(payload, "iss")
	if !ok {
		return "", time.Time{}, false
	}
	s, ok := jsonString(v)
	if !ok {
		return "", time.Time{}, false
	}
	if v, found := unverifiedMember(payload, "exp"); found {
		exp, _ = numericDate(v, errPeek, errPeek)
	}
	return string(s), exp, true
}

// errPeek stands for any claim [Peek] cannot read; it never reaches a
// caller.
var errPeek = &Error{Kind: ErrMalformed, Reason: "unreadable claim"}

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
