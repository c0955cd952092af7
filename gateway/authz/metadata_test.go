package authz_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"

	"github.com/portcullis/portcullis/gateway/authz"
	"github.com/portcullis/portcullis/gateway/token"
	"github.com/portcullis/portcullis/internal/h2ctest"
	"github.com/portcullis/portcullis/internal/jwttest"
)

// With WithResourceMetadata, every Bearer challenge names the protected
// resource metadata (RFC 9728 §5.1): a missing token, an invalid one, and
// a valid one lacking permissions, over Connect and gRPC-Web through a
// real server; gRPC still gets no WWW-Authenticate.
func TestResourceMetadataInChallenges(t *testing.T) {
	t.Parallel()
	const metadataURL = "https://gw.example/.well-known/oauth-protected-resource"
	const param = `, resource_metadata="` + metadataURL + `"`
	signer := jwttest.NewEC("ec-1")
	idp := jwttest.NewIdP(t, signer)
	v, err := token.NewVerifier(t.Context(), []token.Issuer{{
		Issuer: idp.Issuer, Audiences: []string{audience}, JWKSURL: idp.URL + "/jwks.json", Type: "at+jwt",
	}}, token.WithClock(token.ClockFunc(func() time.Time { return jwttest.Epoch })))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(v.Close)
	if err := v.WaitReady(t.Context()); err != nil {
		t.Fatal(err)
	}
	az, err := authz.New(testCatalog(t), v, authz.WithResourceMetadata(metadataURL))
	if err != nil {
		t.Fatal(err)
	}
	url := serve(t, connect.WithRequestGate(az.Gate()), connect.WithInterceptors(az.Interceptor()))

	claims := jwttest.ClaimsAt(idp.Issuer, audience, jwttest.Epoch)
	claims["perms"] = map[string]any{"LIC": 1}
	valid := "Bearer " + signer.Mint(nil, claims)
	expired := jwttest.ClaimsAt(idp.Issuer, audience, jwttest.Epoch.Add(-2*time.Hour))
	cases := []struct {
		name, method string
		auth         []string
		code         connect.Code
		challenge    string
	}{
		{"no token", "GetLicenceOrder", nil, connect.CodeUnauthenticated,
			`Bearer realm="portcullis"` + param},
		{"expired token", "GetLicenceOrder", []string{"Bearer " + signer.Mint(nil, expired)}, connect.CodeUnauthenticated,
			`Bearer realm="portcullis"` + param + `, error="invalid_token", error_description="token expired"`},
		{"lacking permissions", "GetLicenceOrder", []string{valid}, connect.CodePermissionDenied,
			`Bearer realm="portcullis"` + param + `, error="insufficient_scope", error_description="missing LIC.READ_ORDERS"`},
	}
	for _, tc := range cases {
		for _, p := range protocols {
			t.Run(tc.name+"/"+p.name, func(t *testing.T) {
				_, err := newClients(h2ctest.Client(t), url, p.opts...).call(t.Context(), tc.method, tc.auth)
				if connect.CodeOf(err) != tc.code {
					t.Fatalf("got %v, want %v", err, tc.code)
				}
				want := tc.challenge
				if p.name == "grpc" {
					want = ""
				}
				if got := err.(*connect.Error).Meta().Get("WWW-Authenticate"); got != want {
					t.Fatalf("WWW-Authenticate %q, want %q", got, want)
				}
			})
		}
	}

	// A plain HTTP caller (curl) sees the same 401.
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, url+"/example.licensing.v1.LicensingService/GetLicenceOrder", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	res, err := h2ctest.Client(t).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if got := res.Header.Get("WWW-Authenticate"); res.StatusCode != http.StatusUnauthorized || got != `Bearer realm="portcullis"`+param {
		t.Fatalf("status %d, WWW-Authenticate %q; want 401 naming the metadata", res.StatusCode, got)
	}
}

// WithResourceMetadata takes an absolute http or https URL that fits in a
// quoted string; New reports anything else.
func TestWithResourceMetadataInvalid(t *testing.T) {
	t.Parallel()
	cat := testCatalog(t)
	for _, tc := range []struct{ url, want string }{
		{"", "empty"},
		{"/.well-known/oauth-protected-resource", "not an absolute http or https URL"},
		{"gw.example/.well-known/oauth-protected-resource", "not an absolute http or https URL"},
		{"ftp://gw.example/.well-known/oauth-protected-resource", "not an absolute http or https URL"},
		{"https:///.well-known/oauth-protected-resource", "no host"},
		{"https://user:pw@gw.example/.well-known/oauth-protected-resource", "user information"},
		{"https://gw.example/.well-known/oauth-protected-resource#x", "fragment"},
		{`https://gw.example/.well-known/"oauth-protected-resource`, "printable ASCII"},
		{`https://gw.example/.well-known/oauth-protected-resource\`, "printable ASCII"},
		{"https://gw.example/.well-known/oauth protected resource", "printable ASCII"},
		{"https://gw.example/.well-known/oauth-protected-résource", "printable ASCII"},
		{"https://gw.example/.well-known/oauth-protected-resource\n", "printable ASCII"},
		{"https://gw.example:99999/x", "port"},
	} {
		_, err := authz.New(cat, nil, authz.WithResourceMetadata(tc.url))
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "authz: resource metadata URL") {
			t.Errorf("WithResourceMetadata(%q): New = %v, want an error saying %q", tc.url, err, tc.want)
		}
	}
	for _, ok := range []string{
		"https://gw.example/.well-known/oauth-protected-resource",
		"https://gw.example:8443/.well-known/oauth-protected-resource/v1",
		"http://127.0.0.1:8080/.well-known/oauth-protected-resource",
		"https://[::1]/.well-known/oauth-protected-resource?tenant=a",
	} {
		if _, err := authz.New(cat, nil, authz.WithResourceMetadata(ok)); err != nil {
			t.Errorf("WithResourceMetadata(%q): New = %v", ok, err)
		}
	}
}
