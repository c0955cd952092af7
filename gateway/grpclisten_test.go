package gateway_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"connectrpc.com/grpchealth"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"

	"github.com/portcullis/portcullis/gateway"
	licensingv1 "github.com/portcullis/portcullis/gen/example/licensing/v1"
	"github.com/portcullis/portcullis/gen/example/licensing/v1/licensingv1connect"
	ordersv1 "github.com/portcullis/portcullis/gen/example/orders/v1"
	"github.com/portcullis/portcullis/gen/example/orders/v1/ordersv1connect"
	"github.com/portcullis/portcullis/internal/certtest"
	"github.com/portcullis/portcullis/internal/gatewaytest"
	"github.com/portcullis/portcullis/internal/h2ctest"
	"github.com/portcullis/portcullis/services/issuer"
)

// openListeners opens a main, an admin and a gRPC listener on 127.0.0.1.
func openListeners(t testing.TB) gateway.Listeners {
	t.Helper()
	var ls gateway.Listeners
	for _, ln := range []*net.Listener{&ls.Main, &ls.Admin, &ls.GRPC} {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		*ln = l
	}
	return ls
}

// serveListeners serves gw on a main, an admin and a gRPC listener of its
// own until the test ends, and returns them; the drain's error, if any,
// fails the test.
func serveListeners(t testing.TB, gw *gateway.Gateway) gateway.Listeners {
	t.Helper()
	ls := openListeners(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- gw.ServeListeners(ctx, ls) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return ls
}

// TestGRPCListener calls a gateway's gRPC listener, which grpc-go's
// transport serves, with connect-go's and grpc-go's clients: the same
// decision, rate limits, message limits, timeouts, streams and fallbacks
// as on the main listener.
func TestGRPCListener(t *testing.T) {
	t.Parallel()
	env := gatewaytest.Start(t)
	gw := gatewaytest.New(t, env.Config(`
limits:
  max_message_bytes: 65536
  stream_idle_timeout: 300ms
rate_limit:
  tiers:
    tiny: {override: {requests: 5, period: 1h, burst: 5}}
`))
	ls := serveListeners(t, gw)
	waitReady(t, "http://"+ls.Admin.Addr().String())
	url := "http://" + ls.GRPC.Addr().String()
	secret := env.Issuer.AddClient(t, issuer.Client{ID: "native", Grants: []string{"LIC.READ_REQUIREMENTS", "LIC.READ_ORDERS", "ORD.READ", "ORD.WRITE"}, Tier: "tiny"})
	tok := env.Issuer.Token(t, "native", secret)
	ctx := context.Background()
	lic := licensingv1connect.NewLicensingServiceClient(&http.Client{Transport: bearer{tok: tok, base: h2ctest.Transport()}}, url, connect.WithGRPC())
	req := connect.NewRequest(&licensingv1.ListRequirementsRequest{Jurisdiction: "US-CA", BusinessKind: "restaurant"})

	t.Run("allowed, with the rate limit's headers", func(t *testing.T) {
		res, err := lic.ListRequirements(ctx, req)
		if err != nil {
			t.Fatalf("allowed call: %v", err)
		}
		if len(res.Msg.GetRequirements()) == 0 {
			t.Error("no requirements came back")
		}
		if got := res.Header().Get("RateLimit-Policy"); !strings.Contains(got, "q=5") {
			t.Errorf("RateLimit-Policy %q, want q=5", got)
		}
		if got := res.Header().Get("RateLimit"); !strings.Contains(got, ";r=4;") {
			t.Errorf("RateLimit %q, want r=4", got)
		}
	})
	t.Run("denied", func(t *testing.T) {
		readerSecret := env.Issuer.AddClient(t, issuer.Client{ID: "native-reader", Grants: []string{"LIC.READ_REQUIREMENTS"}})
		reader := licensingv1connect.NewLicensingServiceClient(&http.Client{Transport: bearer{tok: env.Issuer.Token(t, "native-reader", readerSecret), base: h2ctest.Transport()}}, url, connect.WithGRPC())
		_, err := reader.GetLicenceOrder(ctx, connect.NewRequest(&licensingv1.GetLicenceOrderRequest{Id: "lo-0001"}))
		if connect.CodeOf(err) != connect.CodePermissionDenied || !strings.Contains(err.Error(), "missing LIC.READ_ORDERS") {
			t.Errorf("call needing an ungranted permission = %v, want PermissionDenied naming LIC.READ_ORDERS", err)
		}
	})
	t.Run("no token", func(t *testing.T) {
		anon := licensingv1connect.NewLicensingServiceClient(h2ctest.Client(t), url, connect.WithGRPC())
		_, err := anon.GetLicenceOrder(ctx, connect.NewRequest(&licensingv1.GetLicenceOrderRequest{Id: "lo-0001"}))
		var cerr *connect.Error
		if !errors.As(err, &cerr) || cerr.Code() != connect.CodeUnauthenticated {
			t.Fatalf("call without a token = %v, want Unauthenticated", err)
		}
		// gRPC callers read why from the error's details, as on the main
		// listener (no WWW-Authenticate among trailers).
		if d := cerr.Details(); len(d) != 1 || d[0].Type() != "google.rpc.ErrorInfo" {
			t.Errorf("details %v, want one google.rpc.ErrorInfo", d)
		}
	})
	t.Run("message over the limit", func(t *testing.T) {
		big := connect.NewRequest(&licensingv1.ListRequirementsRequest{Jurisdiction: strings.Repeat("x", 70000)})
		if _, err := lic.ListRequirements(ctx, big); connect.CodeOf(err) != connect.CodeResourceExhausted {
			t.Errorf("a message over max_message_bytes = %v, want ResourceExhausted", err)
		}
	})
	t.Run("bidi stream, and its idle timeout", func(t *testing.T) {
		ord := ordersv1connect.NewOrdersServiceClient(&http.Client{Transport: bearer{tok: tok, base: h2ctest.Transport()}}, url, connect.WithGRPC())
		bidi := ord.SyncOrders(ctx)
		for i := range 3 {
			order := &ordersv1.Order{CustomerId: "cust-1", Skus: []string{"sku-1"}, TotalCents: int64(100 + i)}
			if err := bidi.Send(&ordersv1.SyncOrdersRequest{Order: order}); err != nil {
				t.Fatalf("send %d: %v", i, err)
			}
			res, err := bidi.Receive()
			if err != nil {
				t.Fatalf("receive %d: %v", i, err)
			}
			if got := res.GetOrder().GetTotalCents(); got != int64(100+i) {
				t.Fatalf("receive %d: total %d, want %d", i, got, 100+i)
			}
		}
		// Silent past stream_idle_timeout: the gateway ends the stream.
		start := time.Now()
		_, err := bidi.Receive()
		if connect.CodeOf(err) != connect.CodeDeadlineExceeded {
			t.Errorf("a silent stream ended with %v, want DeadlineExceeded", err)
		}
		if waited := time.Since(start); waited > 5*time.Second {
			t.Errorf("the silent stream ended after %v, want about 300ms", waited)
		}
		_ = bidi.CloseRequest()
		_ = bidi.CloseResponse()
	})
	t.Run("health, through the main listener's handler", func(t *testing.T) {
		health := grpchealth.NewClient(h2ctest.Client(t), url, connect.WithGRPC())
		res, err := health.Check(ctx, &grpchealth.CheckRequest{})
		if err != nil || res.Status != grpchealth.StatusServing {
			t.Errorf("health check = %v, %v; want SERVING", res, err)
		}
	})
	t.Run("unknown method and service", func(t *testing.T) {
		for _, procedure := range []string{"/example.licensing.v1.LicensingService/Nope", "/example.nothing.v1.Nothing/Nope"} {
			client := connect.NewClient[emptypb.Empty, emptypb.Empty](h2ctest.Client(t), url+procedure, connect.WithGRPC())
			if _, err := client.CallUnary(ctx, connect.NewRequest(&emptypb.Empty{})); connect.CodeOf(err) != connect.CodeUnimplemented {
				t.Errorf("%s = %v, want Unimplemented", procedure, err)
			}
		}
	})
	t.Run("grpc-go client, over the budget", func(t *testing.T) {
		conn, err := grpc.NewClient(strings.TrimPrefix(url, "http://"), grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		octx := metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+tok)
		var header, trailer metadata.MD
		var lastErr error
		for range 10 {
			var res licensingv1.ListRequirementsResponse
			lastErr = conn.Invoke(octx, licensingv1connect.LicensingServiceListRequirementsProcedure, req.Msg, &res, grpc.Header(&header), grpc.Trailer(&trailer))
			if lastErr != nil {
				break
			}
			if len(res.GetRequirements()) == 0 {
				t.Fatal("no requirements came back")
			}
		}
		if status.Code(lastErr) != codes.ResourceExhausted {
			t.Fatalf("calls over the budget = %v, want ResourceExhausted", lastErr)
		}
		retry := trailer.Get("retry-after")
		if n, err := strconv.Atoi(strings.Join(retry, "")); err != nil || n < 1 {
			t.Errorf("Retry-After trailer %q, want seconds", retry)
		}
	})
	t.Run("Connect is refused", func(t *testing.T) {
		client := licensingv1connect.NewLicensingServiceClient(&http.Client{Transport: bearer{tok: tok, base: h2ctest.Transport()}}, url)
		if _, err := client.ListRequirements(ctx, req); err == nil {
			t.Error("a Connect call on the gRPC listener succeeded")
		}
	})
}

// TestGRPCListenerDrains stops a gateway while a stream is open on its
// gRPC listener: the stream ends with Unavailable, "gateway shutting
// down", at the drain deadline, and ServeListeners returns nil.
func TestGRPCListenerDrains(t *testing.T) {
	t.Parallel()
	env := gatewaytest.Start(t)
	gw := gatewaytest.New(t, env.Config(`
limits:
  shutdown_timeout: 500ms
`))
	ls := openListeners(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- gw.ServeListeners(ctx, ls) }()
	secret := env.Issuer.AddClient(t, issuer.Client{ID: "drained", Grants: []string{"ORD.READ", "ORD.WRITE", "LIC.READ_REQUIREMENTS", "LIC.READ_ORDERS"}})
	tok := env.Issuer.Token(t, "drained", secret)
	ord := ordersv1connect.NewOrdersServiceClient(&http.Client{Transport: bearer{tok: tok, base: h2ctest.Transport()}}, "http://"+ls.GRPC.Addr().String(), connect.WithGRPC())
	bidi := ord.SyncOrders(context.Background())
	if err := bidi.Send(&ordersv1.SyncOrdersRequest{Order: &ordersv1.Order{CustomerId: "c", Skus: []string{"s"}, TotalCents: 1}}); err != nil {
		t.Fatal(err)
	}
	if _, err := bidi.Receive(); err != nil {
		t.Fatalf("first answer: %v", err)
	}
	cancel()
	_, err := bidi.Receive()
	if connect.CodeOf(err) != connect.CodeUnavailable || !strings.Contains(err.Error(), "gateway shutting down") {
		t.Errorf("the open stream ended with %v, want Unavailable, gateway shutting down", err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("ServeListeners = %v, want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("ServeListeners did not return")
	}
	_ = bidi.CloseRequest()
	_ = bidi.CloseResponse()
	if errors.Is(err, io.EOF) {
		t.Error("the stream ended cleanly")
	}
}

// TestGRPCListenerMutualTLS calls the gRPC listener of a gateway that
// serves TLS and asks for client certificates: the listener shares the
// main listener's certificate and client CAs; a route that requires a
// client certificate lets in a caller with one and refuses one without;
// a token bound to one certificate is refused with another.
func TestGRPCListenerMutualTLS(t *testing.T) {
	t.Parallel()
	f := newMTLSFixture(t)
	g := startTLSGateway(t, fmt.Sprintf("tls: {cert_file: %q, key_file: %q, client_ca_files: [%q], client_auth: request}\n", f.serverCert, f.serverKey, f.clientCAFile)+f.routes(t, nil))
	roots := f.serverCA.Pool()
	ctx := context.Background()
	orders := func(cert *certtest.Leaf, tok string) ordersv1connect.OrdersServiceClient {
		return ordersv1connect.NewOrdersServiceClient(tlsClient(t, roots, cert, tok), g.grpcURL, connect.WithGRPC())
	}
	if err := getOrder(ctx, orders(f.billing, f.token(nil))); err != nil {
		t.Errorf("with a client certificate: %v", err)
	}
	if err := getOrder(ctx, orders(nil, f.token(nil))); connect.CodeOf(err) != connect.CodeUnauthenticated || !strings.Contains(err.Error(), "client certificate required") {
		t.Errorf("without a client certificate = %v, want Unauthenticated, client certificate required", err)
	}
	bound := f.token(f.billing)
	if err := getOrder(ctx, orders(f.billing, bound)); err != nil {
		t.Errorf("a bound token with its certificate: %v", err)
	}
	if err := getOrder(ctx, orders(f.second, bound)); connect.CodeOf(err) != connect.CodeUnauthenticated {
		t.Errorf("a bound token with another certificate = %v, want Unauthenticated", err)
	}
}
