package token_test

import (
	"crypto/rand"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"

	"github.com/portcullis/portcullis/gateway/token"
	"github.com/portcullis/portcullis/internal/jwttest"
)

// Tokens are access tokens, typed at+jwt, unless the issuer says
// otherwise; Type "any" turns the check off.
func TestVerifyType(t *testing.T) {
	t.Parallel()
	k := jwttest.NewEC("k1")
	const iss = "https://i.test"
	claims := jwttest.ClaimsAt(iss, audience, jwttest.Epoch)
	for _, tc := range []struct {
		name string
		typ  string // Issuer.Type
		pass []any  // typ headers accepted; nil for none
		fail []any  // typ headers refused
	}{
		{"default", "", []any{"at+jwt", "AT+JWT", "application/at+jwt"}, []any{nil, "JWT", "jwt", "application/jwt", "at+jwt2", "dpop+jwt"}},
		{"at+jwt", "application/AT+JWT", []any{"at+jwt", "application/at+jwt"}, []any{nil, "JWT"}},
		{"JWT", "JWT", []any{"JWT", "application/jwt"}, []any{nil, "at+jwt"}},
		{"any", "any", []any{nil, "JWT", "at+jwt", "whatever"}, nil},
		{"ANY", "ANY", []any{nil, "JWT"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			v, err := token.NewVerifier(t.Context(), []token.Issuer{{Issuer: iss, Audiences: []string{audience}, JWKS: jwttest.JWKS(k), Type: tc.typ}},
				token.WithClock(jwttest.NewClock(jwttest.Epoch)))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(v.Close)
			for _, typ := range tc.pass {
				if _, err := v.Verify(t.Context(), k.Mint(map[string]any{"typ": typ}, claims)); err != nil {
					t.Errorf("typ %v: %v", typ, err)
				}
			}
			for _, typ := range tc.fail {
				_, err := v.Verify(t.Context(), k.Mint(map[string]any{"typ": typ}, claims))
				wantRefusal(t, err, token.ErrUntrusted, "token type not accepted")
			}
		})
	}
	_, err := token.NewVerifier(t.Context(), []token.Issuer{{Issuer: iss, Audiences: []string{audience}, JWKS: jwttest.JWKS(k), Type: "application/"}})
	if err == nil || !strings.Contains(err.Error(), `Type "application/" names no type`) {
		t.Fatalf("NewVerifier with Type application/ = %v, want a refusal", err)
	}
}

// A shared secret shorter than the hash of an HMAC algorithm it is to
// verify is refused at start (RFC 7518 §3.2), from Secret or from a local
// key set, rather than every token one by one.
func TestNewVerifierSecretLength(t *testing.T) {
	t.Parallel()
	secret := func(n int) []byte {
		b := make([]byte, n)
		_, _ = rand.Read(b)
		return b
	}
	octSet := func(t *testing.T, n int, alg string) []byte {
		k, err := jwk.FromRaw(secret(n))
		if err != nil {
			t.Fatal(err)
		}
		_ = k.Set(jwk.KeyIDKey, "oct")
		if alg != "" {
			_ = k.Set(jwk.AlgorithmKey, jwa.SignatureAlgorithm(alg))
		}
		set := jwk.NewSet()
		_ = set.AddKey(k)
		return jwttest.MustJSON(set)
	}
	for _, tc := range []struct {
		name string
		is   func(t *testing.T) token.Issuer
		want string // "" for a verifier
	}{
		{"HS256, 32 bytes", func(*testing.T) token.Issuer { return token.Issuer{Secret: secret(32)} }, ""},
		{"HS384, 32 bytes", func(*testing.T) token.Issuer { return token.Issuer{Secret: secret(32), Algorithms: []string{"HS384"}} },
			"Secret: shared secret has 32 bytes, fewer than 48, the least for HS384 (RFC 7518 §3.2)"},
		{"HS512, 32 bytes", func(*testing.T) token.Issuer { return token.Issuer{Secret: secret(32), Algorithms: []string{"HS512"}} },
			"Secret: shared secret has 32 bytes, fewer than 64, the least for HS512 (RFC 7518 §3.2)"},
		{"HS256 and HS512, 48 bytes", func(*testing.T) token.Issuer {
			return token.Issuer{Secret: secret(48), Algorithms: []string{"HS256", "HS512"}}
		}, "fewer than 64, the least for HS512"},
		{"HS512, 64 bytes", func(*testing.T) token.Issuer {
			return token.Issuer{Secret: secret(64), Algorithms: token.HMACAlgorithms()}
		}, ""},
		{"HS256, 31 bytes", func(*testing.T) token.Issuer { return token.Issuer{Secret: secret(31)} }, "fewer than 32, the least for HS256"},
		{"file, oct key for HS512, 32 bytes", func(t *testing.T) token.Issuer {
			file := filepath.Join(t.TempDir(), "jwks.json")
			if err := os.WriteFile(file, octSet(t, 32, ""), 0o600); err != nil {
				t.Fatal(err)
			}
			return token.Issuer{JWKSFile: file, Algorithms: []string{"HS512"}}
		}, `key set: key "oct": shared secret has 32 bytes, fewer than 64, the least for HS512 (RFC 7518 §3.2)`},
		{"inline, oct key declaring HS384, 32 bytes", func(t *testing.T) token.Issuer {
			return token.Issuer{JWKS: octSet(t, 32, "HS384"), Algorithms: token.HMACAlgorithms()}
		}, `key "oct": shared secret has 32 bytes, fewer than 48, the least for HS384`},
		{"inline, oct key declaring HS256, 32 bytes", func(t *testing.T) token.Issuer {
			return token.Issuer{JWKS: octSet(t, 32, "HS256"), Algorithms: token.HMACAlgorithms()}
		}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			is := tc.is(t)
			is.Issuer, is.Audiences = "https://i.test", []string{audience}
			v, err := token.NewVerifier(t.Context(), []token.Issuer{is})
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				v.Close()
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("NewVerifier = %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

// The supported algorithms are listed once, for configurations to check
// against.
func TestAlgorithms(t *testing.T) {
	t.Parallel()
	want := []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA", "HS256", "HS384", "HS512"}
	if got := token.Algorithms(); !slices.Equal(got, want) {
		t.Fatalf("Algorithms() = %v, want %v", got, want)
	}
	if got := token.HMACAlgorithms(); !slices.Equal(got, want[10:]) {
		t.Fatalf("HMACAlgorithms() = %v, want %v", got, want[10:])
	}
	// Callers get their own copy.
	token.Algorithms()[0] = "none"
	if token.Algorithms()[0] != "RS256" {
		t.Fatal("Algorithms() shares its slice")
	}
}
