package issuer

import (
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jws"
	"github.com/lestrrat-go/jwx/v2/jwt"
)

// BenchmarkMint compares signing an access token with a protected header
// encoded once per key (mint) against building and signing the same token
// with jwx's jwt.Builder and jwt.Sign (baseline), for each algorithm.
func BenchmarkMint(b *testing.B) {
	now := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	c := &client{id: "billing-sync", masks: map[string]uint64{"LIC": 3, "ORD": 1}, scope: "LIC.READ_REQUIREMENTS LIC.READ_ORDERS ORD.READ", tier: "pro"}
	s := &Server{issuer: "https://auth.example.com", audience: "portcullis"}
	for _, alg := range []string{ES256, EdDSA, RS256} {
		k, _, err := newSigningKey(alg, now, now)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(alg+"/mint", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := s.mint(k, c, c.masks, c.scope, nil, now, time.Hour); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(alg+"/baseline-jwt.Sign", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				tok, err := jwt.NewBuilder().
					Issuer(s.issuer).Subject(c.id).Audience([]string{s.audience}).
					IssuedAt(now).NotBefore(now).Expiration(now.Add(time.Hour)).JwtID("0123456789abcdefghijkl").
					Claim("client_id", c.id).Claim("scope", c.scope).Claim("perms", c.masks).Claim("tier", c.tier).
					Build()
				if err != nil {
					b.Fatal(err)
				}
				h := jws.NewHeaders()
				h.Set(jws.TypeKey, "at+jwt")
				h.Set(jws.KeyIDKey, k.kid)
				if _, err := jwt.Sign(tok, jwt.WithKey(jwa.SignatureAlgorithm(alg), k.private, jws.WithProtectedHeaders(h))); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestMintHeader checks the one header mint writes for every token.
func TestMintHeader(t *testing.T) {
	now := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	k, _, err := newSigningKey(ES256, now, now)
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{issuer: "https://auth.example.com", audience: "portcullis"}
	tok, err := s.mint(k, &client{id: "c"}, nil, "", nil, now, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	msg, err := jws.Parse([]byte(tok))
	if err != nil {
		t.Fatal(err)
	}
	h := msg.Signatures()[0].ProtectedHeaders()
	if h.Algorithm() != jwa.ES256 || h.KeyID() != k.kid || h.Type() != "at+jwt" {
		t.Errorf("header alg %s kid %s typ %s", h.Algorithm(), h.KeyID(), h.Type())
	}
	if _, err := jws.Verify([]byte(tok), jws.WithKey(jwa.ES256, k.public)); err != nil {
		t.Error(err)
	}
}
