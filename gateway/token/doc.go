// Package token verifies the bearer tokens that callers present: JWT
// access tokens (RFC 7519, RFC 9068) in the compact JWS form (RFC 7515),
// signed by one of a set of trusted issuers, following the JWT best
// current practices (RFC 8725).
//
// A [Verifier] trusts a list of [Issuer]s. Each names its iss, the audiences
// it may address, and one source of keys: a JWKS URL kept fresh in the
// background, an issuer URL whose RFC 8414 or OpenID Connect metadata names
// the JWKS, a local JWKS file read again as it changes, or a shared secret. [Verifier.Verify] turns a
// token into a [Principal]: who calls, for which client, and the permission
// masks its perms claim grants, per domain, or, for an issuer with
// [PermissionsFromScopes], its OAuth scopes (scope and scp) read against
// the permission table of [WithPermissionLookup].
//
//	v, err := token.NewVerifier(ctx, []token.Issuer{{
//		Issuer:     "https://issuer.example.com",
//		Audiences:  []string{"https://api.example.com"},
//		Discover:   true,
//		Algorithms: []string{"ES256"},
//	}}, token.WithLogger(logger))
//	if err != nil {
//		return err
//	}
//	defer v.Close()
//	// Report not-ready until every issuer's keys were fetched once.
//	if err := v.Ready(); err != nil { ... }
//	p, err := v.Verify(ctx, raw)
//	switch {
//	case errors.Is(err, token.ErrKeysUnavailable), errors.Is(err, token.ErrOverloaded):
//		// broken or busy: answer 503
//	case err != nil:
//		// refused: answer 401 with err.Error(), which never holds the token
//	default:
//		ctx = token.NewContext(ctx, p)
//	}
//
// What is checked: the algorithm is on the issuer's allowlist and one the
// key can use ("none", and HMAC with a public key, never pass); the key
// comes from the issuer, never from the token (jku, x5u, jwk and x5c are
// ignored), and the token names it by kid unless the issuer allows
// otherwise ([Issuer.AllowMissingKid]); the typ is at+jwt unless the issuer
// says otherwise ([Issuer.Type]), so that an ID token is no access token;
// crit, b64 and cty headers are refused; iss, aud and exp are required,
// nbf and iat honoured with a clock skew, and a maximum age may be set;
// JSON with duplicate member names or lone surrogate escapes is refused,
// in the header, among the claims, and at every depth of the claims the
// verifier reads or keeps ([WithClaims]); segments are unpadded base64url
// and nothing else; NumericDates are plain numbers up to 2242; the perms
// claim must be an object of domain → integer in 0..2^53-1, read exactly.
//
// Keys rotate without downtime: a token signed by an unknown key causes one
// fetch of the key set (single-flight, at most once per cooldown), and when
// the issuer is down the keys fetched last keep serving. A key set the
// issuer does serve is the truth, even one without a usable key: keys it
// no longer lists stop verifying at once. A fetched key set holding private
// key material (d, p, q, dp, dq, qi, oth, or the k of a shared secret) is
// refused, and the keys fetched before keep serving. A key set comes at
// least as safely as it is asked for: redirects from https to http or to
// another host are not followed, and discovered key sets of an https
// issuer must be https. Until an issuer's first fetch succeeds, it is
// retried with a backoff of at most 5 s by default, and [Verifier.Ready]
// says why it failed and when the next attempt is. [WithLogger] logs each
// change of an issuer's state once: keys ready, fetch failing, recovered,
// key set refused.
//
// Tokens verified once are cached until they expire, or until their
// issuer's key set no longer chooses the key that verified them, so a
// repeat caller costs a hash lookup instead of a signature check, without
// allocating; [Verifier.Cached] tells whether a token would be answered
// so. With [WithRevocations], every verification, cached or not, also
// asks a local set of revocations (such as the gateway's revocation.Set)
// whether the token, or its client, was revoked: a revoked token is
// refused with [ErrRevoked] from the moment the set learns of it.
// Signature checks of tokens not in the cache are bounded
// ([WithMaxConcurrentVerifications]): past the bound, a verification
// waits briefly, then is refused with [ErrOverloaded].
//
// # Why the JWS and JWT parsing is this package's own
//
// Key sets are jwx's (github.com/lestrrat-go/jwx/v2/jwk): parsing keys,
// thumbprints, and fetching and refreshing sets in the background. Tokens
// are parsed and verified here, because jwx v2's jwt.Parse, verifying with
// the right key and validating iss, aud and the dates, accepts tokens that
// the RFCs say to refuse, or that an access-token verifier must not let
// through. Measured with jwx v2.1.7 (TestJWXDefaults, which fails when
// this list stops being true), it accepts:
//
//   - a crit header naming an extension it does not implement, or a
//     claim: RFC 7515 §4.1.11 makes the JWS invalid;
//   - a cty of JWT, reading the claims of the nested token as the token's
//     own (RFC 7519 §7.2 says to verify the nested token);
//   - duplicate header parameters and claims, the last one winning:
//     {"alg":"HS256","alg":"ES256"}, or a second sub overriding the first.
//     RFC 7515 §5.2 and RFC 7519 §4 allow last-wins parsers, but the
//     service behind the gateway may read the first one;
//   - lone surrogates in member names, "\ud800" and "\udbff" both read as
//     U+FFFD, so that two different names become one (RFC 8725 §3.7:
//     UTF-8 only);
//   - text after the claims object, {...} x (RFC 7519 §7.2: the claims
//     are a JSON object);
//   - no exp at all (RFC 9068 §2.2 requires it of access tokens), and exp
//     as a string, of digits or even an RFC 3339 date (RFC 7519 §4.1.4:
//     a NumericDate is a number); also exponents (1e10) and dates past
//     2242, which this package refuses so that date arithmetic stays
//     exact;
//   - padded base64, the standard alphabet, and line breaks inside a
//     segment (RFC 7515 §2: base64url, unpadded, nothing else);
//   - any typ, such as the JWT of an OpenID Connect ID token for the same
//     audience (RFC 8725 §3.11, RFC 9068 §2.1), as it checks none unless
//     told to.
//
// It does refuse alg none and an unencoded payload (b64 false). Options
// and validators could close most of the rest one by one; defaults are
// what a gateway gets when one is forgotten, and a parser with none of
// these paths is smaller to audit than the options that switch them off.
//
// The own parser is also cheaper: it reads the token in place, on the
// stack. Verifying a fresh token, same token and claims checks, in the
// same run (go test -bench VerifyFresh -benchmem -count 6 on 2 shared
// cores, medians): ES256 costs 12 allocations (708 B) here against 291
// (18.9 KiB) for jwt.Parse; EdDSA 2 (132 B) against 269 (17.5 KiB), in
// 38.6 µs against 67.6 µs; HS256, where the signature is cheap, 2 (132 B)
// in 1.8 µs against 262 (17.6 KiB) in 26.2 µs. The cost of a fresh
// verification is that of crypto/* verifying the signature alone (the
// "crypto" benchmarks), within noise for RSA, ECDSA and EdDSA.
package token
