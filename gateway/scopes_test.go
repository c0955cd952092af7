package gateway_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"

	"github.com/portcullis/portcullis/gateway"
	"github.com/portcullis/portcullis/gateway/config"
	licensingv1 "github.com/portcullis/portcullis/gen/example/licensing/v1"
	"github.com/portcullis/portcullis/internal/h2ctest"
	"github.com/portcullis/portcullis/internal/jwttest"
	"github.com/portcullis/portcullis/services/licensing"
)

// scopesYAML configures a gateway trusting an issuer whose tokens carry
// OAuth scopes, "licences:read" mapped to mapped.
func scopesYAML(idp *jwttest.IdP, backend, mapped string) string {
	return fmt.Sprintf(`
issuers:
  - issuer: %q
    audiences: [portcullis]
    jwks_url: %q
    permissions:
      from: scopes
      scopes:
        "licences:read": %s
routes:
  - service: example.licensing.v1.LicensingService
    backend: %q
`, idp.Issuer, idp.URL+"/jwks.json", mapped, backend)
}

// TestScopesThroughGateway calls a gateway trusting a third-party issuer
// whose tokens carry their permissions as OAuth scopes, in the scope and
// scp claims, named as the catalog's permissions or mapped from the
// issuer's own names; other APIs' scopes and the perms claim grant
// nothing.
func TestScopesThroughGateway(t *testing.T) {
	t.Parallel()
	signer := jwttest.NewEC("okta-1")
	idp := jwttest.NewIdP(t, signer)
	_, lic := licensing.New().Handler()
	s := startGateway(t, nil, scopesYAML(idp, h2ctest.Serve(t, lic), "LIC.READ_REQUIREMENTS"))

	mint := func(claims map[string]any) string {
		c := jwttest.ClaimsAt(idp.Issuer, "portcullis", time.Now())
		delete(c, "perms")
		delete(c, "scope")
		for k, v := range claims {
			c[k] = v
		}
		return signer.Mint(nil, c)
	}
	const (
		allowed           = ""
		lacksRequirements = "missing LIC.READ_REQUIREMENTS"
		lacksOrders       = "missing LIC.READ_ORDERS"
	)
	for _, tc := range []struct {
		name                string
		claims              map[string]any
		requirements, order string // "" when allowed, else the denial
	}{
		{"mapped scope", map[string]any{"scope": "openid licences:read"}, allowed, lacksOrders},
		{"catalog names in scope", map[string]any{"scope": "LIC.READ_ORDERS other:write LIC.FLY"}, lacksRequirements, allowed},
		{"scp array", map[string]any{"scp": []string{"licences:read", "LIC.READ_ORDERS"}}, allowed, allowed},
		{"scp string", map[string]any{"scp": "LIC.READ_ORDERS"}, lacksRequirements, allowed},
		{"perms claim ignored", map[string]any{"perms": map[string]any{"LIC": 3}}, lacksRequirements, lacksOrders},
		{"other APIs' scopes", map[string]any{"scope": "orders:read READ_ORDERS lic.read_orders"}, lacksRequirements, lacksOrders},
	} {
		tok := mint(tc.claims)
		for _, proto := range []string{"connect", "grpc"} {
			t.Run(tc.name+"/"+proto, func(t *testing.T) {
				t.Parallel()
				client := s.licensingClient(tok, protocols[proto]...)
				ctx := context.Background()
				_, err := client.ListRequirements(ctx, connect.NewRequest(&licensingv1.ListRequirementsRequest{Jurisdiction: "US-CA", BusinessKind: "restaurant"}))
				checkDecision(t, "ListRequirements", err, tc.requirements)
				_, err = client.GetLicenceOrder(ctx, connect.NewRequest(&licensingv1.GetLicenceOrderRequest{Id: "lo-0001"}))
				checkDecision(t, "GetLicenceOrder", err, tc.order)
			})
		}
	}
}

// checkDecision wants a call allowed through the gateway when denial is
// "", and otherwise refused with PermissionDenied saying denial.
func checkDecision(t *testing.T, method string, err error, denial string) {
	t.Helper()
	if denial == "" {
		if err != nil {
			t.Errorf("%s = %v, want it allowed", method, err)
		}
		return
	}
	if connect.CodeOf(err) != connect.CodePermissionDenied || !strings.Contains(err.Error(), denial) {
		t.Errorf("%s = %v, want PermissionDenied saying %q", method, err, denial)
	}
}

// TestScopeMappingNamesCatalogPermissions refuses to start a gateway
// whose scope mapping names a permission its catalog does not hold.
func TestScopeMappingNamesCatalogPermissions(t *testing.T) {
	t.Parallel()
	idp := jwttest.NewIdP(t, jwttest.NewEC("okta-1"))
	cfg, err := config.Parse("test.yaml", []byte(scopesYAML(idp, "http://127.0.0.1:1", "LIC.FLY")), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	gw, err := gateway.New(context.Background(), cfg)
	if err == nil {
		_ = gw.Close()
		t.Fatal("gateway started with a scope mapped to an unknown permission")
	}
	if want := `"licences:read" maps to "LIC.FLY", an unknown permission`; !strings.Contains(err.Error(), want) {
		t.Errorf("gateway.New = %v, want it to say %s", err, want)
	}
}
