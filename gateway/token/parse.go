package token

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"math"
	"time"
)

// b64 decodes JWS segments: base64url without padding (RFC 7515 §2), with
// no slack in the trailing bits.
var b64 = base64.RawURLEncoding.Strict()

// Limits on the members of the objects of a token.
const (
	maxHeaderMembers = 16
	maxClaims        = 128
	maxDomains       = 64
	maxSignature     = maxRSABits / 8
	// maxDate bounds NumericDates, in seconds since 1970 (about year 2242),
	// so that date arithmetic never overflows.
	maxDate = 1 << 33
)

// header holds what the verifier reads of a protected header.
type header struct {
	alg     alg
	hasAlg  bool
	algNone bool
	kid     []byte
	hasKid  bool
	typ     []byte
	hasTyp  bool
	crit    bool
	b64     bool
	cty     bool
	badAlg  bool
	badKid  bool
	badTyp  bool
}

func (h header) member(name, value []byte) header {
	switch string(name) {
	case "alg":
		s, ok := jsonString(value)
		if !ok {
			h.badAlg = true
			return h
		}
		h.hasAlg = true
		h.alg = parseAlg(s)
		h.algNone = string(s) == "none"
	case "kid":
		s, ok := jsonString(value)
		if !ok {
			h.badKid = true
			return h
		}
		h.kid, h.hasKid = s, true
	case "typ":
		s, ok := jsonString(value)
		if !ok {
			h.badTyp = true
			return h
		}
		h.typ, h.hasTyp = s, true
	case "crit":
		// RFC 7515 §4.1.11: a recipient must refuse a token whose crit
		// lists an extension it does not understand. It understands none.
		h.crit = true
	case "b64":
		// RFC 7797: an unencoded payload changes what is signed.
		h.b64 = true
	case "cty":
		// A nested token (RFC 7519 §5.2) would be verified with other keys.
		h.cty = true
	}
	// jku, x5u, jwk, x5c and every other parameter are ignored: keys come
	// from the issuer, never from the token.
	return h
}

// claims holds the raw values of the claims the verifier reads.
type claims struct {
	iss, aud, exp, nbf, iat, sub, clientID, jti, tier, perms []byte
}

func (c claims) member(name, value []byte, permName string) claims {
	if string(name) == permName {
		c.perms = value
		return c
	}
	switch string(name) {
	case "iss":
		c.iss = value
	case "aud":
		c.aud = value
	case "exp":
		c.exp = value
	case "nbf":
		c.nbf = value
	case "iat":
		c.iat = value
	case "sub":
		c.sub = value
	case "client_id":
		c.clientID = value
	case "jti":
		c.jti = value
	case "tier":
		c.tier = value
	}
	return c
}

// jsonString returns the value of a raw JSON string, unescaped; it
// allocates only for strings with escapes.
func jsonString(raw []byte) ([]byte, bool) {
	if len(raw) < 2 || raw[0] != '"' {
		return nil, false
	}
	if bytes.IndexByte(raw, '\\') < 0 {
		return raw[1 : len(raw)-1], true
	}
	s, err := unescape(raw)
	return s, err == nil
}

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
		return nil, nil, objectError(m.err, errHeaderJSON, errHeaderDup, errHeaderTooMany)
	}
	switch {
	case h.crit:
		return nil, nil, errCrit
	case h.b64:
		return nil, nil, errB64
	case h.cty:
		return nil, nil, errCty
	case h.badAlg:
		return nil, nil, errAlgUnknown
	case h.badKid:
		return nil, nil, errKidType
	case h.badTyp:
		return nil, nil, errTypType
	case !h.hasAlg:
		return nil, nil, errNoAlg
	case h.algNone:
		return nil, nil, errAlgNone
	case h.alg == algInvalid:
		return nil, nil, errAlgUnknown
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
		return nil, nil, objectError(m.err, errPayloadJSON, errPayloadDup, errPayloadTooMany)
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
	key, kerr := v.selectKey(ctx, is, &h)
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
	if !key.verifySignature(h.alg, b[:d2], sig) {
		return nil, nil, errSignature
	}

	// The claims, now authentic.
	return v.principal(is, key, &c, kept, raw, now)
}

// objectError maps an error of parseObject to a refusal.
func objectError(err error, syntax, duplicate, tooMany *Error) *Error {
	switch {
	case errors.Is(err, errDuplicate):
		return duplicate
	case errors.Is(err, errTooMany):
		return tooMany
	}
	return syntax
}

// selectKey returns the issuer's key that is to verify a token with header
// h, fetching the key set once more if the token names a key it lacks.
func (v *Verifier) selectKey(ctx context.Context, is *issuer, h *header) (*verifyKey, *Error) {
	ix := is.keys.Load()
	if ix == nil {
		_, _ = v.refresh(ctx, is, true)
		if ix = is.keys.Load(); ix == nil {
			return nil, v.keysUnavailable(is)
		}
	}
	if !h.hasKid || is.source == sourceSecret {
		// Without a kid, only an issuer with a single key for the
		// algorithm can be trusted: trying every key would multiply the
		// cost of forged tokens.
		var found *verifyKey
		n := 0
		for _, k := range ix.all {
			if k.algs.has(h.alg) {
				found, n = k, n+1
			}
		}
		switch n {
		case 0:
			return nil, errAlgKey
		case 1:
			return found, nil
		}
		return nil, errNoKid
	}
	keys := ix.lookup(string(h.kid))
	if len(keys) == 0 {
		if fetched, _ := v.refresh(ctx, is, true); fetched {
			keys = is.keys.Load().lookup(string(h.kid))
		}
		if len(keys) == 0 {
			return nil, errUnknownKid
		}
	}
	for _, k := range keys {
		if k.algs.has(h.alg) {
			return k, nil
		}
	}
	return nil, errAlgKey
}

func (v *Verifier) keysUnavailable(is *issuer) *Error {
	e := &Error{Kind: ErrKeysUnavailable, Reason: "keys of issuer " + is.name + " unavailable"}
	if err := is.lastErr.Load(); err != nil {
		e.Err = *err
	}
	return e
}

// principal checks the claims of a token whose signature verified and
// returns its principal.
func (v *Verifier) principal(is *issuer, key *verifyKey, c *claims, kept [][]byte, raw string, now time.Time) (*Principal, *verified, error) {
	if c.aud == nil {
		return nil, nil, errNoAudience
	}
	if err := v.checkAudience(is, c.aud); err != nil {
		return nil, nil, err
	}

	skew := v.cfg.skew
	if c.exp == nil {
		return nil, nil, errNoExpiry
	}
	exp, ok := numericDate(c.exp)
	if !ok {
		return nil, nil, errExpiryType
	}
	until := exp.Add(skew)
	if !now.Before(until) {
		return nil, nil, errExpired
	}
	if c.nbf != nil {
		nbf, ok := numericDate(c.nbf)
		if !ok {
			return nil, nil, errNotBeforeType
		}
		if now.Before(nbf.Add(-skew)) {
			return nil, nil, errNotYetValid
		}
	}
	if c.iat == nil && v.cfg.maxAge > 0 {
		return nil, nil, errNoIssuedAt
	}
	if c.iat != nil {
		iat, ok := numericDate(c.iat)
		if !ok {
			return nil, nil, errIssuedAtType
		}
		if iat.After(now.Add(skew)) {
			return nil, nil, errIssuedInFuture
		}
		if v.cfg.maxAge > 0 {
			old := iat.Add(addDurations(v.cfg.maxAge, skew))
			if !now.Before(old) {
				return nil, nil, errTooOld
			}
			if old.Before(until) {
				until = old
			}
		}
	}

	p := &Principal{Issuer: is.name, ExpiresAt: exp}
	var err *Error
	if p.Subject, err = optionalString(c.sub, errSubjectType, &v.strings); err != nil {
		return nil, nil, err
	}
	if p.ClientID, err = optionalString(c.clientID, errClientIDType, &v.strings); err != nil {
		return nil, nil, err
	}
	if p.ClientID == "" {
		p.ClientID = p.Subject
	}
	if p.ClientID == "" {
		return nil, nil, errNoSubject
	}
	if p.TokenID, err = optionalString(c.jti, errTokenIDType, nil); err != nil {
		return nil, nil, err
	}
	if p.Tier, err = optionalString(c.tier, errTierType, &v.strings); err != nil {
		return nil, nil, err
	}
	if c.perms == nil {
		p.Masks = map[string]uint64{}
	} else {
		masks, ok := v.masks.lookup(c.perms)
		if !ok {
			if masks, err = v.parsePerms(c.perms); err != nil {
				return nil, nil, err
			}
			v.masks.store(string(c.perms), masks)
		}
		p.Masks = masks
	}
	for i, name := range v.cfg.keepClaims[:len(kept)] {
		if kept[i] == nil {
			continue
		}
		if err := checkUnique(kept[i]); err != nil {
			if errors.Is(err, errDuplicate) {
				return nil, nil, refuse(ErrBadClaims, "token "+name+" claim has a duplicate member name")
			}
			return nil, nil, refuse(ErrBadClaims, "token "+name+" claim is not valid JSON")
		}
		var value any
		d := json.NewDecoder(bytes.NewReader(kept[i]))
		d.UseNumber()
		if d.Decode(&value) != nil {
			return nil, nil, refuse(ErrBadClaims, "token "+name+" claim is not valid JSON")
		}
		if p.Claims == nil {
			p.Claims = make(map[string]any, len(kept))
		}
		p.Claims[name] = value
	}
	if v.cache == nil {
		return p, nil, nil
	}
	return p, &verified{raw: raw, principal: p, until: unixNano(until), key: key}, nil
}

// addDurations returns a+b, both non-negative, or the largest Duration if
// the sum overflows: a skew or maximum age that large sets no limit.
func addDurations(a, b time.Duration) time.Duration {
	if a > math.MaxInt64-b {
		return math.MaxInt64
	}
	return a + b
}

// lastUnixNano is the last time whose UnixNano is defined, in 2262.
var lastUnixNano = time.Unix(0, math.MaxInt64)

// unixNano returns t.UnixNano(), saturated for times after 2262, which a
// NumericDate plus a huge skew reaches.
func unixNano(t time.Time) int64 {
	if t.After(lastUnixNano) {
		return math.MaxInt64
	}
	return t.UnixNano()
}

// checkAudience accepts a string naming one of the issuer's audiences, or
// an array of strings of which one does (RFC 7519 §4.1.3).
func (v *Verifier) checkAudience(is *issuer, raw []byte) *Error {
	switch raw[0] {
	case '"':
		if is.acceptsAudience(raw) {
			return nil
		}
		return errAudience
	case '[':
		found := false
		i := skipSpace(raw, 1)
		for i < len(raw) && raw[i] != ']' {
			if raw[i] != '"' {
				return errAudienceType
			}
			end, _, err := scanString(raw, i)
			if err != nil {
				return errAudienceType
			}
			found = found || is.acceptsAudience(raw[i:end])
			i = skipSpace(raw, end)
			if i < len(raw) && raw[i] == ',' {
				i = skipSpace(raw, i+1)
			}
		}
		if found {
			return nil
		}
		return errAudience
	}
	return errAudienceType
}

// optionalString returns the value of a claim that must be a string if
// present, shared through t if not nil.
func optionalString(raw []byte, wrongType *Error, t *interned[string]) (string, *Error) {
	if raw == nil {
		return "", nil
	}
	s, ok := jsonString(raw)
	if !ok {
		return "", wrongType
	}
	if t == nil {
		return string(s), nil
	}
	if v, ok := t.lookup(s); ok {
		return v, nil
	}
	v := string(s)
	t.store(v, v)
	return v, nil
}

// numericDate reads a NumericDate (RFC 7519 §2): non-negative seconds
// since 1970, with an optional fraction. Exponents are refused.
func numericDate(raw []byte) (time.Time, bool) {
	var sec, nsec int64
	i := 0
	for ; i < len(raw) && isDigit(raw[i]); i++ {
		sec = sec*10 + int64(raw[i]-'0')
		if sec >= maxDate {
			return time.Time{}, false
		}
	}
	if i == 0 || (raw[0] == '0' && i > 1) {
		return time.Time{}, false
	}
	if i < len(raw) && raw[i] == '.' {
		i++
		start := i
		scale := int64(1e8)
		for ; i < len(raw) && isDigit(raw[i]); i++ {
			nsec += int64(raw[i]-'0') * scale
			scale /= 10
		}
		if i == start {
			return time.Time{}, false
		}
	}
	if i != len(raw) {
		return time.Time{}, false
	}
	return time.Unix(sec, nsec), true
}

// maxMaskValue is the largest mask a JSON number carries exactly: 2^53-1.
const maxMaskValue = 1<<53 - 1

// parsePerms reads the permission claim: an object of domain name →
// integer in 0..2^53-1. Anything else is refused with the reason.
func (v *Verifier) parsePerms(raw []byte) (map[string]uint64, *Error) {
	claim := "token " + v.cfg.permissionClaim + " claim"
	if raw[0] != '{' {
		return nil, refuse(ErrBadClaims, claim+" is not an object")
	}
	masks := make(map[string]uint64, 4)
	var m members
	for m.start(raw, maxDomains); m.next(raw); {
		name := m.name(raw)
		if !isDomainName(name) {
			return nil, refuse(ErrBadClaims, claim+" has a member that is not a domain name")
		}
		mask, reason := maskValue(m.value(raw))
		if reason != "" {
			return nil, refuse(ErrBadClaims, claim+": "+string(name)+" "+reason)
		}
		masks[string(name)] = mask
	}
	switch err := m.err; {
	case errors.Is(err, errDuplicate):
		return nil, refuse(ErrBadClaims, claim+" names a domain twice")
	case errors.Is(err, errTooMany):
		return nil, refuse(ErrBadClaims, claim+" has too many domains")
	case err != nil:
		return nil, refuse(ErrBadClaims, claim+" is not an object")
	}
	return masks, nil
}

// maskValue reads a mask: a JSON integer literal in 0..2^53-1.
func maskValue(raw []byte) (uint64, string) {
	switch {
	case raw[0] == '"':
		return 0, "is a string, not an integer"
	case raw[0] == '-':
		return 0, "is negative"
	case !isDigit(raw[0]):
		return 0, "is not an integer"
	}
	var n uint64
	for _, c := range raw {
		if !isDigit(c) {
			return 0, "is not an integer"
		}
		if n > maxMaskValue/10+1 {
			return 0, "is above 2^53-1"
		}
		n = n*10 + uint64(c-'0')
	}
	if n > maxMaskValue {
		return 0, "is above 2^53-1"
	}
	return n, ""
}

// isDomainName reports whether name is a domain name: an upper-case letter,
// then up to 15 upper-case letters, digits or underscores.
func isDomainName(name []byte) bool {
	if len(name) == 0 || len(name) > 16 || name[0] < 'A' || name[0] > 'Z' {
		return false
	}
	for _, c := range name[1:] {
		if (c < 'A' || c > 'Z') && !isDigit(c) && c != '_' {
			return false
		}
	}
	return true
}
