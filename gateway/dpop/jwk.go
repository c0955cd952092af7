package dpop

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"math/big"
)

// publicKey is the key of a proof's jwk header, with its RFC 7638
// thumbprint.
type publicKey struct {
	key        crypto.PublicKey
	thumbprint string
	alg        alg // the one algorithm family the key can verify: the curve's, EdDSA, or any RSA
}

// RSA keys: RFC 7518 §3.3 asks for 2048 bits at least; more than 4096
// would let a caller make each proof cost much more to verify.
const (
	minRSABits = 2048
	maxRSABits = 4096
)

var b64 = base64.RawURLEncoding

// parseJWK reads the jwk header member (RFC 7517): a public EC (P-256,
// P-384, P-521), OKP (Ed25519) or RSA key. A key carrying private members
// is refused: a client that sends its private key has lost it.
func parseJWK(raw []byte) (*publicKey, *Error) {
	var kty, crv, x, y, n, e []byte
	var seen uint16
	o := newObject(raw)
	for o.next() {
		var dst *[]byte
		var bit uint16
		switch string(o.name) {
		case "kty":
			dst, bit = &kty, 1
		case "crv":
			dst, bit = &crv, 2
		case "x":
			dst, bit = &x, 4
		case "y":
			dst, bit = &y, 8
		case "n":
			dst, bit = &n, 16
		case "e":
			dst, bit = &e, 32
		case "d", "p", "q", "dp", "dq", "qi", "k", "oth":
			return nil, errPrivateKey
		default:
			continue
		}
		if seen&bit != 0 {
			return nil, invalid("jwk header names a member twice")
		}
		seen |= bit
		v, ok := stringValue(o.val)
		if !ok {
			return nil, invalid("jwk member " + string(o.name) + " is not a string")
		}
		*dst = v
	}
	if o.err != nil {
		return nil, invalid("jwk header is not a JSON object")
	}
	switch string(kty) {
	case "EC":
		return parseEC(crv, x, y)
	case "OKP":
		return parseOKP(crv, x)
	case "RSA":
		return parseRSA(n, e)
	case "":
		return nil, invalid("jwk header has no kty")
	}
	return nil, invalid("jwk kty is not EC, OKP or RSA")
}

// coordinate decodes a base64url member that must be exactly size bytes
// (RFC 7518 §6.2.1.2) and canonically encoded.
func coordinate(s []byte, size int) ([]byte, bool) {
	if len(s) != b64.EncodedLen(size) {
		return nil, false
	}
	out := make([]byte, size)
	if n, err := b64.Strict().Decode(out, s); err != nil || n != size {
		return nil, false
	}
	return out, true
}

func parseEC(crv, x, y []byte) (*publicKey, *Error) {
	var curve elliptic.Curve
	var a alg
	switch string(crv) {
	case "P-256":
		curve, a = elliptic.P256(), algES256
	case "P-384":
		curve, a = elliptic.P384(), algES384
	case "P-521":
		curve, a = elliptic.P521(), algES512
	default:
		return nil, invalid("jwk crv is not P-256, P-384 or P-521")
	}
	size := (curve.Params().BitSize + 7) / 8
	xb, ok1 := coordinate(x, size)
	yb, ok2 := coordinate(y, size)
	if !ok1 || !ok2 {
		return nil, invalid("jwk x or y is not a base64url coordinate of the curve's size")
	}
	point := make([]byte, 1+2*size)
	point[0] = 4
	copy(point[1:], xb)
	copy(point[1+size:], yb)
	pub, err := ecdsa.ParseUncompressedPublicKey(curve, point)
	if err != nil {
		return nil, invalid("jwk is not a point of its curve")
	}
	var buf [256]byte
	b := append(buf[:0], `{"crv":"`...)
	b = append(append(b, crv...), `","kty":"EC","x":"`...)
	b = append(append(b, x...), `","y":"`...)
	b = append(append(b, y...), `"}`...)
	tp := thumbprint(b)
	return &publicKey{key: pub, thumbprint: tp, alg: a}, nil
}

func parseOKP(crv, x []byte) (*publicKey, *Error) {
	if string(crv) != "Ed25519" {
		return nil, invalid("jwk crv of an OKP key is not Ed25519")
	}
	xb, ok := coordinate(x, ed25519.PublicKeySize)
	if !ok {
		return nil, invalid("jwk x is not a base64url Ed25519 key")
	}
	var buf [128]byte
	b := append(buf[:0], `{"crv":"Ed25519","kty":"OKP","x":"`...)
	b = append(append(b, x...), `"}`...)
	tp := thumbprint(b)
	return &publicKey{key: ed25519.PublicKey(xb), thumbprint: tp, alg: algEdDSA}, nil
}

func parseRSA(n, e []byte) (*publicKey, *Error) {
	nb, err := b64.Strict().DecodeString(string(n))
	if err != nil || len(nb) == 0 || nb[0] == 0 {
		return nil, invalid("jwk n is not a base64url unsigned integer without leading zeros")
	}
	eb, err := b64.Strict().DecodeString(string(e))
	if err != nil || len(eb) == 0 || len(eb) > 4 || eb[0] == 0 {
		return nil, invalid("jwk e is not a base64url unsigned integer without leading zeros")
	}
	N := new(big.Int).SetBytes(nb)
	if bits := N.BitLen(); bits < minRSABits || bits > maxRSABits {
		return nil, invalid("jwk RSA key is not 2048 to 4096 bits")
	}
	E := 0
	for _, b := range eb {
		E = E<<8 | int(b)
	}
	if E < 3 || E%2 == 0 {
		return nil, invalid("jwk RSA exponent is not an odd number above 2")
	}
	var buf [1024]byte
	b := append(buf[:0], `{"e":"`...)
	b = append(append(b, e...), `","kty":"RSA","n":"`...)
	b = append(append(b, n...), `"}`...)
	tp := thumbprint(b)
	return &publicKey{key: &rsa.PublicKey{N: N, E: E}, thumbprint: tp, alg: algRS256}, nil
}

// thumbprint returns the RFC 7638 SHA-256 thumbprint, base64url, of the
// canonical JSON of a key's required members. Member values are base64url
// or curve names: no JSON escaping needed.
func thumbprint(canonical []byte) string {
	sum := sha256.Sum256(canonical)
	return b64.EncodeToString(sum[:])
}

// Thumbprint returns the RFC 7638 SHA-256 thumbprint, base64url, of the
// public key of a JWK in JSON (EC, OKP Ed25519 or RSA): the value of a
// DPoP-bound token's cnf.jkt. A JWK with private members is refused.
func Thumbprint(jwk []byte) (string, error) {
	k, err := parseJWK(jwk)
	if err != nil {
		return "", err
	}
	return k.thumbprint, nil
}
