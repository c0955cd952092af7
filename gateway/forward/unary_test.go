package forward_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"connectrpc.com/connect"
	licensingv1 "github.com/portcullis/portcullis/gen/example/licensing/v1"
	ordersv1 "github.com/portcullis/portcullis/gen/example/orders/v1"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

func TestUnaryConnectGo(t *testing.T) {
	t.Parallel()
	be := startBackend(t)
	gw := startGateway(t, be.url, nil)
	for _, p := range protocols {
		t.Run(p.name, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			lic := licensingClient(gw, p)
			ord := ordersClient(gw, p)

			t.Run("ok", func(t *testing.T) {
				id := newID()
				req := connect.NewRequest(&licensingv1.ListRequirementsRequest{Jurisdiction: "US-CA", BusinessKind: "restaurant"})
				setRequestHeaders(req.Header(), id)
				res, err := lic.ListRequirements(ctx, req)
				if err != nil {
					t.Fatal(err)
				}
				var ids []string
				for _, r := range res.Msg.GetRequirements() {
					ids = append(ids, r.GetId())
				}
				if got, want := strings.Join(ids, ","), "us-ca-food-facility,us-ca-abc-41,us-ca-seller"; got != want {
					t.Errorf("requirements = %s, want %s", got, want)
				}
				assertBackendMetadata(t, res.Header(), res.Trailer(), "unary")
				c := be.calls.seen(t, id)
				if c.procedure != "/example.licensing.v1.LicensingService/ListRequirements" {
					t.Errorf("backend served %s", c.procedure)
				}
				assertForwardedHeaders(t, c.header)
			})

			t.Run("caller", func(t *testing.T) {
				req := connect.NewRequest(&ordersv1.PlaceOrderRequest{Order: &ordersv1.Order{
					CustomerId: "cust-" + p.name, Skus: []string{"sku-cup"}, TotalCents: 450,
				}})
				setRequestHeaders(req.Header(), newID())
				res, err := ord.PlaceOrder(ctx, req)
				if err != nil {
					t.Fatal(err)
				}
				if got := res.Msg.GetOrder(); got.GetPlacedBy() != testClientID || got.GetCustomerId() != "cust-"+p.name || got.GetId() == "" {
					t.Errorf("placed %v, want placed by %s", got, testClientID)
				}
			})

			t.Run("error", func(t *testing.T) {
				req := connect.NewRequest(&ordersv1.GetOrderRequest{Id: "ord-missing"})
				setRequestHeaders(req.Header(), newID())
				_, err := ord.GetOrder(ctx, req)
				ce := wantError(t, err, connect.CodeNotFound, `order "ord-missing" not found`)
				if len(ce.Details()) != 1 {
					t.Fatalf("got %d details, want 1", len(ce.Details()))
				}
				detail, err := ce.Details()[0].Value()
				if err != nil {
					t.Fatal(err)
				}
				want := &errdetails.ResourceInfo{ResourceType: "example.orders.v1.Order", ResourceName: "ord-missing", Description: "no such order"}
				if !proto.Equal(detail, want) {
					t.Errorf("detail = %v, want %v", detail, want)
				}
				if v := ce.Meta().Get(backendHeader); v != "unary" {
					t.Errorf("error metadata %s = %q, want the backend's", backendHeader, v)
				}
			})

			t.Run("invalid", func(t *testing.T) {
				req := connect.NewRequest(&ordersv1.PlaceOrderRequest{Order: &ordersv1.Order{TotalCents: -1}})
				setRequestHeaders(req.Header(), newID())
				_, err := ord.PlaceOrder(ctx, req)
				ce := wantError(t, err, connect.CodeInvalidArgument, "order.customer_id: required (and 2 more)")
				detail, err := ce.Details()[0].Value()
				if err != nil {
					t.Fatal(err)
				}
				if n := len(detail.(*errdetails.BadRequest).GetFieldViolations()); n != 3 {
					t.Errorf("got %d violations, want 3", n)
				}
			})
		})
	}
}

func TestUnaryGRPCGo(t *testing.T) {
	t.Parallel()
	be := startBackend(t)
	conn := grpcConn(t, startGateway(t, be.url, nil))
	id := newID()
	ctx := metadata.AppendToOutgoingContext(t.Context(),
		"x-request-id", id, "authorization", "Bearer test-token", "x-secret", "do-not-forward",
		"portcullis-client-id", "forged", "portcullis_tier", "forged", "trace-bin", string(binaryValue))

	var header, trailer metadata.MD
	res := new(ordersv1.GetOrderResponse)
	err := conn.Invoke(ctx, "/example.orders.v1.OrdersService/GetOrder", &ordersv1.GetOrderRequest{Id: "ord-0002"}, res,
		grpc.Header(&header), grpc.Trailer(&trailer))
	if err != nil {
		t.Fatal(err)
	}
	if got := res.GetOrder(); got.GetCustomerId() != "cust-grace" || got.GetNotes() != "Leave at the back door." {
		t.Errorf("order = %v", got)
	}
	if got := header.Get("backend-header"); len(got) != 1 || got[0] != "unary" {
		t.Errorf("header backend-header = %q", got)
	}
	if got := trailer.Get("backend-trailer"); len(got) != 1 || got[0] != "unary" {
		t.Errorf("trailer backend-trailer = %q", got)
	}
	assertForwardedHeaders(t, be.calls.seen(t, id).header)

	err = conn.Invoke(ctx, "/example.orders.v1.OrdersService/GetOrder", &ordersv1.GetOrderRequest{Id: "ord-missing"}, res,
		grpc.Trailer(&trailer))
	st := status.Convert(err)
	if st.Code() != codes.NotFound || st.Message() != `order "ord-missing" not found` {
		t.Fatalf("status = %v %q", st.Code(), st.Message())
	}
	details := st.Details()
	if len(details) != 1 {
		t.Fatalf("details = %v", details)
	}
	if info, ok := details[0].(*errdetails.ResourceInfo); !ok || info.GetResourceName() != "ord-missing" {
		t.Errorf("detail = %v", details[0])
	}
	if got := trailer.Get("backend-header"); len(got) != 1 {
		t.Errorf("error trailers %v lack the backend's metadata", trailer)
	}
}

// TestUnaryHTTP calls the gateway as curl would: JSON over HTTP/1.1,
// POST and GET.
func TestUnaryHTTP(t *testing.T) {
	t.Parallel()
	be := startBackend(t)
	gw := startGateway(t, be.url, nil)
	getMessage := func(msg string) string {
		return "?encoding=json&message=" + url.QueryEscape(msg)
	}
	tests := []struct {
		name, method, path, body string
		wantStatus               int
		wantBody                 []string // substrings of the response body
		wantHandled              bool     // the backend's handler ran
	}{
		{
			name: "post", method: http.MethodPost, path: "/example.licensing.v1.LicensingService/ListRequirements",
			body:       `{"jurisdiction":"GB-LND","businessKind":"restaurant"}`,
			wantStatus: http.StatusOK, wantBody: []string{`"id":"gb-lnd-food-registration"`, `"feeCents":"31500"`},
			wantHandled: true,
		},
		{
			name: "post empty", method: http.MethodPost, path: "/example.licensing.v1.LicensingService/ListJurisdictions",
			body:       `{}`,
			wantStatus: http.StatusOK, wantBody: []string{`"code":"DE-BE"`},
			wantHandled: true,
		},
		{
			name: "post error", method: http.MethodPost, path: "/example.orders.v1.OrdersService/GetOrder",
			body:        `{"id":"ord-missing"}`,
			wantStatus:  http.StatusNotFound,
			wantBody:    []string{`"code":"not_found"`, `"message":"order \"ord-missing\" not found"`, `"type":"google.rpc.ResourceInfo"`},
			wantHandled: true,
		},
		{
			name: "get", method: http.MethodGet, path: "/example.orders.v1.OrdersService/GetOrder" + getMessage(`{"id":"ord-0001"}`),
			wantStatus: http.StatusOK, wantBody: []string{`"customerId":"cust-ada"`, `"totalCents":"129900"`},
			wantHandled: true,
		},
		{
			name: "get public", method: http.MethodGet, path: "/example.licensing.v1.LicensingService/ListJurisdictions" + getMessage(`{}`),
			wantStatus: http.StatusOK, wantBody: []string{`"code":"US-NY"`},
			wantHandled: true,
		},
		{
			name: "get refused for a method with side effects", method: http.MethodGet,
			path:       "/example.orders.v1.OrdersService/PlaceOrder" + getMessage(`{}`),
			wantStatus: http.StatusMethodNotAllowed,
		},
		{
			name: "unknown method", method: http.MethodPost, path: "/example.orders.v1.OrdersService/DeleteOrder",
			body: `{}`, wantStatus: http.StatusNotFound,
		},
		{
			name: "malformed JSON", method: http.MethodPost, path: "/example.orders.v1.OrdersService/GetOrder",
			// The gateway does not parse payloads: the backend refuses
			// it, while decoding, before its handler runs.
			body: `{"id":`, wantStatus: http.StatusBadRequest, wantBody: []string{`"code":"invalid_argument"`, `"message":"unmarshal message: `},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			id := newID()
			req, err := http.NewRequestWithContext(t.Context(), tt.method, gw+tt.path, strings.NewReader(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			if tt.method == http.MethodPost {
				req.Header.Set("Content-Type", "application/json")
			}
			setRequestHeaders(req.Header, id)
			res, err := http.DefaultClient.Do(req) // HTTP/1.1
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			body, err := io.ReadAll(res.Body)
			if err != nil {
				t.Fatal(err)
			}
			if res.StatusCode != tt.wantStatus {
				t.Fatalf("status %d, want %d; body %s", res.StatusCode, tt.wantStatus, body)
			}
			for _, want := range tt.wantBody {
				if !strings.Contains(string(body), want) {
					t.Errorf("body %s lacks %s", body, want)
				}
			}
			if got := be.calls.reached(id); got != tt.wantHandled {
				t.Fatalf("backend handled the call: %v, want %v", got, tt.wantHandled)
			}
			if !tt.wantHandled {
				return
			}
			assertForwardedHeaders(t, be.calls.seen(t, id).header)
			if v := res.Header.Get(backendHeader); v != "unary" {
				t.Errorf("header %s = %q, want the backend's", backendHeader, v)
			}
			if res.StatusCode == http.StatusOK {
				if v := res.Header.Get("Trailer-" + backendTrailer); v != "unary" {
					t.Errorf("trailer %s = %q, want the backend's", backendTrailer, v)
				}
				if !json.Valid(body) {
					t.Errorf("body is not JSON: %s", body)
				}
			}
		})
	}
}

// TestUnaryCodecPassThrough shows the bytes are relayed as they are: the
// backend answers binary to a binary call and JSON to a JSON call, because
// the gateway picks the outbound codec from the inbound one.
func TestUnaryCodecPassThrough(t *testing.T) {
	t.Parallel()
	be := startBackend(t)
	gw := startGateway(t, be.url, nil)
	for _, p := range protocols {
		t.Run(p.name, func(t *testing.T) {
			t.Parallel()
			id := newID()
			req := connect.NewRequest(&ordersv1.GetOrderRequest{Id: "ord-0001"})
			setRequestHeaders(req.Header(), id)
			if _, err := ordersClient(gw, p).GetOrder(context.Background(), req); err != nil {
				t.Fatal(err)
			}
			ct := be.calls.seen(t, id).header.Get("Content-Type")
			wantJSON := p.name == "connect+json"
			if strings.Contains(ct, "json") != wantJSON {
				t.Errorf("backend got Content-Type %q, want JSON: %v", ct, wantJSON)
			}
		})
	}
}
