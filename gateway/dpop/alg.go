package dpop

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"math/big"
	"slices"
)

// alg is a JWS algorithm a proof may be signed with (RFC 7518 §3, RFC
// 8037 §3.1). Only asymmetric ones exist here: "none" and HMAC, which
// would prove nothing about a key, are not algorithms of this package.
type alg uint8

const (
	algInvalid alg = iota
	algES256
	algES384
	algES512
	algEdDSA
	algRS256
	algRS384
	algRS512
	algPS256
	algPS384
	algPS512
	algCount
)

var algNames = [algCount]string{
	algES256: "ES256", algES384: "ES384", algES512: "ES512", algEdDSA: "EdDSA",
	algRS256: "RS256", algRS384: "RS384", algRS512: "RS512",
	algPS256: "PS256", algPS384: "PS384", algPS512: "PS512",
}

// Algorithms returns the names of the algorithms proofs may be signed
// with: ES256, ES384, ES512, EdDSA, RS256, RS384, RS512, PS256, PS384 and
// PS512. The slice is new at each call.
func Algorithms() []string { return slices.Clone(algNames[algES256:]) }

// DefaultAlgorithms are the algorithms accepted unless [WithAlgorithms]
// says otherwise: ES256, ES384, EdDSA, RS256 and PS256.
var defaultAlgorithms = []string{"ES256", "ES384", "EdDSA", "RS256", "PS256"}

func parseAlg(name []byte) alg {
	for a := algES256; a < algCount; a++ {
		if string(name) == algNames[a] {
			return a
		}
	}
	return algInvalid
}

func (a alg) String() string {
	if a == algInvalid || a >= algCount {
		return "invalid"
	}
	return algNames[a]
}

func (a alg) isRSA() bool { return a >= algRS256 && a <= algPS512 }

// fits reports whether key k can verify a.
func (a alg) fits(k *publicKey) bool {
	if a.isRSA() {
		return k.alg.isRSA()
	}
	return a == k.alg
}

// algSet is a set of algorithms, one bit per alg.
type algSet uint16

func (s algSet) has(a alg) bool { return a != algInvalid && s&(1<<a) != 0 }

// verify checks sig over input with k for a, which fits k. Digests stay
// on the stack.
func verify(a alg, k *publicKey, input, sig []byte) bool {
	switch a {
	case algEdDSA:
		pub, ok := k.key.(ed25519.PublicKey)
		return ok && ed25519.Verify(pub, input, sig)
	case algES256, algES384, algES512:
		pub, ok := k.key.(*ecdsa.PublicKey)
		if !ok {
			return false
		}
		size := (pub.Curve.Params().BitSize + 7) / 8
		if len(sig) != 2*size {
			return false
		}
		var digest []byte
		switch a {
		case algES256:
			d := sha256.Sum256(input)
			digest = d[:]
		case algES384:
			d := sha512.Sum384(input)
			digest = d[:]
		default:
			d := sha512.Sum512(input)
			digest = d[:]
		}
		r := new(big.Int).SetBytes(sig[:size])
		s := new(big.Int).SetBytes(sig[size:])
		return ecdsa.Verify(pub, digest, r, s)
	}
	pub, ok := k.key.(*rsa.PublicKey)
	if !ok {
		return false
	}
	var h crypto.Hash
	var digest []byte
	switch a {
	case algRS256, algPS256:
		d := sha256.Sum256(input)
		h, digest = crypto.SHA256, d[:]
	case algRS384, algPS384:
		d := sha512.Sum384(input)
		h, digest = crypto.SHA384, d[:]
	default:
		d := sha512.Sum512(input)
		h, digest = crypto.SHA512, d[:]
	}
	if a <= algRS512 {
		return rsa.VerifyPKCS1v15(pub, h, digest, sig) == nil
	}
	return rsa.VerifyPSS(pub, h, digest, sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: h}) == nil
}
