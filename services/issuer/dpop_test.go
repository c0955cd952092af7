package issuer_test

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jws"

	"github.com/portcullis/portcullis/gateway/dpop"
	"github.com/portcullis/portcullis/internal/dpoptest"
	"github.com/portcullis/portcullis/services/issuer"
	"github.com/portcullis/portcullis/services/issuer/issuertest"
)

func withProof(h http.Header, proof string) http.Header {
	h = h.Clone()
	h.Set("DPoP", proof)
	return h
}

// TestDPoPBoundToken: a token request with a valid proof, made with jwx,
// gets a token bound to the proof's key (cnf.jkt) and token_type DPoP;
// without a proof, a Bearer token without cnf.
func TestDPoPBoundToken(t *testing.T) {
	t.Parallel()
	iss := issuertest.Start(t, newCatalog(t))
	secret := iss.AddClient(t, issuer.Client{ID: "reader", Grants: []string{"ORD.READ"}})
	tokenURL := iss.URL + issuer.TokenPath
	for _, alg := range []string{"ES256", "EdDSA", "RS256", "PS256", "ES384"} {
		t.Run(alg, func(t *testing.T) {
			t.Parallel()
			k := dpoptest.NewKey(t, alg)
			res := request(t, "POST", tokenURL, withProof(form("reader", secret), k.Proof(t, "POST", tokenURL, "")), "grant_type=client_credentials")
			var body struct {
				AccessToken string `json:"access_token"`
				TokenType   string `json:"token_type"`
			}
			if err := json.Unmarshal(res.body, &body); err != nil || res.status != 200 {
				t.Fatalf("%d %s", res.status, res.body)
			}
			if body.TokenType != "DPoP" {
				t.Errorf("token_type %q, want DPoP", body.TokenType)
			}
			if cnf, _ := cnfOf(t, body.AccessToken); cnf["jkt"] != k.Thumbprint {
				t.Errorf("cnf.jkt %q, want %q", cnf["jkt"], k.Thumbprint)
			}
		})
	}
	res := request(t, "POST", tokenURL, form("reader", secret), "grant_type=client_credentials")
	if !strings.Contains(string(res.body), `"token_type":"Bearer"`) {
		t.Fatalf("without a proof: %s", res.body)
	}
	var body struct {
		AccessToken string `json:"access_token"`
	}
	_ = json.Unmarshal(res.body, &body)
	if cnf, bound := cnfOf(t, body.AccessToken); bound {
		t.Fatalf("unbound token has cnf %v", cnf)
	}
}

// TestDPoPTokenRequestRefusals: a token request with a proof that does not
// verify gets 400 invalid_dpop_proof, and no token.
func TestDPoPTokenRequestRefusals(t *testing.T) {
	t.Parallel()
	iss := issuertest.Start(t, newCatalog(t))
	secret := iss.AddClient(t, issuer.Client{ID: "reader", Grants: []string{"ORD.READ"}})
	tokenURL := iss.URL + issuer.TokenPath
	k := dpoptest.NewKey(t, "ES256")
	replayed := k.Proof(t, "POST", tokenURL, "")
	if res := request(t, "POST", tokenURL, withProof(form("reader", secret), replayed), "grant_type=client_credentials"); res.status != 200 {
		t.Fatalf("first use: %d %s", res.status, res.body)
	}
	for _, c := range []struct {
		name, proof, want string
	}{
		{"replayed", replayed, "replayed"},
		{"wrong htm", k.Proof(t, "GET", tokenURL, ""), "htm"},
		{"wrong htu", k.Proof(t, "POST", iss.URL+issuer.RevocationPath, ""), "htu"},
		{"with ath", k.Proof(t, "POST", tokenURL, "some.access.token"), "ath"},
		{"old", k.Proof(t, "POST", tokenURL, "", dpoptest.At(time.Now().Add(-time.Hour))), "too old"},
		{"private key", k.Proof(t, "POST", tokenURL, "", dpoptest.Header(jws.JWKKey, k.PrivateJWK)), "private key"},
		{"not a JWS", "garbage", "compact JWS"},
	} {
		t.Run(c.name, func(t *testing.T) {
			res := request(t, "POST", tokenURL, withProof(form("reader", secret), c.proof), "grant_type=client_credentials")
			code, desc := res.oauthError(t)
			if res.status != 400 || code != "invalid_dpop_proof" || !strings.Contains(desc, c.want) {
				t.Fatalf("%d %s %q, want 400 invalid_dpop_proof saying %q", res.status, code, desc, c.want)
			}
		})
	}
}

// TestDPoPTokenRequestNonce: an issuer requiring nonces answers
// use_dpop_nonce with a DPoP-Nonce header, then binds the token.
func TestDPoPTokenRequestNonce(t *testing.T) {
	t.Parallel()
	n, err := dpop.NewNonces([]byte(strings.Repeat("k", 32)), time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	v, err := dpop.New(dpop.WithNonces(n))
	if err != nil {
		t.Fatal(err)
	}
	iss := issuertest.Start(t, newCatalog(t), issuer.WithDPoP(v))
	secret := iss.AddClient(t, issuer.Client{ID: "reader", Grants: []string{"ORD.READ"}})
	tokenURL := iss.URL + issuer.TokenPath
	k := dpoptest.NewKey(t, "ES256")
	res := request(t, "POST", tokenURL, withProof(form("reader", secret), k.Proof(t, "POST", tokenURL, "")), "grant_type=client_credentials")
	code, _ := res.oauthError(t)
	nonce := res.header.Get("DPoP-Nonce")
	if res.status != 400 || code != "use_dpop_nonce" || nonce == "" {
		t.Fatalf("%d %s, DPoP-Nonce %q: want 400 use_dpop_nonce with a nonce", res.status, code, nonce)
	}
	res = request(t, "POST", tokenURL, withProof(form("reader", secret), k.Proof(t, "POST", tokenURL, "", dpoptest.Claim("nonce", nonce))), "grant_type=client_credentials")
	if res.status != 200 || !strings.Contains(string(res.body), `"token_type":"DPoP"`) {
		t.Fatalf("with the nonce: %d %s", res.status, res.body)
	}
}

// TestDPoPMetadata: the metadata names the proof algorithms (RFC 9449
// §5.1).
func TestDPoPMetadata(t *testing.T) {
	t.Parallel()
	iss := issuertest.Start(t, newCatalog(t))
	res := request(t, "GET", iss.URL+"/.well-known/oauth-authorization-server", nil, "")
	var m struct {
		Algs []string `json:"dpop_signing_alg_values_supported"`
	}
	if err := json.Unmarshal(res.body, &m); err != nil || !slices.Equal(m.Algs, []string{"ES256", "ES384", "EdDSA", "RS256", "PS256"}) {
		t.Fatalf("dpop_signing_alg_values_supported %v (%v)", m.Algs, err)
	}
}
