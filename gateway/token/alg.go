package token

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"fmt"
	"slices"
)

// alg is a JWS signature algorithm (RFC 7518 §3, RFC 8037 §3.1). The zero
// value is no algorithm: "none" and every name not listed never verify.
type alg uint8

const (
	algInvalid alg = iota
	algRS256
	algRS384
	algRS512
	algPS256
	algPS384
	algPS512
	algES256
	algES384
	algES512
	algEdDSA
	algHS256
	algHS384
	algHS512
	algCount
)

// algSet is a set of algorithms, one bit per alg.
type algSet uint32

func (s algSet) has(a alg) bool { return a != algInvalid && s&(1<<a) != 0 }

func setOf(algs ...alg) algSet {
	var s algSet
	for _, a := range algs {
		s |= 1 << a
	}
	return s
}

var algNames = [algCount]string{
	algRS256: "RS256", algRS384: "RS384", algRS512: "RS512",
	algPS256: "PS256", algPS384: "PS384", algPS512: "PS512",
	algES256: "ES256", algES384: "ES384", algES512: "ES512",
	algEdDSA: "EdDSA",
	algHS256: "HS256", algHS384: "HS384", algHS512: "HS512",
}

// Algorithms returns the names of the JWS algorithms a [Verifier]
// supports, as [Issuer.Algorithms] takes them (RFC 7518 §3, RFC 8037
// §3.1): RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, ES512,
// EdDSA, HS256, HS384 and HS512. The slice is new at each call.
func Algorithms() []string { return slices.Clone(algNames[algRS256:]) }

// HMACAlgorithms returns the names of the supported algorithms that
// verify with a shared secret: HS256, HS384 and HS512. The others verify
// with a public key. The slice is new at each call.
func HMACAlgorithms() []string { return slices.Clone(algNames[algHS256:]) }

func (a alg) String() string {
	if a == algInvalid || a >= algCount {
		return "invalid"
	}
	return algNames[a]
}

// parseAlg returns the algorithm named name, matched exactly (RFC 7515
// §4.1.1: the value is case-sensitive).
func parseAlg(name []byte) alg {
	for a := algRS256; a < algCount; a++ {
		if string(name) == algNames[a] {
			return a
		}
	}
	return algInvalid
}

// hash returns the digest an RSA, ECDSA or HMAC algorithm uses; EdDSA signs
// the message itself.
func (a alg) hash() crypto.Hash {
	switch a {
	case algRS256, algPS256, algES256, algHS256:
		return crypto.SHA256
	case algRS384, algPS384, algES384, algHS384:
		return crypto.SHA384
	case algRS512, algPS512, algES512, algHS512:
		return crypto.SHA512
	}
	return 0
}

var (
	rsaAlgs  = setOf(algRS256, algRS384, algRS512, algPS256, algPS384, algPS512)
	hmacAlgs = setOf(algHS256, algHS384, algHS512)
	// defaultAsymmetric is the allowlist of an issuer with public keys
	// that names none.
	defaultAsymmetric = rsaAlgs | setOf(algES256, algES384, algES512, algEdDSA)
	// defaultSymmetric is the allowlist of an issuer with a shared secret
	// that names none.
	defaultSymmetric = setOf(algHS256)
)

// minRSABits is the smallest RSA modulus accepted (RFC 7518 §3.3).
const minRSABits = 2048

// maxRSABits bounds the work a key from a key set can cause.
const maxRSABits = 8192

// algsFor returns the algorithms a key may verify: those its type and size
// allow, narrowed to its own alg parameter when it has one (RFC 7517 §4.4).
func algsFor(pub crypto.PublicKey, declared string) (algSet, error) {
	var s algSet
	switch k := pub.(type) {
	case *rsa.PublicKey:
		if n := k.N.BitLen(); n < minRSABits || n > maxRSABits {
			return 0, fmt.Errorf("RSA key of %d bits is outside %d to %d", n, minRSABits, maxRSABits)
		}
		s = rsaAlgs
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256():
			s = setOf(algES256)
		case elliptic.P384():
			s = setOf(algES384)
		case elliptic.P521():
			s = setOf(algES512)
		default:
			return 0, fmt.Errorf("elliptic curve is not P-256, P-384 or P-521")
		}
	case ed25519.PublicKey:
		if len(k) != ed25519.PublicKeySize {
			return 0, fmt.Errorf("Ed25519 key has %d bytes", len(k))
		}
		s = setOf(algEdDSA)
	case hmacKey:
		// RFC 7518 §3.2: a key at least as long as the hash output.
		for _, a := range []alg{algHS256, algHS384, algHS512} {
			if len(k) >= a.hash().Size() {
				s |= setOf(a)
			}
		}
		if s == 0 {
			return 0, fmt.Errorf("shared secret has %d bytes, fewer than 32, the least for HS256 (RFC 7518 §3.2)", len(k))
		}
	default:
		return 0, fmt.Errorf("key type %T cannot verify signatures", pub)
	}
	if declared == "" {
		return s, nil
	}
	a := parseAlg([]byte(declared))
	if !s.has(a) {
		if k, ok := pub.(hmacKey); ok && hmacAlgs.has(a) {
			return 0, shortSecret(len(k), a)
		}
		return 0, fmt.Errorf("key declares alg %q, which its type cannot use", declared)
	}
	return setOf(a), nil
}

// shortSecret says that a shared secret of n bytes is too short for the
// HMAC algorithm a: RFC 7518 §3.2 requires a key at least as long as the
// hash output, 32, 48 or 64 bytes.
func shortSecret(n int, a alg) error {
	return fmt.Errorf("shared secret has %d bytes, fewer than %d, the least for %s (RFC 7518 §3.2)", n, a.hash().Size(), a)
}

// checkSecretLength returns an error if a shared secret of n bytes is too
// short for one of the HMAC algorithms of algs, naming the one that needs
// the most.
func checkSecretLength(n int, algs algSet) error {
	for _, a := range []alg{algHS512, algHS384, algHS256} {
		if algs.has(a) && n < a.hash().Size() {
			return shortSecret(n, a)
		}
	}
	return nil
}

// hmacKey is a shared secret.
type hmacKey []byte
