package forward_test

import (
	"context"
	"errors"
	"io"
	"testing"

	"connectrpc.com/connect"
	licensingv1 "github.com/portcullis/portcullis/gen/example/licensing/v1"
	ordersv1 "github.com/portcullis/portcullis/gen/example/orders/v1"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

func TestServerStream(t *testing.T) {
	t.Parallel()
	be := startBackend(t)
	gw := startGateway(t, be.url, nil)
	for _, p := range protocols {
		t.Run(p.name, func(t *testing.T) {
			t.Parallel()
			lic := licensingClient(gw, p)
			business := "biz-" + p.name

			t.Run("watch then cancel", func(t *testing.T) {
				create := connect.NewRequest(&licensingv1.CreateLicenceOrderRequest{RequirementId: "us-ny-food-service", BusinessId: business})
				setRequestHeaders(create.Header(), newID())
				created, err := lic.CreateLicenceOrder(t.Context(), create)
				if err != nil {
					t.Fatal(err)
				}
				orderID := created.Msg.GetOrder().GetId()

				ctx, cancel := context.WithCancel(t.Context())
				defer cancel()
				id := newID()
				req := connect.NewRequest(&licensingv1.WatchLicenceOrdersRequest{BusinessId: business})
				setRequestHeaders(req.Header(), id)
				stream, err := lic.WatchLicenceOrders(ctx, req)
				if err != nil {
					t.Fatal(err)
				}
				defer stream.Close()
				if !stream.Receive() {
					t.Fatalf("no first message: %v", stream.Err())
				}
				if got := stream.Msg().GetOrder(); got.GetId() != orderID || got.GetCreatedBy() != testClientID ||
					got.GetStatus() != licensingv1.LicenceOrderStatus_LICENCE_ORDER_STATUS_RECEIVED {
					t.Errorf("first message = %v", got)
				}
				if v := stream.ResponseHeader().Get(backendHeader); v != "stream" {
					t.Errorf("header %s = %q", backendHeader, v)
				}
				// A change at the backend travels down the open stream.
				if _, err := be.licensing.Advance(orderID); err != nil {
					t.Fatal(err)
				}
				if !stream.Receive() {
					t.Fatalf("no change: %v", stream.Err())
				}
				if got := stream.Msg().GetOrder().GetStatus(); got != licensingv1.LicenceOrderStatus_LICENCE_ORDER_STATUS_FILED {
					t.Errorf("status after change = %v, want FILED", got)
				}
				cancel()
				if stream.Receive() {
					t.Errorf("received after cancel: %v", stream.Msg())
				}
				c := be.calls.finished(t, id)
				if !errors.Is(c.ctxErr, context.Canceled) {
					t.Errorf("backend stream ended with context error %v, want canceled", c.ctxErr)
				}
				assertForwardedHeaders(t, c.header)
			})

			t.Run("error", func(t *testing.T) {
				req := connect.NewRequest(&licensingv1.WatchLicenceOrdersRequest{})
				setRequestHeaders(req.Header(), newID())
				stream, err := lic.WatchLicenceOrders(t.Context(), req)
				if err != nil {
					t.Fatal(err)
				}
				defer stream.Close()
				if stream.Receive() {
					t.Fatalf("received %v, want an error", stream.Msg())
				}
				ce := wantError(t, stream.Err(), connect.CodeInvalidArgument, "business_id: required")
				assertBadRequest(t, ce, "business_id")
				if v := ce.Meta().Get(backendTrailer); v != "stream" {
					t.Errorf("error metadata %s = %q, want the backend's", backendTrailer, v)
				}
			})
		})
	}
}

func TestClientStream(t *testing.T) {
	t.Parallel()
	be := startBackend(t)
	gw := startGateway(t, be.url, nil)
	for _, p := range protocols {
		t.Run(p.name, func(t *testing.T) {
			t.Parallel()
			ord := ordersClient(gw, p)

			t.Run("sum", func(t *testing.T) {
				id := newID()
				stream := ord.ImportOrders(t.Context())
				setRequestHeaders(stream.RequestHeader(), id)
				for _, cents := range []int64{100, 250, 4000} {
					order := &ordersv1.Order{CustomerId: "cust-import", Skus: []string{"sku-a"}, TotalCents: cents}
					if err := stream.Send(&ordersv1.ImportOrdersRequest{Order: order}); err != nil {
						t.Fatal(err)
					}
				}
				res, err := stream.CloseAndReceive()
				if err != nil {
					t.Fatal(err)
				}
				if res.Msg.GetImported() != 3 || res.Msg.GetTotalCents() != 4350 {
					t.Errorf("imported %v, want 3 orders, 4350 cents", res.Msg)
				}
				assertBackendMetadata(t, res.Header(), res.Trailer(), "stream")
				assertForwardedHeaders(t, be.calls.seen(t, id).header)
			})

			t.Run("invalid", func(t *testing.T) {
				stream := ord.ImportOrders(t.Context())
				setRequestHeaders(stream.RequestHeader(), newID())
				for _, customer := range []string{"cust-a", ""} {
					order := &ordersv1.Order{CustomerId: customer, Skus: []string{"sku-a"}}
					if err := stream.Send(&ordersv1.ImportOrdersRequest{Order: order}); err != nil {
						break // the backend may have answered already
					}
				}
				_, err := stream.CloseAndReceive()
				ce := wantError(t, err, connect.CodeInvalidArgument, "messages[1].order.customer_id: required")
				assertBadRequest(t, ce, "messages[1].order.customer_id")
			})
		})
	}
}

func TestBidiStream(t *testing.T) {
	t.Parallel()
	be := startBackend(t)
	gw := startGateway(t, be.url, nil)
	for _, p := range protocols {
		t.Run(p.name, func(t *testing.T) {
			t.Parallel()
			ord := ordersClient(gw, p)

			t.Run("sync", func(t *testing.T) {
				id := newID()
				stream := ord.SyncOrders(t.Context())
				setRequestHeaders(stream.RequestHeader(), id)
				if err := stream.Send(&ordersv1.SyncOrdersRequest{Order: &ordersv1.Order{CustomerId: "cust-sync", Skus: []string{"sku-a"}}}); err != nil {
					t.Fatal(err)
				}
				res, err := stream.Receive()
				if err != nil {
					t.Fatal(err)
				}
				placed := res.GetOrder()
				if placed.GetId() == "" || placed.GetPlacedBy() != testClientID {
					t.Errorf("placed %v", placed)
				}
				if v := stream.ResponseHeader().Get(backendHeader); v != "stream" {
					t.Errorf("header %s = %q", backendHeader, v)
				}
				update := &ordersv1.Order{Id: placed.GetId(), CustomerId: "cust-sync", Skus: []string{"sku-a", "sku-b"}, Notes: "updated"}
				if err := stream.Send(&ordersv1.SyncOrdersRequest{Order: update}); err != nil {
					t.Fatal(err)
				}
				if res, err = stream.Receive(); err != nil {
					t.Fatal(err)
				}
				if got := res.GetOrder(); got.GetId() != placed.GetId() || got.GetNotes() != "updated" || len(got.GetSkus()) != 2 {
					t.Errorf("updated %v", got)
				}
				if err := stream.CloseRequest(); err != nil {
					t.Fatal(err)
				}
				if _, err := stream.Receive(); !errors.Is(err, io.EOF) {
					t.Fatalf("end of stream: %v, want EOF", err)
				}
				if v := stream.ResponseTrailer().Get(backendTrailer); v != "stream" {
					t.Errorf("trailer %s = %q", backendTrailer, v)
				}
				if err := stream.CloseResponse(); err != nil {
					t.Error(err)
				}
				c := be.calls.finished(t, id)
				if c.err != nil {
					t.Errorf("backend stream failed: %v", c.err)
				}
				assertForwardedHeaders(t, c.header)
			})

			t.Run("backend ends with an error", func(t *testing.T) {
				stream := ord.SyncOrders(t.Context())
				setRequestHeaders(stream.RequestHeader(), newID())
				defer stream.CloseResponse()
				if err := stream.Send(&ordersv1.SyncOrdersRequest{Order: &ordersv1.Order{CustomerId: "cust-sync", Skus: []string{"sku-a"}}}); err != nil {
					t.Fatal(err)
				}
				if _, err := stream.Receive(); err != nil {
					t.Fatal(err)
				}
				// The request side stays open: the backend's error must still
				// arrive.
				if err := stream.Send(&ordersv1.SyncOrdersRequest{Order: &ordersv1.Order{Id: "ord-unknown", CustomerId: "c", Skus: []string{"s"}}}); err != nil {
					t.Fatal(err)
				}
				_, err := stream.Receive()
				ce := wantError(t, err, connect.CodeNotFound, `order "ord-unknown" not found`)
				if len(ce.Details()) != 1 || ce.Details()[0].Type() != "google.rpc.ResourceInfo" {
					t.Errorf("details = %v", ce.Details())
				}
			})

			t.Run("client cancels", func(t *testing.T) {
				ctx, cancel := context.WithCancel(t.Context())
				defer cancel()
				id := newID()
				stream := ord.SyncOrders(ctx)
				setRequestHeaders(stream.RequestHeader(), id)
				if err := stream.Send(&ordersv1.SyncOrdersRequest{Order: &ordersv1.Order{CustomerId: "cust-sync", Skus: []string{"sku-a"}}}); err != nil {
					t.Fatal(err)
				}
				if _, err := stream.Receive(); err != nil {
					t.Fatal(err)
				}
				// connect-go over net/http resets the HTTP/2 stream once the
				// context is done and the response closed.
				cancel()
				_ = stream.CloseResponse()
				c := be.calls.finished(t, id)
				if !errors.Is(c.ctxErr, context.Canceled) {
					t.Errorf("backend stream ended with context error %v, want canceled", c.ctxErr)
				}
				if connect.CodeOf(c.err) != connect.CodeCanceled {
					t.Errorf("backend stream ended with %v, want canceled", c.err)
				}
			})
		})
	}
}

// TestStreamsGRPCGo runs the three stream kinds with a grpc-go client.
func TestStreamsGRPCGo(t *testing.T) {
	t.Parallel()
	be := startBackend(t)
	conn := grpcConn(t, startGateway(t, be.url, nil))
	outgoing := func(ctx context.Context, id string) context.Context {
		return metadata.AppendToOutgoingContext(ctx, "x-request-id", id, "authorization", "Bearer test-token",
			"x-secret", "do-not-forward", "portcullis-client-id", "forged", "trace-bin", string(binaryValue))
	}

	t.Run("server", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		id := newID()
		stream, err := conn.NewStream(outgoing(ctx, id), &grpc.StreamDesc{ServerStreams: true},
			"/example.licensing.v1.LicensingService/WatchLicenceOrders")
		if err != nil {
			t.Fatal(err)
		}
		if err := stream.SendMsg(&licensingv1.WatchLicenceOrdersRequest{BusinessId: "biz-acme"}); err != nil {
			t.Fatal(err)
		}
		if err := stream.CloseSend(); err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"lo-0001", "lo-0002"} {
			msg := new(licensingv1.WatchLicenceOrdersResponse)
			if err := stream.RecvMsg(msg); err != nil {
				t.Fatal(err)
			}
			if msg.GetOrder().GetId() != want {
				t.Errorf("got order %s, want %s", msg.GetOrder().GetId(), want)
			}
		}
		header, err := stream.Header()
		if err != nil || len(header.Get("backend-header")) != 1 {
			t.Errorf("header = %v, %v", header, err)
		}
		cancel()
		if c := be.calls.finished(t, id); !errors.Is(c.ctxErr, context.Canceled) {
			t.Errorf("backend stream ended with context error %v, want canceled", c.ctxErr)
		}
	})

	t.Run("client", func(t *testing.T) {
		t.Parallel()
		id := newID()
		stream, err := conn.NewStream(outgoing(t.Context(), id), &grpc.StreamDesc{ClientStreams: true},
			"/example.orders.v1.OrdersService/ImportOrders")
		if err != nil {
			t.Fatal(err)
		}
		for range 4 {
			if err := stream.SendMsg(&ordersv1.ImportOrdersRequest{Order: &ordersv1.Order{CustomerId: "c", Skus: []string{"s"}, TotalCents: 5}}); err != nil {
				t.Fatal(err)
			}
		}
		if err := stream.CloseSend(); err != nil {
			t.Fatal(err)
		}
		res := new(ordersv1.ImportOrdersResponse)
		if err := stream.RecvMsg(res); err != nil {
			t.Fatal(err)
		}
		if res.GetImported() != 4 || res.GetTotalCents() != 20 {
			t.Errorf("imported %v", res)
		}
		if got := stream.Trailer().Get("backend-trailer"); len(got) != 1 || got[0] != "stream" {
			t.Errorf("trailer = %v", stream.Trailer())
		}
		assertForwardedHeaders(t, be.calls.seen(t, id).header)
	})

	t.Run("bidi", func(t *testing.T) {
		t.Parallel()
		stream, err := conn.NewStream(outgoing(t.Context(), newID()), &grpc.StreamDesc{ClientStreams: true, ServerStreams: true},
			"/example.orders.v1.OrdersService/SyncOrders")
		if err != nil {
			t.Fatal(err)
		}
		// grpc-go waits for the headers here: the gateway relays them as
		// soon as the backend sends them.
		for i := range 3 {
			if err := stream.SendMsg(&ordersv1.SyncOrdersRequest{Order: &ordersv1.Order{Id: "ord-0001", CustomerId: "cust-ada", Skus: []string{"s"}, TotalCents: int64(i)}}); err != nil {
				t.Fatal(err)
			}
			res := new(ordersv1.SyncOrdersResponse)
			if err := stream.RecvMsg(res); err != nil {
				t.Fatal(err)
			}
			if res.GetOrder().GetTotalCents() != int64(i) {
				t.Errorf("stored %v", res.GetOrder())
			}
		}
		if err := stream.SendMsg(&ordersv1.SyncOrdersRequest{}); err != nil {
			t.Fatal(err)
		}
		err = stream.RecvMsg(new(ordersv1.SyncOrdersResponse))
		st := status.Convert(err)
		if st.Code() != codes.InvalidArgument || st.Message() != "order: required" {
			t.Fatalf("status = %v %q", st.Code(), st.Message())
		}
		if len(st.Details()) != 1 {
			t.Errorf("details = %v", st.Details())
		}
	})

	t.Run("bidi cancelled", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		id := newID()
		stream, err := conn.NewStream(outgoing(ctx, id), &grpc.StreamDesc{ClientStreams: true, ServerStreams: true},
			"/example.orders.v1.OrdersService/SyncOrders")
		if err != nil {
			t.Fatal(err)
		}
		if err := stream.SendMsg(&ordersv1.SyncOrdersRequest{Order: &ordersv1.Order{CustomerId: "c", Skus: []string{"s"}}}); err != nil {
			t.Fatal(err)
		}
		if err := stream.RecvMsg(new(ordersv1.SyncOrdersResponse)); err != nil {
			t.Fatal(err)
		}
		cancel()
		if c := be.calls.finished(t, id); !errors.Is(c.ctxErr, context.Canceled) {
			t.Errorf("backend stream ended with context error %v, want canceled", c.ctxErr)
		}
	})
}

func assertBadRequest(t *testing.T, ce *connect.Error, field string) {
	t.Helper()
	if len(ce.Details()) != 1 {
		t.Fatalf("got %d details, want 1", len(ce.Details()))
	}
	detail, err := ce.Details()[0].Value()
	if err != nil {
		t.Fatal(err)
	}
	br, ok := detail.(*errdetails.BadRequest)
	if !ok || len(br.GetFieldViolations()) == 0 || br.GetFieldViolations()[0].GetField() != field {
		t.Errorf("detail = %v, want a violation of %s", detail, field)
	}
}
