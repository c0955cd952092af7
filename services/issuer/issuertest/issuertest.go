// Package issuertest runs a token issuer on 127.0.0.1 for tests, on a
// temporary directory, in one call:
//
//	iss := issuertest.Start(t, cat)
//	secret := iss.AddClient(t, issuer.Client{ID: "reader", Grants: []string{"LIC.READ_ORDERS"}})
//	token := iss.Token(t, "reader", secret)
//	// verify with iss.URL as the trusted issuer and issuertest.Audience
package issuertest

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/portcullis/portcullis/gateway/catalog"
	"github.com/portcullis/portcullis/services/issuer"
)

// Audience is the aud claim of the test issuer's tokens.
const Audience = "portcullis-test"

// Hasher returns the secret hasher of the test issuer: argon2id with
// parameters far below what production needs, so that tests run fast.
func Hasher() issuer.Hasher { return issuer.Argon2id{Memory: 64, Iterations: 1, Threads: 1} }

// Issuer is a token issuer serving HTTP/1.1 and HTTP/2 (h2c) on 127.0.0.1.
type Issuer struct {
	// URL is the issuer URL: its tokens' iss claim, and the base of its
	// endpoints (URL + issuer.TokenPath, URL + issuer.JWKSPath).
	URL string
	// Server is the issuer.
	Server *issuer.Server
	// HTTP is the HTTP server it runs on.
	HTTP *httptest.Server
	// KeyDir and RegistryPath are where its keys and clients are.
	KeyDir, RegistryPath string

	cat *catalog.Catalog
}

// Start starts an issuer whose catalog is cat, with keys and registry in a
// temporary directory, and stops it when the test ends. It polls for
// nothing: AddClient and RevokeClient reload it. opts come after the
// defaults (Hasher, no polling, no logs) and may override them.
func Start(t testing.TB, cat *catalog.Catalog, opts ...issuer.Option) *Issuer {
	t.Helper()
	dir := t.TempDir()
	hs := httptest.NewUnstartedServer(nil)
	hs.Config.Protocols = new(http.Protocols)
	hs.Config.Protocols.SetHTTP1(true)
	hs.Config.Protocols.SetUnencryptedHTTP2(true)
	i := &Issuer{
		URL:          "http://" + hs.Listener.Addr().String(),
		HTTP:         hs,
		KeyDir:       filepath.Join(dir, "keys"),
		RegistryPath: filepath.Join(dir, "clients.yaml"),
		cat:          cat,
	}
	defaults := []issuer.Option{
		issuer.WithHasher(Hasher()),
		issuer.WithReloadInterval(0),
		issuer.WithRevocationPollInterval(0),
		issuer.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))),
	}
	srv, err := issuer.New(issuer.Config{
		IssuerURL:    i.URL,
		Audience:     Audience,
		KeyDir:       i.KeyDir,
		RegistryPath: i.RegistryPath,
	}, cat, append(defaults, opts...)...)
	if err != nil {
		hs.Listener.Close()
		t.Fatalf("issuertest: %v", err)
	}
	i.Server = srv
	hs.Config.Handler = srv.Handler()
	hs.Start()
	t.Cleanup(func() {
		hs.Close()
		srv.Close()
	})
	return i
}

// AddClient registers c, reloads the issuer, and returns the client's
// secret.
func (i *Issuer) AddClient(t testing.TB, c issuer.Client) string {
	t.Helper()
	secret, err := issuer.AddClient(i.RegistryPath, i.cat, c, issuer.WithHasher(Hasher()))
	if err != nil {
		t.Fatalf("issuertest: add client %q: %v", c.ID, err)
	}
	i.reload(t)
	return secret
}

// RevokeClient removes the client id, revoking its tokens, and reloads
// the issuer.
func (i *Issuer) RevokeClient(t testing.TB, id string) {
	t.Helper()
	if err := issuer.RevokeClient(i.RegistryPath, id); err != nil {
		t.Fatalf("issuertest: revoke client %q: %v", id, err)
	}
	i.reload(t)
}

// RotateKey adds a new signing key of alg that signs at once, reloads the
// issuer, and returns the new key's kid. opts are passed to
// issuer.RotateKey: give it the issuer's clock, if it has one.
func (i *Issuer) RotateKey(t testing.TB, alg string, opts ...issuer.Option) string {
	t.Helper()
	k, err := issuer.RotateKey(i.KeyDir, alg, opts...)
	if err != nil {
		t.Fatalf("issuertest: rotate key: %v", err)
	}
	i.reload(t)
	return k.KID
}

func (i *Issuer) reload(t testing.TB) {
	t.Helper()
	if err := i.Server.Reload(); err != nil {
		t.Fatalf("issuertest: reload: %v", err)
	}
}

// Credentials returns the standard OAuth client configuration of a client,
// authenticating with HTTP Basic (client_secret_basic).
func (i *Issuer) Credentials(id, secret string, scopes ...string) *clientcredentials.Config {
	return &clientcredentials.Config{
		ClientID:     id,
		ClientSecret: secret,
		TokenURL:     i.Server.TokenURL(),
		Scopes:       scopes,
		AuthStyle:    oauth2.AuthStyleInHeader,
	}
}

// Token gets an access token for a client with the standard OAuth client.
func (i *Issuer) Token(t testing.TB, id, secret string, scopes ...string) string {
	t.Helper()
	tok, err := i.Credentials(id, secret, scopes...).Token(context.Background())
	if err != nil {
		t.Fatalf("issuertest: token for %q: %v", id, err)
	}
	return tok.AccessToken
}
