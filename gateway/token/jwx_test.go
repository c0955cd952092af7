package token_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jws"
	"github.com/lestrrat-go/jwx/v2/jwt"

	"github.com/portcullis/portcullis/gateway/token"
	"github.com/portcullis/portcullis/internal/jwttest"
)

// jwxKey returns a new private key for the JWS algorithm alg, as jwx
// takes it: RSA keys are the shared 2048-bit test keys, HMAC secrets as
// long as their hash.
func jwxKey(t *testing.T, alg string) jwk.Key {
	t.Helper()
	var raw any
	switch alg[:2] {
	case "RS", "PS":
		raw = jwttest.NewRSA("", 1).Priv
	case "ES":
		curve := map[string]elliptic.Curve{"ES256": elliptic.P256(), "ES384": elliptic.P384(), "ES512": elliptic.P521()}[alg]
		k, err := ecdsa.GenerateKey(curve, rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		raw = k
	case "Ed":
		_, k, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		raw = k
	case "HS":
		secret := make([]byte, map[string]int{"HS256": 32, "HS384": 48, "HS512": 64}[alg])
		_, _ = rand.Read(secret)
		raw = secret
	}
	k, err := jwk.FromRaw(raw)
	if err != nil {
		t.Fatal(err)
	}
	_ = k.Set(jwk.KeyIDKey, "jwx-"+alg)
	_ = k.Set(jwk.AlgorithmKey, jwa.SignatureAlgorithm(alg))
	return k
}

// jwxSign returns a token of claims signed by jwx's own JWS
// implementation with key, which names its kid, typed at+jwt.
func jwxSign(t *testing.T, key jwk.Key, claims map[string]any) string {
	t.Helper()
	b := jwt.NewBuilder()
	for k, v := range claims {
		b = b.Claim(k, v)
	}
	tok, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	h := jws.NewHeaders()
	_ = h.Set(jws.TypeKey, token.TypeAccessToken)
	signed, err := jwt.Sign(tok, jwt.WithKey(key.Algorithm(), key, jws.WithProtectedHeaders(h)))
	if err != nil {
		t.Fatal(err)
	}
	return string(signed)
}

// Tokens signed by an independent implementation, jwx's, verify with every
// supported algorithm, from a key set that jwx wrote too.
func TestVerifyJWXSigned(t *testing.T) {
	t.Parallel()
	const iss = "https://jwx.test"
	algs := token.Algorithms()
	if len(algs) != 13 {
		t.Fatalf("Algorithms() = %v, want 13", algs)
	}
	set := jwk.NewSet()
	keys := map[string]jwk.Key{}
	for _, alg := range algs {
		k := jwxKey(t, alg)
		keys[alg] = k
		pub := k
		if alg[:2] != "HS" {
			var err error
			if pub, err = jwk.PublicKeyOf(k); err != nil {
				t.Fatal(err)
			}
		}
		_ = set.AddKey(pub)
	}
	doc, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	v, err := token.NewVerifier(t.Context(), []token.Issuer{{Issuer: iss, Audiences: []string{audience}, JWKS: doc, Algorithms: algs}},
		token.WithClock(jwttest.NewClock(jwttest.Epoch)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(v.Close)
	for _, alg := range algs {
		t.Run(alg, func(t *testing.T) {
			t.Parallel()
			claims := jwttest.ClaimsAt(iss, audience, jwttest.Epoch)
			raw := jwxSign(t, keys[alg], claims)
			hdr, err := base64.RawURLEncoding.DecodeString(strings.Split(raw, ".")[0])
			if err != nil || !strings.Contains(string(hdr), `"kid":"jwx-`+alg+`"`) || !strings.Contains(string(hdr), `"alg":"`+alg+`"`) {
				t.Fatalf("jwx header %s, %v: want alg %s and its kid", hdr, err, alg)
			}
			p, err := v.Verify(t.Context(), raw)
			if err != nil {
				t.Fatal(err)
			}
			if p.ClientID != "billing" || p.Masks["LIC"] != 3 || p.TokenID != "id-1" {
				t.Fatalf("principal %+v", p)
			}
			// The same claims signed by another key of the algorithm, under
			// the same kid, are refused.
			_, err = v.Verify(t.Context(), jwxSign(t, jwxKey(t, alg), jwttest.ClaimsAt(iss, audience, jwttest.Epoch.Add(time.Second))))
			if alg[:2] == "RS" || alg[:2] == "PS" {
				return // the test RSA keys are shared
			}
			wantRefusal(t, err, token.ErrBadSignature, "token signature invalid")
		})
	}
}

// jwxCase is a token that RFC 7515, 7519 or 8725 says to refuse, and
// whether jwx v2's jwt.Parse, verifying with the right key and validating
// iss, aud and the dates, accepts it.
type jwxCase struct {
	name       string
	raw        string
	jwxAccepts bool
	reason     string // our refusal
}

// jwxCases returns the tokens of TestJWXDefaults, signed by k for iss.
func jwxCases(k *jwttest.Signer, iss string) []jwxCase {
	exp := jwttest.Epoch.Add(time.Hour).Unix()
	claims := fmt.Sprintf(`{"iss":%q,"aud":%q,"sub":"s","exp":%d`, iss, audience, exp)
	noExp := fmt.Sprintf(`{"iss":%q,"aud":%q,"sub":"s"`, iss, audience)
	hdr := `{"alg":"ES256","kid":"k1","typ":"at+jwt"`
	valid := k.MintRaw(hdr+"}", claims+"}")
	s := strings.Split(valid, ".")
	var std string
	for i := 0; std == ""; i++ {
		t := strings.Split(k.MintRaw(hdr+"}", claims+fmt.Sprintf(`,"jti":"%d~~~"}`, i)), ".")
		b, _ := base64.RawURLEncoding.DecodeString(t[1])
		if e := base64.RawStdEncoding.EncodeToString(b); e != t[1] {
			std = t[0] + "." + e + "." + t[2]
		}
	}
	return []jwxCase{
		{"valid", valid, true, ""},
		{"crit naming an unknown extension (RFC 7515 §4.1.11)", k.MintRaw(hdr+`,"crit":["x-unknown"],"x-unknown":1}`, claims+"}"), true, "token header crit names unsupported extensions"},
		{"crit naming a registered parameter (RFC 7515 §4.1.11)", k.MintRaw(hdr+`,"crit":["exp"],"exp":1}`, claims+"}"), true, "token header crit names unsupported extensions"},
		{"cty JWT, claims of a nested token read as the token's (RFC 7519 §7.2)", k.MintRaw(hdr+`,"cty":"JWT"}`, claims+"}"), true, "nested token (cty) not accepted"},
		{"duplicate header parameter, the last alg wins", k.MintRaw(`{"alg":"HS256","alg":"ES256","kid":"k1","typ":"at+jwt"}`, claims+"}"), true, "token header has a duplicate parameter"},
		{"duplicate claim, the last sub wins", k.MintRaw(hdr+"}", claims+`,"sub":"admin"}`), true, "token payload has a duplicate claim"},
		{"duplicate member inside a claim", k.MintRaw(hdr+"}", claims+`,"perms":{"LIC":1,"LIC":7}}`), true, "token perms claim names a domain twice"},
		{"lone surrogates as member names, read as one U+FFFD twice (RFC 8725 §3.7)", k.MintRaw(hdr+"}", claims+`,"\ud800":1,"\udbff":2}`), true, "token payload has an invalid Unicode escape (a lone surrogate)"},
		{"text after the claims object (RFC 7519 §7.2)", k.MintRaw(hdr+"}", claims+`} x`), true, "token payload is not a JSON object"},
		{"no exp (RFC 9068 §2.2)", k.MintRaw(hdr+"}", noExp+"}"), true, "token has no exp claim"},
		{"exp as a string of digits (RFC 7519 §4.1.4)", k.MintRaw(hdr+"}", noExp+fmt.Sprintf(`,"exp":"%d"}`, exp)), true, "token exp claim is not a NumericDate"},
		{"exp as an RFC 3339 date (RFC 7519 §4.1.4)", k.MintRaw(hdr+"}", noExp+`,"exp":"2030-01-01T00:00:00Z"}`), true, "token exp claim is not a NumericDate"},
		{"exp with an exponent", k.MintRaw(hdr+"}", noExp+`,"exp":1e10}`), true, "token exp claim is not a NumericDate"},
		{"exp past 2242", k.MintRaw(hdr+"}", noExp+`,"exp":9999999999}`), true, "token exp claim is out of range: later than 2242-03-16"},
		{"typ JWT, as ID tokens have (RFC 8725 §3.11, RFC 9068 §2.1)", k.MintRaw(`{"alg":"ES256","kid":"k1","typ":"JWT"}`, claims+"}"), true, "token type not accepted"},
		{"padded base64 (RFC 7515 §2)", s[0] + "=." + s[1] + "." + s[2], true, "token header is not base64url"},
		{"padded signature (RFC 7515 §2)", valid + "==", true, "token signature is not base64url"},
		{"standard base64 alphabet (RFC 7515 §2)", std, true, "token payload is not base64url"},
		{"line break in a segment (RFC 7515 §2)", s[0] + "." + s[1][:10] + "\n" + s[1][10:] + "." + s[2], true, "token is not a compact JWS"},
		{"unencoded payload, b64 false (RFC 7797)", k.MintRaw(hdr+`,"crit":["b64"],"b64":false}`, claims+"}"), false, "token header crit names unsupported extensions"},
		{"alg none (RFC 8725 §3.1)", jwttest.B64([]byte(`{"alg":"none"}`)) + "." + s[1] + ".", false, "unsigned token (alg none) not accepted"},
	}
}

// TestJWXDefaults measures what jwx v2's jwt.Parse accepts, verifying with
// the right key and validating iss, aud and the dates, among tokens the
// RFCs say to refuse; the package documentation reports it. The verifier
// refuses them all.
func TestJWXDefaults(t *testing.T) {
	t.Parallel()
	k := jwttest.NewEC("k1")
	const iss = "https://jwx.test"
	v, err := token.NewVerifier(t.Context(), []token.Issuer{{Issuer: iss, Audiences: []string{audience}, JWKS: jwttest.JWKS(k)}},
		token.WithClock(jwttest.NewClock(jwttest.Epoch)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(v.Close)
	pub := k.Priv.Public().(crypto.PublicKey)
	for _, tc := range jwxCases(k, iss) {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, jwxErr := jwt.Parse([]byte(tc.raw), jwt.WithKey(jwa.ES256, pub), jwt.WithValidate(true),
				jwt.WithClock(jwt.ClockFunc(func() time.Time { return jwttest.Epoch })), jwt.WithIssuer(iss), jwt.WithAudience(audience))
			if accepted := jwxErr == nil; accepted != tc.jwxAccepts {
				t.Errorf("jwx accepts: %v (%v), recorded %v: update the package documentation", accepted, jwxErr, tc.jwxAccepts)
			}
			_, err := v.Verify(t.Context(), tc.raw)
			if tc.reason == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			var te *token.Error
			if !errors.As(err, &te) || te.Reason != tc.reason {
				t.Fatalf("Verify = %v, want %q", err, tc.reason)
			}
		})
	}
}
