package gateway_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"slices"
	"testing"
	"time"

	"connectrpc.com/connect"

	"github.com/portcullis/portcullis/gateway/coalesce"
	ordersv1 "github.com/portcullis/portcullis/gen/example/orders/v1"
	"github.com/portcullis/portcullis/gen/example/orders/v1/ordersv1connect"
	"github.com/portcullis/portcullis/internal/gatewaytest"
	"github.com/portcullis/portcullis/internal/h2ctest"
	"github.com/portcullis/portcullis/services/issuer"
)

// headersFirst is an orders backend whose SyncOrders answers with its
// headers before it reads anything, then echoes each order.
type headersFirst struct {
	ordersv1connect.UnimplementedOrdersServiceHandler
}

func (headersFirst) SyncOrders(_ context.Context, stream *connect.BidiStream[ordersv1.SyncOrdersRequest, ordersv1.SyncOrdersResponse]) error {
	stream.ResponseHeader().Set("X-Ready", "yes")
	if err := stream.Send(nil); err != nil {
		return err
	}
	for {
		req, err := stream.Receive()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if err := stream.Send(&ordersv1.SyncOrdersResponse{Order: req.GetOrder()}); err != nil {
			return err
		}
	}
}

// The gateway's h2c connections to a backend hold a request's header block
// until its body follows (package coalesce); a bidi stream whose client
// sends only its headers, and whose backend answers with its headers
// before any message, still opens at once: the forwarding flushes the
// request's headers to the backend before it waits for the client's first
// message. Nothing waits for coalesce.HoldFor.
func TestLoneHeadersGoOutAtOnce(t *testing.T) {
	t.Parallel()
	env := gatewaytest.Start(t)
	env.OrdersURL = h2ctest.Serve(t, mustHandler(ordersv1connect.NewOrdersServiceHandler(headersFirst{})))
	gw := gatewaytest.New(t, env.Config(""))
	ls := serveListeners(t, gw)
	waitReady(t, "http://"+ls.Admin.Addr().String())
	secret := env.Issuer.AddClient(t, issuer.Client{ID: "syncer", Grants: []string{"ORD.READ", "ORD.WRITE", "LIC.READ_REQUIREMENTS", "LIC.READ_ORDERS"}})
	client := &http.Client{Transport: bearer{tok: env.Issuer.Token(t, "syncer", secret), base: h2ctest.Transport()}}

	for name, opts := range protocols {
		t.Run(name, func(t *testing.T) {
			ord := ordersv1connect.NewOrdersServiceClient(client, "http://"+ls.Main.Addr().String(), opts...)
			var waits []time.Duration
			for range 5 {
				began := time.Now()
				bidi := ord.SyncOrders(t.Context())
				if err := bidi.Send(nil); err != nil { // the request's headers alone
					t.Fatal(err)
				}
				if got := bidi.ResponseHeader().Get("X-Ready"); got != "yes" { // blocks until they come
					_, err := bidi.Receive()
					t.Fatalf("response header X-Ready = %q (%v), want the backend's", got, err)
				}
				waits = append(waits, time.Since(began))
				order := &ordersv1.Order{Id: "o-1", CustomerId: "c-1", Skus: []string{"sku"}, TotalCents: 1}
				if err := bidi.Send(&ordersv1.SyncOrdersRequest{Order: order}); err != nil {
					t.Fatal(err)
				}
				if res, err := bidi.Receive(); err != nil || res.GetOrder().GetId() != "o-1" {
					t.Fatalf("echo = %v, %v; want the order back", res, err)
				}
				if err := bidi.CloseRequest(); err != nil {
					t.Fatal(err)
				}
				if _, err := bidi.Receive(); !errors.Is(err, io.EOF) {
					t.Fatalf("end of stream = %v, want EOF", err)
				}
				_ = bidi.CloseResponse()
			}
			slices.Sort(waits)
			if median := waits[len(waits)/2]; median >= coalesce.HoldFor*3/4 {
				t.Errorf("the response's headers took %v (median of %v), want under three quarters of coalesce.HoldFor (%v): a held block waited for the timer", median, waits, coalesce.HoldFor)
			}
		})
	}
}

// mustHandler returns the handler of a (path, handler) pair.
func mustHandler(_ string, h http.Handler) http.Handler { return h }
