package gateway_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/reflect/protoregistry"

	"github.com/portcullis/portcullis/gateway"
	"github.com/portcullis/portcullis/gateway/catalog"
	"github.com/portcullis/portcullis/gateway/config"
	"github.com/portcullis/portcullis/gateway/token"
	licensingv1 "github.com/portcullis/portcullis/gen/example/licensing/v1"
	"github.com/portcullis/portcullis/gen/example/licensing/v1/licensingv1connect"
	"github.com/portcullis/portcullis/internal/h2ctest"
	"github.com/portcullis/portcullis/internal/jwttest"
	"github.com/portcullis/portcullis/services/issuer"
	"github.com/portcullis/portcullis/services/issuer/issuertest"
	"github.com/portcullis/portcullis/services/licensing"
)

// TestExchangeAtTheEdge: a route accepts an external IdP's tokens; the
// gateway exchanges each at the bundled issuer (RFC 8693) and decides and
// forwards the internal token, so the backend never sees the external one.
func TestExchangeAtTheEdge(t *testing.T) {
	t.Parallel()
	signer := jwttest.NewEC("ext-1")
	idp := jwttest.NewIdP(t, signer)
	cat, err := catalog.New(protoregistry.GlobalFiles)
	if err != nil {
		t.Fatal(err)
	}
	iss := issuertest.Start(t, cat, issuer.WithExchange(issuer.Exchange{Issuers: []issuer.ExternalIssuer{{
		Issuer: token.Issuer{Issuer: idp.URL, Audiences: []string{"external-api"}, Discover: true, Type: token.TypeAny},
		Claims: []issuer.ClaimRule{{Claim: "groups", Value: "readers", Grants: []string{"LIC.READ_REQUIREMENTS"}}},
	}}}))
	secret := iss.AddClient(t, issuer.Client{ID: "gateway", Grants: []string{"LIC.READ_REQUIREMENTS"}, Exchange: true})

	var mu sync.Mutex
	var seen []string // the Authorization headers the backend received
	_, lic := licensing.New().Handler()
	backend := h2ctest.Serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.Header.Get("Authorization"))
		mu.Unlock()
		lic.ServeHTTP(w, r)
	}))
	cfg, err := config.Parse("test.yaml", []byte(fmt.Sprintf(`
issuers: [{issuer: %q, audiences: [%q], discovery: true}]
routes:
  - service: example.licensing.v1.LicensingService
    backend: %q
    exchange: {issuer: %q, token_url: %q, client_id: gateway, client_secret_env: EXCHANGE_SECRET}
health: {interval: 0s}
`, iss.URL, issuertest.Audience, backend, idp.URL, iss.URL+issuer.TokenPath)), func(name string) (string, bool) {
		return secret, name == "EXCHANGE_SECRET"
	})
	if err != nil {
		t.Fatal(err)
	}
	gw, err := gateway.New(context.Background(), cfg, gateway.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = gw.Close() })
	url := h2ctest.Serve(t, gw.Handler())
	waitFor(t, 10*time.Second, gw.Ready)

	mint := func(s *jwttest.Signer) string {
		now := time.Now()
		return s.Mint(map[string]any{"typ": "JWT"}, map[string]any{
			"iss": idp.URL, "sub": "alice", "aud": "external-api", "iat": now.Unix(), "exp": now.Add(10 * time.Minute).Unix(),
			"jti": fmt.Sprintf("ext-%d", now.UnixNano()), "groups": []string{"readers"},
		})
	}
	ext := mint(signer)
	forged := mint(jwttest.NewEC("ext-1")) // another key under the same kid
	req := connect.NewRequest(&licensingv1.ListRequirementsRequest{Jurisdiction: "US-CA", BusinessKind: "restaurant"})
	for name, opts := range protocols {
		client := licensingv1connect.NewLicensingServiceClient(&http.Client{Transport: bearer{tok: ext, base: h2ctest.Transport()}}, url, opts...)
		if _, err := client.ListRequirements(context.Background(), req); err != nil {
			t.Errorf("%s: the external token's mapped permission: %v", name, err)
		}
		_, err := client.GetLicenceOrder(context.Background(), connect.NewRequest(&licensingv1.GetLicenceOrderRequest{Id: "lo-0001"}))
		if connect.CodeOf(err) != connect.CodePermissionDenied || !strings.Contains(err.Error(), "missing LIC.READ_ORDERS") {
			t.Errorf("%s: beyond the mapped permissions = %v, want PermissionDenied naming LIC.READ_ORDERS", name, err)
		}
		forgedClient := licensingv1connect.NewLicensingServiceClient(&http.Client{Transport: bearer{tok: forged, base: h2ctest.Transport()}}, url, opts...)
		if _, err := forgedClient.ListRequirements(context.Background(), req); connect.CodeOf(err) != connect.CodeUnauthenticated {
			t.Errorf("%s: a forged external token = %v, want Unauthenticated", name, err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) == 0 {
		t.Fatal("no call reached the backend")
	}
	for _, auth := range seen {
		tok := strings.TrimPrefix(auth, "Bearer ")
		if tok == ext || tok == forged {
			t.Fatal("the backend received the external token")
		}
		if got := issOf(t, tok); got != iss.URL {
			t.Errorf("the backend received a token of %q, want the bundled issuer's %q", got, iss.URL)
		}
	}
}

// issOf returns the iss claim of a compact JWS, unverified.
func issOf(t *testing.T, tok string) string {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWS: %d parts", len(parts))
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		Iss string `json:"iss"`
	}
	if err := json.Unmarshal(payload, &c); err != nil {
		t.Fatal(err)
	}
	return c.Iss
}
