package token

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"hash"
	"sync"
)

// pssOptions: RFC 7518 §3.5 fixes the salt length to the hash size.
var pssOptions = [...]*rsa.PSSOptions{
	crypto.SHA256: {SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: crypto.SHA256},
	crypto.SHA384: {SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: crypto.SHA384},
	crypto.SHA512: {SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: crypto.SHA512},
}

// scratch is memory for one verification. crypto/rsa and crypto/ecdsa
// keep their arguments from the stack, so it comes from a pool instead.
type scratch struct {
	digest [64]byte
	der    [2 + 2 + 2*(1+1+67)]byte // an ECDSA P-521 signature, at most
	sum    [64]byte
}

var scratchPool = sync.Pool{New: func() any { return new(scratch) }}

// hashed hashes input with h into the scratch and returns the digest.
func (s *scratch) hashed(h crypto.Hash, input []byte) []byte {
	switch h {
	case crypto.SHA256:
		sum := sha256.Sum256(input)
		return s.digest[:copy(s.digest[:], sum[:])]
	case crypto.SHA384:
		sum := sha512.Sum384(input)
		return s.digest[:copy(s.digest[:], sum[:])]
	case crypto.SHA512:
		sum := sha512.Sum512(input)
		return s.digest[:copy(s.digest[:], sum[:])]
	}
	return nil
}

// verifySignature reports whether sig is a's signature of input by k. The
// caller checked that k may verify a.
func (k *verifyKey) verifySignature(a alg, input, sig []byte) bool {
	s, _ := scratchPool.Get().(*scratch)
	if s == nil {
		s = new(scratch)
	}
	defer scratchPool.Put(s)
	switch pub := k.pub.(type) {
	case *rsa.PublicKey:
		if len(sig) != pub.Size() {
			return false
		}
		h := a.hash()
		switch a {
		case algRS256, algRS384, algRS512:
			return rsa.VerifyPKCS1v15(pub, h, s.hashed(h, input), sig) == nil
		case algPS256, algPS384, algPS512:
			return rsa.VerifyPSS(pub, h, s.hashed(h, input), sig, pssOptions[h]) == nil
		}
	case *ecdsa.PublicKey:
		// RFC 7518 §3.4: R and S, each as long as the curve's order, not
		// ASN.1.
		n := (pub.Curve.Params().BitSize + 7) / 8
		if len(sig) != 2*n {
			return false
		}
		return ecdsa.VerifyASN1(pub, s.hashed(a.hash(), input), asn1Signature(s.der[:0], sig[:n], sig[n:]))
	case ed25519.PublicKey:
		return len(sig) == ed25519.SignatureSize && ed25519.Verify(pub, input, sig)
	case hmacKey:
		i := a - algHS256
		if i >= 3 {
			return false
		}
		mac, _ := k.macs[i].Get().(hash.Hash)
		if mac == nil {
			mac = hmac.New(a.hash().New, pub)
		} else {
			mac.Reset()
		}
		mac.Write(input)
		ok := hmac.Equal(mac.Sum(s.sum[:0]), sig)
		k.macs[i].Put(mac)
		return ok
	}
	return false
}

// asn1Signature appends the DER encoding of the ECDSA signature (r, s):
// SEQUENCE { INTEGER r, INTEGER s }.
func asn1Signature(dst, r, s []byte) []byte {
	r, s = trimZeros(r), trimZeros(s)
	intLen := func(v []byte) int {
		if len(v) > 0 && v[0]&0x80 != 0 {
			return len(v) + 1
		}
		return max(len(v), 1)
	}
	body := 2 + intLen(r) + 2 + intLen(s)
	dst = append(dst, 0x30)
	if body >= 0x80 {
		dst = append(dst, 0x81)
	}
	dst = append(dst, byte(body))
	for _, v := range [2][]byte{r, s} {
		dst = append(dst, 0x02, byte(intLen(v)))
		if len(v) == 0 || v[0]&0x80 != 0 {
			dst = append(dst, 0)
		}
		dst = append(dst, v...)
	}
	return dst
}

func trimZeros(v []byte) []byte {
	for len(v) > 0 && v[0] == 0 {
		v = v[1:]
	}
	return v
}
