package token

import "context"

// selectKey returns the issuer's key that is to verify a token with header
// h, and the key set it comes from, fetching the key set once more if the
// token names a key it lacks.
func (v *Verifier) selectKey(ctx context.Context, is *issuer, h *header) (*verifyKey, *keyIndex, *Error) {
	ix := is.keys.Load()
	if ix == nil {
		_, _ = v.refresh(ctx, is, true)
		if ix = is.keys.Load(); ix == nil {
			return nil, nil, v.keysUnavailable(is)
		}
	}
	k, err := is.pick(ix, h.kid, h.hasKid, h.alg)
	if err == errUnknownKid {
		if fetched, _ := v.refresh(ctx, is, true); fetched {
			ix = is.keys.Load()
			k, err = is.pick(ix, h.kid, h.hasKid, h.alg)
		}
	}
	return k, ix, err
}

// pick returns the key of ix that verifies a token of algorithm a naming
// kid (if hasKid), or why there is none. It never fetches, costs no
// cryptography and does not allocate: the cache calls it to check that a
// key set still chooses the key that verified a token.
//
// A token must name its key unless the issuer allows otherwise; then only
// an issuer with a single key for the algorithm can verify it: trying
// every key would multiply the cost of forged tokens. A Secret is its
// issuer's only key, whatever kid a token names.
func (is *issuer) pick(ix *keyIndex, kid []byte, hasKid bool, a alg) (*verifyKey, *Error) {
	if !hasKid && !is.allowMissingKid {
		return nil, errMissingKid
	}
	if ix == nil {
		return nil, errUnknownKid
	}
	if !hasKid || is.source == sourceSecret {
		var found *verifyKey
		n := 0
		for _, k := range ix.all {
			if k.algs.has(a) {
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
	keys := ix.lookup(kid)
	if len(keys) == 0 {
		return nil, errUnknownKid
	}
	for _, k := range keys {
		if k.algs.has(a) {
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
