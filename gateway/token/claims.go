package token

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"time"
)

// maxDate bounds NumericDates, in seconds since 1970 (2242-03-16), so
// that date arithmetic never overflows.
const maxDate = 1 << 33

// dateRange says what a NumericDate out of range is out of.
const dateRange = "later than 2242-03-16"

// claims holds the raw values of the claims the verifier reads.
type claims struct {
	iss, aud, exp, nbf, iat, sub, clientID, jti, tier, perms, scope, scp, authTime, cnf []byte
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
	case "scope":
		c.scope = value
	case "scp":
		c.scp = value
	case "auth_time":
		c.authTime = value
	case "cnf":
		c.cnf = value
	}
	return c
}

// principal checks the claims of a token whose signature verified and
// returns its principal and until when it may be reused, in unix
// nanoseconds.
func (v *Verifier) principal(is *issuer, c *claims, kept [][]byte, now time.Time) (*Principal, int64, *Error) {
	if c.aud == nil {
		return nil, 0, errNoAudience
	}
	if err := v.checkAudience(is, c.aud); err != nil {
		return nil, 0, err
	}

	skew := v.cfg.skew
	if c.exp == nil {
		return nil, 0, errNoExpiry
	}
	exp, err := numericDate(c.exp, errExpiryType, errExpiryRange)
	if err != nil {
		return nil, 0, err
	}
	until := exp.Add(skew)
	if !now.Before(until) {
		return nil, 0, errExpired
	}
	if c.nbf != nil {
		nbf, err := numericDate(c.nbf, errNotBeforeType, errNotBeforeRange)
		if err != nil {
			return nil, 0, err
		}
		if now.Before(nbf.Add(-skew)) {
			return nil, 0, errNotYetValid
		}
	}
	if c.iat == nil && v.cfg.maxAge > 0 {
		return nil, 0, errNoIssuedAt
	}
	var issuedAt time.Time
	if c.iat != nil {
		iat, err := numericDate(c.iat, errIssuedAtType, errIssuedAtRange)
		if err != nil {
			return nil, 0, err
		}
		issuedAt = iat
		if iat.After(now.Add(skew)) {
			return nil, 0, errIssuedInFuture
		}
		if v.cfg.maxAge > 0 {
			old := iat.Add(addDurations(v.cfg.maxAge, skew))
			if !now.Before(old) {
				return nil, 0, errTooOld
			}
			if old.Before(until) {
				until = old
			}
		}
	}

	p := &Principal{Issuer: is.name, ExpiresAt: exp, IssuedAt: issuedAt}
	if c.authTime != nil {
		if p.AuthTime, err = numericDate(c.authTime, errAuthTimeType, errAuthTimeRange); err != nil {
			return nil, 0, err
		}
	}
	if p.Subject, err = optionalString(c.sub, errSubjectType, &v.strings); err != nil {
		return nil, 0, err
	}
	if p.ClientID, err = optionalString(c.clientID, errClientIDType, &v.strings); err != nil {
		return nil, 0, err
	}
	if p.ClientID == "" {
		p.ClientID = p.Subject
	}
	if p.ClientID == "" {
		return nil, 0, errNoSubject
	}
	if p.TokenID, err = optionalString(c.jti, errTokenIDType, nil); err != nil {
		return nil, 0, err
	}
	if p.Tier, err = optionalString(c.tier, errTierType, &v.strings); err != nil {
		return nil, 0, err
	}
	if c.cnf != nil {
		if p.Confirmation, err = confirmation(c.cnf); err != nil {
			return nil, 0, err
		}
	}
	if is.scopes != nil {
		if p.Masks, err = is.scopes.scopeMasks(c.scope, c.scp); err != nil {
			return nil, 0, err
		}
	} else if c.perms == nil {
		p.Masks = map[string]uint64{}
	} else {
		masks, ok := v.masks.lookup(c.perms)
		if !ok {
			if masks, err = v.parsePerms(c.perms); err != nil {
				return nil, 0, err
			}
			v.masks.store(string(c.perms), masks)
		}
		p.Masks = masks
	}
	if p.Claims, err = v.keptClaims(kept); err != nil {
		return nil, 0, err
	}
	return p, unixNano(until), nil
}

// keptClaims decodes the claims kept by WithClaims, refusing duplicate
// member names at any depth.
func (v *Verifier) keptClaims(kept [][]byte) (map[string]any, *Error) {
	var out map[string]any
	for i, name := range v.cfg.keepClaims[:len(kept)] {
		if kept[i] == nil {
			continue
		}
		if err := checkUnique(kept[i]); err != nil {
			if errors.Is(err, errDuplicate) {
				return nil, refuse(ErrBadClaims, "token "+name+" claim has a duplicate member name")
			}
			return nil, refuse(ErrBadClaims, "token "+name+" claim is not valid JSON")
		}
		var value any
		d := json.NewDecoder(bytes.NewReader(kept[i]))
		d.UseNumber()
		if d.Decode(&value) != nil {
			return nil, refuse(ErrBadClaims, "token "+name+" claim is not valid JSON")
		}
		if out == nil {
			out = make(map[string]any, len(kept))
		}
		out[name] = value
	}
	return out, nil
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
// since 1970, with an optional fraction. Exponents are refused with
// wrongType, dates past maxDate with outOfRange.
func numericDate(raw []byte, wrongType, outOfRange *Error) (time.Time, *Error) {
	var sec, nsec int64
	i := 0
	big := false
	for ; i < len(raw) && isDigit(raw[i]); i++ {
		if !big {
			sec = sec*10 + int64(raw[i]-'0')
			big = sec >= maxDate
		}
	}
	if i == 0 || (raw[0] == '0' && i > 1) {
		return time.Time{}, wrongType
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
			return time.Time{}, wrongType
		}
	}
	if i != len(raw) {
		return time.Time{}, wrongType
	}
	if big {
		return time.Time{}, outOfRange
	}
	return time.Unix(sec, nsec), nil
}
