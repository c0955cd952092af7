package token_test

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portcullis/portcullis/gateway/revocation"
	"github.com/portcullis/portcullis/gateway/token"
	"github.com/portcullis/portcullis/internal/jwttest"
)

const opaqueIssuer = "https://opaque.test"

// introspectFunc stands for an issuer's introspection endpoint: it knows
// one opaque token, and counts the tokens it is asked about.
func introspectFunc(known string, calls *atomic.Int64) token.Introspect {
	return func(_ context.Context, raw string) (*token.Principal, error) {
		calls.Add(1)
		if raw != known && !strings.Contains(raw, ".") {
			return nil, &token.Error{Kind: token.ErrUntrusted, Reason: "token not active"}
		}
		return &token.Principal{Subject: "billing", ClientID: "billing", Issuer: opaqueIssuer, TokenID: "op-1",
			Masks: map[string]uint64{"LIC": 1}, ExpiresAt: jwttest.Epoch.Add(time.Hour), IssuedAt: jwttest.Epoch}, nil
	}
}

// Tokens that are not compact JWS, and JWTs naming the opaque issuer, go
// to introspection; the other JWTs are verified with keys as before, and
// revocations apply to introspected tokens too.
func TestVerifyOpaque(t *testing.T) {
	t.Parallel()
	k := jwttest.NewEC("k1")
	idp := jwttest.NewIdP(t, k)
	clock := jwttest.NewClock(jwttest.Epoch)
	set := revocationSet(t, clock)
	var calls atomic.Int64
	v := newVerifier(t, idp, clock, token.WithRevocations(set), token.WithOpaque(opaqueIssuer, introspectFunc("opaque-1", &calls)))
	waitReady(t, v)
	ctx := context.Background()

	jwt := k.Mint(nil, claimsWith(idp.Issuer, nil))
	if p, err := v.Verify(ctx, jwt); err != nil || p.Issuer != idp.Issuer || calls.Load() != 0 {
		t.Fatalf("JWT of a keyed issuer: %v, %d introspections; want it verified with keys", err, calls.Load())
	}
	for _, raw := range []string{"opaque-1", "two.segments", k.Mint(nil, claimsWith(opaqueIssuer, nil))} {
		before := calls.Load()
		p, err := v.Verify(ctx, raw)
		if err != nil || p.ClientID != "billing" || calls.Load() != before+1 {
			t.Errorf("%.20s...: %v %v, want introspected", raw, p, err)
		}
	}
	_, err := v.Verify(ctx, "opaque-unknown")
	wantRefusal(t, err, token.ErrUntrusted, "token not active")

	if err := set.Add(revocation.Revocation{Issuer: opaqueIssuer, TokenID: "op-1", Expires: jwttest.Epoch.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	_, err = v.Verify(ctx, "opaque-1")
	wantRefusal(t, err, token.ErrRevoked, "token revoked")
}

func TestWithOpaqueErrors(t *testing.T) {
	t.Parallel()
	var calls atomic.Int64
	fn := introspectFunc("x", &calls)
	// With an opaque issuer, no keyed issuer is needed.
	v, err := token.NewVerifier(t.Context(), nil, token.WithOpaque(opaqueIssuer, fn))
	if err != nil {
		t.Fatal(err)
	}
	v.Close()
	keyed := []token.Issuer{{Issuer: "https://keyed.test", Audiences: []string{audience}, JWKS: jwttest.JWKS(jwttest.NewEC("k"))}}
	for name, tc := range map[string]struct {
		issuers []token.Issuer
		opts    []token.Option
		want    string
	}{
		"no function":        {keyed, []token.Option{token.WithOpaque(opaqueIssuer, nil)}, "WithOpaque needs an issuer and an introspection function"},
		"twice":              {keyed, []token.Option{token.WithOpaque(opaqueIssuer, fn), token.WithOpaque("https://b.test", fn)}, "WithOpaque given twice"},
		"cache, no function": {keyed, []token.Option{token.WithOpaque(opaqueIssuer, fn), token.WithOpaqueCache(nil)}, "WithOpaqueCache needs a function"},
		"cache alone":        {keyed, []token.Option{token.WithOpaqueCache(func(string) (*token.Principal, bool) { return nil, false })}, "WithOpaqueCache without WithOpaque"},
		"also keyed": {[]token.Issuer{{Issuer: opaqueIssuer, Audiences: []string{audience}, JWKS: jwttest.JWKS(jwttest.NewEC("k"))}},
			[]token.Option{token.WithOpaque(opaqueIssuer, fn)}, `issuer "https://opaque.test" is opaque (WithOpaque) and verified with keys`},
	} {
		_, err := token.NewVerifier(t.Context(), tc.issuers, tc.opts...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", name, err, tc.want)
		}
	}
}

// With WithOpaqueCache, Cached covers the opaque issuer's tokens whose
// answer is at hand, unless revoked, and asks no introspection; a keyed
// issuer's token is answered by the verifier's own cache as before.
func TestCachedOpaque(t *testing.T) {
	t.Parallel()
	k := jwttest.NewEC("k1")
	idp := jwttest.NewIdP(t, k)
	clock := jwttest.NewClock(jwttest.Epoch)
	set := revocationSet(t, clock)
	var calls atomic.Int64
	atHand := map[string]bool{"opaque-1": true}
	cached := func(raw string) (*token.Principal, bool) {
		if !atHand[raw] {
			return nil, false
		}
		return &token.Principal{ClientID: "billing", Issuer: opaqueIssuer, TokenID: "op-1", ExpiresAt: jwttest.Epoch.Add(time.Hour)}, true
	}
	v := newVerifier(t, idp, clock, token.WithRevocations(set), token.WithOpaque(opaqueIssuer, introspectFunc("opaque-1", &calls)), token.WithOpaqueCache(cached))
	waitReady(t, v)
	if !v.Cached("opaque-1") {
		t.Error("Cached(an opaque token with its answer at hand) = false")
	}
	if v.Cached("opaque-2") {
		t.Error("Cached(an opaque token with no answer at hand) = true")
	}
	jwt := k.Mint(nil, claimsWith(idp.Issuer, nil))
	atHand[jwt] = true // a keyed issuer's token never goes to the opaque issuer
	if v.Cached(jwt) {
		t.Error("Cached(a keyed issuer's JWT not yet verified) = true")
	}
	if _, err := v.Verify(context.Background(), jwt); err != nil || !v.Cached(jwt) {
		t.Errorf("a keyed issuer's JWT, verified: %v, cached %v", err, v.Cached(jwt))
	}
	if n := calls.Load(); n != 0 {
		t.Errorf("Cached made %d introspections, want none", n)
	}
	if err := set.Add(revocation.Revocation{Issuer: opaqueIssuer, TokenID: "op-1", Expires: jwttest.Epoch.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if v.Cached("opaque-1") {
		t.Error("Cached(a revoked opaque token) = true")
	}
}
