package gateway_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"

	"github.com/portcullis/portcullis/gateway"
	"github.com/portcullis/portcullis/gateway/config"
	"github.com/portcullis/portcullis/gen/example/licensing/v1/licensingv1connect"
	"github.com/portcullis/portcullis/internal/certtest"
	"github.com/portcullis/portcullis/internal/h2ctest"
	"github.com/portcullis/portcullis/internal/jwttest"
	"github.com/portcullis/portcullis/services/licensing"
)

// startWatched serves a gateway from the configuration file file, which
// it watches every 100ms, and returns the main listener's URL.
func startWatched(t *testing.T, file string) (string, *gateway.Gateway) {
	t.Helper()
	cfg, err := config.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	gw, err := gateway.New(context.Background(), cfg, gateway.WithConfigFile(file))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = gw.Close() })
	ls := serveListeners(t, gw)
	waitReady(t, "http://"+ls.Admin.Addr().String())
	return "http://" + ls.Main.Addr().String(), gw
}

// writeFile writes data to name, or fails the test.
func writeFile(t *testing.T, name string, data []byte) {
	t.Helper()
	if err := os.WriteFile(name, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// licensingClient calls the licensing service at url with tok.
func licensingClient(t *testing.T, url, tok string) licensingv1connect.LicensingServiceClient {
	return licensingv1connect.NewLicensingServiceClient(&http.Client{Transport: bearer{tok: tok, base: http2Cleartext(t)}}, url, connect.WithGRPC())
}

// TestWatchedJWKSFile rotates the key of an issuer whose keys are a local
// JWKS file: once the file holds the new key alone, the gateway accepts
// the new key's tokens and refuses the old key's, with no restart, no
// signal and no reload.
func TestWatchedJWKSFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	oldKey, newKey := jwttest.NewEC("old"), jwttest.NewEC("new")
	jwks := filepath.Join(dir, "jwks.json")
	writeFile(t, jwks, jwttest.JWKS(oldKey))
	const issuer = "https://issuer.test"
	_, lic := licensing.New().Handler()
	file := filepath.Join(dir, "portcullis.yaml")
	writeFile(t, file, fmt.Appendf(nil, `
issuers: [{issuer: %q, audiences: [portcullis], jwks_file: %q}]
routes:
  - {service: example.licensing.v1.LicensingService, backend: %q}
reload: {watch_interval: 100ms}
health: {interval: 0s}
limits: {shutdown_timeout: 1s}
guard: {enabled: false}   # the refusals while the file is read again would trip it
`, issuer, jwks, h2ctest.Serve(t, lic)))
	url, _ := startWatched(t, file)
	call := func(key *jwttest.Signer) error {
		c := jwttest.ClaimsAt(issuer, "portcullis", time.Now())
		c["client_id"] = "rotating"
		c["perms"] = map[string]any{"LIC": 7}
		return listRequirements(context.Background(), licensingClient(t, url, key.Mint(nil, c)))
	}
	if err := call(oldKey); err != nil {
		t.Fatalf("a token of the file's key: %v", err)
	}
	if err := call(newKey); connect.CodeOf(err) != connect.CodeUnauthenticated {
		t.Fatalf("a token of a key not yet in the file: %v, want Unauthenticated", err)
	}

	writeFile(t, jwks, jwttest.JWKS(newKey))
	eventually(t, "the new key's tokens are accepted", func() error { return call(newKey) })
	if err := call(oldKey); connect.CodeOf(err) != connect.CodeUnauthenticated {
		t.Errorf("a token of the key rotated out: %v, want Unauthenticated", err)
	}
}

// TestWatchedBackendCAFile moves an https backend to a certificate of
// another CA: the gateway refuses it until the route's ca_file holds that
// CA, then reaches it again, with no restart and no signal.
func TestWatchedBackendCAFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	oldCA, newCA := certtest.NewCA(t, "Old backend CA"), certtest.NewCA(t, "New backend CA")
	var serving atomic.Pointer[tls.Certificate]
	cert := oldCA.Leaf(t, certtest.Spec{CommonName: "licensing", IPs: certtest.Loopback}).TLS()
	serving.Store(&cert)
	_, lic := licensing.New().Handler()
	backend := httptest.NewUnstartedServer(lic)
	backend.EnableHTTP2 = true
	// Certificates, not GetCertificate: a client dialling an IP address
	// sends no server name, and the certificate httptest adds would win.
	backend.TLS = &tls.Config{GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
		return &tls.Config{Certificates: []tls.Certificate{*serving.Load()}, NextProtos: []string{"h2"}}, nil
	}}
	backend.StartTLS()
	t.Cleanup(backend.Close)
	caFile := filepath.Join(dir, "backend-ca.pem")
	oldCA.WriteFile(t, caFile)
	signer := jwttest.NewEC("k1")
	idp := jwttest.NewIdP(t, signer)
	file := filepath.Join(dir, "portcullis.yaml")
	writeFile(t, file, fmt.Appendf(nil, `
issuers: [{issuer: %q, audiences: [portcullis], jwks_url: %q}]
routes:
  - {service: example.licensing.v1.LicensingService, backend: %q, ca_file: %q}
reload: {watch_interval: 100ms}
health: {interval: 0s}
limits: {shutdown_timeout: 1s}
`, idp.Issuer, idp.URL+"/jwks.json", backend.URL, caFile))
	url, _ := startWatched(t, file)
	c := jwttest.ClaimsAt(idp.Issuer, "portcullis", time.Now())
	c["client_id"] = "caller"
	c["perms"] = map[string]any{"LIC": 7}
	client := licensingClient(t, url, signer.Mint(nil, c))
	ctx := context.Background()
	if err := listRequirements(ctx, client); err != nil {
		t.Fatalf("call to the backend of the file's CA: %v", err)
	}

	moved := newCA.Leaf(t, certtest.Spec{CommonName: "licensing", IPs: certtest.Loopback}).TLS()
	serving.Store(&moved)
	backend.CloseClientConnections() // the next call dials again
	if err := listRequirements(ctx, client); connect.CodeOf(err) != connect.CodeUnavailable {
		t.Fatalf("call to a backend whose CA is not in ca_file: %v, want Unavailable", err)
	}

	newCA.WriteFile(t, caFile)
	eventually(t, "the backend of the new CA is reached", func() error {
		backend.CloseClientConnections()
		return listRequirements(ctx, client)
	})
}

// TestWatchRetriesARefusedReload writes a configuration whose new route
// names a CA file that holds no certificate yet: the reload is refused, and
// tried again until the file holds one, with no further change to the
// configuration file.
func TestWatchRetriesARefusedReload(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	signer := jwttest.NewEC("k1")
	idp := jwttest.NewIdP(t, signer)
	_, lic := licensing.New().Handler()
	file := filepath.Join(dir, "portcullis.yaml")
	backend := h2ctest.Serve(t, lic)
	config := func(route string) []byte {
		return fmt.Appendf(nil, `
issuers: [{issuer: %q, audiences: [portcullis], jwks_url: %q}]
routes:
  - {service: example.licensing.v1.LicensingService, backend: %q}
%sreload: {watch_interval: 100ms}
health: {interval: 0s}
limits: {shutdown_timeout: 1s}
`, idp.Issuer, idp.URL+"/jwks.json", backend, route)
	}
	writeFile(t, file, config(""))
	_, gw := startWatched(t, file)
	caFile := filepath.Join(dir, "orders-ca.pem")
	writeFile(t, caFile, []byte("to be written\n"))
	writeFile(t, file, config(fmt.Sprintf("  - {service: example.orders.v1.OrdersService, backend: \"https://127.0.0.1:1\", ca_file: %q}\n", caFile)))
	time.Sleep(time.Second) // tried and refused, more than once
	if n := gw.Generation(); n != 1 {
		t.Fatalf("generation %d with no certificate in the CA file, want 1", n)
	}
	certtest.NewCA(t, "Orders CA").WriteFile(t, caFile)
	eventually(t, "the reload succeeds once the CA file is there", func() error {
		if n := gw.Generation(); n != 2 {
			return fmt.Errorf("generation %d", n)
		}
		return nil
	})
}
