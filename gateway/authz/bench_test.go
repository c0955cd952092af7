package authz_test

import (
	"net/http"
	"strconv"
	"testing"
	"time"

	"connectrpc.com/connect"

	"github.com/portcullis/portcullis/gateway/authz"
	"github.com/portcullis/portcullis/gateway/revocation"
	"github.com/portcullis/portcullis/gateway/token"
	"github.com/portcullis/portcullis/internal/jwttest"
)

// benchAuthorizer trusts a local EC key and returns a header bearing a
// token of it that grants everything.
func benchAuthorizer(b *testing.B, opts ...token.Option) (*authz.Authorizer, http.Header) {
	b.Helper()
	k := jwttest.NewEC("k")
	opts = append([]token.Option{token.WithClock(token.ClockFunc(func() time.Time { return jwttest.Epoch }))}, opts...)
	v, err := token.NewVerifier(b.Context(), []token.Issuer{{
		Issuer: "https://bench.test", Audiences: []string{audience}, JWKS: jwttest.JWKS(k), Type: "at+jwt",
	}}, opts...)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(v.Close)
	a, err := authz.New(testCatalog(b), v)
	if err != nil {
		b.Fatal(err)
	}
	c := jwttest.ClaimsAt("https://bench.test", audience, jwttest.Epoch)
	c["perms"] = map[string]any{"LIC": 7, "ORD": 3}
	h := http.Header{}
	h.Set("Authorization", "Bearer "+k.Mint(nil, c))
	h.Set("Content-Type", "application/proto")
	return a, h
}

const benchProcedure = "/example.orders.v1.OrdersService/SyncOrders"

// BenchmarkCheck is the decision for a repeat caller: the token is in the
// verifier's cache, and the method needs three permissions of two domains.
func BenchmarkCheck(b *testing.B) {
	a, h := benchAuthorizer(b)
	if _, err := a.Check(b.Context(), benchProcedure, h); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := a.Check(b.Context(), benchProcedure, h); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCheckCachedRevocations is BenchmarkCheck with the token
// checked against a million revoked tokens and a revoked client.
func BenchmarkCheckCachedRevocations(b *testing.B) {
	set, err := revocation.New(b.Context(), revocation.WithClock(func() time.Time { return jwttest.Epoch }))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(set.Close)
	exp := jwttest.Epoch.Add(time.Hour)
	rs := make([]revocation.Revocation, 0, 1<<20+1)
	for i := range 1 << 20 {
		rs = append(rs, revocation.Revocation{Issuer: "https://bench.test", TokenID: "revoked-" + strconv.Itoa(i), Expires: exp})
	}
	rs = append(rs, revocation.Revocation{Issuer: "https://bench.test", ClientID: "another", Before: jwttest.Epoch, Expires: exp})
	if err := set.Add(rs...); err != nil {
		b.Fatal(err)
	}
	a, h := benchAuthorizer(b, token.WithRevocations(set))
	if _, err := a.Check(b.Context(), benchProcedure, h); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := a.Check(b.Context(), benchProcedure, h); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkGate is the same decision through the request gate, which also
// puts the principal in the context.
func BenchmarkGate(b *testing.B) {
	a, h := benchAuthorizer(b)
	gate := a.Gate()
	spec := connect.Spec{Procedure: benchProcedure, StreamType: connect.StreamTypeBidi}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := gate(b.Context(), spec, connect.Peer{}, h); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkMapLookup is a baseline: one lookup in a map of tokens.
func BenchmarkMapLookup(b *testing.B) {
	_, h := benchAuthorizer(b)
	m := map[string]*token.Principal{h.Get("Authorization")[7:]: {}}
	raw := h.Get("Authorization")[7:]
	b.ReportAllocs()
	for b.Loop() {
		if m[raw] == nil {
			b.Fatal("missing")
		}
	}
}
