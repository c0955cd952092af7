package forward_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"log"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/portcullis/portcullis/gateway/forward"
	licensingv1 "github.com/portcullis/portcullis/gen/example/licensing/v1"
	ordersv1 "github.com/portcullis/portcullis/gen/example/orders/v1"
)

// TestBackendProtocols forwards to the same backend over h2c and TLS, in
// each outbound protocol.
func TestBackendProtocols(t *testing.T) {
	t.Parallel()
	be := startBackend(t)
	srv := httptest.NewUnstartedServer(be.handler)
	srv.EnableHTTP2 = true
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the untrusted case fails handshakes
	srv.StartTLS()
	t.Cleanup(srv.Close)
	roots := x509.NewCertPool()
	roots.AddCert(srv.Certificate())
	trusted := forward.WithTLSConfig(&tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12})

	tests := []struct {
		name string
		url  string
		opts []forward.BackendOption
	}{
		{name: "h2c grpc", url: be.url},
		{name: "h2c connect", url: be.url, opts: []forward.BackendOption{forward.WithProtocol(forward.ProtocolConnect)}},
		{name: "h2c grpcweb", url: be.url, opts: []forward.BackendOption{forward.WithProtocol(forward.ProtocolGRPCWeb)}},
		{name: "h2c one connection", url: be.url, opts: []forward.BackendOption{forward.WithConnections(1)}},
		{name: "tls grpc", url: srv.URL, opts: []forward.BackendOption{trusted}},
		{name: "tls connect", url: srv.URL, opts: []forward.BackendOption{trusted, forward.WithProtocol(forward.ProtocolConnect)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			gw := startGateway(t, tt.url, tt.opts)
			for _, p := range protocols[:2] { // binary and JSON
				ord := ordersClient(gw, p)
				res, err := ord.GetOrder(t.Context(), connect.NewRequest(&ordersv1.GetOrderRequest{Id: "ord-0001"}))
				if err != nil {
					t.Fatalf("%s: %v", p.name, err)
				}
				if res.Msg.GetOrder().GetCustomerId() != "cust-ada" {
					t.Errorf("%s: order = %v", p.name, res.Msg.GetOrder())
				}
				assertBackendMetadata(t, res.Header(), res.Trailer(), "unary")

				_, err = ord.GetOrder(t.Context(), connect.NewRequest(&ordersv1.GetOrderRequest{Id: "ord-x"}))
				if ce := wantError(t, err, connect.CodeNotFound, `order "ord-x" not found`); len(ce.Details()) != 1 {
					t.Errorf("%s: details = %v", p.name, ce.Details())
				}

				stream := ord.SyncOrders(t.Context())
				for i := range 3 {
					if err := stream.Send(&ordersv1.SyncOrdersRequest{Order: &ordersv1.Order{CustomerId: "c", Skus: []string{"s"}, TotalCents: int64(i)}}); err != nil {
						t.Fatal(err)
					}
					msg, err := stream.Receive()
					if err != nil {
						t.Fatalf("%s: %v", p.name, err)
					}
					if msg.GetOrder().GetTotalCents() != int64(i) {
						t.Errorf("%s: stored %v", p.name, msg.GetOrder())
					}
				}
				if err := stream.CloseRequest(); err != nil {
					t.Fatal(err)
				}
				if _, err := stream.Receive(); !errors.Is(err, io.EOF) {
					t.Errorf("%s: end of stream: %v", p.name, err)
				}
				if v := stream.ResponseTrailer().Get(backendTrailer); v != "stream" {
					t.Errorf("%s: trailer %q", p.name, v)
				}
				_ = stream.CloseResponse()

				ctx, cancel := context.WithCancel(t.Context())
				watch, err := licensingClient(gw, p).WatchLicenceOrders(ctx, connect.NewRequest(&licensingv1.WatchLicenceOrdersRequest{BusinessId: "biz-acme"}))
				if err != nil {
					t.Fatal(err)
				}
				for range 2 {
					if !watch.Receive() {
						t.Fatalf("%s: watch: %v", p.name, watch.Err())
					}
				}
				cancel()
				_ = watch.Close()
			}
		})
	}

	t.Run("tls untrusted", func(t *testing.T) {
		t.Parallel()
		// The backend's certificate is not signed by a system root: the
		// gateway refuses to talk to it.
		gw := startGateway(t, srv.URL, nil)
		_, err := ordersClient(gw, protocols[0]).GetOrder(t.Context(), connect.NewRequest(&ordersv1.GetOrderRequest{Id: "ord-0001"}))
		wantError(t, err, connect.CodeUnavailable, "backend unavailable")
	})
}

func TestNewBackendErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		url  string
		opts []forward.BackendOption
	}{
		{name: "no scheme", url: "127.0.0.1:8080"},
		{name: "other scheme", url: "ftp://127.0.0.1:8080"},
		{name: "no host", url: "http:///path"},
		{name: "user info", url: "http://user:secret@127.0.0.1:8080"},
		{name: "query", url: "http://127.0.0.1:8080/?a=b"},
		{name: "fragment", url: "http://127.0.0.1:8080/#a"},
		{name: "unparsable", url: "http://[::1"},
		{name: "TLS on cleartext", url: "http://127.0.0.1:8080", opts: []forward.BackendOption{forward.WithTLSConfig(&tls.Config{MinVersion: tls.VersionTLS12})}},
		{name: "no connections", url: "http://127.0.0.1:8080", opts: []forward.BackendOption{forward.WithConnections(0)}},
		{name: "no dial timeout", url: "http://127.0.0.1:8080", opts: []forward.BackendOption{forward.WithDialTimeout(0)}},
		{name: "unknown protocol", url: "http://127.0.0.1:8080", opts: []forward.BackendOption{forward.WithProtocol(forward.Protocol(7))}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if b, err := forward.NewBackend(tt.url, tt.opts...); err == nil {
				t.Errorf("NewBackend(%q) = %v, want an error", tt.url, b.URL())
			}
		})
	}
}

func TestNewBackendURL(t *testing.T) {
	t.Parallel()
	b, err := forward.NewBackend("https://orders.internal:8443/api/", forward.WithProtocol(forward.ProtocolConnect), forward.WithDialTimeout(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if b.URL() != "https://orders.internal:8443/api" || b.Protocol() != forward.ProtocolConnect {
		t.Errorf("backend = %s %v", b.URL(), b.Protocol())
	}
}

func TestParseProtocol(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		want    forward.Protocol
		wantErr bool
	}{
		{in: "grpc", want: forward.ProtocolGRPC},
		{in: "GRPC", want: forward.ProtocolGRPC},
		{in: "connect", want: forward.ProtocolConnect},
		{in: "grpcweb", want: forward.ProtocolGRPCWeb},
		{in: "grpc-web", want: forward.ProtocolGRPCWeb},
		{in: "", wantErr: true},
		{in: "http", wantErr: true},
	}
	for _, tt := range tests {
		got, err := forward.ParseProtocol(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("ParseProtocol(%q) = %v, %v", tt.in, got, err)
		}
		if err == nil && got.String() != map[forward.Protocol]string{forward.ProtocolGRPC: "grpc", forward.ProtocolConnect: "connect", forward.ProtocolGRPCWeb: "grpcweb"}[got] {
			t.Errorf("%v.String() = %q", got, got.String())
		}
	}
}

func TestNewHandlerErrors(t *testing.T) {
	t.Parallel()
	b, err := forward.NewBackend("http://127.0.0.1:1")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := forward.NewHandler(nil, b); err == nil {
		t.Error("nil service accepted")
	}
	if _, _, err := forward.NewHandler(gatewayServices[0], nil); err == nil {
		t.Error("nil backend accepted")
	}
	path, h, err := forward.NewHandler(gatewayServices[0], b)
	if err != nil || h == nil || path != "/example.licensing.v1.LicensingService/" {
		t.Errorf("NewHandler = %q, %v, %v", path, h, err)
	}
}

// TestOptionErrors shows the constructors reporting invalid option values,
// naming the option.
func TestOptionErrors(t *testing.T) {
	t.Parallel()
	backendTests := []struct {
		opt  forward.BackendOption
		want string
	}{
		{forward.WithConnections(0), "WithConnections(0)"},
		{forward.WithConnections(-1), "WithConnections(-1)"},
		{forward.WithDialTimeout(0), "WithDialTimeout(0s)"},
		{forward.WithDialTimeout(-time.Second), "WithDialTimeout(-1s)"},
		{forward.WithProtocol(forward.Protocol(7)), "WithProtocol(Protocol(7))"},
		{forward.WithHealthCheck(0), "WithHealthCheck(0s)"},
		{forward.WithHealthCheck(-time.Second), "WithHealthCheck(-1s)"},
		{forward.WithClientOptions(nil), "WithClientOptions"},
	}
	for _, tt := range backendTests {
		if _, err := forward.NewBackend("http://127.0.0.1:1", tt.opt); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("NewBackend with %s: error %v", tt.want, err)
		}
	}

	b, err := forward.NewBackend("http://127.0.0.1:1")
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	handlerTests := []struct {
		opt  forward.Option
		want string
	}{
		{forward.WithMaxTimeout(-time.Second), "WithMaxTimeout(-1s)"},
		{forward.WithMaxStreamTimeout(-time.Second), "WithMaxStreamTimeout(-1s)"},
		{forward.WithMaxMessageBytes(-1), "WithMaxMessageBytes(-1)"},
		{forward.WithRequestBodyTimeout(-time.Second), "WithRequestBodyTimeout(-1s)"},
		{forward.WithStreamIdleTimeout(-time.Second), "WithStreamIdleTimeout(-1s)"},
		{forward.WithSensitiveHeaders("X-Ok", "bad header"), `WithSensitiveHeaders("bad header")`},
		{forward.WithHandlerOptions(nil), "WithHandlerOptions"},
	}
	for _, tt := range handlerTests {
		if _, _, err := forward.NewHandler(gatewayServices[0], b, tt.opt); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("NewHandler with %s: error %v", tt.want, err)
		}
	}
	// Zero means no limit where documented.
	for _, opt := range []forward.Option{
		forward.WithMaxTimeout(0), forward.WithMaxStreamTimeout(0), forward.WithMaxMessageBytes(0),
		forward.WithRequestBodyTimeout(0), forward.WithStreamIdleTimeout(0), forward.WithStop(nil),
	} {
		if _, _, err := forward.NewHandler(gatewayServices[0], b, opt); err != nil {
			t.Errorf("NewHandler: %v", err)
		}
	}
}
