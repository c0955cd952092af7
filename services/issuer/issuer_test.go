package issuer_test

import (
	"context"
	"maps"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jws"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/portcullis/portcullis/services/issuer"
	"github.com/portcullis/portcullis/services/issuer/issuertest"
)

func TestClientCredentials(t *testing.T) {
	t.Parallel()
	clk := newClock()
	iss := issuertest.Start(t, newCatalog(t), issuer.WithClock(clk.Now))
	secret := iss.AddClient(t, issuer.Client{
		ID:     "billing-sync",
		Grants: []string{"ORD.READ", "LIC.READ_ORDERS", "LIC.READ_REQUIREMENTS"},
		Tier:   "pro",
	})
	tests := []struct {
		name   string
		style  oauth2.AuthStyle
		client *http.Client
	}{
		{"client_secret_basic over HTTP/1.1", oauth2.AuthStyleInHeader, http.DefaultClient},
		{"client_secret_post over HTTP/2", oauth2.AuthStyleInParams, h2cClient()},
		{"auto-detected", oauth2.AuthStyleAutoDetect, http.DefaultClient},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := clientcredentials.Config{
				ClientID:     "billing-sync",
				ClientSecret: secret,
				TokenURL:     iss.URL + issuer.TokenPath,
				AuthStyle:    tt.style,
			}
			ctx := context.WithValue(context.Background(), oauth2.HTTPClient, tt.client)
			tok, err := cfg.Token(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if tok.TokenType != "Bearer" || tok.Extra("expires_in") != 3600.0 {
				t.Errorf("token_type %q, expires_in %v; want Bearer, 3600", tok.TokenType, tok.Extra("expires_in"))
			}
			const scope = "LIC.READ_REQUIREMENTS LIC.READ_ORDERS ORD.READ"
			if got := tok.Extra("scope"); got != scope {
				t.Errorf("response scope = %v, want %q", got, scope)
			}
			claims, _ := verifyToken(t, iss.URL, tok.AccessToken, clk.Now())
			iat := clk.Now().Unix()
			want := tokenClaims{
				Issuer:    iss.URL,
				Subject:   "billing-sync",
				Audience:  issuertest.Audience,
				Expiry:    iat + 3600,
				IssuedAt:  iat,
				NotBefore: iat,
				ID:        claims.ID,
				ClientID:  "billing-sync",
				Scope:     scope,
				Perms:     map[string]uint64{"LIC": 1 | 2, "ORD": 1},
				Tier:      "pro",
			}
			if !equalClaims(claims, want) {
				t.Errorf("claims\n got %+v\nwant %+v", claims, want)
			}
			if len(claims.ID) != 22 { // 128 bits, base64url
				t.Errorf("jti %q is not 128 bits", claims.ID)
			}
		})
	}
}

func equalClaims(a, b tokenClaims) bool {
	return maps.Equal(a.Perms, b.Perms) && a.Issuer == b.Issuer && a.Subject == b.Subject &&
		a.Audience == b.Audience && a.Expiry == b.Expiry && a.IssuedAt == b.IssuedAt &&
		a.NotBefore == b.NotBefore && a.ID == b.ID && a.ClientID == b.ClientID &&
		a.Scope == b.Scope && a.Tier == b.Tier
}

func TestTokensAreUnique(t *testing.T) {
	t.Parallel()
	clk := newClock()
	iss := issuertest.Start(t, newCatalog(t), issuer.WithClock(clk.Now))
	secret := iss.AddClient(t, issuer.Client{ID: "c", Grants: []string{"ORD.READ"}})
	a, _ := verifyToken(t, iss.URL, iss.Token(t, "c", secret), clk.Now())
	b, _ := verifyToken(t, iss.URL, iss.Token(t, "c", secret), clk.Now())
	if a.ID == b.ID {
		t.Errorf("two tokens share jti %q", a.ID)
	}
}

func TestDownScoping(t *testing.T) {
	t.Parallel()
	clk := newClock()
	iss := issuertest.Start(t, newCatalog(t), issuer.WithClock(clk.Now))
	secret := iss.AddClient(t, issuer.Client{ID: "reader", Grants: []string{"LIC.READ_REQUIREMENTS", "LIC.READ_ORDERS", "ORD.READ"}})
	tests := []struct {
		name      string
		scopes    []string
		wantScope string
		wantPerms map[string]uint64
	}{
		{"all granted by default", nil, "LIC.READ_REQUIREMENTS LIC.READ_ORDERS ORD.READ", map[string]uint64{"LIC": 3, "ORD": 1}},
		{"one domain", []string{"ORD.READ"}, "ORD.READ", map[string]uint64{"ORD": 1}},
		{"one permission of a domain", []string{"LIC.READ_ORDERS"}, "LIC.READ_ORDERS", map[string]uint64{"LIC": 2}},
		{"unordered with a repeat", []string{"ORD.READ", "LIC.READ_ORDERS", "ORD.READ"}, "LIC.READ_ORDERS ORD.READ", map[string]uint64{"LIC": 2, "ORD": 1}},
		{"everything, named", []string{"ORD.READ", "LIC.READ_ORDERS", "LIC.READ_REQUIREMENTS"}, "LIC.READ_REQUIREMENTS LIC.READ_ORDERS ORD.READ", map[string]uint64{"LIC": 3, "ORD": 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tok, err := iss.Credentials("reader", secret, tt.scopes...).Token(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if got := tok.Extra("scope"); got != tt.wantScope {
				t.Errorf("response scope = %v, want %q", got, tt.wantScope)
			}
			claims, _ := verifyToken(t, iss.URL, tok.AccessToken, clk.Now())
			if claims.Scope != tt.wantScope || !maps.Equal(claims.Perms, tt.wantPerms) {
				t.Errorf("token scope %q perms %v; want %q %v", claims.Scope, claims.Perms, tt.wantScope, tt.wantPerms)
			}
		})
	}
}

func TestClientWithoutGrants(t *testing.T) {
	t.Parallel()
	clk := newClock()
	iss := issuertest.Start(t, newCatalog(t), issuer.WithClock(clk.Now))
	secret := iss.AddClient(t, issuer.Client{ID: "nobody-special", TokenLifetime: 5 * time.Minute})
	tok, err := iss.Credentials("nobody-special", secret).Token(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if tok.Extra("expires_in") != 300.0 || tok.Extra("scope") != nil {
		t.Errorf("expires_in %v, scope %v; want 300 and none", tok.Extra("expires_in"), tok.Extra("scope"))
	}
	claims, _ := verifyToken(t, iss.URL, tok.AccessToken, clk.Now())
	if claims.Perms == nil || len(claims.Perms) != 0 || claims.Scope != "" || claims.Expiry-claims.IssuedAt != 300 {
		t.Errorf("claims %+v; want empty perms, no scope, 5m lifetime", claims)
	}
}

func TestAlgorithms(t *testing.T) {
	t.Parallel()
	for _, alg := range []string{issuer.ES256, issuer.RS256, issuer.EdDSA} {
		t.Run(alg, func(t *testing.T) {
			t.Parallel()
			clk := newClock()
			dir := t.TempDir()
			l, url := listen(t)
			srv, err := issuer.New(issuer.Config{
				IssuerURL:    url,
				Audience:     issuertest.Audience,
				KeyDir:       filepath.Join(dir, "keys"),
				Algorithm:    alg,
				RegistryPath: filepath.Join(dir, "clients.yaml"),
			}, newCatalog(t), issuer.WithClock(clk.Now), issuer.WithHasher(fastHasher), issuer.WithLogger(discardLogger()))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { srv.Close() })
			hs := httptest.NewUnstartedServer(srv.Handler())
			hs.Listener.Close()
			hs.Listener = l
			hs.Start()
			t.Cleanup(hs.Close)
			secret, err := issuer.AddClient(filepath.Join(dir, "clients.yaml"), newCatalog(t), issuer.Client{ID: "c", Grants: []string{"ORD.READ"}}, issuer.WithHasher(fastHasher))
			if err != nil {
				t.Fatal(err)
			}
			if err := srv.Reload(); err != nil {
				t.Fatal(err)
			}
			cfg := clientcredentials.Config{ClientID: "c", ClientSecret: secret, TokenURL: srv.TokenURL(), AuthStyle: oauth2.AuthStyleInHeader}
			tok, err := cfg.Token(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			msg, err := jws.Parse([]byte(tok.AccessToken))
			if err != nil {
				t.Fatal(err)
			}
			if got := msg.Signatures()[0].ProtectedHeaders().Algorithm().String(); got != alg {
				t.Errorf("alg = %s, want %s", got, alg)
			}
			claims, _ := verifyToken(t, url, tok.AccessToken, clk.Now())
			if claims.Perms["ORD"] != 1 {
				t.Errorf("perms = %v", claims.Perms)
			}
		})
	}
}

func TestNewErrors(t *testing.T) {
	t.Parallel()
	cat := newCatalog(t)
	valid := func(dir string) issuer.Config {
		return issuer.Config{
			IssuerURL:    "https://auth.example.com",
			Audience:     "api",
			KeyDir:       filepath.Join(dir, "keys"),
			RegistryPath: filepath.Join(dir, "clients.yaml"),
		}
	}
	tests := []struct {
		name   string
		change func(*issuer.Config)
		opts   []issuer.Option
		want   string
	}{
		{"no issuer", func(c *issuer.Config) { c.IssuerURL = "" }, nil, "no issuer URL"},
		{"issuer with query", func(c *issuer.Config) { c.IssuerURL = "https://auth.example.com/?a=b" }, nil, "no user, query or fragment"},
		{"issuer with fragment", func(c *issuer.Config) { c.IssuerURL = "https://auth.example.com/#x" }, nil, "no user, query or fragment"},
		{"issuer not http", func(c *issuer.Config) { c.IssuerURL = "ftp://auth.example.com" }, nil, "http or https"},
		{"issuer without host", func(c *issuer.Config) { c.IssuerURL = "https:///x" }, nil, "with a host"},
		{"issuer path with braces", func(c *issuer.Config) { c.IssuerURL = "https://auth.example.com/{x}" }, nil, "path"},
		{"no audience", func(c *issuer.Config) { c.Audience = "" }, nil, "no audience"},
		{"no registry", func(c *issuer.Config) { c.RegistryPath = "" }, nil, "no registry path"},
		{"no key dir", func(c *issuer.Config) { c.KeyDir = "" }, nil, "no key directory"},
		{"HS256", func(c *issuer.Config) { c.Algorithm = "HS256" }, nil, `"HS256" is not supported`},
		{"lifetime above max", func(c *issuer.Config) { c.DefaultLifetime = 2 * time.Hour }, []issuer.Option{issuer.WithMaxLifetime(time.Hour)}, "default token lifetime 2h0m0s"},
		{"reload too slow", nil, []issuer.Option{issuer.WithReloadInterval(time.Hour)}, "reload interval"},
		{"no failure burst", nil, []issuer.Option{issuer.WithFailureLimit(0, time.Second)}, "failure limit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := valid(t.TempDir())
			if tt.change != nil {
				tt.change(&cfg)
			}
			srv, err := issuer.New(cfg, cat, append(tt.opts, issuer.WithLogger(discardLogger()), issuer.WithHasher(fastHasher))...)
			if err == nil {
				srv.Close()
				t.Fatal("New succeeded")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
		})
	}
	if _, err := issuer.New(valid(t.TempDir()), nil); err == nil || !strings.Contains(err.Error(), "no catalog") {
		t.Errorf("New without catalog: %v", err)
	}
}
