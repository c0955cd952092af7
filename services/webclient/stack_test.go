package webclient_test

import (
	"fmt"
	"net/http/httptest"
	"testing"

	"google.golang.org/protobuf/reflect/protoregistry"

	"github.com/portcullis/portcullis/gateway"
	"github.com/portcullis/portcullis/gateway/catalog"
	"github.com/portcullis/portcullis/gateway/cors"
	"github.com/portcullis/portcullis/internal/gatewaytest"
	"github.com/portcullis/portcullis/internal/h2ctest"
	"github.com/portcullis/portcullis/services/issuer"
	"github.com/portcullis/portcullis/services/issuer/issuertest"
	"github.com/portcullis/portcullis/services/webclient"
)

// browserStack is the real stack a browser talks to: the token issuer and
// the gateway, both allowing one page origin, in front of both example
// backends; and the web client served on that origin and on another.
type browserStack struct {
	gateway, page, refusedPage string
	secrets                    map[string]string
}

func startBrowserStack(t *testing.T) *browserStack {
	t.Helper()
	cat, err := catalog.New(protoregistry.GlobalFiles)
	if err != nil {
		t.Fatal(err)
	}
	pageSrv, refusedSrv := httptest.NewUnstartedServer(nil), httptest.NewUnstartedServer(nil)
	pageOrigin := "http://" + pageSrv.Listener.Addr().String()

	iss := issuertest.Start(t, cat, issuer.WithCORS(cors.Policy{AllowedOrigins: []string{pageOrigin}}))
	s := &browserStack{secrets: map[string]string{}}
	for _, c := range []issuer.Client{
		{ID: "reader", Grants: []string{"LIC.READ_REQUIREMENTS", "ORD.READ"}},
		{ID: "clerk", Grants: []string{"ORD.READ"}},
		{ID: "operator", Grants: []string{"LIC.READ_REQUIREMENTS", "LIC.READ_ORDERS", "LIC.WRITE_ORDERS", "ORD.READ", "ORD.WRITE"}},
	} {
		s.secrets[c.ID] = iss.AddClient(t, c)
	}
	issuerURL := iss.URL
	_, s.gateway = startGateway(t, iss, pageOrigin)

	for _, srv := range []*httptest.Server{pageSrv, refusedSrv} {
		srv.Config.Handler = webclient.Handler(webclient.Config{GatewayURL: s.gateway, IssuerURL: issuerURL})
		srv.Start()
		t.Cleanup(srv.Close)
	}
	s.page, s.refusedPage = pageSrv.URL, refusedSrv.URL
	return s
}

// startGateway starts a gateway that trusts iss and allows pageOrigin, in
// front of both example backends, and returns it with its URL.
func startGateway(t *testing.T, iss *issuertest.Issuer, pageOrigin string) (*gateway.Gateway, string) {
	t.Helper()
	gw := gatewaytest.New(t, gatewaytest.StartFor(t, iss).Config(fmt.Sprintf(`
cors:
  allowed_origins: [%q]
  max_age: 10m
`, pageOrigin)))
	return gw, h2ctest.Serve(t, gw.Handler())
}
