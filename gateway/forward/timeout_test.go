package forward_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/portcullis/portcullis/gateway/forward"
	ordersv1 "github.com/portcullis/portcullis/gen/example/orders/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

const shortTimeout = 300 * time.Millisecond

// TestRequestBodyTimeout shows that a unary call (or the request of a
// server stream) whose body does not arrive in time is refused with
// DeadlineExceeded, and its stream or connection freed, whether the
// client sends nothing, part of it, or trickles it byte by byte.
func TestRequestBodyTimeout(t *testing.T) {
	t.Parallel()
	be := startBackend(t)
	msg, err := proto.Marshal(&ordersv1.GetOrderRequest{Id: "ord-0001"})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name          string
		wire          wire
		procedure     string
		http1         bool
		contentLength int64
		send          []byte // sent at once, then the client stalls
		trickle       bool   // sent one byte every 50ms instead
	}{
		{name: "connect, nothing sent", wire: wireConnect, procedure: "/example.orders.v1.OrdersService/GetOrder"},
		{name: "connect, part sent", wire: wireConnect, procedure: "/example.orders.v1.OrdersService/GetOrder", send: msg[:2]},
		{name: "connect, trickled", wire: wireConnect, procedure: "/example.orders.v1.OrdersService/GetOrder", send: []byte(strings.Repeat("\n", 100)), trickle: true},
		{name: "connect http/1.1 chunked", wire: wireConnect, procedure: "/example.orders.v1.OrdersService/GetOrder", http1: true, send: msg[:2]},
		{name: "connect http/1.1 content-length", wire: wireConnect, procedure: "/example.orders.v1.OrdersService/GetOrder", http1: true, contentLength: int64(len(msg)), send: msg[:2]},
		{name: "grpc, message sent, stream open", wire: wireGRPC, procedure: "/example.orders.v1.OrdersService/GetOrder", send: envelope(0, msg)},
		{name: "grpc, trickled", wire: wireGRPC, procedure: "/example.orders.v1.OrdersService/GetOrder", send: envelope(0, msg), trickle: true},
		{name: "grpcweb, part sent", wire: wireGRPCWeb, procedure: "/example.orders.v1.OrdersService/GetOrder", send: envelope(0, msg)[:3]},
		{name: "grpc server stream request", wire: wireGRPC, procedure: "/example.licensing.v1.LicensingService/WatchLicenceOrders", send: envelope(0, nil)[:3]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			gw, obs := startObservedGateway(t, be.url, forward.WithRequestBodyTimeout(shortTimeout))
			ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second) // the test's own bound
			defer cancel()
			pr, pw := pipeBody(t, ctx)
			go func() {
				if !tt.trickle {
					_, _ = pw.Write(tt.send)
					return
				}
				for i := range tt.send {
					if _, err := pw.Write(tt.send[i : i+1]); err != nil {
						return
					}
					time.Sleep(50 * time.Millisecond)
				}
			}()
			req := newRawRequest(t, gw, tt.procedure, tt.wire, pr).WithContext(ctx)
			req.ContentLength = tt.contentLength
			client := h2cClient()
			if tt.http1 {
				client = &http.Client{Transport: &http.Transport{}}
			}
			start := time.Now()
			res, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			wantStatus(t, tt.name, readStatus(t, tt.wire, res), connect.CodeDeadlineExceeded, "request body not received within 300ms")
			if elapsed := time.Since(start); elapsed > shortTimeout+slack+time.Second {
				t.Errorf("answered after %v", elapsed)
			}
			obs.idle(t, 2*time.Second)
		})
	}

	// Over HTTP/1.1 the gateway closes the connection, which a slow
	// client would otherwise hold.
	t.Run("http/1.1 connection closed", func(t *testing.T) {
		t.Parallel()
		gw, obs := startObservedGateway(t, be.url, forward.WithRequestBodyTimeout(shortTimeout))
		res, r := rawHTTP1(t, gw, "POST /example.orders.v1.OrdersService/GetOrder HTTP/1.1\r\nHost: gw\r\n"+
			"Content-Type: application/proto\r\nContent-Length: 100\r\n\r\nab")
		wantStatus(t, "http/1.1", readStatus(t, wireConnect, res), connect.CodeDeadlineExceeded, "request body not received within 300ms")
		if res.StatusCode != http.StatusGatewayTimeout {
			t.Errorf("HTTP status %d", res.StatusCode)
		}
		wantClosed(t, r)
		obs.idle(t, 2*time.Second)
	})
}

// TestStreamIdleTimeout shows that a client or bidi stream whose client
// sends nothing for the idle timeout, without closing its side, ends with
// DeadlineExceeded, while a stream that keeps sending lives on (and one
// that waits on a slow backend: see TestBackPressure).
func TestStreamIdleTimeout(t *testing.T) {
	t.Parallel()
	be := startBackend(t)
	gw, obs := startObservedGateway(t, be.url, forward.WithStreamIdleTimeout(shortTimeout))
	for _, p := range []protocol{protocols[0], protocols[2], protocols[3]} {
		t.Run("silent bidi/"+p.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second) // the test's own bound
			defer cancel()
			id := newID()
			stream := ordersClient(gw, p).SyncOrders(ctx)
			defer stream.CloseResponse()
			setRequestHeaders(stream.RequestHeader(), id)
			if err := stream.Send(&ordersv1.SyncOrdersRequest{Order: &ordersv1.Order{CustomerId: "c", Skus: []string{"s"}}}); err != nil {
				t.Fatal(err)
			}
			if _, err := stream.Receive(); err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			_, err := stream.Receive()
			wantError(t, err, connect.CodeDeadlineExceeded, "no request data received for 300ms")
			if elapsed := time.Since(start); elapsed > shortTimeout+slack+time.Second {
				t.Errorf("ended after %v", elapsed)
			}
			if c := be.calls.finished(t, id); connect.CodeOf(c.err) != connect.CodeCanceled {
				t.Errorf("backend stream ended with %v, want canceled", c.err)
			}
		})

		t.Run("busy bidi/"+p.name, func(t *testing.T) {
			t.Parallel()
			stream := ordersClient(gw, p).SyncOrders(t.Context())
			defer stream.CloseResponse()
			for range 12 { // 1.2 s, four idle timeouts
				if err := stream.Send(&ordersv1.SyncOrdersRequest{Order: &ordersv1.Order{CustomerId: "c", Skus: []string{"s"}}}); err != nil {
					t.Fatal(err)
				}
				if _, err := stream.Receive(); err != nil {
					t.Fatal(err)
				}
				time.Sleep(shortTimeout / 3)
			}
			if err := stream.CloseRequest(); err != nil {
				t.Fatal(err)
			}
			if _, err := stream.Receive(); !errors.Is(err, io.EOF) {
				t.Fatalf("end of stream: %v", err)
			}
		})
	}

	t.Run("silent client stream/grpc-go", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second) // the test's own bound
		defer cancel()
		stream, err := grpcConn(t, gw).NewStream(ctx, &grpc.StreamDesc{ClientStreams: true}, "/example.orders.v1.OrdersService/ImportOrders")
		if err != nil {
			t.Fatal(err)
		}
		if err := stream.SendMsg(&ordersv1.ImportOrdersRequest{Order: &ordersv1.Order{CustomerId: "c", Skus: []string{"s"}}}); err != nil {
			t.Fatal(err)
		}
		err = stream.RecvMsg(new(ordersv1.ImportOrdersResponse))
		if st := status.Convert(err); st.Code() != codes.DeadlineExceeded || st.Message() != "no request data received for 300ms" {
			t.Errorf("status = %v %q", st.Code(), st.Message())
		}
	})

	t.Run("silent client stream/http/1.1", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		defer cancel()
		pr, pw := pipeBody(t, ctx)
		first, err := proto.Marshal(&ordersv1.ImportOrdersRequest{Order: &ordersv1.Order{CustomerId: "c", Skus: []string{"s"}}})
		if err != nil {
			t.Fatal(err)
		}
		go func() { _, _ = pw.Write(envelope(0, first)) }()
		req := newRawRequest(t, gw, "/example.orders.v1.OrdersService/ImportOrders", wireConnectStream, pr).WithContext(ctx)
		res, err := (&http.Client{Transport: &http.Transport{}}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		wantStatus(t, "http/1.1", readStatus(t, wireConnectStream, res), connect.CodeDeadlineExceeded, "no request data received for 300ms")
	})

	t.Cleanup(func() { obs.idle(t, 2*time.Second) })
}
