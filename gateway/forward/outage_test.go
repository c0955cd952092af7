package forward_test

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"

	"github.com/portcullis/portcullis/gateway/forward"
	licensingv1 "github.com/portcullis/portcullis/gen/example/licensing/v1"
	ordersv1 "github.com/portcullis/portcullis/gen/example/orders/v1"
	"github.com/portcullis/portcullis/internal/freeport"
	"github.com/portcullis/portcullis/internal/h2ctest"
	"github.com/portcullis/portcullis/internal/logtest"
	"github.com/portcullis/portcullis/services/licensing"
	"github.com/portcullis/portcullis/services/orders"
)

// killableBackend serves the example services on its own listener, so
// that a test can kill it: close its listener and every connection.
func killableBackend(t *testing.T) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	mux.Handle(licensing.New().Handler())
	mux.Handle(orders.New().Handler())
	return h2ctest.Start(t, mux)
}

func kill(srv *httptest.Server) {
	_ = srv.Listener.Close()
	srv.CloseClientConnections()
}

// TestBackendDiesMidStream kills the backend while a server stream and a
// bidi stream run through the gateway: both end with Unavailable, as new
// calls do, so that clients retry.
func TestBackendDiesMidStream(t *testing.T) {
	t.Parallel()
	for _, p := range []protocol{protocols[0], protocols[2], protocols[3]} {
		t.Run(p.name, func(t *testing.T) {
			t.Parallel()
			srv := killableBackend(t)
			gw := startGateway(t, srv.URL, nil)
			ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second) // the test's own bound
			defer cancel()

			watch, err := licensingClient(gw, p).WatchLicenceOrders(ctx, connect.NewRequest(&licensingv1.WatchLicenceOrdersRequest{BusinessId: "biz-acme"}))
			if err != nil {
				t.Fatal(err)
			}
			defer watch.Close()
			for range 2 {
				if !watch.Receive() {
					t.Fatalf("watch: %v", watch.Err())
				}
			}
			sync := ordersClient(gw, p).SyncOrders(ctx)
			defer sync.CloseResponse()
			if err := sync.Send(&ordersv1.SyncOrdersRequest{Order: &ordersv1.Order{CustomerId: "c", Skus: []string{"s"}}}); err != nil {
				t.Fatal(err)
			}
			if _, err := sync.Receive(); err != nil {
				t.Fatal(err)
			}

			kill(srv)
			if watch.Receive() {
				t.Fatalf("received %v after the backend died", watch.Msg())
			}
			wantError(t, watch.Err(), connect.CodeUnavailable, "backend unavailable")
			_, err = sync.Receive()
			wantError(t, err, connect.CodeUnavailable, "backend unavailable")
		})
	}
}

// serveAt serves the example services on addr over h2c until the test
// ends or stop is called.
func serveAt(t *testing.T, addr string) (stop func()) {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle(licensing.New().Handler())
	mux.Handle(orders.New().Handler())
	srv := httptest.NewUnstartedServer(mux)
	srv.Listener = ln
	srv.Config.Protocols = new(http.Protocols)
	srv.Config.Protocols.SetHTTP1(true)
	srv.Config.Protocols.SetUnencryptedHTTP2(true)
	srv.Start()
	t.Cleanup(srv.Close)
	return func() { kill(srv) }
}

// TestOutageLogging shows that an outage is logged when it starts and
// when it ends, not once per failed call, and that the failed calls are
// counted.
func TestOutageLogging(t *testing.T) {
	t.Parallel()
	addr := freeport.Addr(t)
	logs := &logtest.Buffer{}
	logger := slog.New(slog.NewTextHandler(logs, nil))
	be, mux := newGateway(t, "http://"+addr, []forward.BackendOption{forward.WithBackendLogger(logger)})
	gw := h2ctest.Serve(t, mux)
	ord := ordersClient(gw, protocols[0])
	get := func() error {
		_, err := ord.GetOrder(t.Context(), connect.NewRequest(&ordersv1.GetOrderRequest{Id: "ord-0001"}))
		return err
	}

	if err := be.Err(); err != nil {
		t.Errorf("Err() = %v before any call", err)
	}
	const failures = 5
	for range failures {
		wantError(t, get(), connect.CodeUnavailable, "backend unavailable")
	}
	log := logs.String()
	if n := strings.Count(log, "level=WARN"); n != 1 || !strings.Contains(log, `msg="forward: backend unavailable"`) ||
		!strings.Contains(log, addr) || !strings.Contains(log, "connection refused") ||
		!strings.Contains(log, "procedure=/example.orders.v1.OrdersService/GetOrder") {
		t.Errorf("want one WARN line naming the backend, the procedure and the error:\n%s", log)
	}
	if n := be.FailedCalls(); n != failures {
		t.Errorf("FailedCalls() = %d, want %d", n, failures)
	}
	if err := be.Err(); err == nil || !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("Err() = %v during the outage", err)
	}

	serveAt(t, addr)
	if err := get(); err != nil {
		t.Fatal(err)
	}
	if err := be.Err(); err != nil {
		t.Errorf("Err() = %v after a call succeeded", err)
	}
	log = logs.String()
	if n := strings.Count(log, "level=INFO"); n != 1 || !strings.Contains(log, `msg="forward: backend recovered"`) || !strings.Contains(log, "failed_calls=5") {
		t.Errorf("want one INFO line with the count of failed calls:\n%s", log)
	}
	if err := get(); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(logs.String(), "\n"); n != 2 {
		t.Errorf("want two log lines in all:\n%s", logs.String())
	}
}

// TestHealthCheck shows the active probe following a backend that goes
// down and comes back, with no call made.
func TestHealthCheck(t *testing.T) {
	t.Parallel()
	const interval = 50 * time.Millisecond
	addr := freeport.Addr(t)
	logs := &logtest.Buffer{}
	be, err := forward.NewBackend("http://"+addr, forward.WithHealthCheck(interval),
		forward.WithBackendLogger(slog.New(slog.NewTextHandler(logs, nil))))
	if err != nil {
		t.Fatal(err)
	}
	defer be.Close()
	waitHealth := func(wantHealthy bool) {
		t.Helper()
		deadline := time.Now().Add(interval + 2*time.Second)
		for (be.Err() == nil) != wantHealthy {
			if time.Now().After(deadline) {
				t.Fatalf("Err() = %v, want healthy %v", be.Err(), wantHealthy)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	waitHealth(false)
	stop := serveAt(t, addr)
	waitHealth(true)
	stop()
	waitHealth(false)
	if err := be.Close(); err != nil {
		t.Fatal(err)
	}
	if err := be.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	log := logs.String()
	if strings.Count(log, "level=WARN") != 2 || strings.Count(log, "level=INFO") != 1 || !strings.Contains(log, "check=probe") {
		t.Errorf("log:\n%s", log)
	}
	if n := be.FailedCalls(); n != 0 {
		t.Errorf("FailedCalls() = %d: probes are not calls", n)
	}
}

// TestHealthFromCalls shows call outcomes moving the health state without
// a probe: a refused call makes the backend unhealthy, a served one
// healthy again.
func TestHealthFromCalls(t *testing.T) {
	t.Parallel()
	srv := killableBackend(t)
	be, mux := newGateway(t, srv.URL, nil)
	gw := h2ctest.Serve(t, mux)
	ord := ordersClient(gw, protocols[2])
	if _, err := ord.GetOrder(t.Context(), connect.NewRequest(&ordersv1.GetOrderRequest{Id: "ord-0001"})); err != nil {
		t.Fatal(err)
	}
	// An error the backend sent is an answer: the backend is healthy.
	_, err := ord.GetOrder(t.Context(), connect.NewRequest(&ordersv1.GetOrderRequest{Id: "ord-x"}))
	wantError(t, err, connect.CodeNotFound, `order "ord-x" not found`)
	if err := be.Err(); err != nil {
		t.Errorf("Err() = %v", err)
	}
	kill(srv)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	_, err = ord.GetOrder(ctx, connect.NewRequest(&ordersv1.GetOrderRequest{Id: "ord-0001"}))
	wantError(t, err, connect.CodeUnavailable, "backend unavailable")
	if be.Err() == nil {
		t.Error("Err() = nil after the backend died")
	}
}
