package token_test

import (
	"crypto/x509"
	"encoding/asn1"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/portcullis/portcullis/gateway/token"
	"github.com/portcullis/portcullis/internal/jwttest"
)

// arena is an issuer with a real key server and a verifier trusting it,
// plus an attacker with a key server of their own.
type arena struct {
	idp, evil   *jwttest.IdP
	ec, rsa, ed *jwttest.Signer // the issuer's keys
	ec2         *jwttest.Signer // another ES256 key of the issuer
	spare       *jwttest.Signer // a key of the issuer, not in its key set
	attacker    *jwttest.Signer // a key of nobody trusted, served by evil
	v           *token.Verifier
}

func newArena(t *testing.T) *arena {
	t.Helper()
	a := &arena{
		ec: jwttest.NewEC("ec-1"), rsa: jwttest.NewRSA("rsa-1", 0), ed: jwttest.NewEd("ed-1"), ec2: jwttest.NewEC("ec-3"),
		spare: jwttest.NewEC("ec-2"), attacker: jwttest.NewEC("evil"),
	}
	a.idp = jwttest.NewIdP(t, a.ec, a.rsa, a.ed, a.ec2)
	a.evil = jwttest.NewIdP(t, a.attacker)
	var err error
	a.v, err = token.NewVerifier(t.Context(), []token.Issuer{{
		Issuer:    a.idp.Issuer,
		Audiences: []string{audience},
		JWKSURL:   a.idp.URL + "/jwks.json",
		// HS256 is allowed on purpose: then it is the key's type that stops
		// HMAC tokens "signed" with a public key. Type is left to its
		// default, at+jwt.
		Algorithms: []string{"RS256", "ES256", "EdDSA", "HS256"},
	}}, token.WithClock(jwttest.NewClock(jwttest.Epoch)), token.WithRetryBackoff(time.Hour, time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.v.Close)
	waitReady(t, a.v)
	return a
}

// with returns valid claims with changes; a nil value removes a claim.
func (a *arena) with(changes map[string]any) map[string]any { return claimsWith(a.idp.Issuer, changes) }

// rawClaims returns valid claims as JSON, with extra members appended.
func (a *arena) rawClaims(extra string) string {
	c := string(jwttest.MustJSON(a.with(nil)))
	if extra == "" {
		return c
	}
	return c[:len(c)-1] + "," + extra + "}"
}

func segments(raw string) []string { return strings.Split(raw, ".") }

// stdBase64 re-encodes the payload of a token of ec in the standard
// alphabet (unpadded), with claims chosen so that this changes it.
func (a *arena) stdBase64() string {
	for i := 0; ; i++ {
		s := segments(a.ec.Mint(nil, a.with(map[string]any{"jti": fmt.Sprintf("id-%d~~~", i)})))
		b, err := base64.RawURLEncoding.DecodeString(s[1])
		if err != nil {
			panic(err)
		}
		if std := base64.RawStdEncoding.EncodeToString(b); std != s[1] {
			return s[0] + "." + std + "." + s[2]
		}
	}
}

// TestVerifyAttacks runs known attacks on JWT verifiers, and malformed
// tokens, against the verifier: each is refused with its kind and reason.
func TestVerifyAttacks(t *testing.T) {
	t.Parallel()
	a := newArena(t)
	at := func(d time.Duration) int64 { return jwttest.Epoch.Add(d).Unix() }
	cases := []struct {
		name   string
		raw    func(a *arena) string
		kind   error // nil for a pass
		reason string
	}{
		{"valid", func(a *arena) string { return a.ec.Mint(nil, a.with(nil)) }, nil, ""},
		{"valid RS256", func(a *arena) string { return a.rsa.Mint(nil, a.with(nil)) }, nil, ""},
		{"valid EdDSA", func(a *arena) string { return a.ed.Mint(nil, a.with(nil)) }, nil, ""},

		// Algorithms.
		{"alg none", func(a *arena) string {
			return jwttest.B64([]byte(`{"alg":"none","kid":"ec-1","typ":"at+jwt"}`)) + "." + jwttest.B64(jwttest.MustJSON(a.with(nil))) + "."
		}, token.ErrUntrusted, "unsigned token (alg none) not accepted"},
		{"alg None", func(a *arena) string {
			return jwttest.B64([]byte(`{"alg":"None","kid":"ec-1","typ":"at+jwt"}`)) + "." + jwttest.B64(jwttest.MustJSON(a.with(nil))) + "."
		}, token.ErrUntrusted, "token algorithm not supported"},
		{"alg none signed", func(a *arena) string { return a.ec.Mint(map[string]any{"alg": "none"}, a.with(nil)) + "c2ln" }, token.ErrUntrusted, "unsigned token (alg none) not accepted"},
		{"alg as array", func(a *arena) string {
			return a.ec.MintRaw(`{"alg":["ES256"],"kid":"ec-1","typ":"at+jwt"}`, a.rawClaims(""))
		}, token.ErrUntrusted, "token algorithm not supported"},
		{"no alg", func(a *arena) string { return a.ec.MintRaw(`{"kid":"ec-1","typ":"at+jwt"}`, a.rawClaims("")) }, token.ErrMalformed, "token header has no alg"},
		{"HS256 signed with the RSA public key", func(a *arena) string {
			der, err := x509.MarshalPKIXPublicKey(a.rsa.Priv.Public())
			if err != nil {
				panic(err)
			}
			forger := jwttest.NewHMAC(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
			return forger.Mint(map[string]any{"kid": "rsa-1"}, a.with(nil))
		}, token.ErrUntrusted, "token algorithm does not match the key"},
		{"HS256 signed with the RSA key's JWK", func(a *arena) string {
			return jwttest.NewHMAC(jwttest.JWKS(a.rsa)).Mint(map[string]any{"kid": "rsa-1"}, a.with(nil))
		}, token.ErrUntrusted, "token algorithm does not match the key"},
		{"ES256 token naming the RSA key", func(a *arena) string { return a.ec.Mint(map[string]any{"kid": "rsa-1"}, a.with(nil)) }, token.ErrUntrusted, "token algorithm does not match the key"},
		{"PS256 not allowed", func(a *arena) string { return a.rsa.Mint(map[string]any{"alg": "PS256"}, a.with(nil)) }, token.ErrUntrusted, "token algorithm not accepted from its issuer"},

		// Signatures.
		{"tampered payload", func(a *arena) string {
			good := segments(a.ec.Mint(nil, a.with(map[string]any{"perms": map[string]any{"LIC": 1}})))
			return good[0] + "." + jwttest.B64(jwttest.MustJSON(a.with(map[string]any{"perms": map[string]any{"LIC": 7}}))) + "." + good[2]
		}, token.ErrBadSignature, "token signature invalid"},
		{"tampered signature", func(a *arena) string {
			raw := []byte(a.ec.Mint(nil, a.with(nil)))
			i := len(raw) - 10
			raw[i] = map[bool]byte{true: 'B', false: 'A'}[raw[i] == 'A']
			return string(raw)
		}, token.ErrBadSignature, "token signature invalid"},
		{"ES256 signature in ASN.1", func(a *arena) string {
			s := segments(a.ec.Mint(nil, a.with(nil)))
			sig, err := base64.RawURLEncoding.DecodeString(s[2])
			if err != nil {
				panic(err)
			}
			der, err := asn1.Marshal(struct{ R, S *big.Int }{new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])})
			if err != nil {
				panic(err)
			}
			return s[0] + "." + s[1] + "." + jwttest.B64(der)
		}, token.ErrBadSignature, "token signature invalid"},
		{"no signature", func(a *arena) string { s := segments(a.ec.Mint(nil, a.with(nil))); return s[0] + "." + s[1] + "." }, token.ErrBadSignature, "token signature invalid"},
		{"signature too long", func(a *arena) string {
			return a.ec.Mint(nil, a.with(nil)) + strings.Repeat("A", 2000)
		}, token.ErrBadSignature, "token signature invalid"},

		// Keys come from the issuer, never from the token.
		{"unknown kid", func(a *arena) string { return a.spare.Mint(nil, a.with(nil)) }, token.ErrUntrusted, "token signed by an unknown key"},
		{"no kid", func(a *arena) string { return a.ed.Mint(map[string]any{"kid": nil}, a.with(nil)) }, token.ErrUntrusted, "token has no kid; its issuer requires one"},
		{"kid not a string", func(a *arena) string { return a.ec.Mint(map[string]any{"kid": 1}, a.with(nil)) }, token.ErrMalformed, "token header kid is not a string"},
		{"jku pointing elsewhere", func(a *arena) string {
			return a.attacker.Mint(map[string]any{"jku": a.evil.URL + "/jwks.json"}, a.with(nil))
		}, token.ErrUntrusted, "token signed by an unknown key"},
		{"jku with a known kid", func(a *arena) string {
			return a.attacker.Mint(map[string]any{"jku": a.evil.URL + "/jwks.json", "kid": "ec-1"}, a.with(nil))
		}, token.ErrBadSignature, "token signature invalid"},
		{"x5u with a known kid", func(a *arena) string {
			return a.attacker.Mint(map[string]any{"x5u": a.evil.URL + "/cert.pem", "kid": "ec-1"}, a.with(nil))
		}, token.ErrBadSignature, "token signature invalid"},
		{"embedded jwk", func(a *arena) string {
			var set struct{ Keys []json.RawMessage }
			if err := json.Unmarshal(jwttest.JWKS(a.attacker), &set); err != nil {
				panic(err)
			}
			return a.attacker.Mint(map[string]any{"jwk": set.Keys[0], "kid": "ec-1"}, a.with(nil))
		}, token.ErrBadSignature, "token signature invalid"},
		{"embedded jwk without kid", func(a *arena) string {
			var set struct{ Keys []json.RawMessage }
			if err := json.Unmarshal(jwttest.JWKS(a.attacker), &set); err != nil {
				panic(err)
			}
			return a.attacker.Mint(map[string]any{"jwk": set.Keys[0], "kid": nil}, a.with(nil))
		}, token.ErrUntrusted, "token has no kid; its issuer requires one"},

		// Headers.
		{"crit", func(a *arena) string {
			return a.ec.Mint(map[string]any{"crit": []string{"exp"}, "exp": 1}, a.with(nil))
		}, token.ErrUntrusted, "token header crit names unsupported extensions"},
		{"crit empty", func(a *arena) string { return a.ec.Mint(map[string]any{"crit": []string{}}, a.with(nil)) }, token.ErrUntrusted, "token header crit names unsupported extensions"},
		{"b64 false", func(a *arena) string {
			return a.ec.Mint(map[string]any{"crit": []string{"b64"}, "b64": false}, a.with(nil))
		}, token.ErrUntrusted, "token header crit names unsupported extensions"},
		{"b64 false without crit", func(a *arena) string { return a.ec.Mint(map[string]any{"b64": false}, a.with(nil)) }, token.ErrUntrusted, "unencoded payload (b64) not accepted"},
		{"nested token", func(a *arena) string { return a.ec.Mint(map[string]any{"cty": "JWT"}, a.with(nil)) }, token.ErrUntrusted, "nested token (cty) not accepted"},
		{"no typ", func(a *arena) string { return a.ec.Mint(map[string]any{"typ": nil}, a.with(nil)) }, token.ErrUntrusted, "token type not accepted"},
		{"typ JWT (an ID token)", func(a *arena) string { return a.ec.Mint(map[string]any{"typ": "JWT"}, a.with(nil)) }, token.ErrUntrusted, "token type not accepted"},
		{"typ as media type", func(a *arena) string { return a.ec.Mint(map[string]any{"typ": "application/AT+JWT"}, a.with(nil)) }, nil, ""},
		{"duplicate header parameter", func(a *arena) string {
			return a.ec.MintRaw(`{"alg":"ES256","kid":"ec-1","typ":"at+jwt","alg":"HS256"}`, a.rawClaims(""))
		}, token.ErrMalformed, "token header has a duplicate parameter"},
		{"duplicate header parameter, escaped", func(a *arena) string {
			return a.ec.MintRaw(`{"alg":"ES256","kid":"ec-1","typ":"at+jwt","\u006bid":"ec-3"}`, a.rawClaims(""))
		}, token.ErrMalformed, "token header has a duplicate parameter"},
		{"lone surrogates in header names", func(a *arena) string {
			return a.ec.MintRaw(`{"alg":"ES256","kid":"ec-1","typ":"at+jwt","\ud800":1,"\udbff":2}`, a.rawClaims(""))
		}, token.ErrMalformed, "token header has an invalid Unicode escape (a lone surrogate)"},
		{"lone low surrogate in a header value", func(a *arena) string {
			return a.ec.MintRaw(`{"alg":"ES256","kid":"ec-1\udc00","typ":"at+jwt"}`, a.rawClaims(""))
		}, token.ErrMalformed, "token header has an invalid Unicode escape (a lone surrogate)"},
		{"surrogate pair", func(a *arena) string {
			return a.ec.MintRaw(`{"alg":"ES256","kid":"ec-1","typ":"at+jwt","x-\ud83d\ude00":1}`, a.rawClaims(""))
		}, nil, ""},
		{"header not an object", func(a *arena) string { return a.ec.MintRaw(`["ES256"]`, a.rawClaims("")) }, token.ErrMalformed, "token header is not a JSON object"},

		// Claims.
		{"duplicate claim", func(a *arena) string {
			return a.ec.MintRaw(`{"alg":"ES256","kid":"ec-1","typ":"at+jwt"}`, a.rawClaims(`"perms":{"LIC":7}`))
		}, token.ErrMalformed, "token payload has a duplicate claim"},
		{"lone surrogates in claim names", func(a *arena) string {
			return a.ec.MintRaw(`{"alg":"ES256","kid":"ec-1","typ":"at+jwt"}`, a.rawClaims(`"\ud800":1,"\udbff":2`))
		}, token.ErrMalformed, "token payload has an invalid Unicode escape (a lone surrogate)"},
		{"lone surrogate in a claim value", func(a *arena) string {
			return a.ec.MintRaw(`{"alg":"ES256","kid":"ec-1","typ":"at+jwt"}`, a.rawClaims(`"x":["\ud800x"]`))
		}, token.ErrMalformed, "token payload has an invalid Unicode escape (a lone surrogate)"},
		{"no exp", func(a *arena) string { return a.ec.Mint(nil, a.with(map[string]any{"exp": nil})) }, token.ErrBadClaims, "token has no exp claim"},
		{"exp as string", func(a *arena) string { return a.ec.Mint(nil, a.with(map[string]any{"exp": fmt.Sprint(at(time.Hour))})) }, token.ErrBadClaims, "token exp claim is not a NumericDate"},
		{"exp with exponent", func(a *arena) string { return a.ec.Mint(nil, a.with(map[string]any{"exp": json.Number("1e10")})) }, token.ErrBadClaims, "token exp claim is not a NumericDate"},
		{"exp out of range", func(a *arena) string { return a.ec.Mint(nil, a.with(map[string]any{"exp": 9999999999})) }, token.ErrBadClaims, "token exp claim is out of range: later than 2242-03-16"},
		{"exp far out of range", func(a *arena) string {
			return a.ec.Mint(nil, a.with(map[string]any{"exp": json.Number(strings.Repeat("9", 40))}))
		}, token.ErrBadClaims, "token exp claim is out of range: later than 2242-03-16"},
		{"exp just in range", func(a *arena) string { return a.ec.Mint(nil, a.with(map[string]any{"exp": 1<<33 - 1})) }, nil, ""},
		{"nbf out of range", func(a *arena) string { return a.ec.Mint(nil, a.with(map[string]any{"nbf": 1 << 33})) }, token.ErrBadClaims, "token nbf claim is out of range: later than 2242-03-16"},
		{"iat out of range", func(a *arena) string { return a.ec.Mint(nil, a.with(map[string]any{"iat": 1 << 40})) }, token.ErrBadClaims, "token iat claim is out of range: later than 2242-03-16"},
		{"expired", func(a *arena) string { return a.ec.Mint(nil, a.with(map[string]any{"exp": at(-2 * time.Minute)})) }, token.ErrExpired, "token expired"},
		{"wrong issuer", func(a *arena) string { return a.ec.Mint(nil, a.with(map[string]any{"iss": a.evil.Issuer})) }, token.ErrUntrusted, "token issuer not trusted"},
		{"wrong audience", func(a *arena) string { return a.ec.Mint(nil, a.with(map[string]any{"aud": "https://other.test"})) }, token.ErrUntrusted, "token audience not accepted"},

		// Encodings.
		{"JWE (5 parts)", func(*arena) string { return "eyJhbGciOiJkaXIifQ..aXY.Y3Q.dGFn" }, token.ErrMalformed, "token is encrypted (JWE), not signed"},
		{"two parts", func(a *arena) string { s := segments(a.ec.Mint(nil, a.with(nil))); return s[0] + "." + s[1] }, token.ErrMalformed, "token is not a compact JWS"},
		{"detached payload", func(a *arena) string { s := segments(a.ec.Mint(nil, a.with(nil))); return s[0] + ".." + s[2] }, token.ErrMalformed, "token is not a compact JWS"},
		{"oversized", func(a *arena) string {
			return a.ec.Mint(nil, a.with(map[string]any{"pad": strings.Repeat("x", 8<<10)}))
		}, token.ErrMalformed, "token larger than 8192 bytes"},
		{"padded header", func(a *arena) string {
			s := segments(a.ec.Mint(nil, a.with(nil)))
			return s[0] + "=." + s[1] + "." + s[2]
		}, token.ErrMalformed, "token header is not base64url"},
		{"padded payload", func(a *arena) string {
			for i := 0; ; i++ {
				s := segments(a.ec.Mint(nil, a.with(map[string]any{"jti": strings.Repeat("x", i)})))
				if len(s[1])%4 != 0 {
					return s[0] + "." + s[1] + strings.Repeat("=", 4-len(s[1])%4) + "." + s[2]
				}
			}
		}, token.ErrMalformed, "token payload is not base64url"},
		{"padded signature", func(a *arena) string { return a.ec.Mint(nil, a.with(nil)) + "==" }, token.ErrMalformed, "token signature is not base64url"},
		{"standard base64 alphabet", (*arena).stdBase64, token.ErrMalformed, "token payload is not base64url"},
		{"line break", func(a *arena) string {
			s := segments(a.ec.Mint(nil, a.with(nil)))
			return s[0] + "." + s[1][:10] + "\n" + s[1][10:] + "." + s[2]
		}, token.ErrMalformed, "token is not a compact JWS"},
		{"not base64", func(a *arena) string { s := segments(a.ec.Mint(nil, a.with(nil))); return "!!!." + s[1] + "." + s[2] }, token.ErrMalformed, "token header is not base64url"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p, err := a.v.Verify(t.Context(), tc.raw(a))
			if tc.kind == nil {
				if err != nil || p.ClientID != "billing" {
					t.Fatalf("Verify = %+v, %v; want billing", p, err)
				}
				return
			}
			wantRefusal(t, err, tc.kind, tc.reason)
		})
	}
	t.Cleanup(func() {
		if got := a.evil.Hits.Load(); got != 0 {
			t.Errorf("the attacker's key server was fetched %d times", got)
		}
	})
}
