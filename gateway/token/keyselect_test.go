package token_test

import (
	"testing"
	"time"

	"github.com/portcullis/portcullis/gateway/token"
	"github.com/portcullis/portcullis/internal/jwttest"
)

// A token must name its key unless its issuer allows otherwise, whatever
// the issuer's keys.
func TestVerifyMissingKid(t *testing.T) {
	t.Parallel()
	k := jwttest.NewEC("k1")
	secret := []byte("0123456789abcdef0123456789abcdef")
	mac := jwttest.NewHMAC(secret)
	const iss = "https://i.test"
	claims := jwttest.ClaimsAt(iss, audience, jwttest.Epoch)
	for _, tc := range []struct {
		name   string
		is     token.Issuer
		raw    string
		reason string // "" for a pass
	}{
		{"one key, no kid", token.Issuer{JWKS: jwttest.JWKS(k)}, k.Mint(map[string]any{"kid": nil}, claims), "token has no kid; its issuer requires one"},
		{"one key, no kid, allowed", token.Issuer{JWKS: jwttest.JWKS(k), AllowMissingKid: true}, k.Mint(map[string]any{"kid": nil}, claims), ""},
		{"one key, kid", token.Issuer{JWKS: jwttest.JWKS(k)}, k.Mint(nil, claims), ""},
		{"secret, no kid", token.Issuer{Secret: secret}, mac.Mint(nil, claims), "token has no kid; its issuer requires one"},
		{"secret, no kid, allowed", token.Issuer{Secret: secret, AllowMissingKid: true}, mac.Mint(nil, claims), ""},
		{"secret, any kid", token.Issuer{Secret: secret}, mac.Mint(map[string]any{"kid": "any"}, claims), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.is.Issuer, tc.is.Audiences = iss, []string{audience}
			v, err := token.NewVerifier(t.Context(), []token.Issuer{tc.is}, token.WithClock(jwttest.NewClock(jwttest.Epoch)))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(v.Close)
			_, err = v.Verify(t.Context(), tc.raw)
			if tc.reason != "" {
				wantRefusal(t, err, token.ErrUntrusted, tc.reason)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
		})
	}
}

// The cache never answers for a token that the current key set would
// refuse: after each change of the key set, a cached token serves only if
// the key set still chooses the key that verified it.
func TestVerifyCacheFollowsKeySelection(t *testing.T) {
	t.Parallel()
	k1, k2 := jwttest.NewEC("k1"), jwttest.NewEC("k2")
	k1b := jwttest.NewEC("k1") // another key under the same kid
	for _, tc := range []struct {
		name    string
		kidless bool              // whether the cached token has no kid
		next    []*jwttest.Signer // the key set after the change
		kind    error             // the refusal after the change; nil for a cache hit
		reason  string
	}{
		{"kid-less token, second key of its algorithm", true, []*jwttest.Signer{k1, k2}, token.ErrUntrusted, "token has no kid and its issuer has several keys"},
		{"kid-less token, key set grows otherwise", true, []*jwttest.Signer{k1, jwttest.NewEd("k3")}, nil, ""},
		{"kid names another key first", false, []*jwttest.Signer{k1b, k1}, token.ErrBadSignature, "token signature invalid"},
		{"kid names another key only", false, []*jwttest.Signer{k1b}, token.ErrBadSignature, "token signature invalid"},
		{"key gone", false, []*jwttest.Signer{k2}, token.ErrUntrusted, "token signed by an unknown key"},
		{"key kept, another added", false, []*jwttest.Signer{k2, k1}, nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := jwttest.NewIdP(t, k1)
			c := jwttest.NewClock(jwttest.Epoch)
			v, err := token.NewVerifier(t.Context(), []token.Issuer{{
				Issuer: p.Issuer, Audiences: []string{audience}, JWKSURL: p.URL + "/jwks.json", AllowMissingKid: tc.kidless,
			}}, token.WithClock(c), token.WithRetryBackoff(time.Hour, time.Hour))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(v.Close)
			waitReady(t, v)
			claims := jwttest.ClaimsAt(p.Issuer, audience, jwttest.Epoch)
			header := map[string]any{}
			if tc.kidless {
				header["kid"] = nil
			}
			raw := k1.Mint(header, claims)
			first, err := v.Verify(t.Context(), raw)
			if err != nil {
				t.Fatal(err)
			}
			if again, err := v.Verify(t.Context(), raw); err != nil || again != first || !v.Cached(raw) {
				t.Fatalf("second Verify = %p, %v, cached %v; want the cached %p", again, err, v.Cached(raw), first)
			}

			// The key set changes; a token of an unknown kid makes the
			// verifier fetch it.
			p.SetKeys(tc.next...)
			_, _ = v.Verify(t.Context(), k1.Mint(map[string]any{"kid": "fetch-now"}, claims))
			if got := p.Hits.Load(); got != 2 {
				t.Fatalf("%d key set fetches, want 2", got)
			}

			got, err := v.Verify(t.Context(), raw)
			if tc.kind == nil {
				if err != nil || got != first || !v.Cached(raw) {
					t.Fatalf("after the change: %p, %v, cached %v; want the cached %p", got, err, v.Cached(raw), first)
				}
				return
			}
			wantRefusal(t, err, tc.kind, tc.reason)
			if v.Cached(raw) {
				t.Fatal("Cached() = true for a token the key set refuses")
			}
		})
	}
}

// Cached tells, without allocating, whether Verify would answer from the
// cache now. Not parallel: it counts allocations.
func TestVerifierCached(t *testing.T) {
	k := jwttest.NewEd("k1")
	c := jwttest.NewClock(jwttest.Epoch)
	v, err := token.NewVerifier(t.Context(), []token.Issuer{{Issuer: "https://i.test", Audiences: []string{audience}, JWKS: jwttest.JWKS(k)}},
		token.WithClock(c), token.WithSkew(0))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(v.Close)
	raw := k.Mint(nil, jwttest.ClaimsAt("https://i.test", audience, jwttest.Epoch))
	bad := k.Mint(nil, jwttest.ClaimsAt("https://other.test", audience, jwttest.Epoch))
	for _, s := range []string{"", raw, bad, "a.b.c"} {
		if v.Cached(s) {
			t.Fatalf("Cached(%.10q) = true before any verification", s)
		}
	}
	if _, err := v.Verify(t.Context(), raw); err != nil {
		t.Fatal(err)
	}
	_, _ = v.Verify(t.Context(), bad)
	if !v.Cached(raw) || v.Cached(bad) {
		t.Fatalf("Cached() = %v for the verified token, %v for the refused one; want true, false", v.Cached(raw), v.Cached(bad))
	}
	if n := testing.AllocsPerRun(100, func() { v.Cached(raw) }); n != 0 {
		t.Fatalf("Cached allocates %v times", n)
	}
	c.Set(jwttest.Epoch.Add(10 * time.Minute))
	if v.Cached(raw) {
		t.Fatal("Cached() = true for an expired token")
	}

	// Without a cache, nothing is cached.
	off, err := token.NewVerifier(t.Context(), []token.Issuer{{Issuer: "https://i.test", Audiences: []string{audience}, JWKS: jwttest.JWKS(k)}},
		token.WithClock(jwttest.NewClock(jwttest.Epoch)), token.WithCacheSize(0))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(off.Close)
	if _, err := off.Verify(t.Context(), raw); err != nil {
		t.Fatal(err)
	}
	if off.Cached(raw) {
		t.Fatal("Cached() = true without a cache")
	}
}
