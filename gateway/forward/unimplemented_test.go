package forward_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/portcullis/portcullis/internal/h2ctest"

	"connectrpc.com/connect"
	"github.com/portcullis/portcullis/gateway/forward"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"
)

// TestUnimplemented calls methods the gateway does not route, of a routed
// service and of an unknown one: every client gets Unimplemented in its
// own protocol, not a plain-text 404.
func TestUnimplemented(t *testing.T) {
	t.Parallel()
	be := startBackend(t)
	_, mux := newGateway(t, be.url, nil)
	mux.Handle("/", forward.Unimplemented())
	gw := h2ctest.Serve(t, mux)
	tests := []struct {
		name, procedure, message string
	}{
		{"unknown method", "/example.orders.v1.OrdersService/DeleteOrder", "unknown method DeleteOrder for service example.orders.v1.OrdersService"},
		{"unknown service", "/example.nope.v1.NopeService/Get", "unknown service example.nope.v1.NopeService"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			for _, p := range protocols {
				unary := connect.NewClient[emptypb.Empty, emptypb.Empty](h2cClient(), gw+tt.procedure, p.opts...)
				_, err := unary.CallUnary(t.Context(), connect.NewRequest(&emptypb.Empty{}))
				wantError(t, err, connect.CodeUnimplemented, tt.message)

				bidi := unary.CallBidiStream(t.Context())
				_ = bidi.Send(&emptypb.Empty{})
				_, err = bidi.Receive()
				wantError(t, err, connect.CodeUnimplemented, tt.message)
				_ = bidi.CloseResponse()
			}

			err := grpcConn(t, gw).Invoke(t.Context(), tt.procedure, &emptypb.Empty{}, &emptypb.Empty{})
			if st := status.Convert(err); st.Code() != codes.Unimplemented || st.Message() != tt.message {
				t.Errorf("grpc-go status = %v %q", st.Code(), st.Message())
			}

			for _, method := range []string{http.MethodPost, http.MethodGet} {
				req, err := http.NewRequestWithContext(t.Context(), method, gw+tt.procedure, strings.NewReader("{}"))
				if err != nil {
					t.Fatal(err)
				}
				if method == http.MethodPost {
					req.Header.Set("Content-Type", "application/json")
				}
				res, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				body, _ := io.ReadAll(res.Body)
				_ = res.Body.Close()
				var got struct{ Code, Message string }
				if res.StatusCode != http.StatusNotFound || res.Header.Get("Content-Type") != "application/json" ||
					json.Unmarshal(body, &got) != nil || got.Code != "unimplemented" || got.Message != tt.message {
					t.Errorf("%s: HTTP %d %s %s", method, res.StatusCode, res.Header.Get("Content-Type"), body)
				}
			}
		})
	}
	// A client that never sends its body is answered at once, and its
	// HTTP/1.1 connection closed.
	t.Run("stalled http/1.1 body", func(t *testing.T) {
		t.Parallel()
		res, r := rawHTTP1(t, gw, "POST /example.nope.v1.NopeService/Get HTTP/1.1\r\nHost: gw\r\n"+
			"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n100\r\n{")
		if res.StatusCode != http.StatusNotFound {
			t.Errorf("HTTP status %d", res.StatusCode)
		}
		_, _ = io.Copy(io.Discard, res.Body)
		wantClosed(t, r)
	})
}
