package token

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"time"
)

// b64 decodes JWS segments: base64url without padding (RFC 7515 §2), with
// no slack in the trailing bits.
var b64 = base64.RawURLEncoding.Strict()

// decodeSegment decodes a base64url segment into dst, or into a new buffer
// when dst is too small.
func decodeSegment(dst, src []byte) ([]byte, error) {
	if n := b64.DecodedLen(len(src)); n > len(dst) {
		dst = make([]byte, n)
	}
	n, err := b64.Decode(dst, src)
	return dst[:n], err
}

// verify verifies a token that is not in the cache.
func (v *Verifier) verify(ctx context.Context, raw string, now time.Time) (*Principal, *verified, error) {
	b := bytesOf(raw)
	d1 := bytes.IndexByte(b, '.')
	if d1 < 0 {
		return nil, nil, errNotCompact
	}
	d2 := bytes.IndexByte(b[d1+1:], '.')
	if d2 < 0 {
		return nil, nil, errNotCompact
	}
	d2 += d1 + 1
	if bytes.IndexByte(b[d2+1:], '.') >= 0 {
		if bytes.Count(b, []byte{'.'}) == 4 {
			return nil, nil, errEncrypted
		}
		return nil, nil, errNotCompact
	}
	// The base64 decoder skips line breaks; a token has none.
	if bytes.IndexByte(b, '\n') >= 0 || bytes.IndexByte(b, '\r') >= 0 {
		return nil, nil, errNotCompact
	}

	// The protected header.
	var hbuf [384]byte
	hdr, err := decodeSegment(hbuf[:], b[:d1])
	if err != nil || len(hdr) == 0 {
		return nil, nil, errHeaderBase64
	}
	var (
		h header
		m members
	)
	for m.start(hdr, maxHeaderMembers); m.next(hdr); {
		h = h.member(m.name(hdr), m.value(hdr))
	}
	if m.err != nil {
		return nil, nil, objectError(m.err, errHeaderJSON, errHeaderDup, errHeaderTooMany, errHeaderEscape)
	}
	if err := h.check(); err != nil {
		return nil, nil, err
	}

	// The claims, read before the signature is checked only to learn the
	// issuer whose keys verify it.
	if d2 == d1+1 {
		return nil, nil, errNotCompact // detached payload (RFC 7515 Appendix F)
	}
	var pbuf [2048]byte
	payload, err := decodeSegment(pbuf[:], b[d1+1:d2])
	if err != nil {
		return nil, nil, errPayloadBase64
	}
	var (
		c    claims
		kept [][]byte
		keep = v.cfg.keepClaims
	)
	if len(keep) > 0 {
		kept = make([][]byte, len(keep))
	}
	m = members{}
	for m.start(payload, maxClaims); m.next(payload); {
		name, value := m.name(payload), m.value(payload)
		c = c.member(name, value, v.cfg.permissionClaim)
		for i, k := range keep {
			if string(name) == k {
				kept[i] = bytes.Clone(value) // a copy: the payload stays off the heap
			}
		}
	}
	if m.err != nil {
		return nil, nil, objectError(m.err, errPayloadJSON, errPayloadDup, errPayloadTooMany, errPayloadEscape)
	}
	if c.iss == nil {
		return nil, nil, errNoIssuer
	}
	iss, ok := jsonString(c.iss)
	if !ok {
		return nil, nil, errIssuerType
	}
	is := v.issuers[string(iss)]
	if is == nil {
		return nil, nil, errUntrustedIssuer
	}
	if !is.algs.has(h.alg) {
		return nil, nil, errAlgNotAllowed
	}
	if is.typ != "" && (!h.hasTyp || !is.typeMatches(h.typ)) {
		return nil, nil, errType
	}
	key, ix, kerr := v.selectKey(ctx, is, &h)
	if kerr != nil {
		return nil, nil, kerr
	}

	// The signature, over the ASCII of header.payload.
	sigB64 := b[d2+1:]
	if b64.DecodedLen(len(sigB64)) > maxSignature {
		return nil, nil, errSignature
	}
	var sbuf [maxSignature]byte
	sig, err := decodeSegment(sbuf[:], sigB64)
	if err != nil {
		return nil, nil, errSignatureBase64
	}
	if err := v.acquire(ctx); err != nil {
		return nil, nil, err
	}
	ok = key.verifySignature(h.alg, b[:d2], sig)
	v.release()
	if !ok {
		return nil, nil, errSignature
	}

	// The claims, now authentic.
	p, until, perr := v.principal(is, &c, kept, now)
	if perr != nil {
		return nil, nil, perr
	}
	if v.cache == nil {
		return p, nil, nil
	}
	e := &verified{raw: raw, principal: p, until: until, is: is, key: key, alg: h.alg, hasKid: h.hasKid}
	e.index.Store(ix)
	return p, e, nil
}

// objectError maps an error of the members scanner to a refusal.
func objectError(err error, syntax, duplicate, tooMany, escape *Error) *Error {
	switch {
	case errors.Is(err, errDuplicate):
		return duplicate
	case errors.Is(err, errTooMany):
		return tooMany
	case errors.Is(err, errSurrogate):
		return escape
	}
	return syntax
}

// acquire takes one of the slots of signature verification, waiting up
// to the configured wait and never past ctx, or refuses with
// errOverloaded. The wait costs a timer only when every slot is taken.
func (v *Verifier) acquire(ctx context.Context) *Error {
	select {
	case v.slots <- struct{}{}:
		return nil
	default:
	}
	if v.cfg.verifyWait <= 0 {
		return errOverloaded
	}
	t := time.NewTimer(v.cfg.verifyWait)
	defer t.Stop()
	select {
	case v.slots <- struct{}{}:
		return nil
	case <-t.C:
	case <-ctx.Done():
	}
	return errOverloaded
}

// release gives back a slot taken by acquire.
func (v *Verifier) release() { <-v.slots }
