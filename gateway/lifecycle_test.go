package gateway_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"
	"connectrpc.com/grpchealth"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/portcullis/portcullis/gateway"
	"github.com/portcullis/portcullis/gateway/config"
	licensingv1 "github.com/portcullis/portcullis/gen/example/licensing/v1"
	"github.com/portcullis/portcullis/gen/example/licensing/v1/licensingv1connect"
	"github.com/portcullis/portcullis/internal/gatewaytest"
	"github.com/portcullis/portcullis/internal/h2ctest"
	"github.com/portcullis/portcullis/internal/logtest"
	"github.com/portcullis/portcullis/services/issuer"
	"github.com/portcullis/portcullis/services/issuer/issuertest"
	"github.com/portcullis/portcullis/services/licensing"
)

// served is a gateway run by Serve on its own listeners.
type served struct {
	gw     *gateway.Gateway
	iss    *issuertest.Issuer
	url    string
	admin  string
	cancel context.CancelFunc
	done   chan error // Serve's result
}

func serveGateway(t *testing.T, extra string) *served {
	t.Helper()
	iss := gatewaytest.Issuer(t)
	_, lic := licensing.New().Handler()
	yaml := fmt.Sprintf(`
issuers: [{issuer: %q, audiences: [%q], discovery: true}]
routes:
  - {service: example.licensing.v1.LicensingService, backend: %q}
`, iss.URL, issuertest.Audience, h2ctest.Serve(t, lic)) + extra
	cfg, err := config.Parse("test.yaml", []byte(yaml), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	gw, err := gateway.New(context.Background(), cfg, gateway.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = gw.Close() })
	main, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	admin, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &served{gw: gw, iss: iss, url: "http://" + main.Addr().String(), admin: "http://" + admin.Addr().String(), cancel: cancel, done: make(chan error, 1)}
	go func() { s.done <- gw.Serve(ctx, main, admin) }()
	t.Cleanup(cancel)
	waitReady(t, s.admin)
	return s
}

// TestDrain stops a gateway with streams open past the drain time: they end
// with Unavailable and a message, new connections are refused meanwhile,
// readiness says draining, and Serve reports a clean stop.
func TestDrain(t *testing.T) {
	t.Parallel()
	s := serveGateway(t, "limits: {shutdown_timeout: 700ms}\n")
	secret := s.iss.AddClient(t, issuer.Client{ID: "watcher", Grants: []string{"LIC.READ_ORDERS"}})
	tok := s.iss.Token(t, "watcher", secret)

	type result struct {
		name string
		err  error
	}
	results := make(chan result, len(protocols))
	opened := make(chan struct{}, len(protocols))
	for name, opts := range protocols {
		go func() {
			client := licensingv1connect.NewLicensingServiceClient(&http.Client{Transport: bearer{tok: tok, base: h2ctest.Transport()}}, s.url, opts...)
			stream, err := client.WatchLicenceOrders(context.Background(), connect.NewRequest(&licensingv1.WatchLicenceOrdersRequest{BusinessId: "biz-acme"}))
			if err != nil {
				results <- result{name, err}
				return
			}
			defer stream.Close()
			if !stream.Receive() {
				results <- result{name, fmt.Errorf("no first message: %w", stream.Err())}
				return
			}
			opened <- struct{}{}
			for stream.Receive() {
			}
			results <- result{name, stream.Err()}
		}()
	}
	for range protocols {
		select {
		case <-opened:
		case r := <-results:
			t.Fatalf("%s stream: %v", r.name, r.err)
		case <-time.After(10 * time.Second):
			t.Fatal("streams did not open")
		}
	}

	start := time.Now()
	s.cancel()
	// While the streams drain, readiness says so and new connections are
	// refused.
	deadline := time.Now().Add(400 * time.Millisecond)
	var ready map[string]any
	for time.Now().Before(deadline) {
		ready = readyz(t, s.admin)
		if ready["status"] == "not ready" {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if !strings.Contains(fmt.Sprint(ready["reason"]), "draining") {
		t.Errorf("/readyz while draining = %v, want not ready, draining", ready)
	}
	if conn, err := net.DialTimeout("tcp", strings.TrimPrefix(s.url, "http://"), time.Second); err == nil {
		conn.Close()
		t.Error("the main listener still accepts connections while draining")
	}

	for range protocols {
		r := <-results
		if connect.CodeOf(r.err) != connect.CodeUnavailable || !strings.Contains(r.err.Error(), "gateway shutting down") {
			t.Errorf("%s stream open at the drain deadline ended with %v, want Unavailable: gateway shutting down", r.name, r.err)
		}
	}
	select {
	case err := <-s.done:
		if err != nil {
			t.Errorf("Serve after a drain = %v, want nil (a clean stop)", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return after the drain")
	}
	if took := time.Since(start); took < 600*time.Millisecond || took > 3*time.Second {
		t.Errorf("drain took %v, want about the drain time (700ms) plus a grace", took)
	}
}

// TestDrainWithNothingOpen returns at once.
func TestDrainWithNothingOpen(t *testing.T) {
	t.Parallel()
	s := serveGateway(t, "limits: {shutdown_timeout: 10s}\n")
	start := time.Now()
	s.cancel()
	if err := <-s.done; err != nil {
		t.Errorf("Serve = %v, want nil", err)
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("an idle gateway took %v to stop", took)
	}
}

func readyz(t *testing.T, admin string) map[string]any {
	t.Helper()
	resp, err := http.Get(admin + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	body["code"] = resp.StatusCode
	return body
}

// TestHealth checks grpc.health.v1 for the gateway and its routed services
// with connect-go's and grpc-go's health clients, and /readyz's account of
// failing backends.
func TestHealth(t *testing.T) {
	t.Parallel()
	// The orders backend is down: a port nothing listens on.
	deadURL := "http://" + deadAddr
	s := serveGateway(t, fmt.Sprintf(`
  - {service: example.orders.v1.OrdersService, backend: %q}
health: {interval: 100ms}
`, deadURL))

	const lic, ord = "example.licensing.v1.LicensingService", "example.orders.v1.OrdersService"
	want := map[string]grpchealth.Status{"": grpchealth.StatusServing, lic: grpchealth.StatusServing, ord: grpchealth.StatusNotServing}
	waitFor(t, 5*time.Second, func() error {
		failing, _ := readyz(t, s.admin)["failing_backends"].(map[string]any)
		if _, ok := failing[deadURL]; !ok {
			return fmt.Errorf("/readyz failing_backends = %v, want %s", failing, deadURL)
		}
		return nil
	})
	ready := readyz(t, s.admin)
	if ready["code"] != http.StatusOK || ready["status"] != "degraded" {
		t.Errorf("/readyz with one of two backends down = %v, want 200 degraded", ready)
	}

	for name, opts := range protocols {
		client := grpchealth.NewClient(&http.Client{Transport: h2ctest.Transport()}, s.url, opts...)
		for service, status := range want {
			res, err := client.Check(context.Background(), &grpchealth.CheckRequest{Service: service})
			if err != nil || res.Status != status {
				t.Errorf("%s: Check(%q) = %v, %v; want %v", name, service, res, err, status)
			}
		}
		_, err := client.Check(context.Background(), &grpchealth.CheckRequest{Service: "example.Unrouted"})
		if connect.CodeOf(err) != connect.CodeNotFound {
			t.Errorf("%s: Check of an unrouted service = %v, want NotFound", name, err)
		}
	}

	conn, err := grpc.NewClient(strings.TrimPrefix(s.url, "http://"), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	res, err := healthpb.NewHealthClient(conn).Check(context.Background(), &healthpb.HealthCheckRequest{Service: lic})
	if err != nil || res.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Errorf("grpc-go Check(%q) = %v, %v; want SERVING", lic, res, err)
	}
	res, err = healthpb.NewHealthClient(conn).Check(context.Background(), &healthpb.HealthCheckRequest{Service: ord})
	if err != nil || res.GetStatus() != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Errorf("grpc-go Check(%q) = %v, %v; want NOT_SERVING", ord, res, err)
	}
}

// TestUnknownServiceIsUnimplemented: a call to a service or method the
// gateway does not route gets Unimplemented in the caller's protocol.
func TestUnknownServiceIsUnimplemented(t *testing.T) {
	t.Parallel()
	s := serveGateway(t, "")
	for name, opts := range protocols {
		for _, url := range []string{s.url + "/example.Nothing/", s.url + "/example.licensing.v1.LicensingService/Nothing/"} {
			client := connect.NewClient[licensingv1.ListRequirementsRequest, licensingv1.ListRequirementsResponse](
				&http.Client{Transport: h2ctest.Transport()}, strings.TrimSuffix(url, "/"), opts...)
			_, err := client.CallUnary(context.Background(), connect.NewRequest(&licensingv1.ListRequirementsRequest{}))
			if connect.CodeOf(err) != connect.CodeUnimplemented {
				t.Errorf("%s %s = %v, want Unimplemented", name, url, err)
			}
		}
	}
	conn, err := grpc.NewClient(strings.TrimPrefix(s.url, "http://"), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	uerr := conn.Invoke(context.Background(), "/example.Nothing/Call", &licensingv1.ListRequirementsRequest{}, &licensingv1.ListRequirementsResponse{})
	if status.Code(uerr) != codes.Unimplemented {
		t.Errorf("grpc-go call of an unknown service = %v, want Unimplemented", uerr)
	}
}

func waitFor(t *testing.T, within time.Duration, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestServerLogsAreStructured: net/http's own complaints, such as a TLS
// handshake that fails, are lines of the structured log, not plain text.
func TestServerLogsAreStructured(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	certFile, keyFile := writeSelfSigned(t, dir)
	_, lic := licensing.New().Handler()
	cfg, err := config.Parse("test.yaml", []byte(fmt.Sprintf(`
tls: {cert_file: %q, key_file: %q}
routes: [{service: example.licensing.v1.LicensingService, backend: %q}]
health: {interval: 0s}
`, certFile, keyFile, h2ctest.Serve(t, lic))), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	logs := new(logtest.Buffer)
	gw, err := gateway.New(context.Background(), cfg, gateway.WithLogger(slog.New(slog.NewJSONHandler(logs, nil))))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = gw.Close() })
	main, _ := net.Listen("tcp", "127.0.0.1:0")
	admin, _ := net.Listen("tcp", "127.0.0.1:0")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- gw.Serve(ctx, main, admin) }()
	defer func() { cancel(); <-done }()

	conn, err := net.Dial("tcp", main.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprint(conn, "GET / HTTP/1.1\r\nHost: x\r\n\r\n") // plain text to a TLS listener
	_, _ = io.Copy(io.Discard, conn)
	conn.Close()
	waitFor(t, 5*time.Second, func() error {
		for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
			var rec map[string]any
			if json.Unmarshal([]byte(line), &rec) == nil && strings.Contains(fmt.Sprint(rec["msg"]), "TLS handshake error") {
				return nil
			}
		}
		return fmt.Errorf("no structured line for the failed TLS handshake in:\n%s", logs.String())
	})
}

// writeSelfSigned writes a self-signed certificate for 127.0.0.1 and its
// key as PEM files in dir.
func writeSelfSigned(t *testing.T, dir string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		NotBefore:   time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

// TestServedConnectionsReadAhead: the main listener's plaintext
// connections are read through a buffer. Calls whose frames share reads,
// or whose bodies are larger than the buffer, arrive whole on h2c and on
// HTTP/1.1 keep-alive connections, in each protocol, many streams at once;
// an HTTP/1.1 client that asks to close gets its whole answer first.
func TestServedConnectionsReadAhead(t *testing.T) {
	t.Parallel()
	s := serveGateway(t, "")
	secret := s.iss.AddClient(t, issuer.Client{ID: "reader", Grants: []string{"LIC.READ_REQUIREMENTS"}})
	tok := s.iss.Token(t, "reader", secret)
	small := &licensingv1.ListRequirementsRequest{Jurisdiction: "US-CA", BusinessKind: "restaurant"}
	large := &licensingv1.ListRequirementsRequest{Jurisdiction: "US-CA", BusinessKind: strings.Repeat("r", 64<<10)}
	for _, tc := range []struct {
		name      string
		transport http.RoundTripper
	}{
		{"h2c", h2ctest.Transport()},
		{"HTTP/1.1", &http.Transport{MaxConnsPerHost: 1}}, // every call on one keep-alive connection
	} {
		for name, opts := range protocols {
			if tc.name == "HTTP/1.1" && name == "grpc" {
				continue // gRPC needs HTTP/2
			}
			t.Run(tc.name+" "+name, func(t *testing.T) {
				t.Parallel()
				client := licensingv1connect.NewLicensingServiceClient(&http.Client{Transport: bearer{tok: tok, base: tc.transport}}, s.url, opts...)
				var wg sync.WaitGroup
				errs := make(chan error, 40)
				for i := range 40 {
					wg.Go(func() {
						msg := small
						if i%4 == 0 {
							msg = large
						}
						res, err := client.ListRequirements(t.Context(), connect.NewRequest(msg))
						switch {
						case msg == small && err != nil:
							errs <- fmt.Errorf("call %d: %w", i, err)
						case msg == small && len(res.Msg.GetRequirements()) == 0:
							errs <- fmt.Errorf("call %d: no requirements", i)
						case msg == large && err != nil && connect.CodeOf(err) != connect.CodeNotFound && connect.CodeOf(err) != connect.CodeInvalidArgument:
							errs <- fmt.Errorf("large call %d: %w, want the backend's answer", i, err)
						}
					})
				}
				wg.Wait()
				close(errs)
				for err := range errs {
					t.Error(err)
				}
			})
		}
	}

	t.Run("HTTP/1.1 close", func(t *testing.T) {
		t.Parallel()
		body, err := proto.Marshal(small)
		if err != nil {
			t.Fatal(err)
		}
		req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, s.url+"/example.licensing.v1.LicensingService/ListRequirements", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/proto")
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Close = true
		res, err := (&http.Transport{}).RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		data, err := io.ReadAll(res.Body)
		if err != nil {
			t.Fatal(err)
		}
		var out licensingv1.ListRequirementsResponse
		if res.StatusCode != http.StatusOK || proto.Unmarshal(data, &out) != nil || len(out.GetRequirements()) == 0 {
			t.Fatalf("status %d, %d bytes, want the requirements whole", res.StatusCode, len(data))
		}
	})
}
