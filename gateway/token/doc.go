// Package token verifies the bearer tokens that callers present: JWTs
// (RFC 7519) in the compact JWS form (RFC 7515), signed by one of a set of
// trusted issuers, following the JWT best current practices (RFC 8725).
//
// A [Verifier] trusts a list of [Issuer]s. Each names its iss, the audiences
// it may address, and one source of keys: a JWKS URL kept fresh in the
// background, an issuer URL whose RFC 8414 or OpenID Connect metadata names
// the JWKS, a local JWKS file, or a shared secret. [Verifier.Verify] turns a
// token into a [Principal]: who calls, for which client, and the permission
// masks its perms claim grants, per domain.
//
//	v, err := token.NewVerifier(ctx, []token.Issuer{{
//		Issuer:     "https://issuer.example.com",
//		Audiences:  []string{"https://api.example.com"},
//		Discover:   true,
//		Algorithms: []string{"ES256"},
//		Type:       "at+jwt",
//	}})
//	if err != nil {
//		return err
//	}
//	defer v.Close()
//	// Report not-ready until every issuer's keys were fetched once.
//	if err := v.Ready(); err != nil { ... }
//	p, err := v.Verify(ctx, raw)
//	switch {
//	case errors.Is(err, token.ErrKeysUnavailable):
//		// broken: answer 503
//	case err != nil:
//		// refused: answer 401 with err.Error(), which never holds the token
//	default:
//		ctx = token.NewContext(ctx, p)
//	}
//
// What is checked: the algorithm is on the issuer's allowlist and one the
// key can use ("none", and HMAC with a public key, never pass); the key
// comes from the issuer, never from the token (jku, x5u, jwk and x5c are
// ignored); crit, b64 and cty headers are refused; iss, aud and exp are
// required, nbf and iat honoured with a clock skew, and a maximum age may be
// set; JSON with duplicate member names is refused, in the header, among
// the claims, and at every depth of the claims the verifier reads or keeps
// ([WithClaims]); the perms claim must be an object of domain → integer in
// 0..2^53-1, read exactly.
//
// Keys rotate without downtime: a token signed by an unknown key causes one
// fetch of the key set (single-flight, at most once per cooldown), and when
// the issuer is down the keys fetched last keep serving. A key set the
// issuer does serve is the truth, even one without a usable key: keys it
// no longer lists stop verifying at once. A key set comes at least as
// safely as it is asked for: redirects from https to http or to another
// host are not followed, and discovered key sets of an https issuer must be
// https. Tokens verified once are cached until they expire or their key
// leaves the key set, so a repeat caller costs a hash lookup instead of a
// signature check.
package token
