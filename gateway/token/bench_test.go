package token_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/asn1"
	"encoding/base64"
	"math/big"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwt"

	"github.com/portcullis/portcullis/gateway/revocation"
	"github.com/portcullis/portcullis/gateway/token"
	"github.com/portcullis/portcullis/internal/jwttest"
)

// benchVerifier trusts the keys of signers, from a local key set.
func benchVerifier(b *testing.B, cacheSize int, signers ...*jwttest.Signer) *token.Verifier {
	b.Helper()
	issuers := []token.Issuer{{Issuer: "https://bench.test", Audiences: []string{audience}, JWKS: jwttest.JWKS(signers...)}}
	v, err := token.NewVerifier(b.Context(), issuers, token.WithClock(jwttest.NewClock(jwttest.Epoch)), token.WithCacheSize(cacheSize))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(v.Close)
	return v
}

// cachedToken returns a verifier and a token in its cache.
func cachedToken(b *testing.B) (*token.Verifier, string) {
	b.Helper()
	k := jwttest.NewEC("k1")
	v := benchVerifier(b, token.DefaultCacheSize, k)
	raw := k.Mint(nil, jwttest.ClaimsAt("https://bench.test", audience, jwttest.Epoch))
	if _, err := v.Verify(b.Context(), raw); err != nil {
		b.Fatal(err)
	}
	return v, raw
}

func BenchmarkVerifyCached(b *testing.B) {
	v, raw := cachedToken(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(b.Context(), raw); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifierCached is the cost of Cached for a token in the cache.
func BenchmarkVerifierCached(b *testing.B) {
	v, raw := cachedToken(b)
	b.ReportAllocs()
	for b.Loop() {
		if !v.Cached(raw) {
			b.Fatal("not cached")
		}
	}
}

// BenchmarkVerifyFresh verifies a token with the cache off, next to the
// bare crypto/* verification of the same signature (hash included) and
// jwx v2's jwt.Parse of the same token (verification and validation of
// the same claims).
func BenchmarkVerifyFresh(b *testing.B) {
	secret := []byte("this-is-a-32-byte-shared-secret!")
	for _, s := range []*jwttest.Signer{jwttest.NewRSA("rsa", 0), jwttest.NewEC("ec"), jwttest.NewEd("ed"), jwttest.NewHMAC(secret)} {
		var v *token.Verifier
		if s.MAC != nil {
			var err error
			v, err = token.NewVerifier(b.Context(), []token.Issuer{{Issuer: "https://bench.test", Audiences: []string{audience}, Secret: secret, AllowMissingKid: true}},
				token.WithClock(jwttest.NewClock(jwttest.Epoch)), token.WithCacheSize(0))
			if err != nil {
				b.Fatal(err)
			}
		} else {
			v = benchVerifier(b, 0, s)
		}
		raw := s.Mint(nil, jwttest.ClaimsAt("https://bench.test", audience, jwttest.Epoch))
		if _, err := v.Verify(b.Context(), raw); err != nil {
			b.Fatal(err)
		}
		dot := strings.LastIndexByte(raw, '.')
		input := raw[:dot]
		sig, err := base64.RawURLEncoding.DecodeString(raw[dot+1:])
		if err != nil {
			b.Fatal(err)
		}
		bare := bareVerify(s, sig)
		if !bare(input) {
			b.Fatal("bare verification failed")
		}
		b.Run(s.Alg+"/token", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := v.Verify(b.Context(), raw); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(s.Alg+"/crypto", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if !bare(input) {
					b.Fatal("bad signature")
				}
			}
		})
		// jwx's jwt.Parse of the same token, verifying with the key and
		// validating the same claims.
		var key any = s.MAC
		if s.MAC == nil {
			key = s.Priv.Public()
		}
		jwxOptions := []jwt.ParseOption{
			jwt.WithKey(jwa.SignatureAlgorithm(s.Alg), key), jwt.WithValidate(true),
			jwt.WithClock(jwt.ClockFunc(func() time.Time { return jwttest.Epoch })),
			jwt.WithIssuer("https://bench.test"), jwt.WithAudience(audience),
		}
		if _, err := jwt.Parse([]byte(raw), jwxOptions...); err != nil {
			b.Fatal(err)
		}
		b.Run(s.Alg+"/jwx", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := jwt.Parse([]byte(raw), jwxOptions...); err != nil {
					b.Fatal(err)
				}
			}
		})
		if s.MAC != nil {
			// The HMAC keyed once and reset for each message, as the
			// verifier does.
			m := hmac.New(sha256.New, s.MAC)
			var sum [32]byte
			b.Run(s.Alg+"/crypto-keyed", func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					m.Reset()
					m.Write([]byte(input))
					if !hmac.Equal(m.Sum(sum[:0]), sig) {
						b.Fatal("bad signature")
					}
				}
			})
		}
	}
}

// bareVerify returns the crypto/* verification of sig by s, as a program
// that trusted its input would write it.
func bareVerify(s *jwttest.Signer, sig []byte) func(input string) bool {
	switch s.Alg {
	case "RS256":
		pub := &s.Priv.(*rsa.PrivateKey).PublicKey
		return func(input string) bool {
			h := sha256.Sum256([]byte(input))
			return rsa.VerifyPKCS1v15(pub, crypto.SHA256, h[:], sig) == nil
		}
	case "ES256":
		pub := &s.Priv.(*ecdsa.PrivateKey).PublicKey
		der, err := asn1.Marshal(struct{ R, S *big.Int }{new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])})
		if err != nil {
			panic(err)
		}
		return func(input string) bool {
			h := sha256.Sum256([]byte(input))
			return ecdsa.VerifyASN1(pub, h[:], der)
		}
	case "EdDSA":
		pub := s.Priv.Public().(ed25519.PublicKey)
		return func(input string) bool { return ed25519.Verify(pub, []byte(input), sig) }
	case "HS256":
		return func(input string) bool {
			m := hmac.New(sha256.New, s.MAC)
			m.Write([]byte(input))
			return hmac.Equal(m.Sum(nil), sig)
		}
	}
	panic(s.Alg)
}

// BenchmarkVerifyCachedRevocations is BenchmarkVerifyCached with a
// revocation set of a million revoked tokens and a revoked client, which
// the token is checked against on every call.
func BenchmarkVerifyCachedRevocations(b *testing.B) {
	k := jwttest.NewEC("k1")
	set, err := revocation.New(b.Context(), revocation.WithClock(jwttest.NewClock(jwttest.Epoch).Now))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(set.Close)
	exp := jwttest.Epoch.Add(time.Hour)
	rs := make([]revocation.Revocation, 0, 1<<20)
	for i := range 1 << 20 {
		rs = append(rs, revocation.Revocation{Issuer: "https://bench.test", TokenID: "revoked-" + strconv.Itoa(i), Expires: exp})
	}
	rs = append(rs, revocation.Revocation{Issuer: "https://bench.test", ClientID: "another", Before: jwttest.Epoch, Expires: exp})
	if err := set.Add(rs...); err != nil {
		b.Fatal(err)
	}
	issuers := []token.Issuer{{Issuer: "https://bench.test", Audiences: []string{audience}, JWKS: jwttest.JWKS(k)}}
	v, err := token.NewVerifier(b.Context(), issuers, token.WithClock(jwttest.NewClock(jwttest.Epoch)), token.WithRevocations(set))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(v.Close)
	raw := k.Mint(nil, jwttest.ClaimsAt("https://bench.test", audience, jwttest.Epoch))
	if _, err := v.Verify(b.Context(), raw); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := v.Verify(b.Context(), raw); err != nil {
			b.Fatal(err)
		}
	}
}
