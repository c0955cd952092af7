package token_test

import (
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/portcullis/portcullis/gateway/token"
	"github.com/portcullis/portcullis/internal/jwttest"
	"github.com/portcullis/portcullis/internal/logtest"
)

// An issuer's key set file is read again when it changes: after a
// rotation on disk the new key's tokens verify and the old key's, even
// those verified before, are refused; a broken file is logged once and
// leaves the keys read last serving.
func TestKeyFileFollowed(t *testing.T) {
	t.Parallel()
	const iss = "https://file.test"
	oldKey, newKey := jwttest.NewEC("old"), jwttest.NewEC("new")
	file := filepath.Join(t.TempDir(), "jwks.json")
	write := func(data []byte) {
		t.Helper()
		// Written beside and renamed, as a rotation should be.
		if err := os.WriteFile(file+".tmp", data, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(file+".tmp", file); err != nil {
			t.Fatal(err)
		}
	}
	write(jwttest.JWKS(oldKey))
	logs := new(logtest.Buffer)
	v, err := token.NewVerifier(t.Context(), []token.Issuer{{Issuer: iss, Audiences: []string{audience}, JWKSFile: file}},
		token.WithLogger(slog.New(slog.NewTextHandler(logs, nil))))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(v.Close)
	mint := func(k *jwttest.Signer) string { return k.Mint(nil, jwttest.ClaimsAt(iss, audience, time.Now())) }
	before := mint(oldKey)
	if _, err := v.Verify(t.Context(), before); err != nil {
		t.Fatalf("a token of the file's key: %v", err)
	}

	write(jwttest.JWKS(newKey))
	deadline := time.Now().Add(10 * time.Second)
	for _, err := v.Verify(t.Context(), mint(newKey)); err != nil; _, err = v.Verify(t.Context(), mint(newKey)) {
		if time.Now().After(deadline) {
			t.Fatalf("the new key's tokens after the rotation: still %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, raw := range []string{before, mint(oldKey)} {
		if _, err := v.Verify(t.Context(), raw); err == nil || v.Cached(raw) {
			t.Errorf("a token of the rotated-out key verifies (cached %v)", v.Cached(raw))
		}
	}

	write([]byte(`{"keys": [`)) // cut short
	time.Sleep(2500 * time.Millisecond)
	if _, err := v.Verify(t.Context(), mint(newKey)); err != nil {
		t.Errorf("after a broken file: %v, want the keys read last to serve", err)
	}
	if n := strings.Count(logs.String(), "token issuer key file refused"); n != 1 {
		t.Errorf("the broken file was logged %d times, want once:\n%s", n, logs)
	}
	if !strings.Contains(logs.String(), "token issuer key file read again") {
		t.Errorf("the rotation was not logged:\n%s", logs)
	}

	// A key set that parses but holds no key for signatures: the issuer
	// is left with none, as with a fetched one, and says so.
	write([]byte(strings.Replace(string(jwttest.JWKS(newKey)), `"use":"sig"`, `"use":"enc"`, 1)))
	deadline = time.Now().Add(10 * time.Second)
	for _, err := v.Verify(t.Context(), mint(newKey)); err == nil; _, err = v.Verify(t.Context(), mint(newKey)) {
		if time.Now().After(deadline) {
			t.Fatal("a key set with no key for signatures: the new key's tokens still verify")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !strings.Contains(logs.String(), "token issuer key file holds no usable key") {
		t.Errorf("the unusable key set was not logged:\n%s", logs)
	}
}
