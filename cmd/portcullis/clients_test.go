package main

import (
	"context"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/oauth2/clientcredentials"

	"github.com/portcullis/portcullis/services/issuer"
)

func TestClients(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	registry := filepath.Join(dir, "clients.yaml")

	code, stdout, stderr := runCLI(t, "clients", "add", "billing-sync", "--grant", "LIC.READ_ORDERS", "--grant", "ORD.READ", "--tier", "pro", "--registry", registry)
	if code != 0 {
		t.Fatalf("clients add = %d: %s", code, stderr)
	}
	secret := secretOf(t, stdout, "billing-sync")
	if !strings.Contains(stderr, "shown only this once") {
		t.Errorf("stderr %q does not warn that the secret is shown once", stderr)
	}
	data, err := os.ReadFile(registry)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(data), secret) || !strings.Contains(string(data), "secret_hash: $argon2id$v=19$m=19456,t=2,p=1$") {
		t.Errorf("the registry holds the secret, or no default argon2id hash:\n%s", data)
	}
	if fi, _ := os.Stat(registry); fi.Mode().Perm() != 0o600 {
		t.Errorf("registry mode %04o, want 0600", fi.Mode().Perm())
	}

	// Flags before and after the id; grants separated by commas.
	if code, _, stderr := runCLI(t, "clients", "add", "--registry", registry, "--grant", "LIC.READ_REQUIREMENTS,ORD.READ", "audit", "--lifetime", "10m"); code != 0 {
		t.Fatalf("clients add audit = %d: %s", code, stderr)
	}

	// A client that may introspect tokens.
	if code, _, stderr := runCLI(t, "clients", "add", "--registry", registry, "gw", "--introspect"); code != 0 {
		t.Fatalf("clients add gw = %d: %s", code, stderr)
	}
	if data, _ := os.ReadFile(registry); !strings.Contains(string(data), "- id: gw\n") || strings.Count(string(data), "introspect: true") != 1 {
		t.Errorf("registry without gw's introspect: true:\n%s", data)
	}

	// Clients that authenticate with a certificate.
	if code, stdout, stderr := runCLI(t, "clients", "add", "--registry", registry, "edge", "--tls-san-dns", "edge.example.com", "--bound-tokens"); code != 0 || strings.Contains(stdout, "client_secret") {
		t.Fatalf("clients add edge = %d: %s%s", code, stdout, stderr)
	}
	certPEM := filepath.Join(dir, "device.pem")
	device, _ := makeCert(t, &x509.Certificate{Subject: pkix.Name{CommonName: "device"}}, nil, nil)
	writePEM(t, certPEM, "CERTIFICATE", device.Raw)
	if code, stdout, stderr := runCLI(t, "clients", "add", "--registry", registry, "device", "--self-signed-cert", certPEM); code != 0 || !strings.Contains(stdout, "self_signed_tls_client_auth") {
		t.Fatalf("clients add device = %d: %s%s", code, stdout, stderr)
	}

	code, stdout, stderr = runCLI(t, "clients", "list", "--registry", registry)
	want := "" +
		"ID            TIER  LIFETIME  AUTH                         GRANTS\n" +
		"audit         -     10m0s     secret                       LIC.READ_REQUIREMENTS ORD.READ\n" +
		"billing-sync  pro   default   secret                       LIC.READ_ORDERS ORD.READ\n" +
		"device        -     default   self_signed_tls_client_auth  -\n" +
		"edge          -     default   tls_client_auth,bound        -\n" +
		"gw            -     default   secret                       -\n"
	if code != 0 || stdout != want {
		t.Errorf("clients list = %d\n%s%s\nwant\n%s", code, stdout, stderr, want)
	}

	// The secret printed is the one the issuer accepts.
	tokenFor(t, dir, registry, "billing-sync", secret)

	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantErr  string
	}{
		{"add existing", []string{"clients", "add", "audit", "--registry", registry}, 1, `client "audit": client already exists`},
		{"add unknown grant", []string{"clients", "add", "x", "--grant", "LIC.NOPE", "--registry", registry}, 1, `unknown permission "LIC.NOPE"`},
		{"add bad id", []string{"clients", "add", "a/b", "--registry", registry}, 1, `client id "a/b"`},
		{"add without id", []string{"clients", "add", "--registry", registry}, 2, "missing ID"},
		{"add two ids", []string{"clients", "add", "a", "b", "--registry", registry}, 2, `unexpected argument "b"`},
		{"add empty grant", []string{"clients", "add", "a", "--grant", "", "--registry", registry}, 2, "empty permission"},
		{"revoke unknown", []string{"clients", "revoke", "nobody", "--registry", registry}, 1, `client "nobody": no such client`},
		{"list extra argument", []string{"clients", "list", "x", "--registry", registry}, 2, "unexpected argument"},
		{"no subcommand", []string{"clients"}, 2, "Usage:"},
		{"unknown subcommand", []string{"clients", "rename"}, 2, `unknown subcommand "rename"`},
	}
	for _, tt := range tests {
		code, stdout, stderr := runCLI(t, tt.args...)
		if code != tt.wantCode || !strings.Contains(stderr, tt.wantErr) {
			t.Errorf("%s: exit %d, stderr %q; want %d and %q", tt.name, code, stderr, tt.wantCode, tt.wantErr)
		}
		if strings.Contains(stdout, "client_secret") {
			t.Errorf("%s: printed a secret", tt.name)
		}
	}

	code, stdout, stderr = runCLI(t, "clients", "revoke", "billing-sync", "--registry", registry)
	if code != 0 || stdout != "revoked billing-sync\n" || !strings.Contains(stderr, "The tokens it holds are revoked too") {
		t.Errorf("clients revoke = %d, %q, %q", code, stdout, stderr)
	}
	if _, stdout, _ := runCLI(t, "clients", "list", "--registry", registry); strings.Contains(stdout, "billing-sync") {
		t.Errorf("revoked client still listed:\n%s", stdout)
	}
	if code, stdout, _ := runCLI(t, "clients", "help"); code != 0 || !strings.Contains(stdout, "portcullis clients add ID") {
		t.Errorf("clients help = %d, %q", code, stdout)
	}
}

// secretOf reads the secret that "clients add" printed for id.
func secretOf(t *testing.T, stdout, id string) string {
	t.Helper()
	lines := strings.Split(strings.TrimSuffix(stdout, "\n"), "\n")
	if len(lines) != 2 || lines[0] != "client_id:     "+id || !strings.HasPrefix(lines[1], "client_secret: ") {
		t.Fatalf("clients add printed %q", stdout)
	}
	secret := strings.TrimPrefix(lines[1], "client_secret: ")
	if raw, err := base64.RawURLEncoding.DecodeString(secret); err != nil || len(raw) != 32 {
		t.Fatalf("secret %q is not 32 bytes of base64url", secret)
	}
	return secret
}

// tokenFor gets a token from an issuer reading registry.
func tokenFor(t *testing.T, dir, registry, id, secret string) string {
	t.Helper()
	hs := httptest.NewUnstartedServer(nil)
	cat, err := loadCatalog("")
	if err != nil {
		t.Fatal(err)
	}
	srv, err := issuer.New(issuer.Config{
		IssuerURL:    "http://" + hs.Listener.Addr().String(),
		Audience:     "portcullis",
		KeyDir:       filepath.Join(dir, "keys"),
		RegistryPath: registry,
	}, cat, issuer.WithLogger(newLogger(nil, "error")), issuer.WithReloadInterval(0))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	hs.Config.Handler = srv.Handler()
	hs.Start()
	defer hs.Close()
	cfg := clientcredentials.Config{ClientID: id, ClientSecret: secret, TokenURL: srv.TokenURL()}
	tok, err := cfg.Token(context.Background())
	if err != nil {
		t.Fatalf("token for %s: %v", id, err)
	}
	return tok.AccessToken
}
