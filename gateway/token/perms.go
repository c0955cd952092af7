package token

import "errors"

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
