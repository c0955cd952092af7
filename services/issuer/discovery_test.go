package issuer_test

import (
	"encoding/json"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"testing"

	"github.com/portcullis/portcullis/services/issuer"
	"github.com/portcullis/portcullis/services/issuer/issuertest"
)

type metadataDoc struct {
	Issuer                            string   `json:"issuer"`
	TokenEndpoint                     string   `json:"token_endpoint"`
	JWKSURI                           string   `json:"jwks_uri"`
	ScopesSupported                   []string `json:"scopes_supported"`
	ResponseTypesSupported            []string `json:"response_types_supported"`
	GrantTypesSupported               []string `json:"grant_types_supported"`
	TokenEndpointAuthMethodsSupported []string `json:"token_endpoint_auth_methods_supported"`

	RevocationEndpoint                     string   `json:"revocation_endpoint"`
	RevocationEndpointAuthMethodsSupported []string `json:"revocation_endpoint_auth_methods_supported"`
	RevocationFeedEndpoint                 string   `json:"revocation_feed_endpoint"`

	IntrospectionEndpoint                     string   `json:"introspection_endpoint"`
	IntrospectionEndpointAuthMethodsSupported []string `json:"introspection_endpoint_auth_methods_supported"`
}

func TestMetadata(t *testing.T) {
	t.Parallel()
	// An issuer URL with a path: RFC 8414 puts the well-known path before
	// it, OpenID Connect discovery after it.
	l, base := listen(t)
	dir := t.TempDir()
	srv, err := issuer.New(issuer.Config{
		IssuerURL:    base + "/tenant-a",
		Audience:     "api",
		KeyDir:       filepath.Join(dir, "keys"),
		RegistryPath: filepath.Join(dir, "clients.yaml"),
	}, newCatalog(t), issuer.WithLogger(discardLogger()), issuer.WithHasher(fastHasher))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	hs := httptest.NewUnstartedServer(srv.Handler())
	hs.Listener.Close()
	hs.Listener = l
	hs.Start()
	t.Cleanup(hs.Close)

	issuerURL := base + "/tenant-a"
	want := metadataDoc{
		Issuer:                            issuerURL,
		TokenEndpoint:                     issuerURL + "/oauth2/token",
		JWKSURI:                           issuerURL + "/.well-known/jwks.json",
		ScopesSupported:                   []string{"LIC.READ_REQUIREMENTS", "LIC.READ_ORDERS", "LIC.WRITE_ORDERS", "ORD.READ", "ORD.WRITE", "PORTCULLIS.READ_CLIENTS", "PORTCULLIS.MANAGE_CLIENTS"},
		ResponseTypesSupported:            []string{},
		GrantTypesSupported:               []string{"client_credentials"},
		TokenEndpointAuthMethodsSupported: []string{"client_secret_basic", "client_secret_post"},

		RevocationEndpoint:                     issuerURL + "/oauth2/revoke",
		RevocationEndpointAuthMethodsSupported: []string{"client_secret_basic", "client_secret_post"},
		RevocationFeedEndpoint:                 issuerURL + "/revocations",

		IntrospectionEndpoint:                     issuerURL + "/oauth2/introspect",
		IntrospectionEndpointAuthMethodsSupported: []string{"client_secret_basic", "client_secret_post"},
	}
	for _, path := range []string{"/.well-known/oauth-authorization-server/tenant-a", "/tenant-a/.well-known/openid-configuration"} {
		res := request(t, "GET", base+path, nil, "")
		if res.status != 200 || res.header.Get("Content-Type") != "application/json" || res.header.Get("Cache-Control") != "public, max-age=300" {
			t.Errorf("%s: %d %v", path, res.status, res.header)
			continue
		}
		var got metadataDoc
		if err := json.Unmarshal(res.body, &got); err != nil {
			t.Fatal(err)
		}
		if got.Issuer != want.Issuer || got.TokenEndpoint != want.TokenEndpoint || got.JWKSURI != want.JWKSURI ||
			!slices.Equal(got.ScopesSupported, want.ScopesSupported) || got.ResponseTypesSupported == nil ||
			!slices.Equal(got.GrantTypesSupported, want.GrantTypesSupported) ||
			!slices.Equal(got.TokenEndpointAuthMethodsSupported, want.TokenEndpointAuthMethodsSupported) ||
			got.RevocationEndpoint != want.RevocationEndpoint || got.RevocationFeedEndpoint != want.RevocationFeedEndpoint ||
			!slices.Equal(got.RevocationEndpointAuthMethodsSupported, want.RevocationEndpointAuthMethodsSupported) ||
			got.IntrospectionEndpoint != want.IntrospectionEndpoint ||
			!slices.Equal(got.IntrospectionEndpointAuthMethodsSupported, want.IntrospectionEndpointAuthMethodsSupported) {
			t.Errorf("%s:\n got %+v\nwant %+v", path, got, want)
		}
	}
	// The endpoints it names are where it serves.
	if res := request(t, "GET", want.JWKSURI, nil, ""); res.status != 200 {
		t.Errorf("jwks_uri: %d", res.status)
	}
	if res := request(t, "POST", want.TokenEndpoint, form("", ""), "grant_type=client_credentials"); res.status != 401 {
		t.Errorf("token_endpoint: %d", res.status)
	}
	if res := request(t, "POST", want.RevocationEndpoint, form("", ""), "token=x"); res.status != 401 {
		t.Errorf("revocation_endpoint: %d", res.status)
	}
	if res := request(t, "POST", want.IntrospectionEndpoint, form("", ""), "token=x"); res.status != 401 {
		t.Errorf("introspection_endpoint: %d", res.status)
	}
	if res := request(t, "GET", want.RevocationFeedEndpoint, nil, ""); res.status != 200 || res.header.Get("Content-Type") != "application/json" {
		t.Errorf("revocation_feed_endpoint: %d", res.status)
	}
	if res := request(t, "GET", base+"/.well-known/jwks.json", nil, ""); res.status != 404 {
		t.Errorf("JWKS outside the issuer path: %d, want 404", res.status)
	}
}

func TestJWKSCaching(t *testing.T) {
	t.Parallel()
	clk := newClock()
	iss := issuertest.Start(t, newCatalog(t), issuer.WithClock(clk.Now), issuer.WithJWKSMaxAge(120e9))
	first := request(t, "GET", iss.URL+issuer.JWKSPath, nil, "")
	etag := first.header.Get("ETag")
	if first.status != 200 || etag == "" || first.header.Get("Cache-Control") != "public, max-age=120" || first.header.Get("Content-Type") != "application/jwk-set+json" {
		t.Fatalf("JWKS: %d %v", first.status, first.header)
	}
	for _, inm := range []string{etag, "W/" + etag, `"other", ` + etag, "*"} {
		res := request(t, "GET", iss.URL+issuer.JWKSPath, map[string][]string{"If-None-Match": {inm}}, "")
		if res.status != 304 || len(res.body) != 0 || res.header.Get("ETag") != etag || res.header.Get("Cache-Control") == "" {
			t.Errorf("If-None-Match %s: %d, %d bytes, %v", inm, res.status, len(res.body), res.header)
		}
	}
	clk.Advance(3600e9)
	iss.RotateKey(t, issuer.ES256, issuer.WithClock(clk.Now))
	res := request(t, "GET", iss.URL+issuer.JWKSPath, map[string][]string{"If-None-Match": {etag}}, "")
	if res.status != 200 || res.header.Get("ETag") == etag {
		t.Errorf("after rotation: %d, ETag %s (was %s)", res.status, res.header.Get("ETag"), etag)
	}
}
