package issuer_test

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portcullis/portcullis/services/issuer"
	"github.com/portcullis/portcullis/services/issuer/issuertest"
)

func TestRegistryReload(t *testing.T) {
	t.Parallel()
	iss := issuertest.Start(t, newCatalog(t))
	tokenErr := func(id, secret string) error {
		_, err := iss.Credentials(id, secret).Token(context.Background())
		return err
	}

	// Added: works after the reload, without a restart.
	secret, err := issuer.AddClient(iss.RegistryPath, newCatalog(t), issuer.Client{ID: "reader", Grants: []string{"ORD.READ"}}, issuer.WithHasher(fastHasher))
	if err != nil {
		t.Fatal(err)
	}
	if err := tokenErr("reader", secret); err == nil {
		t.Fatal("a client works before the reload")
	}
	if err := iss.Server.Reload(); err != nil {
		t.Fatal(err)
	}
	if err := tokenErr("reader", secret); err != nil {
		t.Fatalf("after the reload: %v", err)
	}

	// A broken file keeps the previous registry.
	good, _ := os.ReadFile(iss.RegistryPath)
	for _, bad := range []struct{ name, contents, want string }{
		{"not YAML", "clients: [", "registry"},
		{"unknown field", strings.Replace(string(good), "grants:", "grantz:", 1), "unknown field"},
		{"unknown permission", strings.Replace(string(good), "ORD.READ", "ORD.NOPE", 1), `client "reader": grants unknown permission "ORD.NOPE"`},
		{"duplicate client", string(good) + string(good[strings.Index(string(good), "  - id"):]), `client "reader": client already exists`},
		{"bad hash", strings.Replace(string(good), "$argon2id$", "$argon2i$", 1), "neither argon2id"},
		{"lifetime above the maximum", strings.Replace(string(good), "id: reader", "id: reader\n    token_lifetime: 48h", 1), "above the maximum"},
	} {
		writeRegistry(t, iss.RegistryPath, bad.contents)
		err := iss.Server.Reload()
		if err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%s: Reload %v, want an error containing %q", bad.name, err, bad.want)
		}
		if err := tokenErr("reader", secret); err != nil {
			t.Errorf("%s: the previous registry is gone: %v", bad.name, err)
		}
	}
	writeRegistry(t, iss.RegistryPath, string(good))
	if err := iss.Server.Reload(); err != nil {
		t.Fatal(err)
	}

	// Revoked: refused at once, although its secret was verified and
	// cached a moment ago.
	if err := tokenErr("reader", secret); err != nil {
		t.Fatal(err)
	}
	iss.RevokeClient(t, "reader")
	if err := tokenErr("reader", secret); err == nil || !strings.Contains(err.Error(), "invalid_client") {
		t.Errorf("revoked client: %v, want invalid_client", err)
	}

	// Re-added with a new secret: the old one no longer works.
	newSecret := iss.AddClient(t, issuer.Client{ID: "reader"})
	if err := tokenErr("reader", secret); err == nil {
		t.Error("the old secret still works")
	}
	if err := tokenErr("reader", newSecret); err != nil {
		t.Error(err)
	}
}

func TestRegistryIsPickedUpWithoutReload(t *testing.T) {
	t.Parallel()
	iss := issuertest.Start(t, newCatalog(t), issuer.WithReloadInterval(10*time.Millisecond))
	secret, err := issuer.AddClient(iss.RegistryPath, newCatalog(t), issuer.Client{ID: "reader"}, issuer.WithHasher(fastHasher))
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, func() bool {
		_, err := iss.Credentials("reader", secret).Token(context.Background())
		return err == nil
	})
	if err := issuer.RevokeClient(iss.RegistryPath, "reader"); err != nil {
		t.Fatal(err)
	}
	eventually(t, func() bool {
		_, err := iss.Credentials("reader", secret).Token(context.Background())
		return err != nil && strings.Contains(err.Error(), "invalid_client")
	})
}

func TestNewRefusesABadRegistry(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "clients.yaml")
	hash, _ := fastHasher.Hash([]byte("s"))
	writeRegistry(t, path, fmt.Sprintf(`clients:
- id: good
  secret_hash: %[1]s
  grants: [ORD.READ]
- id: bad
  secret_hash: %[1]s
  grants: [ORD.READ, LIC.NOPE, NOPE]
`, hash))
	srv, err := issuer.New(issuer.Config{IssuerURL: "http://127.0.0.1:1", Audience: "a", KeyDir: filepath.Join(dir, "keys"), RegistryPath: path},
		newCatalog(t), issuer.WithLogger(discardLogger()), issuer.WithHasher(fastHasher))
	if err == nil {
		srv.Close()
		t.Fatal("New succeeded")
	}
	if want := `client "bad": grants unknown permission "LIC.NOPE", "NOPE"`; !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not contain %q", err, want)
	}
}

func TestAddListRevoke(t *testing.T) {
	t.Parallel()
	cat := newCatalog(t)
	path := filepath.Join(t.TempDir(), "config", "clients.yaml")
	secret, err := issuer.AddClient(path, cat, issuer.Client{ID: "billing", Grants: []string{"LIC.READ_ORDERS", "ORD.READ"}, Tier: "pro", TokenLifetime: 30 * time.Minute}, issuer.WithHasher(fastHasher))
	if err != nil {
		t.Fatal(err)
	}
	if raw, err := base64.RawURLEncoding.DecodeString(secret); err != nil || len(raw) != 32 {
		t.Errorf("secret %d characters is not 32 bytes of base64url: %v", len(secret), err)
	}
	if _, err := issuer.AddClient(path, cat, issuer.Client{ID: "audit"}, issuer.WithHasher(fastHasher)); err != nil {
		t.Fatal(err)
	}

	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("registry mode %04o, want 0600", fi.Mode().Perm())
	}
	data, _ := os.ReadFile(path)
	if strings.Contains(string(data), secret) || !strings.Contains(string(data), "secret_hash: $argon2id$v=19$m=64,t=1,p=1$") {
		t.Errorf("registry holds the secret or no argon2id hash:\n%s", data)
	}
	if ok, err := fastHasher.Verify(hashOf(t, string(data), "billing"), []byte(secret)); !ok || err != nil {
		t.Errorf("the stored hash does not verify the secret: %v", err)
	}

	clients, err := issuer.ListClients(path)
	if err != nil {
		t.Fatal(err)
	}
	want := []issuer.Client{
		{ID: "audit", Grants: []string{}},
		{ID: "billing", Grants: []string{"LIC.READ_ORDERS", "ORD.READ"}, Tier: "pro", TokenLifetime: 30 * time.Minute},
	}
	if !slices.EqualFunc(clients, want, func(a, b issuer.Client) bool {
		return a.ID == b.ID && slices.Equal(a.Grants, b.Grants) && a.Tier == b.Tier && a.TokenLifetime == b.TokenLifetime
	}) {
		t.Errorf("ListClients = %+v, want %+v", clients, want)
	}

	for _, bad := range []struct {
		name string
		c    issuer.Client
		want string
	}{
		{"existing", issuer.Client{ID: "billing"}, "already exists"},
		{"unknown grant", issuer.Client{ID: "x", Grants: []string{"LIC.READ_ORDERS", "LIC.NOPE"}}, `unknown permission "LIC.NOPE"`},
		{"bad id", issuer.Client{ID: "has space"}, "client id"},
		{"bad tier", issuer.Client{ID: "x", Tier: "a b"}, "tier"},
		{"lifetime too long", issuer.Client{ID: "x", TokenLifetime: 25 * time.Hour}, "above the maximum"},
	} {
		if _, err := issuer.AddClient(path, cat, bad.c, issuer.WithHasher(fastHasher)); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("AddClient %s: %v, want an error containing %q", bad.name, err, bad.want)
		}
	}
	if _, err := issuer.AddClient(path, cat, issuer.Client{ID: "billing"}, issuer.WithHasher(fastHasher)); !errors.Is(err, issuer.ErrClientExists) {
		t.Errorf("AddClient existing: %v, want ErrClientExists", err)
	}

	if err := issuer.RevokeClient(path, "billing"); err != nil {
		t.Fatal(err)
	}
	if err := issuer.RevokeClient(path, "billing"); !errors.Is(err, issuer.ErrUnknownClient) {
		t.Errorf("RevokeClient twice: %v, want ErrUnknownClient", err)
	}
	if clients, _ := issuer.ListClients(path); len(clients) != 1 || clients[0].ID != "audit" {
		t.Errorf("after revoke: %+v", clients)
	}
	if clients, err := issuer.ListClients(filepath.Join(t.TempDir(), "missing.yaml")); err != nil || len(clients) != 0 {
		t.Errorf("ListClients of a missing file: %v %v", clients, err)
	}
}

// hashOf finds a client's secret_hash in a registry file.
func hashOf(t *testing.T, registry, id string) string {
	t.Helper()
	_, rest, ok := strings.Cut(registry, "id: "+id+"\n")
	if !ok {
		t.Fatalf("no client %s in\n%s", id, registry)
	}
	_, rest, _ = strings.Cut(rest, "secret_hash: ")
	hash, _, _ := strings.Cut(rest, "\n")
	return hash
}

func TestConcurrentAddsLoseNothing(t *testing.T) {
	t.Parallel()
	cat := newCatalog(t)
	path := filepath.Join(t.TempDir(), "clients.yaml")
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			if _, err := issuer.AddClient(path, cat, issuer.Client{ID: fmt.Sprintf("client-%d", i)}, issuer.WithHasher(fastHasher)); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if clients, err := issuer.ListClients(path); err != nil || len(clients) != 8 {
		t.Errorf("%d clients after 8 concurrent adds: %v", len(clients), err)
	}
}

func TestUpdateGrantsAndRotateSecret(t *testing.T) {
	t.Parallel()
	cat := newCatalog(t)
	iss := issuertest.Start(t, cat)
	secret := iss.AddClient(t, issuer.Client{ID: "reader", Grants: []string{"ORD.READ"}, Tier: "pro"})

	c, err := issuer.UpdateGrants(iss.RegistryPath, cat, "reader", []string{"LIC.READ_ORDERS", "ORD.READ"})
	if err != nil || c.ID != "reader" || c.Tier != "pro" || !slices.Equal(c.Grants, []string{"LIC.READ_ORDERS", "ORD.READ"}) {
		t.Fatalf("UpdateGrants = %+v, %v", c, err)
	}
	if err := iss.Server.Reload(); err != nil {
		t.Fatal(err)
	}
	if claims, _ := verifyToken(t, iss.URL, iss.Token(t, "reader", secret), time.Now()); claims.Perms["LIC"] != 2 || claims.Perms["ORD"] != 1 {
		t.Errorf("after UpdateGrants the token holds %v", claims.Perms)
	}
	for _, tc := range []struct {
		name string
		err  error
		want string
	}{
		{"unknown permission", func() error {
			_, err := issuer.UpdateGrants(iss.RegistryPath, cat, "reader", []string{"ORD.FLY"})
			return err
		}(), `grants unknown permission "ORD.FLY": not in the catalog`},
		{"unknown client", func() error {
			_, err := issuer.UpdateGrants(iss.RegistryPath, cat, "nobody", nil)
			return err
		}(), `client "nobody": no such client`},
		{"rotate an unknown client", func() error {
			_, err := issuer.RotateSecret(iss.RegistryPath, "nobody", issuer.WithHasher(fastHasher))
			return err
		}(), `client "nobody": no such client`},
	} {
		if tc.err == nil || tc.err.Error() != tc.want {
			t.Errorf("%s: %v, want %q", tc.name, tc.err, tc.want)
		}
	}

	newSecret, err := issuer.RotateSecret(iss.RegistryPath, "reader", issuer.WithHasher(fastHasher))
	if err != nil || len(newSecret) != 43 || newSecret == secret {
		t.Fatalf("RotateSecret = %d characters, %v", len(newSecret), err)
	}
	if err := iss.Server.Reload(); err != nil {
		t.Fatal(err)
	}
	if _, err := iss.Credentials("reader", secret).Token(context.Background()); err == nil {
		t.Error("the old secret still works after the rotation")
	}
	iss.Token(t, "reader", newSecret)
	data, err := os.ReadFile(iss.RegistryPath)
	if err != nil || strings.Contains(string(data), newSecret) {
		t.Errorf("the registry holds the secret, or cannot be read: %v", err)
	}
}

func TestGraphClients(t *testing.T) {
	t.Parallel()
	iss := issuertest.Start(t, newCatalog(t))
	iss.AddClient(t, issuer.Client{ID: "reader", Grants: []string{"ORD.READ"}, Tier: "free"})
	iss.AddClient(t, issuer.Client{ID: "admin", Grants: []string{"PORTCULLIS.READ_CLIENTS"}})
	got, err := issuer.GraphClients(iss.RegistryPath)(context.Background())
	if err != nil || fmt.Sprint(got) != "[{admin [PORTCULLIS.READ_CLIENTS] } {reader [ORD.READ] free}]" {
		t.Errorf("GraphClients = %v, %v", got, err)
	}
	if _, err := issuer.GraphClients(t.TempDir())(context.Background()); err == nil {
		t.Error("a directory as the registry lists clients")
	}
}
