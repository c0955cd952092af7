package forward_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/portcullis/portcullis/gateway/forward"
	licensingv1 "github.com/portcullis/portcullis/gen/example/licensing/v1"
	ordersv1 "github.com/portcullis/portcullis/gen/example/orders/v1"
	"github.com/portcullis/portcullis/internal/logtest"
)

// slack absorbs the time between the client starting a call and the
// gateway starting its own clock, on a loaded machine under -race.
const slack = 500 * time.Millisecond

func TestDeadline(t *testing.T) {
	t.Parallel()
	be := startBackend(t)
	const limit = 3 * time.Second
	gw := startGateway(t, be.url, nil, forward.WithMaxTimeout(limit), forward.WithMaxStreamTimeout(limit))
	tests := []struct {
		name    string
		timeout time.Duration // the client's; 0 for none
		want    time.Duration // the most the backend may get
	}{
		{name: "client timeout kept", timeout: 1500 * time.Millisecond, want: 1500 * time.Millisecond},
		{name: "capped", timeout: time.Minute, want: limit},
		{name: "cap when the client sets none", want: limit},
	}
	for _, tt := range tests {
		for _, p := range protocols {
			t.Run(tt.name+"/"+p.name, func(t *testing.T) {
				t.Parallel()
				ctx := t.Context()
				if tt.timeout > 0 {
					var cancel context.CancelFunc
					ctx, cancel = context.WithTimeout(ctx, tt.timeout)
					defer cancel()
				}
				start := time.Now()
				ord := ordersClient(gw, p)

				unaryID := newID()
				req := connect.NewRequest(&ordersv1.GetOrderRequest{Id: "ord-0001"})
				setRequestHeaders(req.Header(), unaryID)
				if _, err := ord.GetOrder(ctx, req); err != nil {
					t.Fatal(err)
				}
				assertDeadline(t, be.calls.seen(t, unaryID), start, tt.want)

				// A cap applies from the stream's arrival, after the unary call.
				streamStart := time.Now()
				streamID := newID()
				stream := ord.ImportOrders(ctx)
				setRequestHeaders(stream.RequestHeader(), streamID)
				if _, err := stream.CloseAndReceive(); err != nil {
					t.Fatal(err)
				}
				assertDeadline(t, be.calls.seen(t, streamID), streamStart, tt.want)
			})
		}
	}

	t.Run("grpc-go", func(t *testing.T) {
		t.Parallel()
		conn := grpcConn(t, gw)
		ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
		defer cancel()
		id := newID()
		start := time.Now()
		ctx = metadata.AppendToOutgoingContext(ctx, "x-request-id", id)
		if err := conn.Invoke(ctx, "/example.orders.v1.OrdersService/GetOrder", &ordersv1.GetOrderRequest{Id: "ord-0001"}, new(ordersv1.GetOrderResponse)); err != nil {
			t.Fatal(err)
		}
		assertDeadline(t, be.calls.seen(t, id), start, limit)
	})
}

// assertDeadline checks that the backend's call had a deadline no later
// than start+want, and not much earlier.
func assertDeadline(t *testing.T, c *call, start time.Time, want time.Duration) {
	t.Helper()
	if !c.hasDeadline {
		t.Fatalf("%s: backend got no deadline", c.procedure)
	}
	if got := c.deadline.Sub(start); got > want+slack || got < want-time.Second {
		t.Errorf("%s: backend deadline %v after the call, want about %v", c.procedure, got, want)
	}
}

func TestMessageSizeLimit(t *testing.T) {
	t.Parallel()
	be := startBackend(t)
	const limit = 4096
	gw := startGateway(t, be.url, nil, forward.WithMaxMessageBytes(limit))
	big := strings.Repeat("n", 2*limit)

	// An order too large to leave the gateway, placed at the backend.
	direct := ordersClient(be.url, protocols[0])
	place := connect.NewRequest(&ordersv1.PlaceOrderRequest{Order: &ordersv1.Order{CustomerId: "c", Skus: []string{"s"}, Notes: big}})
	place.Header().Set("Portcullis-Client-Id", "direct")
	placed, err := direct.PlaceOrder(t.Context(), place)
	if err != nil {
		t.Fatal(err)
	}
	bigID := placed.Msg.GetOrder().GetId()

	for _, p := range protocols {
		t.Run(p.name, func(t *testing.T) {
			t.Parallel()
			ord := ordersClient(gw, p)

			t.Run("request", func(t *testing.T) {
				id := newID()
				req := connect.NewRequest(&ordersv1.PlaceOrderRequest{Order: &ordersv1.Order{CustomerId: "c", Skus: []string{"s"}, Notes: big}})
				setRequestHeaders(req.Header(), id)
				_, err := ord.PlaceOrder(t.Context(), req)
				if connect.CodeOf(err) != connect.CodeResourceExhausted {
					t.Fatalf("error = %v, want resource_exhausted", err)
				}
				if be.calls.reached(id) {
					t.Error("the backend got the message")
				}
			})

			t.Run("response", func(t *testing.T) {
				req := connect.NewRequest(&ordersv1.GetOrderRequest{Id: bigID})
				setRequestHeaders(req.Header(), newID())
				_, err := ord.GetOrder(t.Context(), req)
				if connect.CodeOf(err) != connect.CodeResourceExhausted {
					t.Fatalf("error = %v, want resource_exhausted", err)
				}
			})

			t.Run("client stream", func(t *testing.T) {
				id := newID()
				stream := ord.ImportOrders(t.Context())
				setRequestHeaders(stream.RequestHeader(), id)
				for _, notes := range []string{"small", big} {
					if err := stream.Send(&ordersv1.ImportOrdersRequest{Order: &ordersv1.Order{CustomerId: "c", Skus: []string{"s"}, Notes: notes}}); err != nil {
						break
					}
				}
				_, err := stream.CloseAndReceive()
				if connect.CodeOf(err) != connect.CodeResourceExhausted {
					t.Fatalf("error = %v, want resource_exhausted", err)
				}
				// The backend saw the import cancelled (or never started),
				// never cleanly ended: it imported nothing.
				if be.calls.reached(id) {
					if c := be.calls.finished(t, id); connect.CodeOf(c.err) != connect.CodeCanceled {
						t.Errorf("backend import ended with %v, want canceled", c.err)
					}
				}
			})

			t.Run("bidi", func(t *testing.T) {
				id := newID()
				stream := ord.SyncOrders(t.Context())
				defer stream.CloseResponse()
				setRequestHeaders(stream.RequestHeader(), id)
				if err := stream.Send(&ordersv1.SyncOrdersRequest{Order: &ordersv1.Order{CustomerId: "c", Skus: []string{"s"}}}); err != nil {
					t.Fatal(err)
				}
				if _, err := stream.Receive(); err != nil {
					t.Fatal(err)
				}
				// The gateway refuses the message from its length prefix and
				// may end the stream before the client has sent the rest.
				if err := stream.Send(&ordersv1.SyncOrdersRequest{Order: &ordersv1.Order{CustomerId: "c", Skus: []string{"s"}, Notes: big}}); err != nil && !errors.Is(err, io.EOF) {
					t.Fatal(err)
				}
				if _, err := stream.Receive(); connect.CodeOf(err) != connect.CodeResourceExhausted {
					t.Fatalf("error = %v, want resource_exhausted", err)
				}
				if c := be.calls.finished(t, id); connect.CodeOf(c.err) != connect.CodeCanceled {
					t.Errorf("backend stream ended with %v, want canceled", c.err)
				}
			})
		})
	}
}

func TestBackendDown(t *testing.T) {
	t.Parallel()
	// A port nothing listens on any more.
	downURL := "http://" + deadAddr(1)
	tests := []struct {
		name string
		url  string
		opts []forward.BackendOption
	}{
		{name: "refused", url: downURL},
		{name: "refused, connect protocol", url: downURL, opts: []forward.BackendOption{forward.WithProtocol(forward.ProtocolConnect)}},
		{name: "refused, grpc-web protocol", url: downURL, opts: []forward.BackendOption{forward.WithProtocol(forward.ProtocolGRPCWeb)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			logs := &logtest.Buffer{}
			gw := startGateway(t, tt.url, append(tt.opts, forward.WithBackendLogger(slog.New(slog.NewTextHandler(logs, nil)))))
			for _, p := range protocols {
				ord := ordersClient(gw, p)
				start := time.Now()
				req := connect.NewRequest(&ordersv1.GetOrderRequest{Id: "ord-0001"})
				_, err := ord.GetOrder(t.Context(), req)
				wantError(t, err, connect.CodeUnavailable, "backend unavailable")
				if elapsed := time.Since(start); elapsed > time.Second {
					t.Errorf("%s: Unavailable after %v", p.name, elapsed)
				}

				stream := ord.SyncOrders(t.Context())
				_ = stream.Send(&ordersv1.SyncOrdersRequest{Order: &ordersv1.Order{CustomerId: "c", Skus: []string{"s"}}})
				_, err = stream.Receive()
				wantError(t, err, connect.CodeUnavailable, "backend unavailable")
				_ = stream.CloseResponse()

				imports := ord.ImportOrders(t.Context())
				_ = imports.Send(&ordersv1.ImportOrdersRequest{Order: &ordersv1.Order{CustomerId: "c", Skus: []string{"s"}}})
				_, err = imports.CloseAndReceive()
				wantError(t, err, connect.CodeUnavailable, "backend unavailable")

				watch, err := licensingClient(gw, p).WatchLicenceOrders(t.Context(), connect.NewRequest(&licensingv1.WatchLicenceOrdersRequest{BusinessId: "b"}))
				if err == nil {
					watch.Receive()
					err = watch.Err()
					_ = watch.Close()
				}
				wantError(t, err, connect.CodeUnavailable, "backend unavailable")
			}
			conn := grpcConn(t, gw)
			err := conn.Invoke(t.Context(), "/example.orders.v1.OrdersService/GetOrder", &ordersv1.GetOrderRequest{Id: "ord-0001"}, new(ordersv1.GetOrderResponse))
			if st := status.Convert(err); st.Code() != codes.Unavailable || st.Message() != "backend unavailable" {
				t.Errorf("grpc-go status = %v %q", st.Code(), st.Message())
			}
			// The operator learns where and why; the client does not.
			host := strings.TrimPrefix(tt.url, "http://")
			if log := logs.String(); !strings.Contains(log, host) || !strings.Contains(log, "procedure=/example.orders.v1.OrdersService/GetOrder") {
				t.Errorf("log lacks the backend and procedure:\n%s", log)
			}
		})
	}
}

func TestCancelledBeforeBackendAnswers(t *testing.T) {
	t.Parallel()
	be := startBackend(t)
	gw := startGateway(t, be.url, nil)
	// A watch of a business without orders sends nothing: the client gives
	// up first, and the backend sees it.
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	id := newID()
	req := connect.NewRequest(&licensingv1.WatchLicenceOrdersRequest{BusinessId: "biz-none"})
	setRequestHeaders(req.Header(), id)
	stream, err := licensingClient(gw, protocols[2]).WatchLicenceOrders(ctx, req)
	if err == nil {
		defer stream.Close()
		if stream.Receive() {
			t.Fatalf("received %v", stream.Msg())
		}
		err = stream.Err()
	}
	if code := connect.CodeOf(err); code != connect.CodeDeadlineExceeded {
		t.Errorf("client got %v, want deadline_exceeded", err)
	}
	c := be.calls.finished(t, id)
	if !errors.Is(c.ctxErr, context.DeadlineExceeded) && !errors.Is(c.ctxErr, context.Canceled) {
		t.Errorf("backend stream ended with context error %v, want it done", c.ctxErr)
	}
}

// TestStreamCapWithSilentClient shows the gateway's cap ending streams
// whose client sets no deadline and goes silent: the client gets
// DeadlineExceeded and the backend sees its stream end.
func TestStreamCapWithSilentClient(t *testing.T) {
	t.Parallel()
	be := startBackend(t)
	const limit = 300 * time.Millisecond
	gw := startGateway(t, be.url, nil, forward.WithMaxStreamTimeout(limit))
	for _, p := range protocols {
		t.Run(p.name, func(t *testing.T) {
			t.Parallel()
			ord := ordersClient(gw, p)

			t.Run("client stream", func(t *testing.T) {
				id := newID()
				stream := ord.ImportOrders(t.Context())
				setRequestHeaders(stream.RequestHeader(), id)
				if err := stream.Send(&ordersv1.ImportOrdersRequest{Order: &ordersv1.Order{CustomerId: "c", Skus: []string{"s"}}}); err != nil {
					t.Fatal(err)
				}
				// The client says nothing more and does not close.
				if c := be.calls.finished(t, id); c.ctxErr == nil {
					t.Errorf("backend import still open after the cap")
				}
				start := time.Now()
				_, err := stream.CloseAndReceive()
				if code := connect.CodeOf(err); code != connect.CodeDeadlineExceeded {
					t.Errorf("client got %v, want deadline_exceeded", err)
				}
				if elapsed := time.Since(start); elapsed > time.Second {
					t.Errorf("answer took %v", elapsed)
				}
			})

			t.Run("bidi", func(t *testing.T) {
				id := newID()
				stream := ord.SyncOrders(t.Context())
				defer stream.CloseResponse()
				setRequestHeaders(stream.RequestHeader(), id)
				if err := stream.Send(&ordersv1.SyncOrdersRequest{Order: &ordersv1.Order{CustomerId: "c", Skus: []string{"s"}}}); err != nil {
					t.Fatal(err)
				}
				if _, err := stream.Receive(); err != nil {
					t.Fatal(err)
				}
				if _, err := stream.Receive(); connect.CodeOf(err) != connect.CodeDeadlineExceeded {
					t.Errorf("client got %v, want deadline_exceeded", err)
				}
				if c := be.calls.finished(t, id); c.ctxErr == nil {
					t.Errorf("backend sync still open after the cap")
				}
			})
		})
	}

	// A grpc-go client can wait for the answer without closing its side:
	// the gateway must not wait for it for ever.
	t.Run("grpc-go client stream", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second) // the test's own bound
		defer cancel()
		stream, err := grpcConn(t, gw).NewStream(ctx, &grpc.StreamDesc{ClientStreams: true}, "/example.orders.v1.OrdersService/ImportOrders")
		if err != nil {
			t.Fatal(err)
		}
		if err := stream.SendMsg(&ordersv1.ImportOrdersRequest{Order: &ordersv1.Order{CustomerId: "c", Skus: []string{"s"}}}); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		err = stream.RecvMsg(new(ordersv1.ImportOrdersResponse))
		if st := status.Convert(err); st.Code() != codes.DeadlineExceeded {
			t.Errorf("status = %v, want deadline exceeded", st)
		}
		if elapsed := time.Since(start); elapsed > 2*time.Second {
			t.Errorf("answer took %v", elapsed)
		}
	})
}
