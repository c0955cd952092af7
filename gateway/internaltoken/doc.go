// Package internaltoken mints the gateway's internal tokens: short-lived
// JWTs, signed with the gateway's own ES256 key, that tell a backend who is
// calling in a form it can verify. A backend that trusts only the gateway
// as issuer (its key set is published by [Minter.JWKS]) refuses a forged
// Portcullis-Client-Id header and the caller's original token alike.
//
// An internal token carries iss (the gateway), aud (the backend's
// service), sub, client_id, tier and perms (the caller's, the claim name
// [gateway/token] reads by default), iat, exp, a fresh jti and, in
// orig_jti and orig_iss, the caller's token's jti and issuer. It is signed
// by hand rather than with a JOSE library because the token is one fixed
// shape and the hot path is the cache, not the signature: a minted token
// is kept per (caller token, audience) and served again until a quarter of
// its life is left, so a hot caller costs no signature per call.
package internaltoken
