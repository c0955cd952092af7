package issuer_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/portcullis/portcullis/services/issuer"
	"github.com/portcullis/portcullis/services/issuer/issuertest"
)

func TestKeyRotation(t *testing.T) {
	t.Parallel()
	clk := newClock()
	const maxLifetime = 2 * time.Hour
	iss := issuertest.Start(t, newCatalog(t), issuer.WithClock(clk.Now), issuer.WithMaxLifetime(maxLifetime))
	secret := iss.AddClient(t, issuer.Client{ID: "reader", Grants: []string{"ORD.READ"}})

	clk.Advance(10 * time.Minute)
	oldToken := iss.Token(t, "reader", secret)
	oldClaims, oldKid := verifyToken(t, iss.URL, oldToken, clk.Now())

	// Rotate 20 minutes later, to another algorithm.
	clk.Advance(20 * time.Minute)
	rotatedAt := clk.Now()
	newKid := iss.RotateKey(t, issuer.EdDSA, issuer.WithClock(clk.Now), issuer.WithMaxLifetime(maxLifetime))
	if newKid == oldKid {
		t.Fatal("rotation kept the kid")
	}
	newToken := iss.Token(t, "reader", secret)
	if _, kid := verifyToken(t, iss.URL, newToken, clk.Now()); kid != newKid {
		t.Errorf("new token signed by %s, want the new key %s", kid, newKid)
	}
	if got := kids(fetchJWKS(t, iss.URL)); !slices.Equal(got, []string{oldKid, newKid}) {
		t.Errorf("JWKS after rotation: %v, want old and new %v", got, []string{oldKid, newKid})
	}

	// The old key's token verifies until it expires.
	clk.Set(time.Unix(oldClaims.Expiry, 0).Add(-time.Second))
	verifyToken(t, iss.URL, oldToken, clk.Now())
	clk.Set(time.Unix(oldClaims.Expiry, 0))
	if _, _, err := checkToken(t, iss.URL, oldToken, clk.Now()); err == nil {
		t.Error("the old token verifies after it expired")
	}

	// The old key stays published for the maximum lifetime plus the
	// margin after its retirement: no token it signed can outlive that.
	expires := rotatedAt.Add(maxLifetime + issuer.RetentionMargin)
	keys, err := issuer.ListKeys(iss.KeyDir, issuer.WithClock(clk.Now), issuer.WithMaxLifetime(maxLifetime))
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 2 || keys[0].State != issuer.KeyRetired || !keys[0].Expires.Equal(expires) || keys[1].State != issuer.KeyActive || keys[1].Algorithm != issuer.EdDSA {
		t.Errorf("keys %+v; want the old retired until %s, the new EdDSA active", keys, expires)
	}
	clk.Set(expires.Add(-time.Second))
	if got := kids(fetchJWKS(t, iss.URL)); !slices.Equal(got, []string{oldKid, newKid}) {
		t.Errorf("JWKS a second before the old key expires: %v", got)
	}
	clk.Set(expires)
	if got := kids(fetchJWKS(t, iss.URL)); !slices.Equal(got, []string{newKid}) {
		t.Errorf("JWKS once the old key expired: %v, want only %s", got, newKid)
	}

	// The next rotation deletes the expired key's file.
	third := iss.RotateKey(t, issuer.ES256, issuer.WithClock(clk.Now), issuer.WithMaxLifetime(maxLifetime))
	if _, err := os.Stat(filepath.Join(iss.KeyDir, oldKid+".jwk")); !os.IsNotExist(err) {
		t.Errorf("expired key file still there: %v", err)
	}
	if got := kids(fetchJWKS(t, iss.URL)); !slices.Equal(got, []string{newKid, third}) {
		t.Errorf("JWKS after the second rotation: %v", got)
	}
}

func TestRotationWithActivationDelay(t *testing.T) {
	t.Parallel()
	clk := newClock()
	iss := issuertest.Start(t, newCatalog(t), issuer.WithClock(clk.Now))
	secret := iss.AddClient(t, issuer.Client{ID: "reader"})
	_, first := verifyToken(t, iss.URL, iss.Token(t, "reader", secret), clk.Now())

	clk.Advance(time.Hour)
	next := iss.RotateKey(t, issuer.ES256, issuer.WithClock(clk.Now), issuer.WithActivationDelay(10*time.Minute))
	// Published at once, signing later.
	if got := kids(fetchJWKS(t, iss.URL)); !slices.Equal(got, []string{first, next}) {
		t.Errorf("JWKS: %v, want both", got)
	}
	if _, kid := verifyToken(t, iss.URL, iss.Token(t, "reader", secret), clk.Now()); kid != first {
		t.Errorf("signed by %s before the activation, want %s", kid, first)
	}
	if _, err := issuer.RotateKey(iss.KeyDir, issuer.ES256, issuer.WithClock(clk.Now)); err == nil || !strings.Contains(err.Error(), "already waits") {
		t.Errorf("rotating while a key waits: %v", err)
	}
	clk.Advance(10 * time.Minute)
	if _, kid := verifyToken(t, iss.URL, iss.Token(t, "reader", secret), clk.Now()); kid != next {
		t.Errorf("signed by %s after the activation, want %s", kid, next)
	}
}

func TestRotationIsPickedUpWithoutReload(t *testing.T) {
	t.Parallel()
	clk := newClock()
	iss := issuertest.Start(t, newCatalog(t), issuer.WithClock(clk.Now), issuer.WithReloadInterval(10*time.Millisecond))
	secret := iss.AddClient(t, issuer.Client{ID: "reader"})
	_, first := verifyToken(t, iss.URL, iss.Token(t, "reader", secret), clk.Now())
	clk.Advance(time.Hour)
	// Write the key without telling the issuer: polling finds it.
	k, err := issuer.RotateKey(iss.KeyDir, issuer.ES256, issuer.WithClock(clk.Now))
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, func() bool {
		_, kid, err := checkToken(t, iss.URL, iss.Token(t, "reader", secret), clk.Now())
		return err == nil && kid == k.KID && kid != first
	})
}

// eventually waits up to 5 seconds for cond, for tests of polling.
func eventually(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestKeyFiles(t *testing.T) {
	t.Parallel()
	iss := issuertest.Start(t, newCatalog(t))
	fi, err := os.Stat(iss.KeyDir)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o700 {
		t.Errorf("key directory mode %04o, want 0700", fi.Mode().Perm())
	}
	entries, _ := os.ReadDir(iss.KeyDir)
	if len(entries) != 1 {
		t.Fatalf("key directory holds %d files, want 1", len(entries))
	}
	kid := kids(fetchJWKS(t, iss.URL))[0]
	path := filepath.Join(iss.KeyDir, entries[0].Name())
	if entries[0].Name() != kid+".jwk" {
		t.Errorf("key file %s, want %s.jwk", entries[0].Name(), kid)
	}
	fi, _ = os.Stat(path)
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %04o, want 0600", fi.Mode().Perm())
	}
	var private map[string]any
	data, _ := os.ReadFile(path)
	if err := json.Unmarshal(data, &private); err != nil {
		t.Fatal(err)
	}
	for _, member := range []string{"d", "kid", "alg", "created_at", "activates_at"} {
		if _, ok := private[member]; !ok {
			t.Errorf("key file lacks %q", member)
		}
	}
	// The JWKS publishes the public half only.
	res := request(t, "GET", iss.URL+issuer.JWKSPath, nil, "")
	var jwks struct{ Keys []map[string]any }
	if err := json.Unmarshal(res.body, &jwks); err != nil {
		t.Fatal(err)
	}
	if len(jwks.Keys) != 1 {
		t.Fatalf("JWKS %s", res.body)
	}
	for member := range jwks.Keys[0] {
		if !slices.Contains([]string{"kty", "crv", "x", "y", "kid", "alg", "use"}, member) {
			t.Errorf("JWKS publishes %q", member)
		}
	}

	// A restart on the same directory keeps the key.
	srv, err := issuer.New(issuer.Config{IssuerURL: iss.URL, Audience: "a", KeyDir: iss.KeyDir, RegistryPath: iss.RegistryPath},
		newCatalog(t), issuer.WithLogger(discardLogger()), issuer.WithHasher(fastHasher), issuer.WithReloadInterval(0))
	if err != nil {
		t.Fatal(err)
	}
	srv.Close()
	if entries, _ := os.ReadDir(iss.KeyDir); len(entries) != 1 {
		t.Errorf("restart added keys: %d files", len(entries))
	}
}

func TestKeyDirectoryErrors(t *testing.T) {
	t.Parallel()
	// A valid key file to spoil.
	src := issuertest.Start(t, newCatalog(t))
	entries, _ := os.ReadDir(src.KeyDir)
	name := entries[0].Name()
	valid, err := os.ReadFile(filepath.Join(src.KeyDir, name))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		setup func(t *testing.T, dir string)
		want  string
	}{
		{"group-readable key", func(t *testing.T, dir string) {
			os.WriteFile(filepath.Join(dir, name), valid, 0o640)
			os.Chmod(filepath.Join(dir, name), 0o640)
		}, "chmod 600"},
		{"world-writable directory", func(t *testing.T, dir string) {
			os.Chmod(dir, 0o777)
		}, "chmod 700"},
		{"renamed key", func(t *testing.T, dir string) {
			os.WriteFile(filepath.Join(dir, "other.jwk"), valid, 0o600)
		}, "must be named"},
		{"kid not the thumbprint", func(t *testing.T, dir string) {
			var m map[string]any
			json.Unmarshal(valid, &m)
			m["kid"] = "chosen"
			b, _ := json.Marshal(m)
			os.WriteFile(filepath.Join(dir, "chosen.jwk"), b, 0o600)
		}, "is not the key's thumbprint"},
		{"public key only", func(t *testing.T, dir string) {
			var m map[string]any
			json.Unmarshal(valid, &m)
			delete(m, "d")
			b, _ := json.Marshal(m)
			os.WriteFile(filepath.Join(dir, name), b, 0o600)
		}, "not a private key"},
		{"no activation time", func(t *testing.T, dir string) {
			var m map[string]any
			json.Unmarshal(valid, &m)
			delete(m, "activates_at")
			b, _ := json.Marshal(m)
			os.WriteFile(filepath.Join(dir, name), b, 0o600)
		}, `no "activates_at"`},
		{"not JSON", func(t *testing.T, dir string) {
			os.WriteFile(filepath.Join(dir, name), []byte("-----BEGIN PRIVATE KEY-----"), 0o600)
		}, "not a JWK"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			tt.setup(t, dir)
			srv, err := issuer.New(issuer.Config{IssuerURL: "http://127.0.0.1:1", Audience: "a", KeyDir: dir, RegistryPath: filepath.Join(dir, "clients.yaml")},
				newCatalog(t), issuer.WithLogger(discardLogger()), issuer.WithHasher(fastHasher), issuer.WithReloadInterval(0))
			if err == nil {
				srv.Close()
				t.Fatal("New succeeded")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
		})
	}
}

func TestBadKeyOnReloadKeepsTheKeys(t *testing.T) {
	t.Parallel()
	clk := newClock()
	iss := issuertest.Start(t, newCatalog(t), issuer.WithClock(clk.Now))
	secret := iss.AddClient(t, issuer.Client{ID: "reader"})
	before := kids(fetchJWKS(t, iss.URL))
	if err := os.WriteFile(filepath.Join(iss.KeyDir, "junk.jwk"), []byte("{}"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := iss.Server.Reload(); err == nil || !strings.Contains(err.Error(), "junk.jwk") {
		t.Errorf("Reload: %v, want an error naming junk.jwk", err)
	}
	if got := kids(fetchJWKS(t, iss.URL)); !slices.Equal(got, before) {
		t.Errorf("JWKS %v, want %v", got, before)
	}
	verifyToken(t, iss.URL, iss.Token(t, "reader", secret), clk.Now())
}

func TestRotateKeyRejectsUnknownAlgorithm(t *testing.T) {
	t.Parallel()
	if _, err := issuer.RotateKey(t.TempDir(), "none"); err == nil || !strings.Contains(err.Error(), `"none" is not supported`) {
		t.Errorf("RotateKey none: %v", err)
	}
}

func TestRotationSignsAtOnce(t *testing.T) {
	t.Parallel()
	// On the real clock, as an end-to-end test would rotate: the very next
	// token uses the new key.
	iss := issuertest.Start(t, newCatalog(t))
	secret := iss.AddClient(t, issuer.Client{ID: "reader"})
	_, first := verifyToken(t, iss.URL, iss.Token(t, "reader", secret), time.Now())
	next := iss.RotateKey(t, issuer.ES256)
	if _, kid := verifyToken(t, iss.URL, iss.Token(t, "reader", secret), time.Now()); kid != next || kid == first {
		t.Errorf("signed by %s after rotating from %s to %s", kid, first, next)
	}
}
