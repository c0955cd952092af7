package forward_test

import (
	"net/http"
	"testing"

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
			res, _ := rawHTTP1(t, gw, "POST "+tt.procedure+" HTTP/1.1\r\nHost: gw\r\nContent-Type: "+tt.wire.contentType+
				"\r\nTe: trailers\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nab\r\n0\r\n\r\n")
			if res.StatusCode != tt.wantStatus {
				t.Errorf("HTTP status %d, want %d", res.StatusCode, tt.wantStatus)
			}
			wantStatus(t, tt.wire.name, readStatus(t, tt.wire, res), connect.CodeInvalidArgument, "malformed request body")
		})
	}
}
