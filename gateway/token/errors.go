package token

import (
	"errors"
)

// Sentinels for [errors.Is]. Every error of [Verifier.Verify] is an *[Error]
// whose Kind is one of them.
var (
	// ErrMissing: the request carries no bearer token.
	ErrMissing = errors.New("missing bearer token")
	// ErrMalformed: the token is not a well-formed compact JWS, or is
	// too large.
	ErrMalformed = errors.New("malformed token")
	// ErrExpired: the token's exp has passed, or it is older than the
	// maximum token age.
	ErrExpired = errors.New("token expired")
	// ErrNotYetValid: the token's nbf or iat lies in the future.
	ErrNotYetValid = errors.New("token not yet valid")
	// ErrUntrusted: the token names an issuer, audience, type, algorithm or
	// key that is not trusted.
	ErrUntrusted = errors.New("untrusted token")
	// ErrBadSignature: the signature does not verify with the issuer's key.
	ErrBadSignature = errors.New("bad token signature")
	// ErrBadClaims: a claim is missing or has the wrong shape.
	ErrBadClaims = errors.New("bad token claims")
	// ErrKeysUnavailable: the issuer's keys could not be fetched yet. It
	// says the verifier is broken, not that the caller is denied.
	ErrKeysUnavailable = errors.New("token keys unavailable")
	// ErrOverloaded: the token is not in the cache, and no signature
	// verification could start within the wait (see
	// [WithMaxConcurrentVerifications]). Like [ErrKeysUnavailable], it
	// says nothing about the token: the caller may retry shortly.
	ErrOverloaded = errors.New("token verification overloaded")
	// ErrRevoked: the token, or every token of its client issued before
	// it, was revoked (see [WithRevocations]).
	ErrRevoked = errors.New("token revoked")
	// ErrRevocationsUnavailable: the revocations are not loaded yet, so no
	// token can be known not to be revoked. Like [ErrKeysUnavailable], it
	// says the verifier cannot decide, not that the token is bad.
	ErrRevocationsUnavailable = errors.New("revocations unavailable")
	// ErrUnbound: the token is bound (cnf) to a client certificate or a
	// DPoP key that the call does not prove it holds, or the method needs
	// a bound token and the token is a bearer token.
	ErrUnbound = errors.New("token binding not proven")
)

// Error is why a token was refused. Its Reason is safe to show the caller:
// it never contains the token or a secret.
type Error struct {
	// Kind is one of the sentinels, such as [ErrExpired].
	Kind error
	// Reason says what is wrong, for people, such as "token expired".
	Reason string
	// Err is the underlying cause, if any, such as a key fetch failure. It
	// is for logs, not for the caller.
	Err error
}

// Error returns the reason.
func (e *Error) Error() string { return e.Reason }

// Is reports whether target is the error's Kind.
func (e *Error) Is(target error) bool { return target == e.Kind }

// Unwrap returns the underlying cause.
func (e *Error) Unwrap() error { return e.Err }

func refuse(kind error, reason string) *Error {
	return &Error{Kind: kind, Reason: reason}
}

// Refusals without a variable part are built once: refusing costs no
// allocation.
var (
	errMissing         = refuse(ErrMissing, "missing bearer token")
	errNotCompact      = refuse(ErrMalformed, "token is not a compact JWS")
	errEncrypted       = refuse(ErrMalformed, "token is encrypted (JWE), not signed")
	errHeaderBase64    = refuse(ErrMalformed, "token header is not base64url")
	errPayloadBase64   = refuse(ErrMalformed, "token payload is not base64url")
	errSignatureBase64 = refuse(ErrMalformed, "token signature is not base64url")
	errHeaderJSON      = refuse(ErrMalformed, "token header is not a JSON object")
	errPayloadJSON     = refuse(ErrMalformed, "token payload is not a JSON object")
	errHeaderDup       = refuse(ErrMalformed, "token header has a duplicate parameter")
	errHeaderEscape    = refuse(ErrMalformed, "token header has an invalid Unicode escape (a lone surrogate)")
	errPayloadEscape   = refuse(ErrMalformed, "token payload has an invalid Unicode escape (a lone surrogate)")
	errPayloadDup      = refuse(ErrMalformed, "token payload has a duplicate claim")
	errHeaderTooMany   = refuse(ErrMalformed, "token header has too many parameters")
	errPayloadTooMany  = refuse(ErrMalformed, "token payload has too many claims")
	errNoAlg           = refuse(ErrMalformed, "token header has no alg")
	errAlgNone         = refuse(ErrUntrusted, "unsigned token (alg none) not accepted")
	errAlgUnknown      = refuse(ErrUntrusted, "token algorithm not supported")
	errKidType         = refuse(ErrMalformed, "token header kid is not a string")
	errTypType         = refuse(ErrMalformed, "token header typ is not a string")
	errCrit            = refuse(ErrUntrusted, "token header crit names unsupported extensions")
	errB64             = refuse(ErrUntrusted, "unencoded payload (b64) not accepted")
	errCty             = refuse(ErrUntrusted, "nested token (cty) not accepted")
	errNoIssuer        = refuse(ErrBadClaims, "token has no iss claim")
	errIssuerType      = refuse(ErrBadClaims, "token iss claim is not a string")
	errUntrustedIssuer = refuse(ErrUntrusted, "token issuer not trusted")
	errNoAudience      = refuse(ErrBadClaims, "token has no aud claim")
	errAudienceType    = refuse(ErrBadClaims, "token aud claim is not a string or an array of strings")
	errAudience        = refuse(ErrUntrusted, "token audience not accepted")
	errNoExpiry        = refuse(ErrBadClaims, "token has no exp claim")
	errExpiryType      = refuse(ErrBadClaims, "token exp claim is not a NumericDate")
	errNotBeforeType   = refuse(ErrBadClaims, "token nbf claim is not a NumericDate")
	errIssuedAtType    = refuse(ErrBadClaims, "token iat claim is not a NumericDate")
	errExpiryRange     = refuse(ErrBadClaims, "token exp claim is out of range: "+dateRange)
	errNotBeforeRange  = refuse(ErrBadClaims, "token nbf claim is out of range: "+dateRange)
	errIssuedAtRange   = refuse(ErrBadClaims, "token iat claim is out of range: "+dateRange)
	errNoIssuedAt      = refuse(ErrBadClaims, "token has no iat claim")
	errExpired         = refuse(ErrExpired, "token expired")
	errTooOld          = refuse(ErrExpired, "token too old")
	errNotYetValid     = refuse(ErrNotYetValid, "token not valid yet")
	errIssuedInFuture  = refuse(ErrNotYetValid, "token issued in the future")
	errAlgNotAllowed   = refuse(ErrUntrusted, "token algorithm not accepted from its issuer")
	errAlgKey          = refuse(ErrUntrusted, "token algorithm does not match the key")
	errUnknownKid      = refuse(ErrUntrusted, "token signed by an unknown key")
	errNoKid           = refuse(ErrUntrusted, "token has no kid and its issuer has several keys")
	errMissingKid      = refuse(ErrUntrusted, "token has no kid; its issuer requires one")
	errOverloaded      = refuse(ErrOverloaded, "too many token verifications in flight; retry shortly")
	errType            = refuse(ErrUntrusted, "token type not accepted")
	errSignature       = refuse(ErrBadSignature, "token signature invalid")
	errNoSubject       = refuse(ErrBadClaims, "token has neither sub nor client_id claim")
	errSubjectType     = refuse(ErrBadClaims, "token sub claim is not a string")
	errClientIDType    = refuse(ErrBadClaims, "token client_id claim is not a string")
	errTokenIDType     = refuse(ErrBadClaims, "token jti claim is not a string")
	errTierType        = refuse(ErrBadClaims, "token tier claim is not a string")
	errAuthTimeType    = refuse(ErrBadClaims, "token auth_time claim is not a NumericDate")
	errAuthTimeRange   = refuse(ErrBadClaims, "token auth_time claim is out of range: "+dateRange)
	errScopeType       = refuse(ErrBadClaims, "token scope claim is not a string")
	errScpType         = refuse(ErrBadClaims, "token scp claim is not a string or an array of strings")
	errRevoked         = refuse(ErrRevoked, "token revoked")
	errNoRevocations   = refuse(ErrRevocationsUnavailable, "token revocations not loaded yet; retry shortly")
)
