package licensing_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portcullis/portcullis/internal/h2ctest"

	"connectrpc.com/connect"
	"github.com/portcullis/portcullis/gateway/token"
	licensingv1 "github.com/portcullis/portcullis/gen/example/licensing/v1"
	"github.com/portcullis/portcullis/gen/example/licensing/v1/licensingv1connect"
	"github.com/portcullis/portcullis/services/licensing"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
)

var now = time.Date(2026, time.March, 1, 12, 0, 0, 0, time.UTC)

// serve runs svc over cleartext HTTP/2 with opts and returns a gRPC client.
func serve(t *testing.T, svc *licensing.Service, opts ...connect.HandlerOption) licensingv1connect.LicensingServiceClient {
	t.Helper()
	mux := http.NewServeMux()
	mux.Handle(svc.Handler(opts...))
	return licensingv1connect.NewLicensingServiceClient(h2ctest.Client(t), h2ctest.Serve(t, mux), connect.WithGRPC())
}

// as returns a request that the gateway sent on behalf of clientID.
func as[T any](clientID string, msg *T) *connect.Request[T] {
	req := connect.NewRequest(msg)
	if clientID != "" {
		req.Header().Set(licensing.DefaultIdentityHeader, clientID)
	}
	return req
}

func TestListJurisdictions(t *testing.T) {
	t.Parallel()
	client := serve(t, licensing.New())
	res, err := client.ListJurisdictions(t.Context(), connect.NewRequest(&licensingv1.ListJurisdictionsRequest{}))
	if err != nil {
		t.Fatal(err)
	}
	var codes []string
	for _, j := range res.Msg.GetJurisdictions() {
		codes = append(codes, j.GetCode())
	}
	if got := strings.Join(codes, ","); got != "DE-BE,GB-LND,US-CA,US-NY" {
		t.Errorf("jurisdictions = %s", got)
	}
}

func TestListRequirements(t *testing.T) {
	t.Parallel()
	client := serve(t, licensing.New())
	tests := []struct {
		name, jurisdiction, kind string
		want                     string // requirement ids
		wantCode                 connect.Code
		wantMessage              string
	}{
		{name: "restaurant", jurisdiction: "US-NY", kind: "restaurant", want: "us-ny-food-service,us-ny-authority"},
		{name: "kind in any case", jurisdiction: "GB-LND", kind: "Retail", want: "gb-lnd-street-trading"},
		{name: "unregulated kind", jurisdiction: "DE-BE", kind: "bakery", want: ""},
		{name: "unknown jurisdiction", jurisdiction: "FR-PAR", kind: "restaurant", wantCode: connect.CodeNotFound, wantMessage: `jurisdiction "FR-PAR" not found`},
		{name: "no jurisdiction", kind: "restaurant", wantCode: connect.CodeInvalidArgument, wantMessage: `jurisdiction: required, such as "US-CA"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			res, err := client.ListRequirements(t.Context(), connect.NewRequest(&licensingv1.ListRequirementsRequest{Jurisdiction: tt.jurisdiction, BusinessKind: tt.kind}))
			if tt.wantCode != 0 {
				assertError(t, err, tt.wantCode, tt.wantMessage)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var ids []string
			for _, r := range res.Msg.GetRequirements() {
				ids = append(ids, r.GetId())
			}
			if got := strings.Join(ids, ","); got != tt.want {
				t.Errorf("requirements = %s, want %s", got, tt.want)
			}
		})
	}
}

func TestLicenceOrders(t *testing.T) {
	t.Parallel()
	svc := licensing.New(licensing.WithClock(func() time.Time { return now }))
	client := serve(t, svc)
	ctx := t.Context()

	got, err := client.GetLicenceOrder(ctx, connect.NewRequest(&licensingv1.GetLicenceOrderRequest{Id: "lo-0002"}))
	if err != nil {
		t.Fatal(err)
	}
	if o := got.Msg.GetOrder(); o.GetBusinessId() != "biz-acme" || o.GetStatus() != licensingv1.LicenceOrderStatus_LICENCE_ORDER_STATUS_FILED {
		t.Errorf("seeded order = %v", o)
	}

	created, err := client.CreateLicenceOrder(ctx, as("client-a", &licensingv1.CreateLicenceOrderRequest{RequirementId: "us-ca-seller", BusinessId: "biz-new"}))
	if err != nil {
		t.Fatal(err)
	}
	o := created.Msg.GetOrder()
	if o.GetId() != "lo-0003" || o.GetCreatedBy() != "client-a" || !o.GetCreateTime().AsTime().Equal(now) ||
		o.GetStatus() != licensingv1.LicenceOrderStatus_LICENCE_ORDER_STATUS_RECEIVED {
		t.Errorf("created %v", o)
	}

	tests := []struct {
		name        string
		call        func() error
		wantCode    connect.Code
		wantMessage string
	}{
		{
			name: "get unknown",
			call: func() error {
				_, err := client.GetLicenceOrder(ctx, connect.NewRequest(&licensingv1.GetLicenceOrderRequest{Id: "lo-9999"}))
				return err
			},
			wantCode: connect.CodeNotFound, wantMessage: `licence order "lo-9999" not found`,
		},
		{
			name: "get without id",
			call: func() error {
				_, err := client.GetLicenceOrder(ctx, connect.NewRequest(&licensingv1.GetLicenceOrderRequest{}))
				return err
			},
			wantCode: connect.CodeInvalidArgument, wantMessage: "id: required",
		},
		{
			name: "create without fields",
			call: func() error {
				_, err := client.CreateLicenceOrder(ctx, as("client-a", &licensingv1.CreateLicenceOrderRequest{}))
				return err
			},
			wantCode: connect.CodeInvalidArgument, wantMessage: "requirement_id: required (and 1 more)",
		},
		{
			name: "create for an unknown requirement",
			call: func() error {
				_, err := client.CreateLicenceOrder(ctx, as("client-a", &licensingv1.CreateLicenceOrderRequest{RequirementId: "xx", BusinessId: "b"}))
				return err
			},
			wantCode: connect.CodeNotFound, wantMessage: `requirement "xx" not found`,
		},
		{
			name: "create without a caller",
			call: func() error {
				_, err := client.CreateLicenceOrder(ctx, as("", &licensingv1.CreateLicenceOrderRequest{RequirementId: "us-ca-seller", BusinessId: "b"}))
				return err
			},
			wantCode: connect.CodeUnauthenticated, wantMessage: "no caller identity: call through the gateway or with a verified token",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assertError(t, tt.call(), tt.wantCode, tt.wantMessage)
		})
	}
}

// TestCaller shows who a backend takes the caller to be: the verified
// token first, then the gateway's header, unless the header is not
// trusted.
func TestCaller(t *testing.T) {
	t.Parallel()
	// A stand-in for the authentication interceptor: it puts the verified
	// caller in the context.
	verified := connect.UnaryInterceptorFunc(func(next connect.UnaryFunc) connect.UnaryFunc {
		return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
			return next(token.NewContext(ctx, &token.Principal{ClientID: "verified-client"}), req)
		}
	})
	tests := []struct {
		name   string
		opts   []licensing.Option
		hopts  []connect.HandlerOption
		header string
		want   string // created_by, or "" for Unauthenticated
	}{
		{name: "gateway header", header: "gw-client", want: "gw-client"},
		{name: "verified token wins", hopts: []connect.HandlerOption{connect.WithInterceptors(verified)}, header: "gw-client", want: "verified-client"},
		{name: "untrusted header", opts: []licensing.Option{licensing.WithIdentityHeader("")}, header: "gw-client"},
		{name: "other header", opts: []licensing.Option{licensing.WithIdentityHeader("X-Caller")}, header: "gw-client"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			client := serve(t, licensing.New(tt.opts...), tt.hopts...)
			res, err := client.CreateLicenceOrder(t.Context(), as(tt.header, &licensingv1.CreateLicenceOrderRequest{RequirementId: "us-ca-seller", BusinessId: "b"}))
			if tt.want == "" {
				if connect.CodeOf(err) != connect.CodeUnauthenticated {
					t.Fatalf("error = %v, want unauthenticated", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := res.Msg.GetOrder().GetCreatedBy(); got != tt.want {
				t.Errorf("created_by = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestWatchLicenceOrders(t *testing.T) {
	t.Parallel()
	svc := licensing.New()
	client := serve(t, svc)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	stream, err := client.WatchLicenceOrders(ctx, connect.NewRequest(&licensingv1.WatchLicenceOrdersRequest{BusinessId: "biz-acme"}))
	if err != nil {
		t.Fatal(err)
	}
	defer stream.Close()
	next := func() *licensingv1.LicenceOrder {
		t.Helper()
		if !stream.Receive() {
			t.Fatalf("stream ended: %v", stream.Err())
		}
		return stream.Msg().GetOrder()
	}
	// First the orders as they are, by id.
	if o := next(); o.GetId() != "lo-0001" {
		t.Errorf("first = %v", o)
	}
	if o := next(); o.GetId() != "lo-0002" {
		t.Errorf("second = %v", o)
	}
	// Then each change, including those of orders created later.
	if _, err := svc.Advance("lo-0002"); err != nil {
		t.Fatal(err)
	}
	if o := next(); o.GetId() != "lo-0002" || o.GetStatus() != licensingv1.LicenceOrderStatus_LICENCE_ORDER_STATUS_GRANTED {
		t.Errorf("change = %v", o)
	}
	created, err := client.CreateLicenceOrder(ctx, as("c", &licensingv1.CreateLicenceOrderRequest{RequirementId: "us-ca-seller", BusinessId: "biz-acme"}))
	if err != nil {
		t.Fatal(err)
	}
	// Orders of other businesses are not sent.
	if _, err := client.CreateLicenceOrder(ctx, as("c", &licensingv1.CreateLicenceOrderRequest{RequirementId: "us-ca-seller", BusinessId: "biz-other"})); err != nil {
		t.Fatal(err)
	}
	if o := next(); o.GetId() != created.Msg.GetOrder().GetId() {
		t.Errorf("new order = %v", o)
	}
	// Run advances every order not granted yet, once per tick.
	ticks := make(chan time.Time)
	runCtx, stopRun := context.WithCancel(ctx)
	ran := make(chan error, 1)
	go func() { ran <- svc.Run(runCtx, ticks) }()
	ticks <- now
	if o := next(); o.GetId() != created.Msg.GetOrder().GetId() || o.GetStatus() != licensingv1.LicenceOrderStatus_LICENCE_ORDER_STATUS_FILED {
		t.Errorf("after a tick = %v", o)
	}
	stopRun()
	if err := <-ran; !errors.Is(err, context.Canceled) {
		t.Errorf("Run returned %v", err)
	}

	bad, err := client.WatchLicenceOrders(ctx, connect.NewRequest(&licensingv1.WatchLicenceOrdersRequest{}))
	if err == nil {
		defer bad.Close()
		bad.Receive()
		err = bad.Err()
	}
	if connect.CodeOf(err) != connect.CodeInvalidArgument {
		t.Errorf("watch without business: %v", err)
	}
}

func TestAdvance(t *testing.T) {
	t.Parallel()
	svc := licensing.New()
	for _, want := range []licensingv1.LicenceOrderStatus{
		licensingv1.LicenceOrderStatus_LICENCE_ORDER_STATUS_GRANTED,
		licensingv1.LicenceOrderStatus_LICENCE_ORDER_STATUS_GRANTED, // stays granted
	} {
		o, err := svc.Advance("lo-0002")
		if err != nil {
			t.Fatal(err)
		}
		if o.GetStatus() != want {
			t.Errorf("status = %v, want %v", o.GetStatus(), want)
		}
	}
	if _, err := svc.Advance("lo-9999"); connect.CodeOf(err) != connect.CodeNotFound {
		t.Errorf("advance unknown: %v", err)
	}
}

func TestConcurrentCreates(t *testing.T) {
	t.Parallel()
	client := serve(t, licensing.New())
	const n = 20
	ids := make(chan string, n)
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			res, err := client.CreateLicenceOrder(t.Context(), as("c", &licensingv1.CreateLicenceOrderRequest{RequirementId: "us-ca-seller", BusinessId: "b"}))
			if err != nil {
				t.Error(err)
				return
			}
			ids <- res.Msg.GetOrder().GetId()
		})
	}
	wg.Wait()
	close(ids)
	seen := make(map[string]bool)
	for id := range ids {
		if seen[id] {
			t.Errorf("id %s given twice", id)
		}
		seen[id] = true
	}
	if len(seen) != n {
		t.Errorf("%d orders created, want %d", len(seen), n)
	}
}

func assertError(t *testing.T, err error, code connect.Code, message string) {
	t.Helper()
	var ce *connect.Error
	if !errors.As(err, &ce) || ce.Code() != code || ce.Message() != message {
		t.Fatalf("error = %v, want %v %q", err, code, message)
	}
	if len(ce.Details()) != 1 {
		if code == connect.CodeUnauthenticated {
			return
		}
		t.Fatalf("details = %v, want one", ce.Details())
	}
	detail, err := ce.Details()[0].Value()
	if err != nil {
		t.Fatal(err)
	}
	switch code {
	case connect.CodeNotFound:
		if _, ok := detail.(*errdetails.ResourceInfo); !ok {
			t.Errorf("detail = %T, want ResourceInfo", detail)
		}
	case connect.CodeInvalidArgument:
		if _, ok := detail.(*errdetails.BadRequest); !ok {
			t.Errorf("detail = %T, want BadRequest", detail)
		}
	}
}
