package token

import "bytes"

// Limits on the members of the objects of a token.
const (
	maxHeaderMembers = 16
	maxClaims        = 128
	maxDomains       = 64
	maxSignature     = maxRSABits / 8
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

// check refuses a header that no issuer accepts.
func (h *header) check() *Error {
	switch {
	case h.crit:
		return errCrit
	case h.b64:
		return errB64
	case h.cty:
		return errCty
	case h.badAlg:
		return errAlgUnknown
	case h.badKid:
		return errKidType
	case h.badTyp:
		return errTypType
	case !h.hasAlg:
		return errNoAlg
	case h.algNone:
		return errAlgNone
	case h.alg == algInvalid:
		return errAlgUnknown
	}
	return nil
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
