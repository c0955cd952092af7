package gateway_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"
	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/portcullis/portcullis/gateway"
	"github.com/portcullis/portcullis/gateway/authz"
	"github.com/portcullis/portcullis/gateway/catalog"
	"github.com/portcullis/portcullis/gateway/clientcert"
	"github.com/portcullis/portcullis/gateway/config"
	"github.com/portcullis/portcullis/gateway/telemetry"
	licensingv1 "github.com/portcullis/portcullis/gen/example/licensing/v1"
	"github.com/portcullis/portcullis/gen/example/licensing/v1/licensingv1connect"
	ordersv1 "github.com/portcullis/portcullis/gen/example/orders/v1"
	"github.com/portcullis/portcullis/gen/example/orders/v1/ordersv1connect"
	"github.com/portcullis/portcullis/internal/certtest"
	"github.com/portcullis/portcullis/internal/h2ctest"
	"github.com/portcullis/portcullis/internal/jwttest"
	"github.com/portcullis/portcullis/internal/logtest"
	"github.com/portcullis/portcullis/internal/prototest"
	"github.com/portcullis/portcullis/services/licensing"
	"github.com/portcullis/portcullis/services/orders"
)

// paymentsProto declares a method that takes only sender-constrained
// tokens, beside one that takes bearer tokens too.
const paymentsProto = `syntax = "proto3";
package payments.v1;
import "gateway/v1/options.proto";

enum PaymentPermission {
  option (gateway.v1.domain) = {name: "PAY", description: "Payments"};
  PAYMENT_PERMISSION_UNSPECIFIED = 0;
  PAYMENT_PERMISSION_SEND = 1 [(gateway.v1.permission) = {mask: 1}];
}
message PaymentRequest { string sku = 1; int64 delta = 2; }
message PaymentResponse { string sku = 1; int64 quantity = 2; string adjusted_by = 3; }
service PaymentService {
  rpc Send(PaymentRequest) returns (PaymentResponse) {
    option (gateway.v1.access) = {requires: ["PAY.SEND"], sender_constrained: true};
  }
  rpc Quote(PaymentRequest) returns (PaymentResponse) {
    option (gateway.v1.access) = {requires: ["PAY.SEND"]};
  }
}
`

// mtlsFixture is a gateway's certificates and an issuer of tokens: the
// server's and clients' CAs, clients of each kind, and the files the
// gateway reads.
type mtlsFixture struct {
	serverCA, clientCA, otherCA *certtest.CA
	billing, second, expired    *certtest.Leaf // of clientCA
	foreign                     *certtest.Leaf // of otherCA
	dir                         string
	serverCert, serverKey       string
	clientCAFile                string
	signer                      *jwttest.Signer
	idp                         *jwttest.IdP
	image                       string
	clients                     atomic.Int64
}

func newMTLSFixture(t *testing.T) *mtlsFixture {
	t.Helper()
	f := &mtlsFixture{
		serverCA: certtest.NewCA(t, "Server CA"),
		clientCA: certtest.NewCA(t, "Client CA"),
		otherCA:  certtest.NewCA(t, "Other CA"),
		dir:      t.TempDir(),
		signer:   jwttest.NewEC("k1"),
	}
	f.billing = f.clientCA.Leaf(t, certtest.Spec{CommonName: "billing", Organization: "Example",
		URIs: []string{"spiffe://example.org/billing"}, DNSNames: []string{"billing.example.org"}})
	f.second = f.clientCA.Leaf(t, certtest.Spec{CommonName: "second"})
	f.expired = f.clientCA.Leaf(t, certtest.Spec{CommonName: "expired", NotBefore: time.Now().Add(-48 * time.Hour), NotAfter: time.Now().Add(-24 * time.Hour)})
	f.foreign = f.otherCA.Leaf(t, certtest.Spec{CommonName: "foreign"})
	f.serverCert, f.serverKey = f.serverCA.Leaf(t, certtest.Spec{CommonName: "gateway", IPs: certtest.Loopback}).WriteFiles(t, f.dir, "server")
	f.clientCAFile = filepath.Join(f.dir, "clients-ca.pem")
	f.clientCA.WriteFile(t, f.clientCAFile)
	f.idp = jwttest.NewIdP(t, f.signer)
	f.image = prototest.WriteImage(t, map[string]string{"payments/v1/payments.proto": paymentsProto})
	return f
}

// token mints a token for a new client; bound to cert when it is not nil.
func (f *mtlsFixture) token(cert *certtest.Leaf) string {
	c := jwttest.ClaimsAt(f.idp.Issuer, "portcullis", time.Now())
	c["client_id"] = fmt.Sprintf("client-%d", f.clients.Add(1))
	c["perms"] = map[string]any{"LIC": 3, "ORD": 1, "PAY": 1}
	if cert != nil {
		c["cnf"] = map[string]any{"x5t#S256": clientcert.Thumbprint(cert.Cert.Raw)}
	}
	return f.signer.Mint(nil, c)
}

// backends starts the example backends and the payments backend, and
// returns the routes to them; orders requires a client certificate.
func (f *mtlsFixture) routes(t *testing.T, wrap func(http.Handler) http.Handler) string {
	t.Helper()
	if wrap == nil {
		wrap = func(h http.Handler) http.Handler { return h }
	}
	_, lic := licensing.New().Handler()
	_, ord := orders.New().Handler()
	files, err := catalog.LoadImage(f.image)
	if err != nil {
		t.Fatal(err)
	}
	desc, err := files.FindDescriptorByName("payments.v1.PaymentService")
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf(`
descriptors: {images: [%q], compiled_in: true}
issuers: [{issuer: %q, audiences: [portcullis], jwks_url: %q}]
routes:
  - {service: example.licensing.v1.LicensingService, backend: %q}
  - {service: example.orders.v1.OrdersService, backend: %q, client_certificate: required}
  - {service: payments.v1.PaymentService, backend: %q}
health: {interval: 0s}
limits: {shutdown_timeout: 1s}
`, f.image, f.idp.Issuer, f.idp.URL+"/jwks.json", h2ctest.Serve(t, wrap(lic)), h2ctest.Serve(t, wrap(ord)),
		dynamicBackend(t, desc.(protoreflect.ServiceDescriptor)))
}

// tlsGateway is a gateway serving its main listener on 127.0.0.1 with
// [gateway.Gateway.Serve], TLS and all.
type tlsGateway struct {
	url      string
	grpcURL  string // the gRPC listener's
	logs     *logtest.Buffer
	recorder *tracetest.SpanRecorder
}

func startTLSGateway(t *testing.T, yaml string) *tlsGateway {
	t.Helper()
	cfg, err := config.Parse("mtls.yaml", []byte("listen: 127.0.0.1:1\nadmin: 127.0.0.1:2\n"+yaml), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	g := &tlsGateway{logs: new(logtest.Buffer), recorder: tracetest.NewSpanRecorder()}
	provider := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(g.recorder), sdktrace.WithSampler(sdktrace.AlwaysSample()))
	gw, err := gateway.New(context.Background(), cfg,
		gateway.WithLogger(slog.New(slog.NewJSONHandler(g.logs, nil))),
		gateway.WithTelemetryOptions(telemetry.WithTracerProvider(provider)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = gw.Close() }) // after the drain: cleanups run last first
	ls := serveListeners(t, gw)
	scheme := "http://"
	if cfg.TLS.Serves() {
		scheme = "https://"
	}
	g.url = scheme + ls.Main.Addr().String()
	g.grpcURL = scheme + ls.GRPC.Addr().String()
	waitReady(t, "http://"+ls.Admin.Addr().String())
	return g
}

// tlsClient returns an HTTP/2 client of the gateway that trusts roots and
// presents cert (none when nil), sending tok as a bearer token.
func tlsClient(t *testing.T, roots *x509.CertPool, cert *certtest.Leaf, tok string) *http.Client {
	t.Helper()
	tr := &http.Transport{TLSClientConfig: clientTLS(roots, cert), ForceAttemptHTTP2: true}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: bearer{tok: tok, base: tr}}
}

// clientTLS trusts roots and presents cert, when not nil, whichever CAs
// the server names: a client with another CA's certificate presents it.
func clientTLS(roots *x509.CertPool, cert *certtest.Leaf) *tls.Config {
	cfg := &tls.Config{RootCAs: roots}
	if cert != nil {
		c := cert.TLS()
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &c, nil }
	}
	return cfg
}

// handshake connects to the gateway at url as a client of cert, and
// returns the error of the handshake, which in TLS 1.3 a client learns
// when it first reads.
func handshake(url string, roots *x509.CertPool, cert *certtest.Leaf) error {
	c, err := tls.Dial("tcp", strings.TrimPrefix(url, "https://"), clientTLS(roots, cert))
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")); err != nil {
		return err
	}
	_, err = c.Read(make([]byte, 1))
	return err
}

func listRequirements(ctx context.Context, c licensingv1connect.LicensingServiceClient) error {
	_, err := c.ListRequirements(ctx, connect.NewRequest(&licensingv1.ListRequirementsRequest{Jurisdiction: "US-CA", BusinessKind: "restaurant"}))
	return err
}

func getOrder(ctx context.Context, c ordersv1connect.OrdersServiceClient) error {
	_, err := c.GetOrder(ctx, connect.NewRequest(&ordersv1.GetOrderRequest{Id: "ord-0001"}))
	return err
}

// TestMutualTLSListener serves the listener with client_auth request:
// a valid certificate is let in everywhere; none passes on routes that do
// not require one and is refused, 401 "client certificate required", on
// the one that does; a certificate of another CA, or an expired one, is
// refused in the handshake. With client_auth require, none gets in.
func TestMutualTLSListener(t *testing.T) {
	t.Parallel()
	f := newMTLSFixture(t)
	routes := f.routes(t, nil)
	tlsSection := func(auth string) string {
		return fmt.Sprintf("tls: {cert_file: %q, key_file: %q, client_ca_files: [%q], client_auth: %s}\n", f.serverCert, f.serverKey, f.clientCAFile, auth)
	}
	g := startTLSGateway(t, tlsSection("request")+routes)
	roots := f.serverCA.Pool()
	ctx := context.Background()

	t.Run("protocols", func(t *testing.T) { // ends when its parallel subtests do
		for name, opts := range protocols {
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				tok := f.token(nil)
				with := tlsClient(t, roots, f.billing, tok)
				if err := listRequirements(ctx, licensingv1connect.NewLicensingServiceClient(with, g.url, opts...)); err != nil {
					t.Errorf("valid certificate, optional route: %v", err)
				}
				passed(t, "valid certificate, required route", getOrder(ctx, ordersv1connect.NewOrdersServiceClient(with, g.url, opts...)))

				without := tlsClient(t, roots, nil, tok)
				if err := listRequirements(ctx, licensingv1connect.NewLicensingServiceClient(without, g.url, opts...)); err != nil {
					t.Errorf("no certificate, optional route: %v", err)
				}
				err := getOrder(ctx, ordersv1connect.NewOrdersServiceClient(without, g.url, opts...))
				if connect.CodeOf(err) != connect.CodeUnauthenticated || !strings.Contains(err.Error(), "client certificate required") {
					t.Errorf("no certificate, required route = %v, want Unauthenticated: client certificate required", err)
				}
				if info := errorInfo(err); info == nil || info.GetReason() != gateway.ReasonCertificateRequired || info.GetDomain() != authz.ErrorDomain {
					t.Errorf("no certificate, required route: ErrorInfo %v", info)
				}

				for _, c := range []*certtest.Leaf{f.foreign, f.expired} {
					err := listRequirements(ctx, licensingv1connect.NewLicensingServiceClient(tlsClient(t, roots, c, tok), g.url, opts...))
					if err == nil {
						t.Errorf("%s certificate: the call went through", c.Cert.Subject.CommonName)
					}
				}
			})
		}
	})
	for _, c := range []*certtest.Leaf{f.foreign, f.expired} {
		if err := handshake(g.url, roots, c); err == nil || !strings.Contains(err.Error(), "certificate") {
			t.Errorf("handshake with the %s certificate = %v, want it refused", c.Cert.Subject.CommonName, err)
		}
	}

	// Over plain HTTP/JSON, the refusal is a 401.
	req, _ := http.NewRequest(http.MethodPost, g.url+"/example.orders.v1.OrdersService/GetOrder", strings.NewReader(`{"id":"ord-0001"}`))
	req.Header.Set("Content-Type", "application/json")
	resp, err := tlsClient(t, roots, nil, f.token(nil)).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(string(body), "client certificate required") {
		t.Errorf("POST without a certificate: %d %s; want 401 client certificate required", resp.StatusCode, body)
	}

	// The access line and the span of a call with a certificate name it,
	// never hold it.
	logs := g.logs.String()
	id := clientcert.FromCertificate(f.billing.Cert)
	for _, want := range []string{
		`"tls.client.subject":"CN=billing,O=Example"`,
		`"tls.client.thumbprint":"` + id.Thumbprint + `"`,
		`"tls.client.san_uri":["spiffe://example.org/billing"]`,
		`"tls.client.san_dns":["billing.example.org"]`,
	} {
		if !strings.Contains(logs, want) {
			t.Errorf("access log lacks %s", want)
		}
	}
	if pemBody := strings.Split(string(f.billing.CertPEM()), "\n")[1]; strings.Contains(logs, pemBody) {
		t.Error("access log holds the certificate")
	}
	found := false
	for _, s := range g.recorder.Ended() {
		attrs := map[attribute.Key]attribute.Value{}
		for _, a := range s.Attributes() {
			attrs[a.Key] = a.Value
		}
		if attrs["tls.client.thumbprint"].AsString() == id.Thumbprint {
			found = true
			if attrs["tls.client.subject"].AsString() != "CN=billing,O=Example" ||
				fmt.Sprint(attrs["tls.client.san_uri"].AsStringSlice()) != "[spiffe://example.org/billing]" {
				t.Errorf("span %s: %v", s.Name(), s.Attributes())
			}
		}
	}
	if !found {
		t.Error("no span carries the client certificate's thumbprint")
	}

	// client_auth require: no handshake without a certificate.
	strict := startTLSGateway(t, tlsSection("require")+f.routes(t, nil))
	if err := listRequirements(ctx, licensingv1connect.NewLicensingServiceClient(tlsClient(t, roots, nil, f.token(nil)), strict.url, connect.WithGRPC())); err == nil {
		t.Error("require, no certificate: the call went through")
	}
	if err := handshake(strict.url, roots, nil); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("require, handshake without a certificate = %v, want it refused", err)
	}
	if err := listRequirements(ctx, licensingv1connect.NewLicensingServiceClient(tlsClient(t, roots, f.billing, f.token(nil)), strict.url, connect.WithGRPC())); err != nil {
		t.Errorf("require, valid certificate: %v", err)
	}
}

// TestCertificateBoundToken calls with a token bound to the billing
// certificate (RFC 8705 cnf x5t#S256): with that certificate it is
// allowed; with another certificate of the same CA, or none, it is
// refused 401 invalid_token, over Connect, gRPC and gRPC-Web. A
// sender_constrained method refuses a bearer token even with a
// certificate, and takes the bound one.
func TestCertificateBoundToken(t *testing.T) {
	t.Parallel()
	f := newMTLSFixture(t)
	g := startTLSGateway(t, fmt.Sprintf("tls: {cert_file: %q, key_file: %q, client_ca_files: [%q], client_auth: request}\n",
		f.serverCert, f.serverKey, f.clientCAFile)+f.routes(t, nil))
	roots := f.serverCA.Pool()
	ctx := context.Background()
	bound := f.token(f.billing)
	t.Run("protocols", func(t *testing.T) { // ends when its parallel subtests do
		for name, opts := range protocols {
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				call := func(cert *certtest.Leaf) error {
					return listRequirements(ctx, licensingv1connect.NewLicensingServiceClient(tlsClient(t, roots, cert, bound), g.url, opts...))
				}
				if err := call(f.billing); err != nil {
					t.Errorf("bound token with its certificate: %v", err)
				}
				for _, tc := range []struct {
					cert *certtest.Leaf
					why  string
				}{{f.second, "bound to another client certificate"}, {nil, "the call has none"}} {
					err := call(tc.cert)
					if connect.CodeOf(err) != connect.CodeUnauthenticated || !strings.Contains(err.Error(), tc.why) {
						t.Errorf("bound token with %v = %v, want Unauthenticated: %s", tc.cert, err, tc.why)
					}
					if info := errorInfo(err); info == nil || info.GetReason() != authz.ReasonTokenUnbound {
						t.Errorf("bound token with %v: ErrorInfo %v, want %s", tc.cert, info, authz.ReasonTokenUnbound)
					}
					var ce *connect.Error
					if name != "grpc" && (!asConnectError(err, &ce) || !strings.Contains(ce.Meta().Get("WWW-Authenticate"), `error="invalid_token"`)) {
						t.Errorf("bound token with %v: WWW-Authenticate %q, want invalid_token", tc.cert, ce.Meta().Get("WWW-Authenticate"))
					}
				}
			})
		}
	})

	// A sender_constrained method, over Connect's JSON.
	pay := func(method, tok string, cert *certtest.Leaf) (int, string) {
		req, _ := http.NewRequest(http.MethodPost, g.url+"/payments.v1.PaymentService/"+method, strings.NewReader(`{"sku":"p-1"}`))
		req.Header.Set("Content-Type", "application/json")
		resp, err := tlsClient(t, roots, cert, tok).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	bearerTok := f.token(nil)
	if code, body := pay("Send", bearerTok, f.billing); code != http.StatusUnauthorized || !strings.Contains(body, "needs a sender-constrained token") {
		t.Errorf("Send with a bearer token: %d %s; want 401", code, body)
	}
	if code, body := pay("Quote", bearerTok, f.billing); code != http.StatusOK {
		t.Errorf("Quote with a bearer token: %d %s; want 200", code, body)
	}
	if code, body := pay("Send", bound, f.billing); code != http.StatusOK || !strings.Contains(body, `"sku":"p-1"`) {
		t.Errorf("Send with the bound token and its certificate: %d %s; want 200", code, body)
	}
	if code, body := pay("Send", bound, f.second); code != http.StatusUnauthorized {
		t.Errorf("Send with the bound token and another certificate: %d %s; want 401", code, body)
	}
}
