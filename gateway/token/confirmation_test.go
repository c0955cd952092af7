package token_test

import (
	"testing"

	"github.com/portcullis/portcullis/gateway/token"
	"github.com/portcullis/portcullis/internal/jwttest"
)

// A token's cnf claim is read into its principal; one the gateway cannot
// check, or a malformed one, refuses the token.
func TestVerifyConfirmation(t *testing.T) {
	t.Parallel()
	k := jwttest.NewEC("k1")
	p := jwttest.NewIdP(t, k)
	c := jwttest.NewClock(jwttest.Epoch)
	v := newVerifier(t, p, c)
	waitReady(t, v)
	const tp = "bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2"
	for _, tc := range []struct {
		name   string
		cnf    any
		want   token.Confirmation
		reason string
	}{
		{"certificate", map[string]any{"x5t#S256": tp}, token.Confirmation{CertificateThumbprint: tp}, ""},
		{"key", map[string]any{"jkt": tp}, token.Confirmation{KeyThumbprint: tp}, ""},
		{"both", map[string]any{"jkt": tp, "x5t#S256": tp}, token.Confirmation{CertificateThumbprint: tp, KeyThumbprint: tp}, ""},
		{"jwk", map[string]any{"jwk": map[string]any{"kty": "EC"}}, token.Confirmation{}, "token cnf claim binds the token to something the gateway cannot check (only x5t#S256 and jkt are understood)"},
		{"extra member", map[string]any{"jkt": tp, "kid": "x"}, token.Confirmation{}, "token cnf claim binds the token to something the gateway cannot check (only x5t#S256 and jkt are understood)"},
		{"hex", map[string]any{"x5t#S256": "6f070ad1eb1cdc0082dc30766395ff94"}, token.Confirmation{}, "token cnf claim has a thumbprint that is not a base64url SHA-256"},
		{"padded", map[string]any{"jkt": tp[:42] + "="}, token.Confirmation{}, "token cnf claim has a thumbprint that is not a base64url SHA-256"},
		{"not a string", map[string]any{"jkt": 7}, token.Confirmation{}, "token cnf claim has a thumbprint that is not a base64url SHA-256"},
		{"empty", map[string]any{}, token.Confirmation{}, "token cnf claim names nothing"},
		{"string", tp, token.Confirmation{}, "token cnf claim is not an object"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			raw := k.Mint(nil, claimsWith(p.Issuer, map[string]any{"cnf": tc.cnf, "jti": tc.name}))
			got, err := v.Verify(t.Context(), raw)
			if tc.reason != "" {
				wantRefusal(t, err, token.ErrBadClaims, tc.reason)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Confirmation != tc.want || !got.Confirmation.Bound() {
				t.Fatalf("Confirmation = %+v, want %+v", got.Confirmation, tc.want)
			}
		})
	}
	plain, err := v.Verify(t.Context(), k.Mint(nil, claimsWith(p.Issuer, nil)))
	if err != nil || plain.Confirmation.Bound() {
		t.Fatalf("a bearer token: %+v, %v", plain, err)
	}
}
