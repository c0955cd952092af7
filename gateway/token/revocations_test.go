package token_test

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/portcullis/portcullis/gateway/revocation"
	"github.com/portcullis/portcullis/gateway/token"
	"github.com/portcullis/portcullis/internal/jwttest"
)

// revocationSet returns a set without sources, which holds what the test
// adds, at clock c.
func revocationSet(t *testing.T, c *jwttest.Clock) *revocation.Set {
	t.Helper()
	set, err := revocation.New(t.Context(), revocation.WithClock(c.Now))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(set.Close)
	return set
}

// A revoked token is refused from the moment it is revoked, whether it
// was verified before (and so is in the cache) or not, and Cached stops
// vouching for it; a client revocation covers the tokens issued before
// its time, and tokens without iat, and nothing else.
func TestVerifyRevoked(t *testing.T) {
	t.Parallel()
	k := jwttest.NewEC("k1")
	idp := jwttest.NewIdP(t, k)
	iat := jwttest.Epoch.Add(-time.Minute)
	exp := jwttest.Epoch.Add(time.Hour)
	for _, tc := range []struct {
		name    string
		claims  map[string]any
		revoke  revocation.Revocation
		revoked bool
	}{
		{name: "by jti", revoked: true,
			revoke: revocation.Revocation{Issuer: idp.Issuer, TokenID: "id-1", Expires: exp}},
		{name: "another jti",
			revoke: revocation.Revocation{Issuer: idp.Issuer, TokenID: "id-2", Expires: exp}},
		{name: "same jti of another issuer",
			revoke: revocation.Revocation{Issuer: "https://other.test", TokenID: "id-1", Expires: exp}},
		{name: "client, issued before", revoked: true,
			revoke: revocation.Revocation{Issuer: idp.Issuer, ClientID: "billing", Before: iat.Add(time.Second), Expires: exp}},
		{name: "client, issued within the second", revoked: true,
			revoke: revocation.Revocation{Issuer: idp.Issuer, ClientID: "billing", Before: iat.Add(time.Millisecond), Expires: exp}},
		{name: "client, issued after",
			revoke: revocation.Revocation{Issuer: idp.Issuer, ClientID: "billing", Before: iat, Expires: exp}},
		{name: "client, no iat", revoked: true, claims: map[string]any{"iat": nil},
			revoke: revocation.Revocation{Issuer: idp.Issuer, ClientID: "billing", Before: iat, Expires: exp}},
		{name: "client by sub", revoked: true, claims: map[string]any{"client_id": nil},
			revoke: revocation.Revocation{Issuer: idp.Issuer, ClientID: "svc-billing", Before: iat.Add(time.Second), Expires: exp}},
		{name: "another client",
			revoke: revocation.Revocation{Issuer: idp.Issuer, ClientID: "reader", Before: iat.Add(time.Second), Expires: exp}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			clock := jwttest.NewClock(jwttest.Epoch)
			set := revocationSet(t, clock)
			v := newVerifier(t, idp, clock, token.WithRevocations(set), token.WithMaxAge(0))
			waitReady(t, v)
			claims := claimsWith(idp.Issuer, map[string]any{"iat": iat.Unix()})
			for name, value := range tc.claims {
				if value == nil {
					delete(claims, name)
				}
			}
			raw := k.Mint(nil, claims)
			// Verified and cached before the revocation.
			if _, err := v.Verify(t.Context(), raw); err != nil {
				t.Fatal(err)
			}
			if err := set.Add(tc.revoke); err != nil {
				t.Fatal(err)
			}
			for _, when := range []string{"cached", "again"} {
				p, err := v.Verify(t.Context(), raw)
				if !tc.revoked {
					if err != nil {
						t.Fatalf("%s: %v, want the token accepted", when, err)
					}
					continue
				}
				if p != nil {
					t.Fatalf("%s: principal %+v, want none", when, p)
				}
				wantRefusal(t, err, token.ErrRevoked, "token revoked")
			}
			if got := v.Cached(raw); got == tc.revoked {
				t.Fatalf("Cached = %v, want %v", got, !tc.revoked)
			}
			// A verifier meeting the token for the first time refuses it too.
			fresh := newVerifier(t, idp, clock, token.WithRevocations(set), token.WithMaxAge(0))
			waitReady(t, fresh)
			if _, err := fresh.Verify(t.Context(), raw); tc.revoked {
				wantRefusal(t, err, token.ErrRevoked, "token revoked")
			} else if err != nil {
				t.Fatalf("fresh verifier: %v, want the token accepted", err)
			}
		})
	}
}

// Until its revocations are loaded, a verifier cannot tell a revoked
// token from a good one: it refuses every token as undecided, not as bad.
func TestVerifyRevocationsNotLoaded(t *testing.T) {
	t.Parallel()
	k := jwttest.NewEC("k1")
	idp := jwttest.NewIdP(t, k)
	// A feed that accepts connections and never answers.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	set, err := revocation.New(t.Context(), revocation.WithFeed(idp.Issuer, "http://"+ln.Addr().String()+"/revocations"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(set.Close)
	clock := jwttest.NewClock(jwttest.Epoch)
	v := newVerifier(t, idp, clock, token.WithRevocations(set))
	waitReady(t, v)
	raw := k.Mint(nil, claimsWith(idp.Issuer, nil))
	_, err = v.Verify(t.Context(), raw)
	wantRefusal(t, err, token.ErrRevocationsUnavailable, "token revocations not loaded yet; retry shortly")
	if v.Cached(raw) {
		t.Fatal("Cached = true for a token that was refused")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	if err := set.WaitReady(ctx); err == nil {
		t.Fatal("WaitReady = nil for a set whose feed never answers")
	}
}
