package licensing

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/portcullis/portcullis/gateway/forward"

	"connectrpc.com/connect"
	licensingv1 "github.com/portcullis/portcullis/gen/example/licensing/v1"
	"github.com/portcullis/portcullis/gen/example/licensing/v1/licensingv1connect"
	"github.com/portcullis/portcullis/services/internal/rpcerror"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// DefaultIdentityHeader is the request header that names the caller when
// no verified token is in the context: the gateway sets it from the token
// it verified, and strips it from what clients send.
const DefaultIdentityHeader = forward.ClientIDHeader

// Resource types named in NotFound errors' google.rpc.ResourceInfo details.
const (
	resourceJurisdiction = "example.licensing.v1.Jurisdiction"
	resourceRequirement  = "example.licensing.v1.Requirement"
	resourceOrder        = "example.licensing.v1.LicenceOrder"
)

// Service implements licensingv1connect.LicensingServiceHandler in memory.
// It is safe for concurrent use.
type Service struct {
	// Methods added to the proto answer CodeUnimplemented until they are
	// written here, so that regenerating the code never breaks the build.
	licensingv1connect.UnimplementedLicensingServiceHandler

	clock          func() time.Time
	identityHeader string

	mu      sync.Mutex
	orders  map[string]*entry // by order id
	seq     uint64            // the version of the latest change
	nextID  int
	changed chan struct{} // closed, and replaced, on every change
}

// entry is a stored order and the version of its latest change. Stored
// orders are never modified, only replaced, so they may be read without the
// lock once obtained.
type entry struct {
	order   *licensingv1.LicenceOrder
	version uint64
}

var _ licensingv1connect.LicensingServiceHandler = (*Service)(nil)

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

// WithIdentityHeader sets the request header trusted to name the caller
// when the context holds no verified token.Principal. The default is
// [DefaultIdentityHeader]; "" trusts no header, so that only verified
// tokens identify callers (for a backend reachable other than through the
// gateway).
func WithIdentityHeader(name string) Option {
	return optionFunc(func(s *Service) { s.identityHeader = name })
}

// New returns a Service holding the fixed jurisdictions and requirements
// and two seeded orders of the business "biz-acme".
func New(opts ...Option) *Service {
	s := &Service{
		clock:          time.Now,
		identityHeader: DefaultIdentityHeader,
		orders:         make(map[string]*entry),
		changed:        make(chan struct{}),
	}
	for _, opt := range opts {
		opt.apply(s)
	}
	for _, o := range seedOrders() {
		s.seq++
		s.orders[o.GetId()] = &entry{order: o, version: s.seq}
		s.nextID++
	}
	return s
}

// Handler returns the path to mount the service on and its handler, built
// with opts (interceptors, limits).
func (s *Service) Handler(opts ...connect.HandlerOption) (string, http.Handler) {
	return licensingv1connect.NewLicensingServiceHandler(s, opts...)
}

// ListJurisdictions lists the known jurisdictions, ordered by code.
func (s *Service) ListJurisdictions(context.Context, *connect.Request[licensingv1.ListJurisdictionsRequest]) (*connect.Response[licensingv1.ListJurisdictionsResponse], error) {
	res := &licensingv1.ListJurisdictionsResponse{}
	for _, j := range jurisdictions {
		res.Jurisdictions = append(res.Jurisdictions, proto.CloneOf(j))
	}
	return connect.NewResponse(res), nil
}

// ListRequirements lists the licences a kind of business needs in a
// jurisdiction: none for a kind the jurisdiction does not regulate.
func (s *Service) ListRequirements(_ context.Context, req *connect.Request[licensingv1.ListRequirementsRequest]) (*connect.Response[licensingv1.ListRequirementsResponse], error) {
	code, kind := req.Msg.GetJurisdiction(), strings.ToLower(req.Msg.GetBusinessKind())
	if code == "" {
		return nil, rpcerror.InvalidArgument(rpcerror.Violation("jurisdiction", "required, such as \"US-CA\""))
	}
	kinds, ok := requirements[code]
	if !ok {
		return nil, rpcerror.NotFound(resourceJurisdiction, "jurisdiction", code)
	}
	res := &licensingv1.ListRequirementsResponse{}
	for _, r := range kinds[kind] {
		res.Requirements = append(res.Requirements, proto.CloneOf(r))
	}
	return connect.NewResponse(res), nil
}

// GetLicenceOrder returns one licence order.
func (s *Service) GetLicenceOrder(_ context.Context, req *connect.Request[licensingv1.GetLicenceOrderRequest]) (*connect.Response[licensingv1.GetLicenceOrderResponse], error) {
	id := req.Msg.GetId()
	if id == "" {
		return nil, rpcerror.InvalidArgument(rpcerror.Violation("id", "required"))
	}
	s.mu.Lock()
	e, ok := s.orders[id]
	s.mu.Unlock()
	if !ok {
		return nil, rpcerror.NotFound(resourceOrder, "licence order", id)
	}
	return connect.NewResponse(&licensingv1.GetLicenceOrderResponse{Order: proto.CloneOf(e.order)}), nil
}

// CreateLicenceOrder orders a licence for a business. The order starts
// RECEIVED, created by the caller.
func (s *Service) CreateLicenceOrder(ctx context.Context, req *connect.Request[licensingv1.CreateLicenceOrderRequest]) (*connect.Response[licensingv1.CreateLicenceOrderResponse], error) {
	var violations []*errdetails.BadRequest_FieldViolation
	if req.Msg.GetRequirementId() == "" {
		violations = append(violations, rpcerror.Violation("requirement_id", "required"))
	}
	if req.Msg.GetBusinessId() == "" {
		violations = append(violations, rpcerror.Violation("business_id", "required"))
	}
	if len(violations) > 0 {
		return nil, rpcerror.InvalidArgument(violations...)
	}
	if _, ok := requirementByID[req.Msg.GetRequirementId()]; !ok {
		return nil, rpcerror.NotFound(resourceRequirement, "requirement", req.Msg.GetRequirementId())
	}
	caller, err := rpcerror.Caller(ctx, req.Header(), s.identityHeader)
	if err != nil {
		return nil, err
	}
	order := &licensingv1.LicenceOrder{
		RequirementId: req.Msg.GetRequirementId(),
		BusinessId:    req.Msg.GetBusinessId(),
		Status:        licensingv1.LicenceOrderStatus_LICENCE_ORDER_STATUS_RECEIVED,
		CreateTime:    timestamppb.New(s.clock()),
		CreatedBy:     caller,
	}
	s.mu.Lock()
	s.nextID++
	order.Id = fmt.Sprintf("lo-%04d", s.nextID)
	s.storeLocked(order)
	s.mu.Unlock()
	return connect.NewResponse(&licensingv1.CreateLicenceOrderResponse{Order: proto.CloneOf(order)}), nil
}

// Advance moves an order one step on (RECEIVED → FILED → GRANTED), as the
// issuing authority would, and tells the order's watchers. A granted order
// stays granted. It returns the order as it is now.
func (s *Service) Advance(id string) (*licensingv1.LicenceOrder, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.orders[id]
	if !ok {
		return nil, rpcerror.NotFound(resourceOrder, "licence order", id)
	}
	if next, ok := nextStatus[e.order.GetStatus()]; ok {
		order := proto.CloneOf(e.order)
		order.Status = next
		s.storeLocked(order)
		return proto.CloneOf(order), nil
	}
	return proto.CloneOf(e.order), nil
}

var nextStatus = map[licensingv1.LicenceOrderStatus]licensingv1.LicenceOrderStatus{
	licensingv1.LicenceOrderStatus_LICENCE_ORDER_STATUS_UNSPECIFIED: licensingv1.LicenceOrderStatus_LICENCE_ORDER_STATUS_RECEIVED,
	licensingv1.LicenceOrderStatus_LICENCE_ORDER_STATUS_RECEIVED:    licensingv1.LicenceOrderStatus_LICENCE_ORDER_STATUS_FILED,
	licensingv1.LicenceOrderStatus_LICENCE_ORDER_STATUS_FILED:       licensingv1.LicenceOrderStatus_LICENCE_ORDER_STATUS_GRANTED,
}

// Run advances every order that is not granted yet by one step on each
// tick, until ctx is done; it returns ctx's error. Pass a ticker's channel:
//
//	go svc.Run(ctx, time.NewTicker(10*time.Second).C)
func (s *Service) Run(ctx context.Context, ticks <-chan time.Time) error {
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-ticks:
			s.advanceAll()
		}
	}
}

func (s *Service) advanceAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	ids := make([]string, 0, len(s.orders))
	for id := range s.orders {
		ids = append(ids, id)
	}
	slices.Sort(ids) // deterministic versions
	for _, id := range ids {
		e := s.orders[id]
		if next, ok := nextStatus[e.order.GetStatus()]; ok {
			order := proto.CloneOf(e.order)
			order.Status = next
			s.storeLocked(order)
		}
	}
}

// storeLocked stores order as a new version and wakes the watchers.
func (s *Service) storeLocked(order *licensingv1.LicenceOrder) {
	s.seq++
	s.orders[order.GetId()] = &entry{order: order, version: s.seq}
	close(s.changed)
	s.changed = make(chan struct{})
}
