package orders

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/portcullis/portcullis/gateway/forward"

	"connectrpc.com/connect"
	ordersv1 "github.com/portcullis/portcullis/gen/example/orders/v1"
	"github.com/portcullis/portcullis/gen/example/orders/v1/ordersv1connect"
	"github.com/portcullis/portcullis/services/internal/rpcerror"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// DefaultIdentityHeader is the request header that names the caller when
// no verified token is in the context: the gateway sets it from the token
// it verified, and strips it from what clients send.
const DefaultIdentityHeader = forward.ClientIDHeader

// resourceOrder is the resource type named in NotFound errors'
// google.rpc.ResourceInfo details.
const resourceOrder = "example.orders.v1.Order"

// Service implements ordersv1connect.OrdersServiceHandler in memory. It is
// safe for concurrent use.
type Service struct {
	// Methods added to the proto answer CodeUnimplemented until they are
	// written here, so that regenerating the code never breaks the build.
	ordersv1connect.UnimplementedOrdersServiceHandler

	clock          func() time.Time
	identityHeader string

	maxOrders int

	mu     sync.Mutex
	orders map[string]*ordersv1.Order // never modified once stored, only replaced
	nextID int
	seeded int // ids up to this one are the seed orders, never evicted
}

// DefaultMaxOrders is how many placed orders a Service keeps by default.
const DefaultMaxOrders = 10_000

var _ ordersv1connect.OrdersServiceHandler = (*Service)(nil)

// An Option configures a Service.
type Option interface {
	apply(*Service)
}

type optionFunc func(*Service)

func (f optionFunc) apply(s *Service) { f(s) }

// WithClock sets the clock that timestamps new orders. The default is
// time.Now.
func WithClock(now func() time.Time) Option {
	return optionFunc(func(s *Service) { s.clock = now })
}

// WithMaxOrders bounds the orders a Service keeps in memory: once n placed
// orders are stored, each new one evicts the oldest placed one. The seed
// orders are always kept. The default is [DefaultMaxOrders].
func WithMaxOrders(n int) Option {
	return optionFunc(func(s *Service) { s.maxOrders = max(n, 1) })
}

// WithIdentityHeader sets the request header trusted to name the caller
// when the context holds no verified token.Principal. The default is
// [DefaultIdentityHeader]; "" trusts no header, so that only verified
// tokens identify callers (for a backend reachable other than through the
// gateway).
func WithIdentityHeader(name string) Option {
	return optionFunc(func(s *Service) { s.identityHeader = name })
}

// New returns a Service holding two seeded orders, ord-0001 and ord-0002.
func New(opts ...Option) *Service {
	s := &Service{
		clock:          time.Now,
		identityHeader: DefaultIdentityHeader,
		maxOrders:      DefaultMaxOrders,
		orders:         make(map[string]*ordersv1.Order),
	}
	for _, opt := range opts {
		opt.apply(s)
	}
	for _, o := range seedOrders() {
		s.orders[o.GetId()] = o
		s.nextID++
	}
	s.seeded = s.nextID
	return s
}

// Handler returns the path to mount the service on and its handler, built
// with opts (interceptors, limits).
func (s *Service) Handler(opts ...connect.HandlerOption) (string, http.Handler) {
	return ordersv1connect.NewOrdersServiceHandler(s, opts...)
}

var seedTime = time.Date(2026, time.January, 15, 9, 0, 0, 0, time.UTC)

func seedOrders() []*ordersv1.Order {
	return []*ordersv1.Order{
		{
			Id:         "ord-0001",
			CustomerId: "cust-ada",
			Skus:       []string{"sku-espresso-machine"},
			TotalCents: 129900,
			CreateTime: timestamppb.New(seedTime),
			PlacedBy:   "seed",
		},
		{
			Id:         "ord-0002",
			CustomerId: "cust-grace",
			Skus:       []string{"sku-grinder", "sku-beans-1kg"},
			TotalCents: 42500,
			CreateTime: timestamppb.New(seedTime.Add(time.Hour)),
			PlacedBy:   "seed",
			Notes:      "Leave at the back door.",
		},
	}
}

// GetOrder returns one order.
func (s *Service) GetOrder(_ context.Context, req *connect.Request[ordersv1.GetOrderRequest]) (*connect.Response[ordersv1.GetOrderResponse], error) {
	id := req.Msg.GetId()
	if id == "" {
		return nil, rpcerror.InvalidArgument(rpcerror.Violation("id", "required"))
	}
	s.mu.Lock()
	order, ok := s.orders[id]
	s.mu.Unlock()
	if !ok {
		return nil, rpcerror.NotFound(resourceOrder, "order", id)
	}
	return connect.NewResponse(&ordersv1.GetOrderResponse{Order: proto.CloneOf(order)}), nil
}

// PlaceOrder places an order: the service sets its id, create_time and
// placed_by (the caller).
func (s *Service) PlaceOrder(ctx context.Context, req *connect.Request[ordersv1.PlaceOrderRequest]) (*connect.Response[ordersv1.PlaceOrderResponse], error) {
	if violations := validate(req.Msg.GetOrder(), "order"); len(violations) > 0 {
		return nil, rpcerror.InvalidArgument(violations...)
	}
	caller, err := rpcerror.Caller(ctx, req.Header(), s.identityHeader)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	order := s.placeLocked(req.Msg.GetOrder(), caller)
	s.mu.Unlock()
	return connect.NewResponse(&ordersv1.PlaceOrderResponse{Order: proto.CloneOf(order)}), nil
}

// ImportOrders places every order of the stream, all or none: an invalid
// order, or a stream that fails or is cancelled, imports nothing. It
// answers with how many orders were imported and their total.
func (s *Service) ImportOrders(ctx context.Context, stream *connect.ClientStream[ordersv1.ImportOrdersRequest]) (*connect.Response[ordersv1.ImportOrdersResponse], error) {
	caller, err := rpcerror.Caller(ctx, stream.RequestHeader(), s.identityHeader)
	if err != nil {
		return nil, err
	}
	var batch []*ordersv1.Order
	for i := 0; stream.Receive(); i++ {
		order := stream.Msg().GetOrder()
		if violations := validate(order, fmt.Sprintf("messages[%d].order", i)); len(violations) > 0 {
			return nil, rpcerror.InvalidArgument(violations...)
		}
		batch = append(batch, order)
	}
	if err := stream.Err(); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	res := &ordersv1.ImportOrdersResponse{}
	s.mu.Lock()
	for _, order := range batch {
		s.placeLocked(order, caller)
		res.Imported++
		res.TotalCents += order.GetTotalCents()
	}
	s.mu.Unlock()
	return connect.NewResponse(res), nil
}

// SyncOrders answers each order sent with the order as stored: an order
// without id is placed, an order with the id of a stored one replaces its
// customer, items, total and notes. An invalid or unknown order ends the
// stream with an error.
func (s *Service) SyncOrders(ctx context.Context, stream *connect.BidiStream[ordersv1.SyncOrdersRequest, ordersv1.SyncOrdersResponse]) error {
	caller, err := rpcerror.Caller(ctx, stream.RequestHeader(), s.identityHeader)
	if err != nil {
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
		stored, err := s.sync(req.GetOrder(), caller)
		if err != nil {
			return err
		}
		if err := stream.Send(&ordersv1.SyncOrdersResponse{Order: stored}); err != nil {
			return err
		}
	}
}

func (s *Service) sync(order *ordersv1.Order, caller string) (*ordersv1.Order, error) {
	if violations := validate(order, "order"); len(violations) > 0 {
		return nil, rpcerror.InvalidArgument(violations...)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if order.GetId() == "" {
		return proto.CloneOf(s.placeLocked(order, caller)), nil
	}
	old, ok := s.orders[order.GetId()]
	if !ok {
		return nil, rpcerror.NotFound(resourceOrder, "order", order.GetId())
	}
	updated := proto.CloneOf(old)
	updated.CustomerId = order.GetCustomerId()
	updated.Skus = append([]string(nil), order.GetSkus()...)
	updated.TotalCents = order.GetTotalCents()
	updated.Notes = order.GetNotes()
	s.orders[updated.GetId()] = updated
	return proto.CloneOf(updated), nil
}

// placeLocked stores a copy of order under a new id and returns it.
func (s *Service) placeLocked(order *ordersv1.Order, caller string) *ordersv1.Order {
	s.nextID++
	placed := proto.CloneOf(order)
	placed.Id = fmt.Sprintf("ord-%04d", s.nextID)
	placed.CreateTime = timestamppb.New(s.clock())
	placed.PlacedBy = caller
	s.orders[placed.GetId()] = placed
	if oldest := s.nextID - s.maxOrders; oldest > s.seeded {
		delete(s.orders, fmt.Sprintf("ord-%04d", oldest))
	}
	return placed
}

// validate returns what is wrong with an order given by a client; field
// names start with prefix.
func validate(order *ordersv1.Order, prefix string) []*errdetails.BadRequest_FieldViolation {
	if order == nil {
		return []*errdetails.BadRequest_FieldViolation{rpcerror.Violation(prefix, "required")}
	}
	var violations []*errdetails.BadRequest_FieldViolation
	if order.GetCustomerId() == "" {
		violations = append(violations, rpcerror.Violation(prefix+".customer_id", "required"))
	}
	if len(order.GetSkus()) == 0 {
		violations = append(violations, rpcerror.Violation(prefix+".skus", "at least one item"))
	}
	if order.GetTotalCents() < 0 {
		violations = append(violations, rpcerror.Violation(prefix+".total_cents", "must not be negative"))
	}
	return violations
}
