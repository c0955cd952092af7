package authz_test

import (
	"context"
	"errors"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portcullis/portcullis/internal/h2ctest"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/reflect/protoregistry"

	"github.com/portcullis/portcullis/gateway/authz"
	"github.com/portcullis/portcullis/gateway/catalog"
	"github.com/portcullis/portcullis/gateway/token"
	licensingv1 "github.com/portcullis/portcullis/gen/example/licensing/v1"
	"github.com/portcullis/portcullis/gen/example/licensing/v1/licensingv1connect"
	ordersv1 "github.com/portcullis/portcullis/gen/example/orders/v1"
	"github.com/portcullis/portcullis/gen/example/orders/v1/ordersv1connect"
)

// who names the caller of a handler: its client id, or "anonymous".
func who(ctx context.Context) string {
	if p, ok := token.FromContext(ctx); ok {
		return p.ClientID
	}
	return "anonymous"
}

// licensing is a tiny LicensingService that answers with who calls.
type licensing struct {
	licensingv1connect.UnimplementedLicensingServiceHandler
}

func (licensing) ListJurisdictions(ctx context.Context, _ *connect.Request[licensingv1.ListJurisdictionsRequest]) (*connect.Response[licensingv1.ListJurisdictionsResponse], error) {
	return connect.NewResponse(&licensingv1.ListJurisdictionsResponse{Jurisdictions: []*licensingv1.Jurisdiction{{Code: "US-CA", Name: who(ctx)}}}), nil
}

func (licensing) ListRequirements(ctx context.Context, _ *connect.Request[licensingv1.ListRequirementsRequest]) (*connect.Response[licensingv1.ListRequirementsResponse], error) {
	return connect.NewResponse(&licensingv1.ListRequirementsResponse{Requirements: []*licensingv1.Requirement{{Id: "r1", Name: who(ctx)}}}), nil
}

func (licensing) GetLicenceOrder(ctx context.Context, _ *connect.Request[licensingv1.GetLicenceOrderRequest]) (*connect.Response[licensingv1.GetLicenceOrderResponse], error) {
	return connect.NewResponse(&licensingv1.GetLicenceOrderResponse{Order: &licensingv1.LicenceOrder{Id: "o1", CreatedBy: who(ctx)}}), nil
}

func (licensing) CreateLicenceOrder(ctx context.Context, _ *connect.Request[licensingv1.CreateLicenceOrderRequest]) (*connect.Response[licensingv1.CreateLicenceOrderResponse], error) {
	return connect.NewResponse(&licensingv1.CreateLicenceOrderResponse{Order: &licensingv1.LicenceOrder{Id: "o2", CreatedBy: who(ctx)}}), nil
}

func (licensing) WatchLicenceOrders(ctx context.Context, _ *connect.Request[licensingv1.WatchLicenceOrdersRequest], stream *connect.ServerStream[licensingv1.WatchLicenceOrdersResponse]) error {
	for range 2 {
		if err := stream.Send(&licensingv1.WatchLicenceOrdersResponse{Order: &licensingv1.LicenceOrder{CreatedBy: who(ctx)}}); err != nil {
			return err
		}
	}
	return nil
}

// orders is a tiny OrdersService that answers with who calls.
type orders struct {
	ordersv1connect.UnimplementedOrdersServiceHandler
}

func (orders) GetOrder(ctx context.Context, _ *connect.Request[ordersv1.GetOrderRequest]) (*connect.Response[ordersv1.GetOrderResponse], error) {
	return connect.NewResponse(&ordersv1.GetOrderResponse{Order: &ordersv1.Order{PlacedBy: who(ctx)}}), nil
}

func (orders) PlaceOrder(ctx context.Context, _ *connect.Request[ordersv1.PlaceOrderRequest]) (*connect.Response[ordersv1.PlaceOrderResponse], error) {
	return connect.NewResponse(&ordersv1.PlaceOrderResponse{Order: &ordersv1.Order{PlacedBy: who(ctx)}}), nil
}

func (orders) ImportOrders(ctx context.Context, stream *connect.ClientStream[ordersv1.ImportOrdersRequest]) (*connect.Response[ordersv1.ImportOrdersResponse], error) {
	var n int64
	for stream.Receive() {
		n++
	}
	if err := stream.Err(); err != nil {
		return nil, err
	}
	res := connect.NewResponse(&ordersv1.ImportOrdersResponse{Imported: n})
	res.Header().Set("Who", who(ctx))
	return res, nil
}

func (orders) SyncOrders(ctx context.Context, stream *connect.BidiStream[ordersv1.SyncOrdersRequest, ordersv1.SyncOrdersResponse]) error {
	for {
		req, err := stream.Receive()
		if err != nil {
			return nil //nolint:nilerr // end of the client's stream
		}
		order := req.GetOrder()
		order.PlacedBy = who(ctx)
		if err := stream.Send(&ordersv1.SyncOrdersResponse{Order: order}); err != nil {
			return err
		}
	}
}

// testCatalog is the catalog of the example services.
func testCatalog(t testing.TB) *catalog.Catalog {
	t.Helper()
	cat, err := catalog.New(protoregistry.GlobalFiles)
	if err != nil {
		t.Fatal(err)
	}
	return cat
}

// serve runs the example services behind opts on a real HTTP/2 (h2c)
// server and returns its URL.
func serve(t testing.TB, opts ...connect.HandlerOption) string {
	t.Helper()
	mux := http.NewServeMux()
	mux.Handle(licensingv1connect.NewLicensingServiceHandler(licensing{}, opts...))
	mux.Handle(ordersv1connect.NewOrdersServiceHandler(orders{}, opts...))
	return h2ctest.Serve(t, mux)
}

// protocols are the client protocols every case is tried with.
var protocols = []struct {
	name string
	opts []connect.ClientOption
}{
	{"connect", nil},
	{"grpc", []connect.ClientOption{connect.WithGRPC()}},
	{"grpcweb", []connect.ClientOption{connect.WithGRPCWeb()}},
}

// clients of both example services.
type clients struct {
	lic licensingv1connect.LicensingServiceClient
	ord ordersv1connect.OrdersServiceClient
}

func newClients(hc *http.Client, url string, opts ...connect.ClientOption) clients {
	return clients{
		lic: licensingv1connect.NewLicensingServiceClient(hc, url, opts...),
		ord: ordersv1connect.NewOrdersServiceClient(hc, url, opts...),
	}
}

// call calls method with the given Authorization header values and returns
// who the handler saw calling.
func (c clients) call(ctx context.Context, method string, auth []string) (string, error) {
	set := func(h http.Header) {
		for _, a := range auth {
			h.Add("Authorization", a)
		}
	}
	switch method {
	case "ListJurisdictions":
		req := connect.NewRequest(&licensingv1.ListJurisdictionsRequest{})
		set(req.Header())
		res, err := c.lic.ListJurisdictions(ctx, req)
		if err != nil {
			return "", err
		}
		return res.Msg.GetJurisdictions()[0].GetName(), nil
	case "ListRequirements":
		req := connect.NewRequest(&licensingv1.ListRequirementsRequest{})
		set(req.Header())
		res, err := c.lic.ListRequirements(ctx, req)
		if err != nil {
			return "", err
		}
		return res.Msg.GetRequirements()[0].GetName(), nil
	case "GetLicenceOrder":
		req := connect.NewRequest(&licensingv1.GetLicenceOrderRequest{Id: "o1"})
		set(req.Header())
		res, err := c.lic.GetLicenceOrder(ctx, req)
		if err != nil {
			return "", err
		}
		return res.Msg.GetOrder().GetCreatedBy(), nil
	case "CreateLicenceOrder":
		req := connect.NewRequest(&licensingv1.CreateLicenceOrderRequest{})
		set(req.Header())
		res, err := c.lic.CreateLicenceOrder(ctx, req)
		if err != nil {
			return "", err
		}
		return res.Msg.GetOrder().GetCreatedBy(), nil
	case "WatchLicenceOrders":
		req := connect.NewRequest(&licensingv1.WatchLicenceOrdersRequest{})
		set(req.Header())
		stream, err := c.lic.WatchLicenceOrders(ctx, req)
		if err != nil {
			return "", err
		}
		defer stream.Close()
		var got string
		n := 0
		for stream.Receive() {
			got = stream.Msg().GetOrder().GetCreatedBy()
			n++
		}
		if err := stream.Err(); err != nil {
			return "", err
		}
		if n != 2 {
			return "", errors.New("stream ended early")
		}
		return got, nil
	case "GetOrder":
		req := connect.NewRequest(&ordersv1.GetOrderRequest{})
		set(req.Header())
		res, err := c.ord.GetOrder(ctx, req)
		if err != nil {
			return "", err
		}
		return res.Msg.GetOrder().GetPlacedBy(), nil
	case "PlaceOrder":
		req := connect.NewRequest(&ordersv1.PlaceOrderRequest{Order: &ordersv1.Order{}})
		set(req.Header())
		res, err := c.ord.PlaceOrder(ctx, req)
		if err != nil {
			return "", err
		}
		return res.Msg.GetOrder().GetPlacedBy(), nil
	case "ImportOrders":
		stream := c.ord.ImportOrders(ctx)
		set(stream.RequestHeader())
		for range 3 {
			if stream.Send(&ordersv1.ImportOrdersRequest{Order: &ordersv1.Order{Id: "x"}}) != nil {
				break // the server answered early; the error comes with the response
			}
		}
		res, err := stream.CloseAndReceive()
		if err != nil {
			return "", err
		}
		if res.Msg.GetImported() != 3 {
			return "", errors.New("not every order was imported")
		}
		return res.Header().Get("Who"), nil
	case "SyncOrders":
		stream := c.ord.SyncOrders(ctx)
		set(stream.RequestHeader())
		_ = stream.Send(&ordersv1.SyncOrdersRequest{Order: &ordersv1.Order{Id: "s1"}})
		_ = stream.CloseRequest()
		res, err := stream.Receive()
		_ = stream.CloseResponse()
		if err != nil {
			return "", err
		}
		return res.GetOrder().GetPlacedBy(), nil
	}
	return "", errors.New("unknown method " + method)
}

// countingClock is a fixed clock that counts how often it is read: the
// verifier reads it once per Verify.
type countingClock struct {
	now   atomic.Int64
	reads atomic.Int64
}

func (c *countingClock) Now() time.Time {
	c.reads.Add(1)
	return time.Unix(0, c.now.Load())
}

var _ token.Clock = (*countingClock)(nil)
var _ = authz.DefaultRealm
