package forward_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"net/http"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/portcullis/portcullis/gateway/forward"
	ordersv1 "github.com/portcullis/portcullis/gen/example/orders/v1"
	"google.golang.org/protobuf/proto"
)

// refusedReadBound is the most of a refused request body the gateway may
// read: what one read of the transport's buffer returns.
const refusedReadBound = 64 << 10

// TestOversizeRefusedUnread shows that a request message over the limit is
// refused as soon as its size is known: from the body's Content-Length, or
// from the length prefix of an enveloped message, without the gateway
// reading, or waiting for, the rest. The client gets ResourceExhausted.
func TestOversizeRefusedUnread(t *testing.T) {
	t.Parallel()
	be := startBackend(t)
	const limit = 4096
	declared := func(size uint32) []byte {
		prefix := make([]byte, 5)
		binary.BigEndian.PutUint32(prefix[1:], size)
		return prefix
	}
	tests := []struct {
		name          string
		wire          wire
		procedure     string
		http1         bool
		contentLength int64  // declared, when not zero
		first         []byte // what the client sends before it stalls
		want          string // in the error message
	}{
		{
			name: "connect content-length", wire: wireConnect, procedure: "/example.orders.v1.OrdersService/PlaceOrder",
			contentLength: 100 << 20, want: "request body of 104857600 bytes is larger than the limit of 4096 bytes",
		},
		{
			name: "connect content-length http/1.1", wire: wireConnect, procedure: "/example.orders.v1.OrdersService/PlaceOrder",
			http1: true, contentLength: 100 << 20, want: "request body of 104857600 bytes is larger than the limit of 4096 bytes",
		},
		{
			name: "grpc content-length", wire: wireGRPC, procedure: "/example.orders.v1.OrdersService/PlaceOrder",
			contentLength: 100 << 20, want: "request body of 104857600 bytes is larger than the limit of 4096 bytes",
		},
		{
			name: "grpc unary prefix", wire: wireGRPC, procedure: "/example.orders.v1.OrdersService/PlaceOrder",
			first: declared(1 << 30), want: "message size 1073741824 is larger than the limit of 4096 bytes",
		},
		{
			name: "grpcweb unary prefix", wire: wireGRPCWeb, procedure: "/example.orders.v1.OrdersService/PlaceOrder",
			first: declared(1 << 30), want: "message size 1073741824 is larger than the limit of 4096 bytes",
		},
		{
			name: "grpc client stream prefix", wire: wireGRPC, procedure: "/example.orders.v1.OrdersService/ImportOrders",
			first: append(envelope(0, validImport(t)), declared(1<<31)...), want: "message size 2147483648 is larger than the limit of 4096 bytes",
		},
		{
			name: "grpc bidi prefix", wire: wireGRPC, procedure: "/example.orders.v1.OrdersService/SyncOrders",
			first: declared(1 << 30), want: "message size 1073741824 is larger than the limit of 4096 bytes",
		},
		{
			name: "connect stream prefix", wire: wireConnectStream, procedure: "/example.orders.v1.OrdersService/ImportOrders",
			first: declared(1 << 30), want: "message size 1073741824 is larger than the limit of 4096 bytes",
		},
		{
			name: "connect stream prefix http/1.1", wire: wireConnectStream, procedure: "/example.orders.v1.OrdersService/ImportOrders",
			http1: true, first: declared(1 << 30), want: "message size 1073741824 is larger than the limit of 4096 bytes",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			gw, obs := startObservedGateway(t, be.url, forward.WithMaxMessageBytes(limit))
			ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second) // the test's own bound
			defer cancel()
			// The client sends what it declared, then a little more, and
			// stalls: the gateway must answer without waiting for the rest.
			pr, pw := pipeBody(t, ctx)
			go func() {
				_, _ = pw.Write(tt.first)
				_, _ = pw.Write(bytes.Repeat([]byte{'x'}, 1024))
			}()
			req := newRawRequest(t, gw, tt.procedure, tt.wire, pr).WithContext(ctx)
			req.ContentLength = tt.contentLength
			client := h2cClient()
			if tt.http1 {
				client = http.DefaultClient
			}
			res, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			wantStatus(t, tt.name, readStatus(t, tt.wire, res), connect.CodeResourceExhausted, tt.want)
			if n := obs.read.Load(); n > refusedReadBound {
				t.Errorf("the gateway read %d bytes of the refused body", n)
			}
			obs.idle(t, 2*time.Second)
		})
	}
}

// TestOversizeBoundedWork sends messages over the limit with connect-go
// clients, whose bodies arrive in full: the gateway refuses each after
// reading about the limit, never the whole message.
func TestOversizeBoundedWork(t *testing.T) {
	t.Parallel()
	be := startBackend(t)
	const limit = 4096
	big := strings.Repeat("n", 1<<20)
	for _, p := range protocols {
		t.Run(p.name, func(t *testing.T) {
			t.Parallel()
			gw, obs := startObservedGateway(t, be.url, forward.WithMaxMessageBytes(limit))
			ord := ordersClient(gw, p)
			id := newID()
			req := connect.NewRequest(&ordersv1.PlaceOrderRequest{Order: &ordersv1.Order{CustomerId: "c", Skus: []string{"s"}, Notes: big}})
			setRequestHeaders(req.Header(), id)
			_, err := ord.PlaceOrder(t.Context(), req)
			if n := obs.read.Load(); n > limit+refusedReadBound {
				t.Errorf("the gateway read %d bytes of a refused %d-byte message", n, len(big))
			}
			if code := connect.CodeOf(err); code != connect.CodeResourceExhausted || !strings.Contains(err.Error(), "larger than the limit of 4096 bytes") {
				t.Errorf("error = %v, want resource_exhausted naming the limit", err)
			}
			if be.calls.reached(id) {
				t.Error("the backend got the message")
			}
		})
	}
}

// validImport returns an ImportOrdersRequest that the backend accepts.
func validImport(t *testing.T) []byte {
	t.Helper()
	b, err := proto.Marshal(&ordersv1.ImportOrdersRequest{Order: &ordersv1.Order{CustomerId: "c", Skus: []string{"s"}}})
	if err != nil {
		t.Fatal(err)
	}
	return b
}
