package token_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwk"

	"github.com/portcullis/portcullis/gateway/token"
	"github.com/portcullis/portcullis/internal/jwttest"
)

func TestVerifyOptions(t *testing.T) {
	t.Parallel()
	secret := []byte("0123456789abcdef0123456789abcdef")
	mac := jwttest.NewHMAC(secret)
	const iss = "https://secret.test"
	valid := func(changes map[string]any) map[string]any { return claimsWith(iss, changes) }
	for _, tc := range []struct {
		name   string
		opts   []token.Option
		claims map[string]any
		kind   error
		reason string
		check  func(*testing.T, *token.Principal)
	}{
		{name: "max age", opts: []token.Option{token.WithMaxAge(5 * time.Minute)},
			claims: valid(map[string]any{"iat": jwttest.Epoch.Add(-6 * time.Minute).Unix()}), kind: token.ErrExpired, reason: "token too old"},
		{name: "max age within skew", opts: []token.Option{token.WithMaxAge(5 * time.Minute)},
			claims: valid(map[string]any{"iat": jwttest.Epoch.Add(-5*time.Minute - 59*time.Second).Unix()})},
		{name: "max age needs iat", opts: []token.Option{token.WithMaxAge(5 * time.Minute)},
			claims: valid(map[string]any{"iat": nil}), kind: token.ErrBadClaims, reason: "token has no iat claim"},
		{name: "no skew", opts: []token.Option{token.WithSkew(0)},
			claims: valid(map[string]any{"exp": jwttest.Epoch.Unix()}), kind: token.ErrExpired, reason: "token expired"},
		{name: "max size", opts: []token.Option{token.WithMaxSize(100)},
			claims: valid(nil), kind: token.ErrMalformed, reason: "token larger than 100 bytes"},
		{name: "permission claim", opts: []token.Option{token.WithPermissionClaim("grants")},
			claims: valid(map[string]any{"grants": map[string]any{"ORD": 2}, "perms": "ignored"}),
			check: func(t *testing.T, p *token.Principal) {
				if len(p.Masks) != 1 || p.Masks["ORD"] != 2 {
					t.Fatalf("masks %v", p.Masks)
				}
			}},
		{name: "permission claim shape", opts: []token.Option{token.WithPermissionClaim("grants")},
			claims: valid(map[string]any{"grants": 7}), kind: token.ErrBadClaims, reason: "token grants claim is not an object"},
		{name: "kept claims", opts: []token.Option{token.WithClaims("scope", "big", "absent")},
			claims: valid(map[string]any{"big": json.Number("9007199254740993")}),
			check: func(t *testing.T, p *token.Principal) {
				if p.Claims["scope"] != "orders" || p.Claims["big"] != json.Number("9007199254740993") || len(p.Claims) != 2 {
					t.Fatalf("claims %v", p.Claims)
				}
			}},
		{name: "principal", claims: valid(nil), check: func(t *testing.T, p *token.Principal) {
			want := token.Principal{Subject: "svc-billing", ClientID: "billing", Issuer: iss, Tier: "pro", TokenID: "id-1", ExpiresAt: jwttest.Epoch.Add(10 * time.Minute)}
			if p.Subject != want.Subject || p.ClientID != want.ClientID || p.Issuer != want.Issuer || p.Tier != want.Tier ||
				p.TokenID != want.TokenID || !p.ExpiresAt.Equal(want.ExpiresAt) || p.Masks["LIC"] != 3 || p.Masks["ORD"] != 1 || p.Claims != nil {
				t.Fatalf("principal %+v", p)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			opts := append([]token.Option{token.WithClock(jwttest.NewClock(jwttest.Epoch))}, tc.opts...)
			v, err := token.NewVerifier(t.Context(), []token.Issuer{{Issuer: iss, Audiences: []string{audience}, Secret: secret, AllowMissingKid: true}}, opts...)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(v.Close)
			p, err := v.Verify(t.Context(), mac.Mint(nil, tc.claims))
			if tc.reason != "" {
				wantRefusal(t, err, tc.kind, tc.reason)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tc.check != nil {
				tc.check(t, p)
			}
		})
	}
}

// Durations as large as a time.Duration holds work as the limits they say,
// with and without the cache.
func TestVerifyHugeDurations(t *testing.T) {
	t.Parallel()
	secret := []byte("0123456789abcdef0123456789abcdef")
	mac := jwttest.NewHMAC(secret)
	const (
		iss  = "https://secret.test"
		huge = time.Duration(math.MaxInt64)
	)
	// Issued ten years ago, expired a year ago.
	old := jwttest.ClaimsAt(iss, audience, jwttest.Epoch.AddDate(-10, 0, 0))
	old["exp"] = jwttest.Epoch.AddDate(-1, 0, 0).Unix()
	for _, tc := range []struct {
		name   string
		opts   []token.Option
		claims map[string]any
		reason string
	}{
		{name: "max age", opts: []token.Option{token.WithMaxAge(huge)}, claims: jwttest.ClaimsAt(iss, audience, jwttest.Epoch.Add(-time.Minute))},
		{name: "max age, no skew", opts: []token.Option{token.WithMaxAge(huge), token.WithSkew(0)}, claims: jwttest.ClaimsAt(iss, audience, jwttest.Epoch)},
		{name: "skew", opts: []token.Option{token.WithSkew(huge)}, claims: old},
		{name: "skew and max age", opts: []token.Option{token.WithSkew(huge), token.WithMaxAge(huge)}, claims: old},
		{name: "skew and short max age", opts: []token.Option{token.WithSkew(huge), token.WithMaxAge(time.Minute)}, claims: old},
		{name: "huge max age, expired", opts: []token.Option{token.WithMaxAge(huge)}, claims: old, reason: "token expired"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			opts := append([]token.Option{token.WithClock(jwttest.NewClock(jwttest.Epoch))}, tc.opts...)
			v, err := token.NewVerifier(t.Context(), []token.Issuer{{Issuer: iss, Audiences: []string{audience}, Secret: secret, AllowMissingKid: true}}, opts...)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(v.Close)
			raw := mac.Mint(nil, tc.claims)
			first, err := v.Verify(t.Context(), raw)
			if tc.reason != "" {
				wantRefusal(t, err, token.ErrExpired, tc.reason)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if again, err := v.Verify(t.Context(), raw); err != nil || again != first {
				t.Fatalf("second Verify = %p, %v; want the cached %p", again, err, first)
			}
		})
	}
}

// Duplicate member names are refused at every depth of a kept claim.
func TestVerifyKeptClaimsDuplicates(t *testing.T) {
	t.Parallel()
	secret := []byte("0123456789abcdef0123456789abcdef")
	mac := jwttest.NewHMAC(secret)
	const iss = "https://secret.test"
	v, err := token.NewVerifier(t.Context(), []token.Issuer{{Issuer: iss, Audiences: []string{audience}, Secret: secret, AllowMissingKid: true}},
		token.WithClock(jwttest.NewClock(jwttest.Epoch)), token.WithClaims("scope", "roles"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(v.Close)
	head := `{"iss":"` + iss + `","aud":"` + audience + `","sub":"s","exp":` + itoa(jwttest.Epoch.Add(time.Hour).Unix())
	for _, tc := range []struct {
		name, claims, reason string
	}{
		{"nested object", `"scope":{"a":1,"a":2}`, "token scope claim has a duplicate member name"},
		{"escaped name", `"scope":{"a":1,"a":2}`, "token scope claim has a duplicate member name"},
		{"deeper", `"scope":{"a":{"b":[1,{"c":0,"d":{},"c":1}]}}`, "token scope claim has a duplicate member name"},
		{"object in array", `"roles":[{"x":null},{"y":true,"y":false}]`, "token roles claim has a duplicate member name"},
		{"same name, other objects", `"scope":{"a":{"a":1},"b":[{"a":1},{"a":2}]}`, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p, err := v.Verify(t.Context(), mac.MintRaw(`{"alg":"HS256","typ":"at+jwt"}`, head+","+tc.claims+"}"))
			if tc.reason != "" {
				wantRefusal(t, err, token.ErrBadClaims, tc.reason)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(p.Claims) != 1 {
				t.Fatalf("claims %v", p.Claims)
			}
		})
	}
}

// Keys that must not verify are left out of the key set.
func TestKeySetFiltering(t *testing.T) {
	t.Parallel()
	good, enc, ops := jwttest.NewEC("good"), jwttest.NewEC("enc"), jwttest.NewEC("ops")
	weakKey, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	weak := &jwttest.Signer{KID: "weak", Alg: "RS256", Priv: weakKey}
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	mislabelled := &jwttest.Signer{KID: "p384", Alg: "ES256", Priv: p384}
	set := jwk.NewSet()
	for _, s := range []*jwttest.Signer{good, enc, ops, weak, mislabelled} {
		k, err := jwk.FromRaw(s.Priv.Public())
		if err != nil {
			t.Fatal(err)
		}
		_ = k.Set(jwk.KeyIDKey, s.KID)
		switch s {
		case enc:
			_ = k.Set(jwk.KeyUsageKey, "enc")
		case ops:
			_ = k.Set(jwk.KeyOpsKey, jwk.KeyOperationList{jwk.KeyOpSign})
		case mislabelled:
			_ = k.Set(jwk.AlgorithmKey, "ES256")
		}
		_ = set.AddKey(k)
	}
	doc := jwttest.MustJSON(set)
	v, err := token.NewVerifier(t.Context(), []token.Issuer{{Issuer: "https://i.test", Audiences: []string{audience}, JWKS: doc}}, token.WithClock(jwttest.NewClock(jwttest.Epoch)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(v.Close)
	claims := jwttest.ClaimsAt("https://i.test", audience, jwttest.Epoch)
	if _, err := v.Verify(t.Context(), good.Mint(nil, claims)); err != nil {
		t.Fatal(err)
	}
	for _, s := range []*jwttest.Signer{enc, ops, weak} {
		_, err := v.Verify(t.Context(), s.Mint(nil, claims))
		wantRefusal(t, err, token.ErrUntrusted, "token signed by an unknown key")
	}
	_, err = v.Verify(t.Context(), good.Mint(map[string]any{"kid": "p384"}, claims))
	wantRefusal(t, err, token.ErrUntrusted, "token signed by an unknown key")

	// A shared secret never comes from a fetched key set: it is private
	// key material.
	oct, err := jwk.FromRaw([]byte("0123456789abcdef0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	octSet := jwk.NewSet()
	_ = octSet.AddKey(oct)
	p := jwttest.NewIdP(t)
	b := jwttest.MustJSON(octSet)
	p.Keys.Store(&b)
	remote, err := token.NewVerifier(t.Context(), []token.Issuer{{Issuer: p.Issuer, Audiences: []string{audience}, JWKSURL: p.URL + "/jwks.json"}},
		token.WithRetryBackoff(time.Hour, time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(remote.Close)
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	if err := remote.WaitReady(ctx); err == nil || !strings.Contains(err.Error(), `key set holds private key material; refused (key "#0" has k)`) {
		t.Fatalf("WaitReady() = %v, want a refusal of the shared secret", err)
	}
}

// Options given invalid values are reported, each by name, rather than
// ignored.
func TestNewVerifierInvalidOptions(t *testing.T) {
	t.Parallel()
	is := []token.Issuer{{Issuer: "https://i.test", Audiences: []string{audience}, JWKS: jwttest.JWKS(jwttest.NewEC("k1"))}}
	for _, tc := range []struct {
		opt  token.Option
		want string
	}{
		{token.WithMaxSize(0), "WithMaxSize(0): the size must be positive"},
		{token.WithMaxSize(-5), "WithMaxSize(-5): the size must be positive"},
		{token.WithRefreshInterval(500 * time.Millisecond), "WithRefreshInterval(500ms): the interval must be at least 1s"},
		{token.WithRetryBackoff(2*time.Second, time.Second), "WithRetryBackoff(2s, 1s): the delays must be positive, the first at most the second"},
		{token.WithRetryBackoff(0, time.Second), "WithRetryBackoff(0s, 1s)"},
		{token.WithCacheSize(-1), "WithCacheSize(-1): the size must not be negative"},
		{token.WithSkew(-time.Second), "WithSkew(-1s): the skew must not be negative"},
		{token.WithMaxAge(-time.Second), "WithMaxAge(-1s): the age must not be negative"},
		{token.WithRefetchCooldown(-time.Second), "WithRefetchCooldown(-1s): the cooldown must not be negative"},
		{token.WithPermissionClaim(""), `WithPermissionClaim(""): not a name for the permission claim`},
		{token.WithPermissionClaim("exp"), `WithPermissionClaim("exp"): not a name for the permission claim`},
		{token.WithClaims("scope", ""), `WithClaims(""): a claim name must not be empty`},
		{token.WithClock(nil), "WithClock(nil)"},
		{token.WithHTTPClient(nil), "WithHTTPClient(nil)"},
		{token.WithLogger(nil), "WithLogger(nil)"},
		{token.WithMaxConcurrentVerifications(0), "WithMaxConcurrentVerifications(0): the bound must be positive"},
		{token.WithVerificationWait(-time.Millisecond), "WithVerificationWait(-1ms): the wait must not be negative"},
		{token.WithRevocations(nil), "WithRevocations(nil)"},
		{nil, "nil Option"},
	} {
		t.Run(tc.want, func(t *testing.T) {
			t.Parallel()
			v, err := token.NewVerifier(t.Context(), is, tc.opt)
			if err == nil {
				v.Close()
				t.Fatalf("NewVerifier = nil error, want %q", tc.want)
			}
			if !strings.Contains(err.Error(), "token: invalid options: "+tc.want) {
				t.Fatalf("NewVerifier = %v, want %q", err, tc.want)
			}
		})
	}
	// Every invalid option is named, with the issuer problems.
	_, err := token.NewVerifier(t.Context(), []token.Issuer{{Issuer: "https://i.test"}}, token.WithMaxSize(0), token.WithCacheSize(-1))
	if err == nil || !strings.Contains(err.Error(), "WithMaxSize(0)") || !strings.Contains(err.Error(), "WithCacheSize(-1)") || !strings.Contains(err.Error(), "Audiences is empty") {
		t.Fatalf("NewVerifier = %v, want both options and the issuer named", err)
	}
	// Valid edge values pass.
	v, err := token.NewVerifier(t.Context(), is, token.WithSkew(0), token.WithMaxAge(0), token.WithCacheSize(0), token.WithRefetchCooldown(0),
		token.WithRefreshInterval(time.Second), token.WithRetryBackoff(time.Second, time.Second), token.WithVerificationWait(0),
		token.WithMaxConcurrentVerifications(1), token.WithKeysObserver(nil))
	if err != nil {
		t.Fatal(err)
	}
	v.Close()
}
