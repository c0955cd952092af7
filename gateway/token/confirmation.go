package token

import "errors"

// Confirmation is what a sender-constrained token is bound to (RFC 7800's
// cnf claim): a client certificate (RFC 8705) or a DPoP key (RFC 9449).
// The verifier reads it; whoever has the call's certificate or DPoP proof
// checks that the caller holds what it names.
type Confirmation struct {
	// CertificateThumbprint is cnf's x5t#S256 (RFC 8705 §3.1): the
	// base64url SHA-256 of the DER of the client certificate the token is
	// bound to, or "".
	CertificateThumbprint string
	// KeyThumbprint is cnf's jkt (RFC 9449 §6.1): the RFC 7638 SHA-256
	// thumbprint of the public key whose DPoP proofs must come with the
	// token, or "".
	KeyThumbprint string
}

// Bound reports whether the token is bound to something its caller must
// prove it holds.
func (c Confirmation) Bound() bool {
	return c.CertificateThumbprint != "" || c.KeyThumbprint != ""
}

// maxThumbprint bounds a thumbprint's length: a SHA-256 in base64url is
// 43 characters.
const maxThumbprint = 43

var (
	errConfirmationType    = refuse(ErrBadClaims, "token cnf claim is not an object")
	errConfirmationUnknown = refuse(ErrBadClaims, "token cnf claim binds the token to something the gateway cannot check (only x5t#S256 and jkt are understood)")
	errConfirmationValue   = refuse(ErrBadClaims, "token cnf claim has a thumbprint that is not a base64url SHA-256")
	errConfirmationEmpty   = refuse(ErrBadClaims, "token cnf claim names nothing")
)

// confirmation reads the cnf claim. A confirmation method the gateway
// cannot check (jwk, kid, x5t, ...) is a refusal: honouring the token as
// a bearer token would drop the binding its issuer asked for.
func confirmation(raw []byte) (Confirmation, *Error) {
	var c Confirmation
	if raw[0] != '{' {
		return c, errConfirmationType
	}
	var m members
	for m.start(raw, 8); m.next(raw); {
		var dst *string
		switch string(m.name(raw)) {
		case "x5t#S256":
			dst = &c.CertificateThumbprint
		case "jkt":
			dst = &c.KeyThumbprint
		default:
			return Confirmation{}, errConfirmationUnknown
		}
		v, err := thumbprint(m.value(raw))
		if err != nil {
			return Confirmation{}, err
		}
		*dst = v
	}
	if m.err != nil {
		if errors.Is(m.err, errDuplicate) {
			return Confirmation{}, refuse(ErrBadClaims, "token cnf claim names a member twice")
		}
		return Confirmation{}, errConfirmationType
	}
	if !c.Bound() {
		return Confirmation{}, errConfirmationEmpty
	}
	return c, nil
}

// thumbprint reads a JSON string holding a base64url SHA-256, unpadded.
func thumbprint(raw []byte) (string, *Error) {
	if len(raw) != maxThumbprint+2 || raw[0] != '"' || raw[len(raw)-1] != '"' {
		return "", errConfirmationValue
	}
	s := raw[1 : len(raw)-1]
	for _, b := range s {
		if !(b >= 'A' && b <= 'Z' || b >= 'a' && b <= 'z' || b >= '0' && b <= '9' || b == '-' || b == '_') {
			return "", errConfirmationValue
		}
	}
	return string(s), nil
}
