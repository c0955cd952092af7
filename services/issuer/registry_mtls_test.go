package issuer_test

import (
	"crypto/x509"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/portcullis/portcullis/internal/certtest"
	"github.com/portcullis/portcullis/services/issuer"
)

func TestRegistryCertificateAuth(t *testing.T) {
	t.Parallel()
	cat := newCatalog(t)
	cert := certtest.SelfSigned(t, certtest.Spec{CommonName: "device"}).TLS()
	otherKey := certtest.SelfSigned(t, certtest.Spec{CommonName: "other"}).TLS()
	x5c := base64.StdEncoding.EncodeToString(cert.Certificate[0])
	// The JWK of otherKey's public key, with cert in its x5c: a mismatch.
	jwkOf := func(c *x509.Certificate) string {
		dir := t.TempDir()
		path := filepath.Join(dir, "clients.yaml")
		if _, err := issuer.AddClient(path, cat, issuer.Client{ID: "x", CertificateAuth: issuer.CertificateAuth{Certificates: []*x509.Certificate{c}}}); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		_, after, _ := strings.Cut(string(b), "jwks:")
		return "jwks:" + strings.TrimRight(after, "\n")
	}
	good := jwkOf(cert.Leaf)
	mismatched := strings.Replace(jwkOf(otherKey.Leaf), base64.StdEncoding.EncodeToString(otherKey.Certificate[0]), x5c, 1)

	tests := []struct {
		name, entry, wantErr string
	}{
		{"subject DN", "token_endpoint_auth_method: tls_client_auth\n    tls_client_auth_subject_dn: CN=billing", ""},
		{"SAN URI and bound tokens", "token_endpoint_auth_method: tls_client_auth\n    tls_client_auth_san_uri: spiffe://example.com/billing\n    tls_client_certificate_bound_access_tokens: true", ""},
		{"self-signed", "token_endpoint_auth_method: self_signed_tls_client_auth\n    " + good, ""},
		{"two names", "token_endpoint_auth_method: tls_client_auth\n    tls_client_auth_san_dns: a.example.com\n    tls_client_auth_subject_dn: CN=a", "exactly one of"},
		{"no name", "token_endpoint_auth_method: tls_client_auth", "exactly one of"},
		{"relative SAN URI", "token_endpoint_auth_method: tls_client_auth\n    tls_client_auth_san_uri: billing", "not an absolute URI"},
		{"a secret too", "token_endpoint_auth_method: tls_client_auth\n    tls_client_auth_subject_dn: CN=a\n    secret_hash: $argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA", "has no secret_hash"},
		{"names without the method", "tls_client_auth_subject_dn: CN=a\n    secret_hash: $argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA", "need token_endpoint_auth_method"},
		{"self-signed without jwks", "token_endpoint_auth_method: self_signed_tls_client_auth", "needs jwks"},
		{"self-signed with a name", "token_endpoint_auth_method: self_signed_tls_client_auth\n    tls_client_auth_subject_dn: CN=a\n    " + good, "not tls_client_auth_*"},
		{"key not the certificate's", "token_endpoint_auth_method: self_signed_tls_client_auth\n    " + mismatched, "not the public key of its x5c"},
		{"unknown method", "token_endpoint_auth_method: private_key_jwt", "is not client_secret_basic"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "clients.yaml")
			writeRegistry(t, path, "clients:\n  - id: c\n    grants: [ORD.READ]\n    "+tt.entry+"\n")
			_, err := issuer.New(issuer.Config{IssuerURL: "https://auth.example.com", Audience: "a", KeyDir: filepath.Join(t.TempDir(), "keys"), RegistryPath: path},
				cat, issuer.WithHasher(fastHasher), issuer.WithReloadInterval(0), issuer.WithLogger(discardLogger()))
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("New: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("New: %v, want an error saying %q", err, tt.wantErr)
			}
		})
	}
}

func TestAddCertificateClient(t *testing.T) {
	t.Parallel()
	cat := newCatalog(t)
	path := filepath.Join(t.TempDir(), "clients.yaml")
	c := issuer.Client{ID: "billing", Grants: []string{"ORD.READ"}, CertificateAuth: issuer.CertificateAuth{SANDNS: "billing.example.com"}, CertificateBoundTokens: true}
	secret, err := issuer.AddClient(path, cat, c)
	if err != nil || secret != "" {
		t.Fatalf("AddClient = %q, %v; want no secret", secret, err)
	}
	b, _ := os.ReadFile(path)
	for _, want := range []string{"token_endpoint_auth_method: tls_client_auth", "tls_client_auth_san_dns: billing.example.com", "tls_client_certificate_bound_access_tokens: true"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("registry lacks %q:\n%s", want, b)
		}
	}
	if strings.Contains(string(b), "secret_hash") {
		t.Errorf("a certificate client has a secret_hash:\n%s", b)
	}
	clients, err := issuer.ListClients(path)
	if err != nil || len(clients) != 1 || clients[0].CertificateAuth.SANDNS != "billing.example.com" || !clients[0].CertificateBoundTokens {
		t.Errorf("ListClients = %+v, %v", clients, err)
	}
	if _, err := issuer.RotateSecret(path, "billing", issuer.WithHasher(fastHasher)); err == nil || !strings.Contains(err.Error(), "no secret to rotate") {
		t.Errorf("RotateSecret of a certificate client: %v", err)
	}
	two := issuer.Client{ID: "two", CertificateAuth: issuer.CertificateAuth{SANDNS: "a.example.com", SANURI: "spiffe://a"}}
	if _, err := issuer.AddClient(path, cat, two); err == nil || errors.Is(err, issuer.ErrClientExists) {
		t.Errorf("AddClient with two names: %v", err)
	}
}
