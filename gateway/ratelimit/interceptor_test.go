package ratelimit_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portcullis/portcullis/internal/h2ctest"

	"connectrpc.com/connect"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/portcullis/portcullis/gateway/catalog"
	"github.com/portcullis/portcullis/gateway/ratelimit"
	licensingv1 "github.com/portcullis/portcullis/gen/example/licensing/v1"
	"github.com/portcullis/portcullis/gen/example/licensing/v1/licensingv1connect"
	ordersv1 "github.com/portcullis/portcullis/gen/example/orders/v1"
	"github.com/portcullis/portcullis/gen/example/orders/v1/ordersv1connect"
)

const (
	getOrder          = "/example.orders.v1.OrdersService/GetOrder"
	importOrders      = "/example.orders.v1.OrdersService/ImportOrders"
	syncOrders        = "/example.orders.v1.OrdersService/SyncOrders"
	listJurisdictions = "/example.licensing.v1.LicensingService/ListJurisdictions"
)

// orders is a tiny OrdersService.
type orders struct {
	ordersv1connect.UnimplementedOrdersServiceHandler
}

func (orders) GetOrder(_ context.Context, req *connect.Request[ordersv1.GetOrderRequest]) (*connect.Response[ordersv1.GetOrderResponse], error) {
	return connect.NewResponse(&ordersv1.GetOrderResponse{Order: &ordersv1.Order{Id: req.Msg.GetId()}}), nil
}

func (orders) ImportOrders(_ context.Context, stream *connect.ClientStream[ordersv1.ImportOrdersRequest]) (*connect.Response[ordersv1.ImportOrdersResponse], error) {
	var imported int64
	for stream.Receive() {
		imported++
	}
	if err := stream.Err(); err != nil {
		return nil, err
	}
	return connect.NewResponse(&ordersv1.ImportOrdersResponse{Imported: imported}), nil
}

func (orders) SyncOrders(_ context.Context, stream *connect.BidiStream[ordersv1.SyncOrdersRequest, ordersv1.SyncOrdersResponse]) error {
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

// licensing is a tiny LicensingService.
type licensing struct {
	licensingv1connect.UnimplementedLicensingServiceHandler
}

func (licensing) ListJurisdictions(context.Context, *connect.Request[licensingv1.ListJurisdictionsRequest]) (*connect.Response[licensingv1.ListJurisdictionsResponse], error) {
	return connect.NewResponse(&licensingv1.ListJurisdictionsResponse{}), nil
}

func (licensing) ListRequirements(context.Context, *connect.Request[licensingv1.ListRequirementsRequest]) (*connect.Response[licensingv1.ListRequirementsResponse], error) {
	return connect.NewResponse(&licensingv1.ListRequirementsResponse{}), nil
}

// fixture is the example services behind the interceptor, on a real
// HTTP/2 server.
type fixture struct {
	url   string
	http  *http.Client
	clock *testClock

	mu        sync.Mutex
	serverErr error // the last error a handler's interceptors returned
}

func (f *fixture) lastServerError() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.serverErr
}

// recordErrors is the outermost interceptor: it keeps the last error.
type recordErrors struct{ f *fixture }

func (r recordErrors) record(err error) {
	if err != nil {
		r.f.mu.Lock()
		r.f.serverErr = err
		r.f.mu.Unlock()
	}
}

func (r recordErrors) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		resp, err := next(ctx, req)
		r.record(err)
		return resp, err
	}
}

func (recordErrors) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return next
}

func (r recordErrors) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return func(ctx context.Context, conn connect.StreamingHandlerConn) error {
		err := next(ctx, conn)
		r.record(err)
		return err
	}
}

// newFixture serves the example services with a principal taken from the
// x-test-client header, then the rate limiter, as interceptors. With a nil
// store, it uses a Memory store on the fixture's clock.
func newFixture(t *testing.T, cat *catalog.Catalog, store ratelimit.Store, opts ...ratelimit.Option) *fixture {
	t.Helper()
	return buildFixture(t, false, cat, store, opts)
}

// newGatedFixture is newFixture with the principal and the call's decision
// taken in request gates, and the rate limiter also an interceptor, as the
// gateway has them.
func newGatedFixture(t *testing.T, cat *catalog.Catalog, store ratelimit.Store, opts ...ratelimit.Option) *fixture {
	t.Helper()
	return buildFixture(t, true, cat, store, opts)
}

func buildFixture(t *testing.T, gated bool, cat *catalog.Catalog, store ratelimit.Store, opts []ratelimit.Option) *fixture {
	t.Helper()
	clock := newClock()
	if store == nil {
		store = newMemory(t, ratelimit.WithClock(clock.Now))
	}
	limiter, err := ratelimit.NewInterceptor(cat, store, append([]ratelimit.Option{ratelimit.WithClock(clock.Now)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{http: h2ctest.Client(t), clock: clock}
	// Authentication first, then rate limiting.
	handlerOptions := []connect.HandlerOption{connect.WithInterceptors(recordErrors{f}, principalFromHeader{}, limiter)}
	if gated {
		handlerOptions = []connect.HandlerOption{
			connect.WithRequestGate(principalFromHeader{}.Gate),
			connect.WithRequestGate(limiter.Gate()),
			connect.WithInterceptors(recordErrors{f}, limiter),
		}
	}
	mux := http.NewServeMux()
	mux.Handle(ordersv1connect.NewOrdersServiceHandler(orders{}, handlerOptions...))
	mux.Handle(licensingv1connect.NewLicensingServiceHandler(licensing{}, handlerOptions...))
	f.url = h2ctest.Start(t, mux).URL
	return f
}

func (f *fixture) orders(opts ...connect.ClientOption) ordersv1connect.OrdersServiceClient {
	return ordersv1connect.NewOrdersServiceClient(f.http, f.url, opts...)
}

func (f *fixture) licensing(opts ...connect.ClientOption) licensingv1connect.LicensingServiceClient {
	return licensingv1connect.NewLicensingServiceClient(f.http, f.url, opts...)
}

var protocols = []struct {
	name string
	opts []connect.ClientOption
}{
	{name: "connect"},
	{name: "grpc", opts: []connect.ClientOption{connect.WithGRPC()}},
	{name: "grpcweb", opts: []connect.ClientOption{connect.WithGRPCWeb()}},
}

func getOrderAs(ctx context.Context, client ordersv1connect.OrdersServiceClient, id, tier string) (*connect.Response[ordersv1.GetOrderResponse], error) {
	req := connect.NewRequest(&ordersv1.GetOrderRequest{Id: "o-1"})
	req.Header().Set("X-Test-Client", id)
	if tier != "" {
		req.Header().Set("X-Test-Tier", tier)
	}
	return client.GetOrder(ctx, req)
}

// wantFields checks the rate limit fields of a response or error.
func wantFields(t *testing.T, h http.Header, policy, rateLimit, retryAfter string) {
	t.Helper()
	if got := h.Values("RateLimit-Policy"); policy != "" && (len(got) != 1 || got[0] != policy) {
		t.Errorf("RateLimit-Policy = %q, want [%q]", got, policy)
	}
	if got := h.Values("RateLimit"); rateLimit != "" && (len(got) != 1 || got[0] != rateLimit) {
		t.Errorf("RateLimit = %q, want [%q]", got, rateLimit)
	}
	if got := h.Values("Retry-After"); retryAfter == "" && len(got) != 0 || retryAfter != "" && (len(got) != 1 || got[0] != retryAfter) {
		t.Errorf("Retry-After = %q, want %q", got, retryAfter)
	}
}

// wantValues checks all the values of one field.
func wantValues(t *testing.T, h http.Header, key string, want ...string) {
	t.Helper()
	if got := h.Values(key); !slices.Equal(got, want) {
		t.Errorf("%s = %q, want %q", key, got, want)
	}
}

func wantCode(t *testing.T, err error, code connect.Code, message string) *connect.Error {
	t.Helper()
	var cerr *connect.Error
	if !errors.As(err, &cerr) {
		t.Fatalf("error %v, want a %v error", err, code)
	}
	if cerr.Code() != code || cerr.Message() != message {
		t.Fatalf("error %v %q, want %v %q", cerr.Code(), cerr.Message(), code, message)
	}
	return cerr
}

// fixtures are the two places the call's decision is taken in: the
// interceptor alone, and the gate, the interceptor writing its fields.
var fixtures = []struct {
	name  string
	new   func(t *testing.T, cat *catalog.Catalog, store ratelimit.Store, opts ...ratelimit.Option) *fixture
	gated bool
}{
	{name: "interceptor", new: newFixture},
	{name: "gate", new: newGatedFixture, gated: true},
}

// TestInterceptorUnary checks the fields and the refusal, in every
// protocol, of a decision in the interceptor and in the gate: the same,
// except that a refusal of the gate is in the error's metadata, and never
// reaches the interceptors.
func TestInterceptorUnary(t *testing.T) {
	t.Parallel()
	for _, fx := range fixtures {
		for _, protocol := range protocols {
			t.Run(fx.name+"/"+protocol.name, func(t *testing.T) {
				t.Parallel()
				testUnary(t, fx.new(t, compiledCatalog(t), nil), protocol.name, protocol.opts, fx.gated)
			})
		}
	}
}

func testUnary(t *testing.T, f *fixture, protocol string, opts []connect.ClientOption, gated bool) {
	t.Helper()
	client := f.orders(opts...)
	ctx := context.Background()
	// GetOrder: 100 a minute, burst 20, one back every 600ms.
	const policy = `"default";q=100;w=60`
	for i := range 20 {
		resp, err := getOrderAs(ctx, client, "acme", "")
		if err != nil {
			t.Fatalf("call %d: %v", i+1, err)
		}
		switch i {
		case 0:
			wantFields(t, resp.Header(), policy, `"default";r=19;t=1`, "")
		case 18:
			wantFields(t, resp.Header(), policy, `"default";r=1;t=12`, "")
		case 19:
			wantFields(t, resp.Header(), policy, `"default";r=0;t=1`, "")
		}
	}
	_, err := getOrderAs(ctx, client, "acme", "")
	cerr := wantCode(t, err, connect.CodeResourceExhausted, "rate limit exceeded for "+getOrder+": retry in 600ms")
	if err := f.lastServerError(); gated && err != nil {
		t.Errorf("the interceptors saw %v: the gate refused, they never ran", err)
	} else if !gated && !errors.Is(err, ratelimit.ErrLimited) {
		t.Errorf("on the server, errors.Is(%v, ErrLimited) = false", err)
	}
	wantFields(t, cerr.Meta(), policy, `"default";r=0;t=1`, "1")
	wantDetails(t, connectDetails(t, cerr), limitedDetails(getOrder, "default", 600*time.Millisecond, "client:acme", "calls 100 per 1m0s, burst 20, per client"))
	wantPushback(t, protocol, cerr.Meta(), "600")

	// Another client has its own budget.
	resp, err := getOrderAs(ctx, client, "globex", "")
	if err != nil {
		t.Fatal(err)
	}
	wantFields(t, resp.Header(), policy, `"default";r=19;t=1`, "")

	// 600ms later, one more.
	f.clock.Advance(599 * time.Millisecond)
	_, err = getOrderAs(ctx, client, "acme", "")
	wantCode(t, err, connect.CodeResourceExhausted, "rate limit exceeded for "+getOrder+": retry in 1ms")
	f.clock.Advance(time.Millisecond)
	if _, err := getOrderAs(ctx, client, "acme", ""); err != nil {
		t.Fatalf("after 600ms: %v", err)
	}
}

func TestInterceptorTiersAndDefault(t *testing.T) {
	t.Parallel()
	policy := ratelimit.Policy{
		Default: &catalog.RateLimit{Requests: 5, Period: time.Second, Burst: 5},
		Tiers: map[string]ratelimit.Tier{
			"pro":  {Multiplier: 2},
			"slow": {Override: &catalog.RateLimit{Requests: 4, Period: 5 * time.Second, Burst: 1}},
			"vip":  {Unlimited: true},
		},
	}
	for _, protocol := range protocols[:2] {
		t.Run(protocol.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, compiledCatalog(t), nil, ratelimit.WithPolicy(policy))
			client := f.orders(protocol.opts...)
			ctx := context.Background()

			// Override: one every 1.25s.
			resp, err := getOrderAs(ctx, client, "slowpoke", "slow")
			if err != nil {
				t.Fatal(err)
			}
			wantFields(t, resp.Header(), `"default";q=4;w=5`, `"default";r=0;t=2`, "")
			_, err = getOrderAs(ctx, client, "slowpoke", "slow")
			cerr := wantCode(t, err, connect.CodeResourceExhausted, "rate limit exceeded for "+getOrder+": retry in 1.25s")
			wantFields(t, cerr.Meta(), `"default";q=4;w=5`, `"default";r=0;t=2`, "2")

			// Multiplier: 200 a minute, burst 40.
			resp, err = getOrderAs(ctx, client, "bigco", "pro")
			if err != nil {
				t.Fatal(err)
			}
			wantFields(t, resp.Header(), `"default";q=200;w=60`, `"default";r=39;t=1`, "")

			// Unlimited: no limit, no fields.
			for range 50 {
				resp, err := getOrderAs(ctx, client, "vip", "vip")
				if err != nil {
					t.Fatal(err)
				}
				if got := resp.Header().Values("RateLimit"); len(got) != 0 {
					t.Fatalf("unlimited tier got RateLimit %q", got)
				}
			}

			// A tier not configured gets the declared limit.
			resp, err = getOrderAs(ctx, client, "other", "gold")
			if err != nil {
				t.Fatal(err)
			}
			wantFields(t, resp.Header(), `"default";q=100;w=60`, `"default";r=19;t=1`, "")

			// ListRequirements declares no limit: the default applies.
			lic := f.licensing(protocol.opts...)
			for i := range 6 {
				req := connect.NewRequest(&licensingv1.ListRequirementsRequest{})
				req.Header().Set("X-Test-Client", "acme")
				resp, err := lic.ListRequirements(ctx, req)
				if i < 5 {
					if err != nil {
						t.Fatalf("call %d: %v", i+1, err)
					}
					wantFields(t, resp.Header(), `"default";q=5;w=1`, "", "")
					continue
				}
				cerr := wantCode(t, err, connect.CodeResourceExhausted, "rate limit exceeded for /example.licensing.v1.LicensingService/ListRequirements: retry in 200ms")
				wantFields(t, cerr.Meta(), `"default";q=5;w=1`, `"default";r=0;t=1`, "1")
			}
		})
	}
}

func TestInterceptorNoDefaultLeavesUndeclaredMethodsAlone(t *testing.T) {
	t.Parallel()
	f := newFixture(t, compiledCatalog(t), nil)
	lic := f.licensing()
	for range 100 {
		req := connect.NewRequest(&licensingv1.ListRequirementsRequest{})
		req.Header().Set("X-Test-Client", "acme")
		resp, err := lic.ListRequirements(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		if got := resp.Header().Values("RateLimit-Policy"); len(got) != 0 {
			t.Fatalf("RateLimit-Policy %q on an unlimited method", got)
		}
	}
}

// keyRecorder is a Store that records the keys it is asked about and
// delegates to a Memory store.
type keyRecorder struct {
	allow func(ctx context.Context, key string, limit ratelimit.Limit, n int) (ratelimit.Result, error)
}

func (s keyRecorder) Allow(ctx context.Context, key string, limit ratelimit.Limit, n int) (ratelimit.Result, error) {
	return s.allow(ctx, key, limit, n)
}

func TestInterceptorKeys(t *testing.T) {
	t.Parallel()
	loopback := netip.MustParsePrefix("127.0.0.0/8")
	private := netip.MustParsePrefix("10.0.0.0/8")
	tests := []struct {
		name    string
		trusted []netip.Prefix
		xff     []string
		client  string
		want    string
	}{
		{name: "direct peer", want: "ip:127.0.0.1"},
		{name: "forwarded for, from an untrusted peer: ignored", xff: []string{"203.0.113.7"}, want: "ip:127.0.0.1"},
		{name: "forwarded for, from a trusted peer", trusted: []netip.Prefix{loopback}, xff: []string{"203.0.113.7"}, want: "ip:203.0.113.7"},
		{name: "trusted peer without forwarded for", trusted: []netip.Prefix{loopback}, want: "ip:127.0.0.1"},
		{
			name: "rightmost untrusted hop", trusted: []netip.Prefix{loopback, private},
			xff: []string{"198.51.100.1, 203.0.113.7, 10.0.0.2"}, want: "ip:203.0.113.7",
		},
		{
			name: "a spoofed leftmost entry is not believed", trusted: []netip.Prefix{loopback},
			xff: []string{"1.1.1.1, 203.0.113.7"}, want: "ip:203.0.113.7",
		},
		{
			name: "several header lines", trusted: []netip.Prefix{loopback, private},
			xff: []string{"198.51.100.1", "203.0.113.9, 10.0.0.2"}, want: "ip:203.0.113.9",
		},
		{
			name: "garbage stops the walk at the last trusted hop", trusted: []netip.Prefix{loopback, private},
			xff: []string{"203.0.113.7, not-an-address, 10.0.0.2"}, want: "ip:10.0.0.2",
		},
		{
			name: "every hop trusted", trusted: []netip.Prefix{loopback, private},
			xff: []string{"10.0.0.1, 10.0.0.2"}, want: "ip:10.0.0.1",
		},
		{name: "with a port", trusted: []netip.Prefix{loopback}, xff: []string{"203.0.113.7:4711"}, want: "ip:203.0.113.7"},
		{name: "IPv6 by /64", trusted: []netip.Prefix{loopback}, xff: []string{"2001:db8:1:2:3:4:5:6"}, want: "ip:2001:db8:1:2::/64"},
		{name: "IPv6 with a port", trusted: []netip.Prefix{loopback}, xff: []string{"[2001:db8::1]:443"}, want: "ip:2001:db8::/64"},
		{name: "IPv4-mapped IPv6", trusted: []netip.Prefix{loopback}, xff: []string{"::ffff:203.0.113.7"}, want: "ip:203.0.113.7"},
		{name: "empty entry", trusted: []netip.Prefix{loopback}, xff: []string{"203.0.113.7,"}, want: "ip:127.0.0.1"},
		{name: "authenticated: by client id", trusted: []netip.Prefix{loopback}, xff: []string{"203.0.113.7"}, client: "acme", want: "id:acme"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			memory := newMemory(t)
			var mu sync.Mutex
			var keys []string
			store := keyRecorder{allow: func(ctx context.Context, key string, limit ratelimit.Limit, n int) (ratelimit.Result, error) {
				mu.Lock()
				keys = append(keys, key)
				mu.Unlock()
				return memory.Allow(ctx, key, limit, n)
			}}
			f := newFixture(t, compiledCatalog(t), store, ratelimit.WithTrustedProxies(tt.trusted...))
			req := connect.NewRequest(&licensingv1.ListJurisdictionsRequest{})
			for _, line := range tt.xff {
				req.Header().Add("X-Forwarded-For", line)
			}
			if tt.client != "" {
				req.Header().Set("X-Test-Client", tt.client)
			}
			resp, err := f.licensing().ListJurisdictions(context.Background(), req)
			if err != nil {
				t.Fatal(err)
			}
			wantFields(t, resp.Header(), `"default";q=60;w=60`, `"default";r=9;t=1`, "")
			mu.Lock()
			defer mu.Unlock()
			if want := listJurisdictions + "|" + tt.want; len(keys) != 1 || keys[0] != want {
				t.Fatalf("keys %q, want [%q]", keys, want)
			}
		})
	}
}

func TestInterceptorPublicPerAddress(t *testing.T) {
	t.Parallel()
	f := newFixture(t, compiledCatalog(t), nil, ratelimit.WithTrustedProxies(netip.MustParsePrefix("127.0.0.0/8")))
	call := func(xff string) error {
		req := connect.NewRequest(&licensingv1.ListJurisdictionsRequest{})
		req.Header().Set("X-Forwarded-For", xff)
		_, err := f.licensing(connect.WithGRPC()).ListJurisdictions(context.Background(), req)
		return err
	}
	// ListJurisdictions: 60 a minute, burst 10, per address.
	for i := range 10 {
		if err := call("203.0.113.7"); err != nil {
			t.Fatalf("call %d: %v", i+1, err)
		}
	}
	cerr := wantCode(t, call("203.0.113.7"), connect.CodeResourceExhausted, "rate limit exceeded for "+listJurisdictions+": retry in 1s")
	wantDetails(t, connectDetails(t, cerr), limitedDetails(listJurisdictions, "default", time.Second, "address", "calls 60 per 1m0s, burst 10, per address"))
	wantPushback(t, "grpc", cerr.Meta(), "1000")
	if err := call("203.0.113.8"); err != nil {
		t.Fatalf("another address: %v", err)
	}
}

func TestInterceptorClientStream(t *testing.T) {
	t.Parallel()
	// ImportOrders: each stream may send 1000 messages a second, burst 100;
	// opening one counts against the service's 100 a minute, burst 20.
	importN := func(t *testing.T, client ordersv1connect.OrdersServiceClient, n int) (*connect.Response[ordersv1.ImportOrdersResponse], error) {
		t.Helper()
		stream := client.ImportOrders(context.Background())
		stream.RequestHeader().Set("X-Test-Client", "acme")
		for range n {
			if err := stream.Send(&ordersv1.ImportOrdersRequest{Order: &ordersv1.Order{Id: "o"}}); err != nil {
				break // the server ended the stream: CloseAndReceive says why
			}
		}
		return stream.CloseAndReceive()
	}
	for _, protocol := range protocols[:2] {
		t.Run(protocol.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, compiledCatalog(t), nil)
			client := f.orders(protocol.opts...)
			resp, err := importN(t, client, 100)
			if err != nil {
				t.Fatalf("100 messages: %v", err)
			}
			if got := resp.Msg.GetImported(); got != 100 {
				t.Fatalf("imported %d, want 100", got)
			}
			wantFields(t, resp.Header(), `"default";q=100;w=60, "messages";q=1000;w=1`, `"default";r=19;t=1`, "")

			// Each stream has its own budget: the second stream's 101st
			// message is one too many.
			_, err = importN(t, client, 101)
			cerr := wantCode(t, err, connect.CodeResourceExhausted, "stream message rate limit exceeded for "+importOrders+": retry in 1ms")
			if err := f.lastServerError(); !errors.Is(err, ratelimit.ErrLimited) {
				t.Errorf("on the server, errors.Is(%v, ErrLimited) = false", err)
			}
			// The error's metadata holds the headers sent when the stream
			// opened, then the trailers sent when it ended.
			wantValues(t, cerr.Meta(), "RateLimit", `"default";r=18;t=2`, `"messages";r=0;t=1`)
			wantValues(t, cerr.Meta(), "RateLimit-Policy", `"default";q=100;w=60, "messages";q=1000;w=1`, `"messages";q=1000;w=1`)
			wantValues(t, cerr.Meta(), "Retry-After", "1")
			wantDetails(t, connectDetails(t, cerr), limitedDetails(importOrders, "messages", time.Millisecond, "client:acme", "messages 1000 per 1s, burst 100, per stream"))
			wantPushback(t, protocol.name, cerr.Meta(), "1")
		})
	}
}

// TestInterceptorBidiStream checks that opening a stream counts as one
// call, decided in the interceptor or in the gate (and then not counted
// again), and that each stream's messages are limited.
func TestInterceptorBidiStream(t *testing.T) {
	t.Parallel()
	// In the test catalog, SyncOrders may be opened twice a minute, burst 2,
	// and each stream may send 10 messages a second, burst 3.
	for _, fx := range fixtures {
		for _, protocol := range protocols[:2] {
			t.Run(fx.name+"/"+protocol.name, func(t *testing.T) {
				t.Parallel()
				f := fx.new(t, testCatalog(t), nil)
				client := f.orders(protocol.opts...)
				open := func() *connect.BidiStreamForClient[ordersv1.SyncOrdersRequest, ordersv1.SyncOrdersResponse] {
					stream := client.SyncOrders(context.Background())
					stream.RequestHeader().Set("X-Test-Client", "acme")
					t.Cleanup(func() { _ = stream.CloseResponse() })
					return stream
				}
				send := func(stream *connect.BidiStreamForClient[ordersv1.SyncOrdersRequest, ordersv1.SyncOrdersResponse], id string) (*ordersv1.SyncOrdersResponse, error) {
					if err := stream.Send(&ordersv1.SyncOrdersRequest{Order: &ordersv1.Order{Id: id}}); err != nil && !errors.Is(err, io.EOF) {
						return nil, err
					}
					return stream.Receive()
				}

				stream := open()
				for _, id := range []string{"a", "b", "c"} {
					resp, err := send(stream, id)
					if err != nil {
						t.Fatalf("message %s: %v", id, err)
					}
					if resp.GetOrder().GetId() != id {
						t.Fatalf("echo %q, want %q", resp.GetOrder().GetId(), id)
					}
				}
				wantFields(t, stream.ResponseHeader(), `"default";q=2;w=60, "messages";q=10;w=1`, `"default";r=1;t=30`, "")
				_, err := send(stream, "d")
				cerr := wantCode(t, err, connect.CodeResourceExhausted, "stream message rate limit exceeded for "+syncOrders+": retry in 100ms")
				wantValues(t, cerr.Meta(), "RateLimit", `"default";r=1;t=30`, `"messages";r=0;t=1`)
				wantValues(t, cerr.Meta(), "Retry-After", "1")
				wantDetails(t, connectDetails(t, cerr), limitedDetails(syncOrders, "messages", 100*time.Millisecond, "client:acme", "messages 10 per 1s, burst 3, per stream"))

				// Opening a stream counts as a call: the second is allowed, the
				// third is not.
				if _, err := send(open(), "e"); err != nil {
					t.Fatalf("second stream: %v", err)
				}
				third := open()
				_, err = send(third, "f")
				cerr = wantCode(t, err, connect.CodeResourceExhausted, "rate limit exceeded for "+syncOrders+": retry in 30s")
				wantFields(t, cerr.Meta(), `"default";q=2;w=60, "messages";q=10;w=1`, `"default";r=0;t=30`, "30")
				wantPushback(t, protocol.name, cerr.Meta(), "30000")
			})
		}
	}
}

func TestInterceptorStoreFailure(t *testing.T) {
	t.Parallel()
	store := keyRecorder{allow: func(context.Context, string, ratelimit.Limit, int) (ratelimit.Result, error) {
		return ratelimit.Result{}, errors.New("dial tcp 10.1.2.3:6379: connection refused")
	}}
	f := newFixture(t, compiledCatalog(t), store)
	for _, protocol := range protocols {
		_, err := getOrderAs(context.Background(), f.orders(protocol.opts...), "acme", "")
		cerr := wantCode(t, err, connect.CodeUnavailable, "rate limiter unavailable for "+getOrder+": try again later")
		if d := connectDetails(t, cerr); len(d) != 1 || d[0].(*errdetails.ErrorInfo).GetReason() != ratelimit.ReasonLimiterUnavailable {
			t.Errorf("%s: details %v, want an ErrorInfo of reason %s", protocol.name, d, ratelimit.ReasonLimiterUnavailable)
		}
	}
}

// TestInterceptorHTTP checks what a plain HTTP client of the Connect
// protocol sees: status 429 and the fields.
func TestInterceptorHTTP(t *testing.T) {
	t.Parallel()
	f := newFixture(t, compiledCatalog(t), nil, ratelimit.WithPolicy(ratelimit.Policy{
		Tiers: map[string]ratelimit.Tier{"slow": {Override: &catalog.RateLimit{Requests: 4, Period: 5 * time.Second, Burst: 1}}},
	}))
	post := func() *http.Response {
		req, err := http.NewRequest(http.MethodPost, f.url+getOrder, strings.NewReader(`{"id":"o-1"}`))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Test-Client", "acme")
		req.Header.Set("X-Test-Tier", "slow")
		resp, err := f.http.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = resp.Body.Close() })
		return resp
	}
	if resp := post(); resp.StatusCode != http.StatusOK {
		t.Fatalf("first call: status %d", resp.StatusCode)
	}
	resp := post()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("status %d, want 429; body %s", resp.StatusCode, body)
	}
	wantFields(t, resp.Header, `"default";q=4;w=5`, `"default";r=0;t=2`, "2")
	var got struct {
		Code    string `json:"code"`
		Message string `json:"message"`
		Details []struct {
			Type  string          `json:"type"`
			Debug json.RawMessage `json:"debug"`
		} `json:"details"`
	}
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatalf("body %s: %v", body, err)
	}
	if got.Code != "resource_exhausted" || got.Message != "rate limit exceeded for "+getOrder+": retry in 1.25s" {
		t.Fatalf("body %s, want code resource_exhausted and the message", body)
	}
	var types []string
	for _, d := range got.Details {
		types = append(types, d.Type)
	}
	if want := []string{"google.rpc.ErrorInfo", "google.rpc.RetryInfo", "google.rpc.QuotaFailure"}; !slices.Equal(types, want) {
		t.Fatalf("details %q, want %q; body %s", types, want, body)
	}
	if want := `{"reason":"RATE_LIMITED","domain":"portcullis.dev","metadata":{"policy":"default","procedure":"` + getOrder + `"}}`; string(got.Details[0].Debug) != want {
		t.Errorf("ErrorInfo %s, want %s", got.Details[0].Debug, want)
	}
}

// TestInterceptorGRPCGo checks that a grpc-go client gets the fields as
// header metadata, allowed or not.
func TestInterceptorGRPCGo(t *testing.T) {
	t.Parallel()
	f := newFixture(t, compiledCatalog(t), nil, ratelimit.WithPolicy(ratelimit.Policy{
		Tiers: map[string]ratelimit.Tier{"slow": {Override: &catalog.RateLimit{Requests: 4, Period: 5 * time.Second, Burst: 1}}},
	}))
	conn, err := grpc.NewClient(strings.TrimPrefix(f.url, "http://"), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	ctx := metadata.AppendToOutgoingContext(context.Background(), "x-test-client", "acme", "x-test-tier", "slow")
	var trailer metadata.MD
	call := func() (metadata.MD, error) {
		var header metadata.MD
		err := conn.Invoke(ctx, getOrder, &ordersv1.GetOrderRequest{Id: "o-1"}, new(ordersv1.GetOrderResponse), grpc.Header(&header), grpc.Trailer(&trailer))
		return header, err
	}
	header, err := call()
	if err != nil {
		t.Fatal(err)
	}
	if got := header.Get("ratelimit"); len(got) != 1 || got[0] != `"default";r=0;t=2` {
		t.Fatalf("allowed: ratelimit header metadata %q", got)
	}
	header, err = call()
	if s := status.Convert(err); s.Code() != codes.ResourceExhausted || s.Message() != "rate limit exceeded for "+getOrder+": retry in 1.25s" {
		t.Fatalf("status %v %q, want ResourceExhausted", s.Code(), s.Message())
	}
	for key, want := range map[string]string{"retry-after": "2", "ratelimit": `"default";r=0;t=2`, "ratelimit-policy": `"default";q=4;w=5`} {
		if got := header.Get(key); len(got) != 1 || got[0] != want {
			t.Errorf("denied: %s header metadata %q, want [%q]", key, got, want)
		}
	}
	if got := trailer.Get("grpc-retry-pushback-ms"); len(got) != 1 || got[0] != "1250" {
		t.Errorf("denied: grpc-retry-pushback-ms trailer metadata %q, want [1250]", got)
	}
	wantDetails(t, grpcDetails(t, err), limitedDetails(getOrder, "default", 1250*time.Millisecond, "client:acme", "calls 4 per 5s, burst 1, per client"))
}

// grpcDetails decodes the details of a grpc-go error.
func grpcDetails(t *testing.T, err error) []proto.Message {
	t.Helper()
	var out []proto.Message
	for _, d := range status.Convert(err).Details() {
		m, ok := d.(proto.Message)
		if !ok {
			t.Fatalf("detail %v", d)
		}
		out = append(out, m)
	}
	return out
}

func TestNewInterceptorErrors(t *testing.T) {
	t.Parallel()
	cat := compiledCatalog(t)
	memory := newMemory(t)
	if _, err := ratelimit.NewInterceptor(nil, memory); err == nil {
		t.Error("NewInterceptor without a catalog succeeded")
	}
	if _, err := ratelimit.NewInterceptor(cat, nil); err == nil {
		t.Error("NewInterceptor without a store succeeded")
	}
	_, err := ratelimit.NewInterceptor(cat, memory, ratelimit.WithPolicy(ratelimit.Policy{
		Tiers: map[string]ratelimit.Tier{"pro": {Multiplier: -2}},
	}))
	if err == nil || !strings.Contains(err.Error(), `tier "pro": multiplier -2`) {
		t.Errorf("NewInterceptor with a negative multiplier: %v", err)
	}
}
