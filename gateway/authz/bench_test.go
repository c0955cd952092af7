package authz_test

import (
	"net/http"
	"testing"
	"time"

	"connectrpc.com/connect"

	"github.com/portcullis/portcullis/gateway/authz"
	"github.com/portcullis/portcullis/gateway/token"
	"github.com/portcullis/portcullis/internal/jwttest"
)

// benchAuthorizer trusts a local EC key and returns a header bearing a
// token of it that grants everything.
func benchAuthorizer(b *testing.B) (*authz.Authorizer, http.Header) {
	b.Helper()
	k := jwttest.NewEC("k")
	v, err := token.NewVerifier(b.Context(), []token.Issuer{{
		Issuer: "https://bench.test", Audiences: []string{audience}, JWKS: jwttest.JWKS(k), Type: "at+jwt",
	}}, token.WithClock(token.ClockFunc(func() time.Time { return jwttest.Epoch })))
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
