package forward_test

import (
	"context"
	"errors"
	"net/http"
	"testing"

	"connectrpc.com/connect"
	"github.com/portcullis/portcullis/gateway/forward"
	ordersv1 "github.com/portcullis/portcullis/gen/example/orders/v1"
	"github.com/portcullis/portcullis/gen/example/orders/v1/ordersv1connect"
	"github.com/portcullis/portcullis/internal/h2ctest"
)

// unavailableOrders is an orders backend whose database is down: every
// GetOrder answers Unavailable, with a detail and a trailer.
type unavailableOrders struct {
	ordersv1connect.UnimplementedOrdersServiceHandler
}

func (unavailableOrders) GetOrder(context.Context, *connect.Request[ordersv1.GetOrderRequest]) (*connect.Response[ordersv1.GetOrderResponse], error) {
	err := connect.NewError(connect.CodeUnavailable, errors.New("orders database down"))
	if detail, derr := connect.NewErrorDetail(&ordersv1.GetOrderRequest{Id: "ord-retry-later"}); derr == nil {
		err.AddDetail(detail)
	}
	err.Meta().Set(backendTrailer, "db-down")
	return nil, err
}

// TestBackendStatusIsTheAnswer shows a status the backend sent, even
// Unavailable, reaching the client as the backend sent it (code, message,
// detail, trailer) in every protocol, binary and JSON, without a retry of
// the idempotent call and without counting against the endpoints.
func TestBackendStatusIsTheAnswer(t *testing.T) {
	t.Parallel()
	mux := http.NewServeMux()
	mux.Handle(ordersv1connect.NewOrdersServiceHandler(unavailableOrders{}))
	urls := []string{h2ctest.Serve(t, mux), h2ctest.Serve(t, mux)}
	be, err := forward.NewBackendEndpoints(urls, forward.WithBackendLogger(nil))
	if err != nil {
		t.Fatal(err)
	}
	gw := balancedGateway(t, be)
	for _, p := range protocols {
		t.Run(p.name, func(t *testing.T) {
			_, err := getOrder(t.Context(), ordersClient(gw, p))
			ce := wantError(t, err, connect.CodeUnavailable, "orders database down")
			if got := ce.Meta().Get(backendTrailer); got != "db-down" {
				t.Errorf("trailer %s = %q, want db-down", backendTrailer, got)
			}
			details := ce.Details()
			if len(details) != 1 {
				t.Fatalf("%d details, want 1", len(details))
			}
			msg, err := details[0].Value()
			if req, ok := msg.(*ordersv1.GetOrderRequest); err != nil || !ok || req.GetId() != "ord-retry-later" {
				t.Errorf("detail = %v (%v), want the backend's", msg, err)
			}
		})
	}
	if n := be.Retries(); n != 0 {
		t.Errorf("%d retries of answered calls", n)
	}
	for _, s := range be.Endpoints() {
		if s.Failures != 0 || s.State != forward.EndpointUp {
			t.Errorf("endpoint %+v: an answer counted as a failure", s)
		}
	}
}

// TestNonGRPCAnswer shows a backend address that answers plain HTTP (a
// proxy's error page, say) giving the code the gRPC specification maps
// its status to, and nothing of the page, in every protocol.
func TestNonGRPCAnswer(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		status  int
		code    connect.Code
		message string
	}{
		{http.StatusServiceUnavailable, connect.CodeUnavailable, "backend unavailable"},
		{http.StatusNotFound, connect.CodeUnimplemented, "backend call failed"},
		{http.StatusForbidden, connect.CodePermissionDenied, "backend call failed"},
	} {
		t.Run(http.StatusText(tt.status), func(t *testing.T) {
			t.Parallel()
			page := h2ctest.Serve(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Type", "text/html")
				w.WriteHeader(tt.status)
				_, _ = w.Write([]byte("<html>internal proxy 10.0.0.7</html>"))
			}))
			be, err := forward.NewBackend(page, forward.WithBackendLogger(nil))
			if err != nil {
				t.Fatal(err)
			}
			gw := balancedGateway(t, be)
			for _, p := range protocols {
				_, err := getOrder(t.Context(), ordersClient(gw, p))
				var ce *connect.Error
				if !errors.As(err, &ce) || ce.Code() != tt.code || ce.Message() != tt.message {
					t.Errorf("%s: error = %v, want %v %q", p.name, err, tt.code, tt.message)
				}
			}
			if s := be.Endpoints()[0]; s.Failures != 0 {
				t.Errorf("an answering endpoint counted %d failures", s.Failures)
			}
		})
	}
}

// TestHeaderValueNotASCII shows a call whose request carries a header
// value that is not printable ASCII (which an HTTP/2 header may hold and
// grpc-go's metadata may not) reaching the backend unchanged in every
// protocol.
func TestHeaderValueNotASCII(t *testing.T) {
	t.Parallel()
	b := startBackend(t)
	gw := startGateway(t, b.url, nil)
	for _, p := range protocols {
		req := connect.NewRequest(&ordersv1.GetOrderRequest{Id: "ord-0001"})
		req.Header().Set("X-Note", "caf\xc3\xa9")
		req.Header().Set(requestIDKey, "not-ascii-"+p.name)
		if _, err := ordersClient(gw, p).GetOrder(t.Context(), req); err != nil {
			t.Errorf("%s: %v", p.name, err)
			continue
		}
		if c := b.calls.seen(t, "not-ascii-"+p.name); c.header.Get("X-Note") != "caf\xc3\xa9" {
			t.Errorf("%s: the backend saw X-Note %q", p.name, c.header.Get("X-Note"))
		}
	}
}
