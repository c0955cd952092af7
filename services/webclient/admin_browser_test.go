package webclient_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"google.golang.org/protobuf/reflect/protoregistry"

	"github.com/portcullis/portcullis/gateway/catalog"
	"github.com/portcullis/portcullis/gateway/cors"
	"github.com/portcullis/portcullis/gateway/graph"
	"github.com/portcullis/portcullis/services/issuer"
	"github.com/portcullis/portcullis/services/issuer/issuertest"
	"github.com/portcullis/portcullis/services/webclient"
)

// adminStack is the real stack behind the operator's pages: an issuer
// serving its administration service, a gateway in front of both example
// backends, the permission graph as the admin listener serves it, and
// both pages of the web client on an origin the issuer and the gateway
// allow.
type adminStack struct {
	iss                *issuertest.Issuer
	graph, admin, page string
	secrets            map[string]string
}

func startAdminStack(t *testing.T) *adminStack {
	t.Helper()
	cat, err := catalog.New(protoregistry.GlobalFiles)
	if err != nil {
		t.Fatal(err)
	}
	pageSrv := httptest.NewUnstartedServer(nil)
	pageOrigin := "http://" + pageSrv.Listener.Addr().String()
	iss := issuertest.Start(t, cat, issuer.WithAdmin(), issuer.WithCORS(cors.Policy{AllowedOrigins: []string{pageOrigin}}))
	s := &adminStack{iss: iss, secrets: map[string]string{}}
	for _, c := range []issuer.Client{
		{ID: "admin", Grants: []string{"PORTCULLIS.READ_CLIENTS", "PORTCULLIS.MANAGE_CLIENTS", "LIC.READ_REQUIREMENTS", "LIC.READ_ORDERS"}},
		{ID: "auditor", Grants: []string{"PORTCULLIS.READ_CLIENTS"}},
		{ID: "reader", Grants: []string{"LIC.READ_REQUIREMENTS", "ORD.READ"}, Tier: "free"},
		{ID: "operator", Grants: []string{"LIC.READ_REQUIREMENTS", "LIC.READ_ORDERS", "LIC.WRITE_ORDERS", "ORD.READ", "ORD.WRITE"}, Tier: "pro"},
		// A client that signs in with its TLS certificate: it has no secret.
		{ID: "edge", Grants: []string{"ORD.READ"}, CertificateAuth: issuer.CertificateAuth{SANDNS: "edge.example.com"}},
	} {
		s.secrets[c.ID] = iss.AddClient(t, c)
	}
	gw, gatewayURL := startGateway(t, iss, pageOrigin)

	admin := http.NewServeMux()
	admin.Handle("GET /graph", graph.Handler(gw.Catalog(), issuer.GraphClients(iss.RegistryPath)))
	adminSrv := httptest.NewServer(admin)
	t.Cleanup(adminSrv.Close)
	s.graph = adminSrv.URL + "/graph"

	pageSrv.Config.Handler = webclient.Handler(webclient.Config{GatewayURL: gatewayURL, IssuerURL: iss.URL})
	pageSrv.Start()
	t.Cleanup(pageSrv.Close)
	s.page, s.admin = pageSrv.URL+"/", pageSrv.URL+"/admin.html"
	return s
}

// adminReport is what testdata/admin.mjs saw.
type adminReport struct {
	Steps []struct {
		Page, Client, Step, State, Text, Secret, URL string
		Methods, Clients, Drawn, Rows                []string
	}
	PageErrors []string `json:"pageErrors"`
}

// runAdminBrowser runs testdata/admin.mjs against the stack.
func runAdminBrowser(t *testing.T, node, chromium string, s *adminStack) adminReport {
	t.Helper()
	var rep adminReport
	runScript(t, node, chromium, "admin.mjs", map[string]any{
		"graph": s.graph, "admin": s.admin, "calls": s.page, "clients": s.secrets,
	}, &rep)
	return rep
}

// TestOperatorPages drives the permission graph and the provisioning page
// in Chromium: the graph shows the catalog's methods and narrows to
// LicensingService; a client created on the provisioning page gets a
// token with its secret and calls the gateway; callers without the
// permissions, or granting beyond their own, are refused with the reason.
func TestOperatorPages(t *testing.T) {
	t.Parallel()
	node, chromium := browserTools(t)
	s := startAdminStack(t)
	rep := runAdminBrowser(t, node, chromium, s)
	if len(rep.PageErrors) > 0 {
		t.Errorf("uncaught errors in the pages:\n%s", strings.Join(rep.PageErrors, "\n"))
	}

	const (
		lic          = "/example.licensing.v1.LicensingService/"
		ord          = "/example.orders.v1.OrdersService/"
		adm          = "/portcullis.admin.v1.ClientAdminService/"
		requirements = "3 licences: Food Facility Health Permit, On-Sale Beer and Wine Licence, Seller's Permit"
	)
	type want struct {
		page, client, step, state string
		contains                  []string
		check                     func(t *testing.T, methods, clients, drawn, rows []string)
	}
	procedures := func(rows []string) []string {
		var out []string
		for _, r := range rows {
			p, _, _ := strings.Cut(r, " | ")
			out = append(out, p)
		}
		return out
	}
	row := func(rows []string, procedure string) string {
		for _, r := range rows {
			if p, text, _ := strings.Cut(r, " | "); p == procedure {
				return text
			}
		}
		return ""
	}
	var created, rotated string
	wants := []want{
		{page: "graph", step: "all", check: func(t *testing.T, methods, clients, drawn, _ []string) {
			got := procedures(methods)
			for _, p := range []string{lic + "ListRequirements", lic + "CreateLicenceOrder", ord + "PlaceOrder", adm + "CreateClient"} {
				if !slices.Contains(got, p) {
					t.Errorf("the graph lists no %s: %v", p, got)
				}
			}
			if len(got) != 15 || !slices.Equal(clients, []string{"admin", "auditor", "edge", "operator", "reader"}) || len(drawn) != 5+7+1+15 {
				t.Errorf("the whole graph: %d methods, clients %v, %d nodes drawn", len(got), clients, len(drawn))
			}
		}},
		{page: "graph", step: "typed", contains: []string{"Showing 5 of 15 methods, 3 of 7 permissions and 3 of 5 clients for LicensingService."},
			check: func(t *testing.T, methods, clients, drawn, _ []string) {
				if got := procedures(methods); !slices.Equal(got, []string{lic + "CreateLicenceOrder", lic + "GetLicenceOrder", lic + "ListJurisdictions", lic + "ListRequirements", lic + "WatchLicenceOrders"}) {
					t.Errorf("narrowed to LicensingService, the graph lists %v", got)
				}
				if got := row(methods, lic+"ListRequirements"); got != "ListRequirements LIC.READ_REQUIREMENTS admin operator reader" {
					t.Errorf("who can call ListRequirements: %q", got)
				}
				if got := row(methods, lic+"CreateLicenceOrder"); got != "CreateLicenceOrder 10 per 1s, burst 5 LIC.READ_ORDERS LIC.WRITE_ORDERS operator" {
					t.Errorf("who can call CreateLicenceOrder: %q", got)
				}
				if got := row(methods, lic+"ListJurisdictions"); !strings.HasSuffix(got, "public anyone, with or without a token") {
					t.Errorf("who can call ListJurisdictions: %q", got)
				}
				if !slices.Equal(clients, []string{"admin", "operator", "reader"}) || !slices.Contains(drawn, "permission LIC.WRITE_ORDERS") || slices.Contains(drawn, "permission ORD.READ") {
					t.Errorf("clients %v, drawn %v", clients, drawn)
				}
			}},
		{page: "graph", step: "picked", contains: []string{"for client:reader."}, check: func(t *testing.T, methods, clients, _, _ []string) {
			if got := procedures(methods); !slices.Equal(got, []string{lic + "ListRequirements", ord + "GetOrder"}) || !slices.Equal(clients, []string{"reader"}) {
				t.Errorf("what reader can call: %v, clients %v", got, clients)
			}
		}},
		{page: "graph", step: "hover", contains: []string{"2"}}, // reader's two grants light up
		{page: "admin", client: "reader", step: "sign-in", state: "ok", contains: []string{"signed in as reader", "holding LIC.READ_REQUIREMENTS, ORD.READ"}},
		{page: "admin", client: "reader", step: "list", state: "error", contains: []string{"PermissionDenied", "missing PORTCULLIS.READ_CLIENTS", "ErrorInfo reason PERMISSION_MISSING", "missing: PORTCULLIS.READ_CLIENTS"}},
		{page: "admin", client: "auditor", step: "sign-in", state: "ok", contains: []string{"holding PORTCULLIS.READ_CLIENTS"}},
		{page: "admin", client: "auditor", step: "list", state: "ok", contains: []string{"✓ 5 clients"}},
		{page: "admin", client: "auditor", step: "create sneaky", state: "error", contains: []string{"✗ PermissionDenied missing PORTCULLIS.MANAGE_CLIENTS", "ErrorInfo reason PERMISSION_MISSING", "missing: PORTCULLIS.MANAGE_CLIENTS"}},
		{page: "admin", client: "admin", step: "sign-in", state: "ok", contains: []string{"holding LIC.READ_REQUIREMENTS, LIC.READ_ORDERS, PORTCULLIS.READ_CLIENTS, PORTCULLIS.MANAGE_CLIENTS"}},
		{page: "admin", client: "admin", step: "list", state: "ok", contains: []string{"✓ 5 clients"}},
		{page: "admin", client: "admin", step: "create newbie", state: "ok", contains: []string{"✓ created newbie, granted LIC.READ_REQUIREMENTS"}},
		{page: "admin", client: "admin", step: "secret", contains: []string{"The secret of newbie", "Shown this once: store it now."}},
		{page: "admin", client: "admin", step: "grants newbie +ORD.WRITE", state: "error", contains: []string{
			"✗ PermissionDenied cannot grant ORD.WRITE: the caller's token does not hold it", "ErrorInfo reason GRANT_NOT_HELD", "client: newbie", "missing: ORD.WRITE"}},
		{page: "admin", client: "admin", step: "grants newbie +LIC.READ_ORDERS", state: "ok", contains: []string{"✓ newbie is granted LIC.READ_REQUIREMENTS, LIC.READ_ORDERS"}},
		{page: "admin", client: "admin", step: "rotate operator", state: "error", contains: []string{
			`✗ PermissionDenied client "operator" is granted LIC.WRITE_ORDERS, ORD.READ, ORD.WRITE, which the caller's token does not hold`, "GRANT_NOT_HELD", "missing: LIC.WRITE_ORDERS, ORD.READ, ORD.WRITE"}},
		{page: "admin", client: "admin", step: "rows", check: func(t *testing.T, _, _, _, rows []string) {
			want := []string{
				"admin — PORTCULLIS.READ_CLIENTS PORTCULLIS.MANAGE_CLIENTS LIC.READ_REQUIREMENTS LIC.READ_ORDERS issuer default Change grants Rotate secret Revoke",
				"auditor — PORTCULLIS.READ_CLIENTS issuer default Change grants Rotate secret Revoke",
				"edge signs in with its certificate (tls_client_auth) — ORD.READ beyond your reach: the issuer refuses to change it issuer default Change grants Revoke",
				"newbie free LIC.READ_REQUIREMENTS LIC.READ_ORDERS 30m Change grants Rotate secret Revoke",
				"operator pro LIC.READ_REQUIREMENTS LIC.READ_ORDERS LIC.WRITE_ORDERS ORD.READ ORD.WRITE beyond your reach: the issuer refuses to change it issuer default Change grants Rotate secret Revoke",
				"reader free LIC.READ_REQUIREMENTS ORD.READ beyond your reach: the issuer refuses to change it issuer default Change grants Rotate secret Revoke",
			}
			if !slices.Equal(rows, want) {
				t.Errorf("the clients table reads\n%s\nwant\n%s", strings.Join(rows, "\n"), strings.Join(want, "\n"))
			}
		}},
		{page: "calls", client: "newbie", step: "token", state: "ok", contains: []string{"token for newbie", "holds LIC.READ_REQUIREMENTS, LIC.READ_ORDERS"}},
		{page: "calls", client: "newbie", step: "ListRequirements", state: "ok", contains: []string{"Connect (POST), as newbie ✓", requirements}},
		{page: "calls", client: "newbie", step: "GetLicenceOrder", state: "ok", contains: []string{"as newbie ✓", "lo-0001 us-ca-food-facility for biz-acme"}},
		{page: "calls", client: "newbie", step: "CreateLicenceOrder", state: "error", contains: []string{"PermissionDenied", "missing: LIC.WRITE_ORDERS"}},
		{page: "admin", client: "admin", step: "rotate newbie", state: "ok", contains: []string{"✓ new secret for newbie: the old one no longer works"}},
		{page: "admin", client: "admin", step: "rotated secret", contains: []string{"The new secret of newbie"}},
		{page: "calls", client: "newbie", step: "old secret", state: "error", contains: []string{"401 invalid_client"}},
		{page: "calls", client: "newbie", step: "new secret", state: "ok", contains: []string{"token for newbie"}},
		{page: "admin", client: "admin", step: "revoke newbie", state: "ok", contains: []string{"✓ revoked newbie: it gets no more tokens"}},
		{page: "admin", client: "admin", step: "rows", check: func(t *testing.T, _, _, _, rows []string) {
			if len(rows) != 5 || strings.Contains(strings.Join(rows, "\n"), "newbie") {
				t.Errorf("after the revocation the table reads\n%s", strings.Join(rows, "\n"))
			}
		}},
		{page: "calls", client: "newbie", step: "revoked", state: "error", contains: []string{"401 invalid_client"}},
	}
	if len(rep.Steps) != len(wants) {
		t.Fatalf("admin.mjs reported %d steps, want %d: %+v", len(rep.Steps), len(wants), rep.Steps)
	}
	for i, w := range wants {
		got := rep.Steps[i]
		t.Run(fmt.Sprintf("%02d %s %s %s", i, w.page, w.client, w.step), func(t *testing.T) {
			if got.Page != w.page || got.Client != w.client || got.Step != w.step {
				t.Fatalf("step is %s %s %s, want %s %s %s", got.Page, got.Client, got.Step, w.page, w.client, w.step)
			}
			t.Logf("%s: %q", got.State, got.Text)
			if got.State != w.state {
				t.Errorf("state %q, want %q; the page shows %q", got.State, w.state, got.Text)
			}
			for _, c := range w.contains {
				if !strings.Contains(got.Text, c) {
					t.Errorf("the page shows %q, want it to contain %q", got.Text, c)
				}
			}
			if w.check != nil {
				w.check(t, got.Methods, got.Clients, got.Drawn, got.Rows)
			}
			switch got.Step {
			case "secret":
				created = got.Secret
			case "rotated secret":
				rotated = got.Secret
			case "typed":
				// The page keeps the filter in its address.
				if !strings.HasSuffix(got.URL, "/graph?q=LicensingService") {
					t.Errorf("address %s", got.URL)
				}
			}
		})
	}

	// The secrets the page showed are the client's, and are in no file.
	if len(created) != 43 || len(rotated) != 43 || created == rotated {
		t.Fatalf("the page showed secrets of %d and %d characters", len(created), len(rotated))
	}
	for _, secret := range []string{created, rotated} {
		if _, err := s.iss.Credentials("newbie", secret).Token(context.Background()); err == nil || !strings.Contains(err.Error(), "invalid_client") {
			t.Errorf("the revoked client's secret: %v, want invalid_client", err)
		}
	}
	if clients, err := issuer.ListClients(s.iss.RegistryPath); err != nil || len(clients) != 5 {
		t.Errorf("the registry after the run: %v, %v", clients, err)
	}
}
