package orders_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/portcullis/portcullis/internal/h2ctest"

	"connectrpc.com/connect"
	"github.com/portcullis/portcullis/gateway/token"
	ordersv1 "github.com/portcullis/portcullis/gen/example/orders/v1"
	"github.com/portcullis/portcullis/gen/example/orders/v1/ordersv1connect"
	"github.com/portcullis/portcullis/services/orders"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/protobuf/proto"
)

var now = time.Date(2026, time.March, 1, 12, 0, 0, 0, time.UTC)

// serve runs svc over cleartext HTTP/2 with opts and returns a gRPC client
// that names the caller as the gateway does, unless caller is "".
func serve(t *testing.T, svc *orders.Service, caller string, opts ...connect.HandlerOption) ordersv1connect.OrdersServiceClient {
	t.Helper()
	mux := http.NewServeMux()
	mux.Handle(svc.Handler(opts...))
	url, client := h2ctest.Serve(t, mux), h2ctest.Client(t)
	callerHeader := connect.UnaryInterceptorFunc(func(next connect.UnaryFunc) connect.UnaryFunc {
		return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
			if caller != "" {
				req.Header().Set(orders.DefaultIdentityHeader, caller)
			}
			return next(ctx, req)
		}
	})
	return ordersv1connect.NewOrdersServiceClient(client, url, connect.WithGRPC(), connect.WithInterceptors(callerHeader, streamCaller(caller)))
}

// streamCaller names the caller on streams.
type streamCaller string

func (c streamCaller) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc { return next }

func (c streamCaller) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return func(ctx context.Context, spec connect.Spec) connect.StreamingClientConn {
		conn := next(ctx, spec)
		if c != "" {
			conn.RequestHeader().Set(orders.DefaultIdentityHeader, string(c))
		}
		return conn
	}
}

func (c streamCaller) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return next
}

func order(customer string, cents int64, skus ...string) *ordersv1.Order {
	return &ordersv1.Order{CustomerId: customer, TotalCents: cents, Skus: skus}
}

func TestGetAndPlace(t *testing.T) {
	t.Parallel()
	client := serve(t, orders.New(orders.WithClock(func() time.Time { return now })), "client-a")
	ctx := t.Context()

	got, err := client.GetOrder(ctx, connect.NewRequest(&ordersv1.GetOrderRequest{Id: "ord-0001"}))
	if err != nil {
		t.Fatal(err)
	}
	if got.Msg.GetOrder().GetCustomerId() != "cust-ada" {
		t.Errorf("seeded order = %v", got.Msg.GetOrder())
	}

	placed, err := client.PlaceOrder(ctx, connect.NewRequest(&ordersv1.PlaceOrderRequest{Order: order("cust-b", 500, "sku-x")}))
	if err != nil {
		t.Fatal(err)
	}
	want := &ordersv1.Order{Id: "ord-0003", CustomerId: "cust-b", TotalCents: 500, Skus: []string{"sku-x"}, PlacedBy: "client-a"}
	p := placed.Msg.GetOrder()
	if !p.GetCreateTime().AsTime().Equal(now) {
		t.Errorf("create_time = %v", p.GetCreateTime().AsTime())
	}
	p.CreateTime = nil
	if !proto.Equal(p, want) {
		t.Errorf("placed %v, want %v", p, want)
	}

	tests := []struct {
		name      string
		call      func() error
		wantCode  connect.Code
		wantMsg   string
		wantField string // of the BadRequest detail
	}{
		{
			name: "unknown",
			call: func() error {
				_, err := client.GetOrder(ctx, connect.NewRequest(&ordersv1.GetOrderRequest{Id: "ord-x"}))
				return err
			},
			wantCode: connect.CodeNotFound, wantMsg: `order "ord-x" not found`,
		},
		{
			name: "no id",
			call: func() error {
				_, err := client.GetOrder(ctx, connect.NewRequest(&ordersv1.GetOrderRequest{}))
				return err
			},
			wantCode: connect.CodeInvalidArgument, wantMsg: "id: required", wantField: "id",
		},
		{
			name: "no order",
			call: func() error {
				_, err := client.PlaceOrder(ctx, connect.NewRequest(&ordersv1.PlaceOrderRequest{}))
				return err
			},
			wantCode: connect.CodeInvalidArgument, wantMsg: "order: required", wantField: "order",
		},
		{
			name: "invalid order",
			call: func() error {
				_, err := client.PlaceOrder(ctx, connect.NewRequest(&ordersv1.PlaceOrderRequest{Order: order("", -1)}))
				return err
			},
			wantCode: connect.CodeInvalidArgument, wantMsg: "order.customer_id: required (and 2 more)", wantField: "order.customer_id",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ce := assertError(t, tt.call(), tt.wantCode, tt.wantMsg)
			if tt.wantField == "" {
				return
			}
			detail, err := ce.Details()[0].Value()
			if err != nil {
				t.Fatal(err)
			}
			if br, ok := detail.(*errdetails.BadRequest); !ok || br.GetFieldViolations()[0].GetField() != tt.wantField {
				t.Errorf("detail = %v, want a violation of %s", detail, tt.wantField)
			}
		})
	}
}

func TestCaller(t *testing.T) {
	t.Parallel()
	verified := connect.UnaryInterceptorFunc(func(next connect.UnaryFunc) connect.UnaryFunc {
		return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
			return next(token.NewContext(ctx, &token.Principal{ClientID: "verified-client"}), req)
		}
	})
	tests := []struct {
		name   string
		opts   []orders.Option
		hopts  []connect.HandlerOption
		header string
		want   string // placed_by, or "" for Unauthenticated
	}{
		{name: "gateway header", header: "gw", want: "gw"},
		{name: "verified token wins", hopts: []connect.HandlerOption{connect.WithInterceptors(verified)}, header: "gw", want: "verified-client"},
		{name: "no caller"},
		{name: "untrusted header", opts: []orders.Option{orders.WithIdentityHeader("")}, header: "gw"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			client := serve(t, orders.New(tt.opts...), tt.header, tt.hopts...)
			res, err := client.PlaceOrder(t.Context(), connect.NewRequest(&ordersv1.PlaceOrderRequest{Order: order("c", 1, "s")}))
			if tt.want == "" {
				assertError(t, err, connect.CodeUnauthenticated, "no caller identity: call through the gateway or with a verified token")
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := res.Msg.GetOrder().GetPlacedBy(); got != tt.want {
				t.Errorf("placed_by = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestImportOrders(t *testing.T) {
	t.Parallel()
	client := serve(t, orders.New(), "importer")
	ctx := t.Context()

	stream := client.ImportOrders(ctx)
	for _, o := range []*ordersv1.Order{order("a", 100, "s"), order("b", 250, "s"), order("c", 0, "s")} {
		if err := stream.Send(&ordersv1.ImportOrdersRequest{Order: o}); err != nil {
			t.Fatal(err)
		}
	}
	res, err := stream.CloseAndReceive()
	if err != nil {
		t.Fatal(err)
	}
	if res.Msg.GetImported() != 3 || res.Msg.GetTotalCents() != 350 {
		t.Errorf("import = %v", res.Msg)
	}

	// An invalid order refuses the whole import.
	stream = client.ImportOrders(ctx)
	for _, o := range []*ordersv1.Order{order("d", 1, "s"), order("e", 1)} {
		if err := stream.Send(&ordersv1.ImportOrdersRequest{Order: o}); err != nil {
			break
		}
	}
	_, err = stream.CloseAndReceive()
	assertError(t, err, connect.CodeInvalidArgument, "messages[1].order.skus: at least one item")

	// A cancelled import imports nothing either.
	cancelled, cancel := context.WithCancel(ctx)
	stream = client.ImportOrders(cancelled)
	if err := stream.Send(&ordersv1.ImportOrdersRequest{Order: order("f", 1, "s")}); err != nil {
		t.Fatal(err)
	}
	cancel()
	if _, err := stream.CloseAndReceive(); connect.CodeOf(err) != connect.CodeCanceled {
		t.Errorf("cancelled import: %v", err)
	}

	// Ids are sequential: the two refused imports stored nothing.
	placed, err := client.PlaceOrder(ctx, connect.NewRequest(&ordersv1.PlaceOrderRequest{Order: order("g", 1, "s")}))
	if err != nil {
		t.Fatal(err)
	}
	if id := placed.Msg.GetOrder().GetId(); id != "ord-0006" {
		t.Errorf("next id = %s, want ord-0006 (2 seeded, 3 imported)", id)
	}
}

func TestSyncOrders(t *testing.T) {
	t.Parallel()
	client := serve(t, orders.New(), "syncer")
	stream := client.SyncOrders(t.Context())
	defer stream.CloseResponse()
	exchange := func(o *ordersv1.Order) (*ordersv1.Order, error) {
		t.Helper()
		if err := stream.Send(&ordersv1.SyncOrdersRequest{Order: o}); err != nil {
			t.Fatal(err)
		}
		res, err := stream.Receive()
		return res.GetOrder(), err
	}
	placed, err := exchange(order("c", 10, "s"))
	if err != nil {
		t.Fatal(err)
	}
	if placed.GetId() != "ord-0003" || placed.GetPlacedBy() != "syncer" {
		t.Errorf("placed %v", placed)
	}
	update := order("c2", 20, "s", "t")
	update.Id, update.Notes = placed.GetId(), "gift wrap"
	stored, err := exchange(update)
	if err != nil {
		t.Fatal(err)
	}
	if stored.GetCustomerId() != "c2" || stored.GetTotalCents() != 20 || stored.GetNotes() != "gift wrap" ||
		stored.GetPlacedBy() != "syncer" || !proto.Equal(stored.GetCreateTime(), placed.GetCreateTime()) {
		t.Errorf("stored %v", stored)
	}
	unknown := order("c", 1, "s")
	unknown.Id = "ord-x"
	_, err = exchange(unknown)
	assertError(t, err, connect.CodeNotFound, `order "ord-x" not found`)

	// A stream the client closes ends cleanly.
	clean := client.SyncOrders(t.Context())
	if err := clean.CloseRequest(); err != nil {
		t.Fatal(err)
	}
	if _, err := clean.Receive(); !errors.Is(err, io.EOF) {
		t.Errorf("empty sync ended with %v", err)
	}
}

func assertError(t *testing.T, err error, code connect.Code, message string) *connect.Error {
	t.Helper()
	var ce *connect.Error
	if !errors.As(err, &ce) || ce.Code() != code || ce.Message() != message {
		t.Fatalf("error = %v, want %v %q", err, code, message)
	}
	if code == connect.CodeNotFound {
		detail, err := ce.Details()[0].Value()
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := detail.(*errdetails.ResourceInfo); !ok {
			t.Errorf("detail = %T, want ResourceInfo", detail)
		}
	}
	return ce
}

func TestMaxOrders(t *testing.T) {
	t.Parallel()
	client := serve(t, orders.New(orders.WithMaxOrders(3)), "placer")
	ctx := context.Background()
	var ids []string
	for range 5 {
		res, err := client.PlaceOrder(ctx, connect.NewRequest(&ordersv1.PlaceOrderRequest{Order: order("cust-1", 100, "sku-1")}))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, res.Msg.GetOrder().GetId())
	}
	get := func(id string) error {
		_, err := client.GetOrder(ctx, connect.NewRequest(&ordersv1.GetOrderRequest{Id: id}))
		return err
	}
	// The two oldest placed orders are gone, the three newest kept, and the
	// seed orders always stay.
	for i, id := range ids {
		err := get(id)
		if evicted := i < 2; evicted != (connect.CodeOf(err) == connect.CodeNotFound) {
			t.Errorf("order %d (%s): %v; evicted = %v", i, id, err, evicted)
		}
	}
	for _, seed := range []string{"ord-0001", "ord-0002"} {
		if err := get(seed); err != nil {
			t.Errorf("seed order %s: %v", seed, err)
		}
	}
}
