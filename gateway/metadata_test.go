package gateway_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"

	"connectrpc.com/connect"

	"github.com/portcullis/portcullis/gateway"
	"github.com/portcullis/portcullis/gateway/config"
	licensingv1 "github.com/portcullis/portcullis/gen/example/licensing/v1"
	"github.com/portcullis/portcullis/gen/example/licensing/v1/licensingv1connect"
	"github.com/portcullis/portcullis/internal/h2ctest"
	"github.com/portcullis/portcullis/services/issuer"
)

// get sends a GET to url with an optional bearer token and returns the
// response and its body.
func get(t *testing.T, url, tok string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	res, err := h2ctest.Client(t).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res, string(body)
}

// With a resource configured, the main listener serves its protected
// resource metadata (RFC 9728), generated from the catalog and the
// issuers, and every 401 and 403 outside gRPC names it.
func TestResourceMetadataThroughGateway(t *testing.T) {
	t.Parallel()
	s := newStack(t, `
resource:
  url: https://gw.example
  name: Portcullis example
  documentation: https://gw.example/docs
`)
	const metadataURL = "https://gw.example/.well-known/oauth-protected-resource"

	res, body := get(t, s.url+"/.well-known/oauth-protected-resource", "")
	if res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") != "application/json" ||
		res.Header.Get("Cache-Control") != "public, max-age=300" || res.Header.Get("Access-Control-Allow-Origin") != "*" {
		t.Fatalf("GET metadata = %d %v: %s", res.StatusCode, res.Header, body)
	}
	var doc struct {
		Resource               string   `json:"resource"`
		AuthorizationServers   []string `json:"authorization_servers"`
		ScopesSupported        []string `json:"scopes_supported"`
		BearerMethodsSupported []string `json:"bearer_methods_supported"`
		ResourceName           string   `json:"resource_name"`
		ResourceDocumentation  string   `json:"resource_documentation"`
	}
	if err := json.Unmarshal([]byte(body), &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Resource != "https://gw.example" || !slices.Equal(doc.AuthorizationServers, []string{s.issuer.URL}) ||
		!slices.Equal(doc.BearerMethodsSupported, []string{"header"}) || doc.ResourceName != "Portcullis example" ||
		doc.ResourceDocumentation != "https://gw.example/docs" {
		t.Errorf("document %s", body)
	}
	for _, p := range s.gateway.Catalog().Domains() {
		for _, perm := range p.Permissions {
			if !slices.Contains(doc.ScopesSupported, perm.String()) {
				t.Errorf("scopes_supported %q lacks %s", doc.ScopesSupported, perm)
			}
		}
	}
	if want := []string{"LIC.READ_REQUIREMENTS", "LIC.READ_ORDERS", "LIC.WRITE_ORDERS", "ORD.READ", "ORD.WRITE", "PORTCULLIS.READ_CLIENTS", "PORTCULLIS.MANAGE_CLIENTS"}; !slices.Equal(doc.ScopesSupported, want) {
		t.Errorf("scopes_supported %q, want %q", doc.ScopesSupported, want)
	}

	secret := s.issuer.AddClient(t, issuer.Client{ID: "reader", Grants: []string{"LIC.READ_REQUIREMENTS"}})
	reader := s.issuer.Token(t, "reader", secret)
	challenge := `Bearer realm="portcullis", resource_metadata="` + metadataURL + `"`
	for _, tc := range []struct {
		name, tok string
		code      connect.Code
		challenge string
	}{
		{"no token", "", connect.CodeUnauthenticated, challenge},
		{"bad token", "not-a-jwt", connect.CodeUnauthenticated, challenge + `, error="invalid_token", error_description="token is not a compact JWS"`},
		{"lacking permissions", reader, connect.CodePermissionDenied, challenge + `, error="insufficient_scope", error_description="missing LIC.READ_ORDERS"`},
	} {
		for name, opts := range protocols {
			client := licensingv1connect.NewLicensingServiceClient(h2ctest.Client(t), s.url, opts...)
			if tc.tok != "" {
				client = s.licensingClient(tc.tok, opts...)
			}
			_, err := client.GetLicenceOrder(context.Background(), connect.NewRequest(&licensingv1.GetLicenceOrderRequest{Id: "lo-0001"}))
			var ce *connect.Error
			if connect.CodeOf(err) != tc.code || !errors.As(err, &ce) {
				t.Fatalf("%s/%s: %v, want %v", tc.name, name, err, tc.code)
			}
			want := tc.challenge
			if name == "grpc" {
				want = "" // gRPC sends no WWW-Authenticate
			}
			if got := ce.Meta().Get("WWW-Authenticate"); got != want {
				t.Errorf("%s/%s: WWW-Authenticate %q, want %q", tc.name, name, got, want)
			}
		}
	}

	// A REST caller (curl) gets the same 401.
	res, body = get(t, s.url+"/v1/requirements?jurisdiction=US-CA", "")
	if got := res.Header.Get("WWW-Authenticate"); res.StatusCode != http.StatusUnauthorized || got != challenge {
		t.Errorf("REST without a token = %d, WWW-Authenticate %q: %s; want 401 with %q", res.StatusCode, got, body, challenge)
	}
}

// Without a resource, nothing is published and challenges are as before.
func TestNoResourceMetadataByDefault(t *testing.T) {
	t.Parallel()
	s := newStack(t, "")
	if res, body := get(t, s.url+"/.well-known/oauth-protected-resource", ""); res.StatusCode != http.StatusNotFound {
		t.Errorf("GET metadata without a resource = %d %s, want 404", res.StatusCode, body)
	}
	res, _ := get(t, s.url+"/v1/requirements?jurisdiction=US-CA", "")
	if got := res.Header.Get("WWW-Authenticate"); res.StatusCode != http.StatusUnauthorized || got != `Bearer realm="portcullis"` {
		t.Errorf("REST without a token = %d, WWW-Authenticate %q", res.StatusCode, got)
	}
}

// A resource whose identifier is no https URL, or whose authorization
// servers are not issuer identifiers, stops the gateway, saying why.
func TestResourceMetadataInvalid(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ yaml, want string }{
		{"resource: {url: http://gw.example}", `"http://gw.example" is not https (http only for a loopback host)`},
		{"resource: {url: https://gw.example, authorization_servers: [portcullis-dev]}", `authorization server "portcullis-dev" is not an absolute http or https URL`},
	} {
		cfg, err := config.Parse("test.yaml", []byte(tc.yaml+"\nroutes: [{service: example.licensing.v1.LicensingService, backend: http://127.0.0.1:1}]\n"), func(string) (string, bool) { return "", false })
		if err == nil {
			_, err = gateway.New(context.Background(), cfg)
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error saying %s", tc.yaml, err, tc.want)
		}
	}
}
