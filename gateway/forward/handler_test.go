package forward_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portcullis/portcullis/internal/h2ctest"

	"connectrpc.com/connect"
	"github.com/portcullis/portcullis/gateway/forward"
	"github.com/portcullis/portcullis/gateway/token"
	licensingv1 "github.com/portcullis/portcullis/gen/example/licensing/v1"
	"github.com/portcullis/portcullis/gen/example/licensing/v1/licensingv1connect"
	ordersv1 "github.com/portcullis/portcullis/gen/example/orders/v1"
	"github.com/portcullis/portcullis/gen/example/orders/v1/ordersv1connect"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// seen is what a gateway interceptor saw of one call.
type seen struct {
	method string // HTTP method
	schema protoreflect.FullName
	size   int // request message size, unary calls only
}

// spy is a gateway interceptor, as authentication is: it records what it
// sees and puts a verified caller in the context.
type spy struct {
	mu    sync.Mutex
	calls map[string]seen // by procedure
}

func (s *spy) record(spec connect.Spec, method string, size int) {
	md, _ := spec.Schema.(protoreflect.MethodDescriptor)
	var name protoreflect.FullName
	if md != nil {
		name = md.FullName()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls[spec.Procedure] = seen{method: method, schema: name, size: size}
}

func (s *spy) get(procedure string) seen {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[procedure]
}

func (s *spy) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		size := -1
		if msg, ok := req.Any().(*forward.Message); ok {
			size = msg.Len()
		}
		s.record(req.Spec(), req.HTTPMethod(), size)
		return next(token.NewContext(ctx, &token.Principal{ClientID: "from-token", Tier: "pro"}), req)
	}
}

func (s *spy) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return next
}

func (s *spy) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return func(ctx context.Context, conn connect.StreamingHandlerConn) error {
		s.record(conn.Spec(), http.MethodPost, -1)
		return next(token.NewContext(ctx, &token.Principal{ClientID: "from-token", Tier: "pro"}), conn)
	}
}

// TestHandlerOptions shows what the gateway's own interceptors see and
// how they name the caller to the backend.
func TestHandlerOptions(t *testing.T) {
	t.Parallel()
	be := startBackend(t)
	gatewaySpy := &spy{calls: make(map[string]seen)}
	gw := startGateway(t, be.url, nil,
		forward.WithHandlerOptions(connect.WithInterceptors(gatewaySpy)),
		// As the assembled gateway does: the caller from the verified token.
		forward.WithRequestHeaders(func(ctx context.Context, h http.Header) {
			if p, ok := token.FromContext(ctx); ok {
				h.Set("Portcullis-Client-Id", p.ClientID)
				h.Set("Portcullis-Tier", p.Tier)
			}
		}),
	)
	for _, p := range []protocol{
		{"get", []connect.ClientOption{connect.WithHTTPGet()}},
		{"get+json", []connect.ClientOption{connect.WithHTTPGet(), connect.WithProtoJSON()}},
	} {
		t.Run(p.name, func(t *testing.T) {
			ord := ordersClient(gw, p)
			res, err := ord.GetOrder(t.Context(), connect.NewRequest(&ordersv1.GetOrderRequest{Id: "ord-0002"}))
			if err != nil {
				t.Fatal(err)
			}
			if res.Msg.GetOrder().GetCustomerId() != "cust-grace" {
				t.Errorf("order = %v", res.Msg.GetOrder())
			}
			got := gatewaySpy.get("/example.orders.v1.OrdersService/GetOrder")
			if got.method != http.MethodGet || got.schema != "example.orders.v1.OrdersService.GetOrder" || got.size == 0 {
				t.Errorf("the gateway's interceptor saw %+v", got)
			}
		})
	}

	ord := ordersClient(gw, protocols[2])
	placed, err := ord.PlaceOrder(t.Context(), connect.NewRequest(&ordersv1.PlaceOrderRequest{Order: &ordersv1.Order{CustomerId: "c", Skus: []string{"s"}}}))
	if err != nil {
		t.Fatal(err)
	}
	if by := placed.Msg.GetOrder().GetPlacedBy(); by != "from-token" {
		t.Errorf("placed_by = %q, want the verified caller", by)
	}
	stream := ord.SyncOrders(t.Context())
	id := newID()
	stream.RequestHeader().Set(requestIDKey, id)
	if err := stream.Send(&ordersv1.SyncOrdersRequest{Order: &ordersv1.Order{CustomerId: "c", Skus: []string{"s"}}}); err != nil {
		t.Fatal(err)
	}
	synced, err := stream.Receive()
	if err != nil {
		t.Fatal(err)
	}
	if by := synced.GetOrder().GetPlacedBy(); by != "from-token" {
		t.Errorf("streamed placed_by = %q, want the verified caller", by)
	}
	_ = stream.CloseRequest()
	_, _ = stream.Receive()
	_ = stream.CloseResponse()
	if tier := be.calls.finished(t, id).header.Get("Portcullis-Tier"); tier != "pro" {
		t.Errorf("backend got tier %q", tier)
	}
	if got := gatewaySpy.get("/example.orders.v1.OrdersService/SyncOrders"); got.schema != "example.orders.v1.OrdersService.SyncOrders" {
		t.Errorf("the gateway's interceptor saw %+v", got)
	}
}

// bigWatch is a licensing backend whose watch sends n large messages as
// fast as the client takes them, counting what it has sent.
type bigWatch struct {
	licensingv1connect.UnimplementedLicensingServiceHandler
	n    int
	sent atomic.Int64
}

func (w *bigWatch) WatchLicenceOrders(_ context.Context, _ *connect.Request[licensingv1.WatchLicenceOrdersRequest], stream *connect.ServerStream[licensingv1.WatchLicenceOrdersResponse]) error {
	big := incompressible(64 << 10)
	for range w.n {
		if err := stream.Send(&licensingv1.WatchLicenceOrdersResponse{Order: &licensingv1.LicenceOrder{CreatedBy: big}}); err != nil {
			return err
		}
		w.sent.Add(1)
	}
	return nil
}

// slowSync is an orders backend whose sync reads nothing until released,
// then counts what it reads.
type slowSync struct {
	ordersv1connect.UnimplementedOrdersServiceHandler
	release  chan struct{}
	received atomic.Int64
}

func (s *slowSync) SyncOrders(ctx context.Context, stream *connect.BidiStream[ordersv1.SyncOrdersRequest, ordersv1.SyncOrdersResponse]) error {
	select {
	case <-s.release:
	case <-ctx.Done():
		return ctx.Err()
	}
	for {
		if _, err := stream.Receive(); errors.Is(err, io.EOF) {
			return nil
		} else if err != nil {
			return err
		}
		s.received.Add(1)
	}
}

// incompressible returns n random characters: compression must not hide
// how much is buffered.
func incompressible(n int) string {
	b := make([]byte, n*3/4)
	_, _ = rand.Read(b)
	return base64.StdEncoding.EncodeToString(b)
}

// stalled waits until count stops growing and returns its value.
func stalled(t *testing.T, count func() int64) int64 {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	last, steady := count(), 0
	for steady < 5 {
		if time.Now().After(deadline) {
			t.Fatalf("still moving at %d", last)
		}
		time.Sleep(20 * time.Millisecond)
		if n := count(); n == last {
			steady++
		} else {
			last, steady = n, 0
		}
	}
	return last
}

// TestBackPressure shows that the gateway does not buffer a stream: a
// reader that stops holds the writer up, in both directions, and nothing
// is lost when it resumes.
func TestBackPressure(t *testing.T) {
	t.Parallel()
	// 150 messages of 64 KiB: far more than the HTTP/2 windows and buffers
	// on the way (about 1 MiB at the gateway, per stream and direction).
	const n = 150
	watch := &bigWatch{n: n}
	sync := &slowSync{release: make(chan struct{})}
	mux := http.NewServeMux()
	mux.Handle(licensingv1connect.NewLicensingServiceHandler(watch))
	mux.Handle(ordersv1connect.NewOrdersServiceHandler(sync))
	// The idle timeout is shorter than the stalls: the gateway waiting for
	// the backend to take a message is not the client being idle. It is
	// long enough that a client starved of CPU, on a loaded machine, does
	// not pause that long between two messages.
	const idle = 500 * time.Millisecond
	gw := startGateway(t, h2ctest.Serve(t, mux), nil, forward.WithMaxMessageBytes(1<<20), forward.WithStreamIdleTimeout(idle))

	t.Run("backend to client", func(t *testing.T) {
		t.Parallel()
		// A client that buffers little itself.
		protocols := new(http.Protocols)
		protocols.SetUnencryptedHTTP2(true)
		client := &http.Client{Transport: &http.Transport{Protocols: protocols, HTTP2: &http.HTTP2Config{MaxReceiveBufferPerStream: 64 << 10}}}
		lic := licensingv1connect.NewLicensingServiceClient(client, gw, connect.WithGRPC())
		stream, err := lic.WatchLicenceOrders(t.Context(), connect.NewRequest(&licensingv1.WatchLicenceOrdersRequest{}))
		if err != nil {
			t.Fatal(err)
		}
		defer stream.Close()
		if !stream.Receive() {
			t.Fatal(stream.Err())
		}
		if sent := stalled(t, watch.sent.Load); sent > n/2 {
			t.Errorf("the backend sent %d of %d messages to a client that stopped reading", sent, n)
		}
		time.Sleep(idle + idle/2) // the stall outlasts the idle timeout
		received := 1
		for stream.Receive() {
			received++
		}
		if err := stream.Err(); err != nil || received != n {
			t.Errorf("received %d of %d: %v", received, n, err)
		}
	})

	t.Run("client to backend", func(t *testing.T) {
		t.Parallel()
		stream := ordersClient(gw, protocols[2]).SyncOrders(t.Context())
		defer stream.CloseResponse()
		var sent atomic.Int64
		done := make(chan error, 1)
		go func() {
			msg := &ordersv1.SyncOrdersRequest{Order: &ordersv1.Order{Notes: incompressible(64 << 10)}}
			for range n {
				if err := stream.Send(msg); err != nil {
					done <- err
					return
				}
				sent.Add(1)
			}
			done <- stream.CloseRequest()
		}()
		if got := stalled(t, sent.Load); got > n/2 {
			t.Errorf("the client sent %d of %d messages to a backend that reads nothing", got, n)
		}
		time.Sleep(idle + idle/2) // the stall outlasts the idle timeout
		close(sync.release)
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if _, err := stream.Receive(); !errors.Is(err, io.EOF) {
			t.Fatalf("end of stream: %v", err)
		}
		if got := sync.received.Load(); got != n {
			t.Errorf("the backend received %d of %d", got, n)
		}
	})
}
