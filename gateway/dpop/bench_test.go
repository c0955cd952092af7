package dpop_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"encoding/base64"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/portcullis/portcullis/gateway/dpop"
	"github.com/portcullis/portcullis/internal/dpoptest"
)

// BenchmarkVerify is the whole check of an ES256 proof, replay cache
// included: parse, key, signature, claims, remember. Compare it with
// BenchmarkES256Signature, the signature check it contains.
func BenchmarkVerify(b *testing.B) {
	v, err := dpop.New()
	if err != nil {
		b.Fatal(err)
	}
	k := dpoptest.NewKey(b, "ES256")
	proofs := make([]string, b.N)
	for i := range proofs {
		proofs[i] = k.Proof(b, "POST", target, tok)
	}
	r := request(k)
	h := headerWith("")
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		h["Dpop"][0] = proofs[i]
		if _, err := v.Verify(ctx, h, r); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkES256Signature is the ES256 signature check of a proof alone:
// SHA-256 of the signing input and ecdsa.Verify.
func BenchmarkES256Signature(b *testing.B) {
	k := dpoptest.NewKey(b, "ES256")
	proof := k.Proof(b, "POST", target, tok)
	i := strings.LastIndexByte(proof, '.')
	sig, err := base64.RawURLEncoding.DecodeString(proof[i+1:])
	if err != nil {
		b.Fatal(err)
	}
	input := []byte(proof[:i])
	pub := k.Private.Public().(*ecdsa.PublicKey)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		d := sha256.Sum256(input)
		r, s := new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])
		if !ecdsa.Verify(pub, d[:], r, s) {
			b.Fatal("signature does not verify")
		}
	}
}

// BenchmarkVerifyPaired runs a proof's whole check and the bare ES256
// signature check of another proof in turns, in one loop, so that both see
// the same load, and reports each one's time and their ratio.
func BenchmarkVerifyPaired(b *testing.B) {
	v, err := dpop.New()
	if err != nil {
		b.Fatal(err)
	}
	k := dpoptest.NewKey(b, "ES256")
	proofs := make([]string, b.N)
	for i := range proofs {
		proofs[i] = k.Proof(b, "POST", target, tok)
	}
	raw := proofs[0]
	dot := strings.LastIndexByte(raw, '.')
	sig, _ := base64.RawURLEncoding.DecodeString(raw[dot+1:])
	input := []byte(raw[:dot])
	pub := k.Private.Public().(*ecdsa.PublicKey)
	r := request(k)
	h := headerWith("")
	ctx := context.Background()
	var proofTime, sigTime time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		h["Dpop"][0] = proofs[i]
		if _, err := v.Verify(ctx, h, r); err != nil {
			b.Fatal(err)
		}
		mid := time.Now()
		d := sha256.Sum256(input)
		if !ecdsa.Verify(pub, d[:], new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])) {
			b.Fatal("signature does not verify")
		}
		proofTime += mid.Sub(start)
		sigTime += time.Since(mid)
	}
	b.ReportMetric(float64(proofTime.Nanoseconds())/float64(b.N), "proof-ns/op")
	b.ReportMetric(float64(sigTime.Nanoseconds())/float64(b.N), "es256-ns/op")
	b.ReportMetric(float64(proofTime)/float64(sigTime), "proof/es256")
}
