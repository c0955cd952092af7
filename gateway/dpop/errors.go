package dpop

import "errors"

// Kinds of refusal, for [errors.Is] on an *[Error].
var (
	// ErrInvalidProof: the proof is missing, malformed, badly signed,
	// stale, replayed, or made for another request, token or key. OAuth
	// error invalid_dpop_proof (RFC 9449 §7.1).
	ErrInvalidProof = errors.New("invalid DPoP proof")
	// ErrNonceRequired: the server requires a nonce the proof does not
	// carry, or carries one no longer valid. OAuth error use_dpop_nonce;
	// [Error.Nonce] is the nonce to send with the DPoP-Nonce header (§8).
	ErrNonceRequired = errors.New("DPoP nonce required")
	// ErrUnavailable: the replay store could not be asked, so the proof
	// could not be checked for replay. The call is refused: broken, not
	// denied.
	ErrUnavailable = errors.New("DPoP replay check unavailable")
)

// Error is a refusal of a proof. Its text never holds the proof, the
// token or a key.
type Error struct {
	// Kind is ErrInvalidProof, ErrNonceRequired or ErrUnavailable.
	Kind error
	// Reason says what is wrong, such as "proof htm does not match the
	// request method".
	Reason string
	// Nonce, for ErrNonceRequired, is the nonce the client must use.
	Nonce string
}

func (e *Error) Error() string { return e.Reason }

// Unwrap returns the kind, for [errors.Is].
func (e *Error) Unwrap() error { return e.Kind }

// Code returns the OAuth error code of the refusal (RFC 9449 §7.1, §8):
// "use_dpop_nonce" or "invalid_dpop_proof".
func (e *Error) Code() string {
	if e.Kind == ErrNonceRequired {
		return "use_dpop_nonce"
	}
	return "invalid_dpop_proof"
}

func invalid(reason string) *Error { return &Error{Kind: ErrInvalidProof, Reason: reason} }

var (
	errMissing      = invalid("missing DPoP proof")
	errTwoHeaders   = invalid("more than one DPoP header")
	errTooLarge     = invalid("DPoP proof too large")
	errCompact      = invalid("DPoP proof is not a compact JWS")
	errHeader       = invalid("DPoP proof header is not a JSON object")
	errType         = invalid(`DPoP proof typ is not "dpop+jwt"`)
	errAlg          = invalid("DPoP proof alg is not an accepted asymmetric algorithm")
	errCrit         = invalid("DPoP proof has critical header parameters")
	errNoJWK        = invalid("DPoP proof header has no jwk")
	errPrivateKey   = invalid("DPoP proof jwk holds private key material")
	errKeyAlg       = invalid("DPoP proof alg does not fit its jwk")
	errSignature    = invalid("DPoP proof signature does not verify")
	errClaims       = invalid("DPoP proof claims are not a JSON object")
	errDuplicate    = invalid("DPoP proof names a member twice")
	errJTI          = invalid("DPoP proof jti is missing or too long")
	errHTM          = invalid("DPoP proof htm does not match the request method")
	errHTU          = invalid("DPoP proof htu does not match the request URL")
	errIAT          = invalid("DPoP proof iat is missing or not a number")
	errOld          = invalid("DPoP proof iat is too old")
	errFuture       = invalid("DPoP proof iat is in the future")
	errATH          = invalid("DPoP proof ath does not match the access token")
	errNoATH        = invalid("DPoP proof has no ath for the access token")
	errATHNoToken   = invalid("DPoP proof has an ath, and no access token came with it")
	errThumbprint   = invalid("DPoP proof key is not the key the access token is bound to")
	errReplayed     = invalid("DPoP proof was used before (jti replayed)")
	errReplayFull   = &Error{Kind: ErrUnavailable, Reason: "DPoP replay cache is full"}
	errReplayBroken = &Error{Kind: ErrUnavailable, Reason: "DPoP replay store unavailable"}
	errNoTarget     = invalid("the request URL of the DPoP proof is unknown")
)
