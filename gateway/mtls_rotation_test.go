package gateway_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"

	"github.com/portcullis/portcullis/gen/example/licensing/v1/licensingv1connect"
	"github.com/portcullis/portcullis/internal/certtest"
	"github.com/portcullis/portcullis/services/licensing"
)

// eventually retries check until it returns nil, for up to 10s: the
// gateway looks at its files once a second.
func eventually(t *testing.T, what string, check func() error) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still %v after 10s", what, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// serverName returns the common name of the certificate the gateway
// serves in a new handshake, or the error of the handshake (which a TLS
// 1.3 client learns when it first reads).
func serverName(addr string, roots *x509.CertPool, cert *certtest.Leaf) (string, error) {
	c, err := tls.Dial("tcp", addr, clientTLS(roots, cert))
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")); err != nil {
		return "", err
	}
	if _, err := c.Read(make([]byte, 1)); err != nil {
		return "", err
	}
	return c.ConnectionState().PeerCertificates[0].Subject.CommonName, nil
}

// TestListenerRotation rotates the gateway's certificate and its client
// CA bundle on disk while a client keeps calling on one connection: new
// handshakes get the new certificate and are verified against the new
// bundle, without a restart, and the open connection goes on.
func TestListenerRotation(t *testing.T) {
	t.Parallel()
	f := newMTLSFixture(t)
	g := startTLSGateway(t, fmt.Sprintf("tls: {cert_file: %q, key_file: %q, client_ca_files: [%q], client_auth: require}\n",
		f.serverCert, f.serverKey, f.clientCAFile)+f.routes(t, nil))
	addr := g.url[len("https://"):]
	roots := x509.NewCertPool() // the clients trust both server CAs
	roots.AddCert(f.serverCA.Cert)
	roots.AddCert(f.otherCA.Cert)
	ctx := context.Background()

	// A client calling all along, on its one HTTP/2 connection.
	steady := licensingv1connect.NewLicensingServiceClient(tlsClient(t, roots, f.billing, f.token(nil)), g.url, connect.WithGRPC())
	if err := listRequirements(ctx, steady); err != nil {
		t.Fatal(err)
	}
	var calls, failures atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var stopOnce sync.Once
	halt := func() {
		stopOnce.Do(func() { close(stop) })
		wg.Wait()
	}
	t.Cleanup(halt)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			calls.Add(1)
			if err := listRequirements(ctx, steady); err != nil {
				failures.Add(1)
				t.Errorf("steady client: %v", err)
			}
		}
	}()

	if _, err := serverName(addr, roots, f.foreign); err == nil {
		t.Fatal("the other CA's client got in before the bundle names its CA")
	}
	// Rotation: a certificate of another CA, a bundle of the other CA
	// only. Written each beside the old file, then renamed over it.
	f.otherCA.Leaf(t, certtest.Spec{CommonName: "gateway-2", IPs: certtest.Loopback}).WriteFiles(t, f.dir, "server")
	f.otherCA.WriteFile(t, f.clientCAFile)
	eventually(t, "new certificate served", func() error {
		name, err := serverName(addr, roots, f.foreign)
		if err != nil {
			return err
		}
		if name != "gateway-2" {
			return fmt.Errorf("served %q", name)
		}
		return nil
	})
	fresh := licensingv1connect.NewLicensingServiceClient(tlsClient(t, roots, f.foreign, f.token(nil)), g.url, connect.WithGRPC())
	if err := listRequirements(ctx, fresh); err != nil {
		t.Errorf("a client of the new CA: %v", err)
	}
	// The old CA's clients are refused in new handshakes...
	if _, err := serverName(addr, roots, f.billing); err == nil {
		t.Error("a new connection with the old CA's certificate got in after the bundle dropped it")
	}
	// ...while the connection opened before goes on.
	n := calls.Load()
	eventually(t, "steady client still calling", func() error {
		if calls.Load() < n+5 {
			return fmt.Errorf("%d calls", calls.Load()-n)
		}
		return nil
	})
	halt()
	if failures.Load() != 0 {
		t.Errorf("%d of %d steady calls failed", failures.Load(), calls.Load())
	}

	// A broken new certificate is refused and the last good one kept.
	certtest.Write(t, f.serverCert, []byte("not a certificate"))
	time.Sleep(1200 * time.Millisecond)
	if name, err := serverName(addr, roots, f.foreign); err != nil || name != "gateway-2" {
		t.Errorf("after a broken certificate file: %q %v, want gateway-2 kept", name, err)
	}
	if !contains(g.logs.String(), "refused; the previous one is kept") {
		t.Error("the log does not say the broken file was refused")
	}
}

// TestBackendClientCertificate routes to an https backend that requires a
// client certificate: the gateway presents the route's, and after a
// rotation on disk, presents the new one on its next connection.
func TestBackendClientCertificate(t *testing.T) {
	t.Parallel()
	f := newMTLSFixture(t)
	var seen atomic.Value // the common name of the client certificate the backend saw last
	_, lic := licensing.New().Handler()
	backend := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen.Store(r.TLS.PeerCertificates[0].Subject.CommonName)
		lic.ServeHTTP(w, r)
	}))
	backend.EnableHTTP2 = true
	backend.TLS = &tls.Config{
		Certificates: []tls.Certificate{f.serverCA.Leaf(t, certtest.Spec{CommonName: "licensing", IPs: certtest.Loopback}).TLS()},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    f.clientCA.Pool(),
	}
	backend.StartTLS()
	t.Cleanup(backend.Close)
	caFile := filepath.Join(f.dir, "backend-ca.pem")
	f.serverCA.WriteFile(t, caFile)
	certFile, keyFile := f.clientCA.Leaf(t, certtest.Spec{CommonName: "gateway-1"}).WriteFiles(t, f.dir, "to-backend")
	g := startTLSGateway(t, fmt.Sprintf(`
issuers: [{issuer: %q, audiences: [portcullis], jwks_url: %q}]
routes:
  - {service: example.licensing.v1.LicensingService, backend: %q, ca_file: %q, client_cert_file: %q, client_key_file: %q}
health: {interval: 0s}
limits: {shutdown_timeout: 1s}
`, f.idp.Issuer, f.idp.URL+"/jwks.json", backend.URL, caFile, certFile, keyFile))
	client := licensingv1connect.NewLicensingServiceClient(&http.Client{Transport: bearer{tok: f.token(nil), base: http2Cleartext(t)}}, g.url, connect.WithGRPC())
	ctx := context.Background()
	if err := listRequirements(ctx, client); err != nil {
		t.Fatalf("call to the mutual TLS backend: %v", err)
	}
	if got := seen.Load(); got != "gateway-1" {
		t.Fatalf("the backend saw %v, want gateway-1", got)
	}

	f.clientCA.Leaf(t, certtest.Spec{CommonName: "gateway-2"}).WriteFiles(t, f.dir, "to-backend")
	eventually(t, "backend sees the new certificate", func() error {
		backend.CloseClientConnections() // the next call dials again
		if err := listRequirements(ctx, client); err != nil && connect.CodeOf(err) != connect.CodeUnavailable {
			return err
		}
		if got := seen.Load(); got != "gateway-2" {
			return fmt.Errorf("the backend saw %v", got)
		}
		return nil
	})
	if err := listRequirements(ctx, client); err != nil {
		t.Errorf("call after the rotation: %v", err)
	}
}
