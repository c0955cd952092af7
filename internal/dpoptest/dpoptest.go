// Package dpoptest builds DPoP proofs (RFC 9449) for tests with an
// independent signer, jwx's jwk and jws, so that what the gateway accepts
// is what another implementation produces.
//
//	k := dpoptest.NewKey(t, "ES256")
//	proof := k.Proof(t, "POST", "http://127.0.0.1:8080/pkg.Service/Method", token)
//	req.Header.Set("Authorization", "DPoP "+token)
//	req.Header.Set("DPoP", proof)
package dpoptest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jws"
)

// Key is a client's DPoP key pair.
type Key struct {
	Alg        jwa.SignatureAlgorithm
	Private    crypto.Signer
	PrivateJWK jwk.Key
	PublicJWK  jwk.Key
	// Thumbprint is the RFC 7638 SHA-256 thumbprint of the public key, as
	// jwx computes it: the cnf.jkt of tokens bound to the key.
	Thumbprint string
}

// NewKey returns a new key for alg: ES256, ES384, ES512, EdDSA, or an RSA
// algorithm (2048 bits).
func NewKey(t testing.TB, alg string) *Key {
	t.Helper()
	var priv crypto.Signer
	var err error
	switch alg {
	case "ES256":
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "ES384":
		priv, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	case "ES512":
		priv, err = ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	case "EdDSA":
		_, priv, err = ed25519.GenerateKey(rand.Reader)
	default:
		priv, err = rsa.GenerateKey(rand.Reader, 2048)
	}
	if err != nil {
		t.Fatal(err)
	}
	k := &Key{Alg: jwa.SignatureAlgorithm(alg), Private: priv}
	if k.PrivateJWK, err = jwk.FromRaw(priv); err != nil {
		t.Fatal(err)
	}
	if k.PublicJWK, err = jwk.FromRaw(priv.Public()); err != nil {
		t.Fatal(err)
	}
	tp, err := k.PublicJWK.Thumbprint(crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	k.Thumbprint = base64.RawURLEncoding.EncodeToString(tp)
	return k
}

// Edit changes a proof before it is signed: its protected header and its
// claims.
type Edit func(header jws.Headers, claims map[string]any)

// At sets iat.
func At(t time.Time) Edit {
	return func(_ jws.Headers, c map[string]any) { c["iat"] = t.Unix() }
}

// Claim sets claim name to value, or removes it when value is nil.
func Claim(name string, value any) Edit {
	return func(_ jws.Headers, c map[string]any) {
		if value == nil {
			delete(c, name)
			return
		}
		c[name] = value
	}
}

// Header sets the protected header parameter name.
func Header(name string, value any) Edit {
	return func(h jws.Headers, _ map[string]any) { _ = h.Set(name, value) }
}

// ATH returns the ath of token: base64url(SHA-256(token)).
func ATH(token string) string {
	sum := sha256.Sum256([]byte(token))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// Proof returns a proof for a request of method to url, with the ath of
// token unless token is "", a random jti and iat now, edited by edits.
func (k *Key) Proof(t testing.TB, method, url, token string, edits ...Edit) string {
	t.Helper()
	jti := make([]byte, 16)
	rand.Read(jti)
	claims := map[string]any{
		"jti": base64.RawURLEncoding.EncodeToString(jti),
		"htm": method,
		"htu": url,
		"iat": time.Now().Unix(),
	}
	if token != "" {
		claims["ath"] = ATH(token)
	}
	h := jws.NewHeaders()
	_ = h.Set(jws.TypeKey, "dpop+jwt")
	_ = h.Set(jws.JWKKey, k.PublicJWK)
	for _, e := range edits {
		e(h, claims)
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	signed, err := jws.Sign(payload, jws.WithKey(k.Alg, k.Private, jws.WithProtectedHeaders(h)))
	if err != nil {
		t.Fatal(err)
	}
	return string(signed)
}

// Raw returns a compact JWS of header and claims as given, with the
// signature sign makes of the signing input; sign nil makes it empty.
// It crafts what no signer would: "none" and HMAC proofs.
func Raw(t testing.TB, header, claims map[string]any, sign func(input []byte) []byte) string {
	t.Helper()
	hb, err := json.Marshal(header)
	if err != nil {
		t.Fatal(err)
	}
	cb, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	input := base64.RawURLEncoding.EncodeToString(hb) + "." + base64.RawURLEncoding.EncodeToString(cb)
	var sig []byte
	if sign != nil {
		sig = sign([]byte(input))
	}
	return input + "." + base64.RawURLEncoding.EncodeToString(sig)
}

// Claims returns the claims of a fresh proof for method, url and token,
// for [Raw].
func Claims(method, url, token string) map[string]any {
	jti := make([]byte, 16)
	rand.Read(jti)
	c := map[string]any{
		"jti": base64.RawURLEncoding.EncodeToString(jti),
		"htm": method,
		"htu": url,
		"iat": time.Now().Unix(),
	}
	if token != "" {
		c["ath"] = ATH(token)
	}
	return c
}
