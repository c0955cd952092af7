// Package gatewaytest starts what a test of the gateway needs around it:
// the bundled token issuer and both example backends, served on 127.0.0.1,
// the configuration that names them, and a gateway built from it.
//
//	env := gatewaytest.Start(t)
//	gw := gatewaytest.New(t, env.Config("rest: {enabled: false}\n"))
//	tok := env.Issuer.Token(t, "reader", env.Issuer.AddClient(t, client))
package gatewaytest

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"google.golang.org/protobuf/reflect/protoregistry"

	"github.com/portcullis/portcullis/gateway"
	"github.com/portcullis/portcullis/gateway/catalog"
	"github.com/portcullis/portcullis/gateway/config"
	"github.com/portcullis/portcullis/internal/h2ctest"
	"github.com/portcullis/portcullis/services/issuer"
	"github.com/portcullis/portcullis/services/issuer/issuertest"
	"github.com/portcullis/portcullis/services/licensing"
	"github.com/portcullis/portcullis/services/orders"
)

// Env is the issuer and the example backends a test gateway routes to.
type Env struct {
	// Issuer hands out the access tokens the gateway trusts.
	Issuer *issuertest.Issuer
	// LicensingURL and OrdersURL are the example backends, over h2c.
	LicensingURL, OrdersURL string
}

// Start starts the issuer of [Issuer] and both example backends, until
// the test ends.
func Start(t testing.TB) *Env {
	t.Helper()
	return StartFor(t, Issuer(t))
}

// StartFor starts both example backends, until the test ends, for a test
// that has started its issuer.
func StartFor(t testing.TB, iss *issuertest.Issuer) *Env {
	t.Helper()
	_, lic := licensing.New().Handler()
	_, ord := orders.New().Handler()
	return &Env{Issuer: iss, LicensingURL: h2ctest.Serve(t, lic), OrdersURL: h2ctest.Serve(t, ord)}
}

// Issuer starts the bundled issuer, granting the permissions of the
// example services (those linked into the test), until the test ends.
func Issuer(t testing.TB, opts ...issuer.Option) *issuertest.Issuer {
	t.Helper()
	cat, err := catalog.New(protoregistry.GlobalFiles)
	if err != nil {
		t.Fatal(err)
	}
	return issuertest.Start(t, cat, opts...)
}

// Config returns the configuration that trusts the issuer's access tokens
// (by discovery, of type at+jwt) and routes both example services to their
// backends, followed by extra.
func (e *Env) Config(extra string) string {
	return fmt.Sprintf(`
issuers:
  - issuer: %q
    audiences: [%q]
    discovery: true
    type: at+jwt
routes:
  - service: example.licensing.v1.LicensingService
    backend: %q
  - service: example.orders.v1.OrdersService
    backend: %q
`, e.Issuer.URL, issuertest.Audience, e.LicensingURL, e.OrdersURL) + extra
}

// New builds a gateway from the configuration yaml, which names no
// environment variable, and returns it once it is ready; it is closed when
// the test ends. It logs nowhere unless opts give it a logger.
func New(t testing.TB, yaml string, opts ...gateway.Option) *gateway.Gateway {
	t.Helper()
	cfg, err := config.Parse("test.yaml", []byte(yaml), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	opts = append([]gateway.Option{gateway.WithLogger(slog.New(slog.DiscardHandler))}, opts...)
	gw, err := gateway.New(context.Background(), cfg, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = gw.Close() })
	deadline := time.Now().Add(10 * time.Second)
	for gw.Ready() != nil {
		if time.Now().After(deadline) {
			t.Fatalf("gateway not ready after 10s: %v", gw.Ready())
		}
		time.Sleep(10 * time.Millisecond)
	}
	return gw
}
