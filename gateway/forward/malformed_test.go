package forward_test

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
)

// TestMalformedChunkedBody sends HTTP/1.1 requests whose chunked body has
// a bad chunk size: the client's fault, refused with InvalidArgument (HTTP
// 400 in Connect unary) in each protocol, not as a server error.
func TestMalformedChunkedBody(t *testing.T) {
	t.Parallel()
	be := startBackend(t)
	gw := startGateway(t, be.url, nil)
	tests := []struct {
		wire       wire
		procedure  string
		wantStatus int // HTTP
	}{
		{wireConnect, "/example.orders.v1.OrdersService/GetOrder", http.StatusBadRequest},
		{wireConnectStream, "/example.orders.v1.OrdersService/ImportOrders", http.StatusOK},
		{wireGRPC, "/example.orders.v1.OrdersService/GetOrder", http.StatusOK},
		{wireGRPCWeb, "/example.orders.v1.OrdersService/GetOrder", http.StatusOK},
		{wireGRPCWeb, "/example.licensing.v1.LicensingService/WatchLicenceOrders", http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.wire.name+tt.procedure, func(t *testing.T) {
			t.Parallel()
			conn, err := net.Dial("tcp", strings.TrimPrefix(gw, "http://"))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
			if _, err := io.WriteString(conn, "POST "+tt.procedure+" HTTP/1.1\r\nHost: gw\r\nContent-Type: "+tt.wire.contentType+
				"\r\nTe: trailers\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nab\r\n0\r\n\r\n"); err != nil {
				t.Fatal(err)
			}
			res, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil {
				t.Fatal(err)
			}
			if res.StatusCode != tt.wantStatus {
				t.Errorf("HTTP status %d, want %d", res.StatusCode, tt.wantStatus)
			}
			wantStatus(t, tt.wire.name, readStatus(t, tt.wire, res), connect.CodeInvalidArgument, "malformed request body")
		})
	}
}
