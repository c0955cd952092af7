package token_test

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/portcullis/portcullis/gateway/token"
	"github.com/portcullis/portcullis/internal/jwttest"
)

const fuzzIssuer = "https://fuzz.test"

var fuzzSecret = []byte("fuzz-fuzz-fuzz-fuzz-fuzz-fuzz-32")

func fuzzVerifier(f *testing.F, ec *jwttest.Signer) *token.Verifier {
	f.Helper()
	v, err := token.NewVerifier(f.Context(), []token.Issuer{
		{Issuer: fuzzIssuer, Audiences: []string{audience}, Secret: fuzzSecret, AllowMissingKid: true},
		{Issuer: "https://ec.test", Audiences: []string{audience}, JWKS: jwttest.JWKS(ec)},
	}, token.WithClock(jwttest.NewClock(jwttest.Epoch)), token.WithClaims("scope", "roles"), token.WithCacheSize(64))
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(v.Close)
	return v
}

// checkOutcome checks what Verify returned: a refusal with a reason, or a
// principal that holds together.
func checkOutcome(t *testing.T, raw string, p *token.Principal, err error) {
	t.Helper()
	if err != nil {
		te, ok := err.(*token.Error)
		if !ok || te.Kind == nil || te.Reason == "" {
			t.Fatalf("error %#v is not a *token.Error with kind and reason", err)
		}
		if len(raw) >= 16 && strings.Contains(te.Reason, raw) {
			t.Fatalf("reason %q echoes the token", te.Reason)
		}
		return
	}
	if p == nil || p.Masks == nil || p.ClientID == "" || (p.Issuer != fuzzIssuer && p.Issuer != "https://ec.test") {
		t.Fatalf("principal %+v does not hold together", p)
	}
	for domain, mask := range p.Masks {
		if mask > 1<<53-1 || domain == "" {
			t.Fatalf("masks %v", p.Masks)
		}
	}
}

// FuzzVerify feeds arbitrary tokens to Verify: it must never panic, and
// must answer a *token.Error or a sound principal.
func FuzzVerify(f *testing.F) {
	ec := jwttest.NewEC("ec")
	mac := jwttest.NewHMAC(fuzzSecret)
	v := fuzzVerifier(f, ec)
	valid := jwttest.ClaimsAt(fuzzIssuer, audience, jwttest.Epoch)
	for _, seed := range []string{
		mac.Mint(nil, valid),
		ec.Mint(nil, jwttest.ClaimsAt("https://ec.test", audience, jwttest.Epoch)),
		mac.Mint(map[string]any{"alg": "none"}, valid),
		mac.Mint(map[string]any{"crit": []string{"b64"}, "b64": false}, valid),
		mac.MintRaw(`{"alg":"HS256","alg":"HS256"}`, `{}`),
		mac.MintRaw(`{"alg":"HS256","typ":"at+jwt"}`, `{"iss":"https://fuzz.test","aud":["https://api.test"],"exp":1e10,"sub":"s","perms":{"LIC":1.5}}`),
		mac.MintRaw(`{"alg":"HS256","typ":"at+jwt"}`, `{"iss":"https://fuzz.test","aud":"https://api.test","exp":99999999999,"sub":"s","perms":{"LIC":9007199254740992}}`),
		"", ".", "..", "a.b.c", "a.b.c.d.e", "eyJ.eyJ.", strings.Repeat("A", 9000),
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		p, err := v.Verify(t.Context(), raw)
		checkOutcome(t, raw, p, err)
	})
}

// FuzzClaims signs arbitrary headers and claims with the trusted secret, so
// that the fuzzer reaches past the signature into every claim check.
func FuzzClaims(f *testing.F) {
	v := fuzzVerifier(f, jwttest.NewEC("ec"))
	mac := jwttest.NewHMAC(fuzzSecret)
	exp := jwttest.Epoch.Add(time.Hour).Unix()
	for _, seed := range [][2]string{
		{`{"alg":"HS256","typ":"at+jwt"}`, `{"iss":"https://fuzz.test","aud":"https://api.test","exp":` + itoa(exp) + `,"sub":"s","perms":{"LIC":3,"ORD":1},"scope":"a b","roles":[1,{"x":null}]}`},
		{`{"alg":"HS256","kid":"x","typ":"at+jwt"}`, `{"iss":"https://fuzz.test","aud":["x","https://api.test"],"exp":` + itoa(exp) + `.25,"nbf":0,"iat":1,"client_id":"c","tier":"pro","jti":"j"}`},
		{`{"alg":"HS256","typ":"at+jwt"}`, `{"iss":"https://fuzz.test","aud":"https://api.test","exp":` + itoa(exp) + `,"sub":"s","perms":{"LIC":"3"}}`},
		{`{"alg":"HS256","typ":"at+jwt"}`, `{"iss":"https:\/\/fuzz.test","aud":"https://api.test","exp":` + itoa(exp) + `,"sub":"\u0073","perms":{"\u004cIC":-1}}`},
		{`{"alg":"HS256","typ":"at+jwt"}`, `{"iss":"https://fuzz.test","aud":"https://api.test","exp":` + itoa(exp) + `,"sub":"s","perms":{"LIC":1,"LIC":2}}`},
		{`{"alg":"HS256","typ":"at+jwt"}`, `{"iss":"https://fuzz.test","aud":"https://api.test","exp":` + itoa(exp) + `,"sub":"s","perms":[[[[[[[[[]]]]]]]]]}`},
		{`{"alg":"HS256","typ":"at+jwt"}`, `{"iss":"https://fuzz.test","aud":"https://api.test","exp":` + itoa(exp) + `,"sub":"s","scope":{"a":1,"a":2},"roles":[{"x":[{}]},{"x":1,"\u0078":2}]}`},
	} {
		f.Add(seed[0], seed[1])
	}
	f.Fuzz(func(t *testing.T, header, claims string) {
		raw := mac.MintRaw(header, claims)
		p, err := v.Verify(t.Context(), raw)
		checkOutcome(t, raw, p, err)
		// A second call answers the same, from the cache or not.
		p2, err2 := v.Verify(t.Context(), raw)
		if (err == nil) != (err2 == nil) || (err == nil && p2 != p) {
			t.Fatalf("second Verify = %v, %v; first %v, %v", p2, err2, p, err)
		}
	})
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
