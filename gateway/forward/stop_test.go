package forward_test

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/portcullis/portcullis/internal/h2ctest"

	"connectrpc.com/connect"
	"github.com/portcullis/portcullis/gateway/forward"
	licensingv1 "github.com/portcullis/portcullis/gen/example/licensing/v1"
	ordersv1 "github.com/portcullis/portcullis/gen/example/orders/v1"
	"github.com/portcullis/portcullis/gen/example/orders/v1/ordersv1connect"
	"github.com/portcullis/portcullis/services/licensing"
	"github.com/portcullis/portcullis/services/orders"
	"google.golang.org/protobuf/proto"
)

// stuckOrders is the orders service whose GetOrder answers only when its
// call is cancelled.
type stuckOrders struct {
	*orders.Service
}

func (stuckOrders) GetOrder(ctx context.Context, _ *connect.Request[ordersv1.GetOrderRequest]) (*connect.Response[ordersv1.GetOrderResponse], error) {
	<-ctx.Done()
	return nil, connect.NewError(connect.CodeCanceled, ctx.Err())
}

// waitReached waits until the call with the given id reached the backend.
func waitReached(t *testing.T, calls *recorder, id string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !calls.reached(id) {
		if time.Now().After(deadline) {
			t.Fatalf("call %s never reached the backend", id)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestStop shows that closing the stop channel ends every call in flight
// at once, in whatever phase, with Unavailable, and refuses new ones.
func TestStop(t *testing.T) {
	t.Parallel()
	calls := newRecorder()
	mux := http.NewServeMux()
	mux.Handle(licensing.New().Handler(connect.WithInterceptors(calls)))
	mux.Handle(ordersv1connect.NewOrdersServiceHandler(stuckOrders{orders.New()}, connect.WithInterceptors(calls)))
	stop := make(chan struct{})
	gw, obs := startObservedGateway(t, h2ctest.Serve(t, mux), forward.WithStop(stop))
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second) // the test's own bound
	defer cancel()

	type outcome struct {
		name string
		err  error
	}
	results := make(chan outcome, 8)

	// A unary call waiting for the backend.
	unaryID := newID()
	go func() {
		req := connect.NewRequest(&ordersv1.GetOrderRequest{Id: "ord-0001"})
		setRequestHeaders(req.Header(), unaryID)
		_, err := ordersClient(gw, protocols[0]).GetOrder(ctx, req)
		results <- outcome{"unary at the backend", err}
	}()
	waitReached(t, calls, unaryID)

	// A unary call whose body is still arriving.
	pr, pw := pipeBody(t, ctx)
	msg, err := proto.Marshal(&ordersv1.GetOrderRequest{Id: "ord-0001"})
	if err != nil {
		t.Fatal(err)
	}
	go func() { _, _ = pw.Write(envelope(0, msg)[:4]) }()
	bodyReq := newRawRequest(t, gw, "/example.orders.v1.OrdersService/GetOrder", wireGRPC, pr).WithContext(ctx)
	bodyDone := make(chan rpcStatus, 1)
	go func() {
		res, err := h2cClient().Do(bodyReq)
		if err != nil {
			bodyDone <- rpcStatus{code: connect.CodeUnknown, message: err.Error()}
			return
		}
		bodyDone <- readStatus(t, wireGRPC, res)
	}()

	// A server stream, a client stream and a bidi stream, open.
	watch, err := licensingClient(gw, protocols[2]).WatchLicenceOrders(ctx, connect.NewRequest(&licensingv1.WatchLicenceOrdersRequest{BusinessId: "biz-acme"}))
	if err != nil {
		t.Fatal(err)
	}
	defer watch.Close()
	if !watch.Receive() {
		t.Fatal(watch.Err())
	}
	importID := newID()
	imports := ordersClient(gw, protocols[0]).ImportOrders(ctx)
	setRequestHeaders(imports.RequestHeader(), importID)
	if err := imports.Send(&ordersv1.ImportOrdersRequest{Order: &ordersv1.Order{CustomerId: "c", Skus: []string{"s"}}}); err != nil {
		t.Fatal(err)
	}
	waitReached(t, calls, importID)
	sync := ordersClient(gw, protocols[3]).SyncOrders(ctx)
	defer sync.CloseResponse()
	if err := sync.Send(&ordersv1.SyncOrdersRequest{Order: &ordersv1.Order{CustomerId: "c", Skus: []string{"s"}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := sync.Receive(); err != nil {
		t.Fatal(err)
	}
	for obs.inFlight.Load() < 5 { // the raw call has arrived too
		time.Sleep(5 * time.Millisecond)
	}

	start := time.Now()
	close(stop)
	go func() {
		for watch.Receive() { // the rest of the business's orders
		}
		results <- outcome{"server stream", watch.Err()}
	}()
	go func() {
		_, err := sync.Receive()
		results <- outcome{"bidi stream", err}
	}()
	go func() {
		_, err := imports.CloseAndReceive()
		results <- outcome{"client stream", err}
	}()
	for range 4 {
		r := <-results
		if ce := wantCode(t, r.name, r.err, connect.CodeUnavailable); ce != nil && ce.Message() != "gateway shutting down" {
			t.Errorf("%s: message %q", r.name, ce.Message())
		}
	}
	wantStatus(t, "unary receiving its body", <-bodyDone, connect.CodeUnavailable, "gateway shutting down")
	if elapsed := time.Since(start); elapsed > time.Second {
		t.Errorf("calls ended %v after the stop", elapsed)
	}
	obs.idle(t, 2*time.Second)

	// New calls are refused.
	for _, p := range protocols {
		_, err := ordersClient(gw, p).GetOrder(ctx, connect.NewRequest(&ordersv1.GetOrderRequest{Id: "ord-0001"}))
		wantError(t, err, connect.CodeUnavailable, "gateway shutting down")
	}
}

// wantCode checks a connect error's code.
func wantCode(t *testing.T, name string, err error, code connect.Code) *connect.Error {
	t.Helper()
	if connect.CodeOf(err) != code {
		t.Errorf("%s: error %v, want %v", name, err, code)
		return nil
	}
	var ce *connect.Error
	errors.As(err, &ce)
	return ce
}
