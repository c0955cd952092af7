package gateway_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/genproto/googleapis/rpc/errdetails"

	licensingv1 "github.com/portcullis/portcullis/gen/example/licensing/v1"
	ordersv1 "github.com/portcullis/portcullis/gen/example/orders/v1"
	"github.com/portcullis/portcullis/gen/example/orders/v1/ordersv1connect"
	"github.com/portcullis/portcullis/internal/gatewaytest"
	"github.com/portcullis/portcullis/internal/h2ctest"
	"github.com/portcullis/portcullis/internal/jwttest"
	"github.com/portcullis/portcullis/services/issuer"
	"github.com/portcullis/portcullis/services/issuer/issuertest"
	"github.com/portcullis/portcullis/services/licensing"
)

// errorInfo returns the google.rpc.ErrorInfo detail of err, or nil.
func errorInfo(err error) *errdetails.ErrorInfo {
	var ce *connect.Error
	if !errors.As(err, &ce) {
		return nil
	}
	for _, d := range ce.Details() {
		if v, err := d.Value(); err == nil {
			if info, ok := v.(*errdetails.ErrorInfo); ok {
				return info
			}
		}
	}
	return nil
}

// passed wants a call to have gone through the gateway to the backend:
// whatever the backend answered, not a refusal of the gateway's.
func passed(t *testing.T, method string, err error) {
	t.Helper()
	switch connect.CodeOf(err) {
	case connect.CodeUnauthenticated, connect.CodePermissionDenied, connect.CodeUnavailable, connect.CodeResourceExhausted:
		t.Errorf("%s = %v, want it to reach the backend", method, err)
	}
}

// TestMaxTokenAgeStepUp calls CreateLicenceOrder, which declares
// max_token_age 5m, with tokens of several ages: one issued (iat), or
// whose user authenticated (auth_time), longer ago is refused with
// Unauthenticated and the RFC 9470 challenge, in Connect and gRPC, while
// other methods take it.
func TestMaxTokenAgeStepUp(t *testing.T) {
	t.Parallel()
	signer := jwttest.NewEC("k1")
	idp := jwttest.NewIdP(t, signer)
	_, lic := licensing.New().Handler()
	s := startGateway(t, nil, fmt.Sprintf(`
issuers: [{issuer: %q, audiences: [portcullis], jwks_url: %q}]
routes: [{service: example.licensing.v1.LicensingService, backend: %q}]
`, idp.Issuer, idp.URL+"/jwks.json", h2ctest.Serve(t, lic)))
	now := time.Now()
	clients := 0
	mint := func(iat time.Time, authTime *time.Time) string {
		c := jwttest.ClaimsAt(idp.Issuer, "portcullis", iat)
		clients++
		c["client_id"] = fmt.Sprintf("client-%d", clients) // a rate budget each
		c["exp"] = now.Add(10 * time.Minute).Unix()
		c["perms"] = map[string]any{"LIC": 7}
		if authTime != nil {
			c["auth_time"] = authTime.Unix()
		}
		return signer.Mint(nil, c)
	}
	longAgo := now.Add(-6 * time.Minute)
	const challenge = `Bearer realm="portcullis", error="insufficient_user_authentication", error_description="token older than the 300s this method accepts: authenticate again for a fresh token", max_age=300`
	for _, tc := range []struct {
		name string
		tok  string
		old  bool
	}{
		{"fresh", mint(now.Add(-time.Minute), nil), false},
		{"issued 6m ago", mint(longAgo, nil), true},
		{"fresh, authenticated 6m ago", mint(now, &longAgo), true},
		{"issued 6m ago, authenticated now", mint(longAgo, &now), false},
	} {
		for _, proto := range []string{"connect", "grpc"} {
			t.Run(tc.name+"/"+proto, func(t *testing.T) {
				t.Parallel()
				client := s.licensingClient(tc.tok, protocols[proto]...)
				ctx := context.Background()
				_, err := client.ListRequirements(ctx, connect.NewRequest(&licensingv1.ListRequirementsRequest{Jurisdiction: "US-CA", BusinessKind: "restaurant"}))
				passed(t, "ListRequirements", err)
				_, err = client.CreateLicenceOrder(ctx, connect.NewRequest(&licensingv1.CreateLicenceOrderRequest{RequirementId: "req-0001", BusinessId: "biz-1"}))
				if !tc.old {
					passed(t, "CreateLicenceOrder", err)
					return
				}
				if connect.CodeOf(err) != connect.CodeUnauthenticated || !strings.Contains(err.Error(), "token older than the 300s") {
					t.Fatalf("CreateLicenceOrder = %v, want Unauthenticated: token older than the 300s", err)
				}
				info := errorInfo(err)
				if info.GetReason() != "TOKEN_TOO_OLD" || info.GetMetadata()["max_age"] != "300" {
					t.Errorf("ErrorInfo %v, want reason TOKEN_TOO_OLD, max_age 300", info)
				}
				var ce *connect.Error
				errors.As(err, &ce)
				got := ce.Meta().Get("WWW-Authenticate")
				if proto == "grpc" {
					if got != "" {
						t.Errorf("gRPC trailers hold WWW-Authenticate %q", got)
					}
				} else if got != challenge {
					t.Errorf("WWW-Authenticate = %q\nwant %q", got, challenge)
				}
			})
		}
	}
}

// TestHighValueFailsClosedWhenStale stops the revocation feed of a
// gateway: PlaceOrder, declared high_value, is then refused with
// Unavailable (REVOCATIONS_STALE) in Connect and gRPC while GetOrder goes
// on; once the feed answers again, PlaceOrder does too.
func TestHighValueFailsClosedWhenStale(t *testing.T) {
	t.Parallel()
	env := gatewaytest.Start(t)
	iss := env.Issuer
	_, feedURL, down := stoppableFeed(t, iss)
	s := startGateway(t, iss, fmt.Sprintf(`
issuers: [{issuer: %q, audiences: [%q], discovery: true}]
routes: [{service: example.orders.v1.OrdersService, backend: %q}]
revocation: {feeds: [{issuer: %q, url: %q}], staleness: 200ms}
`, iss.URL, issuertest.Audience, env.OrdersURL, iss.URL, feedURL))
	secret := iss.AddClient(t, issuer.Client{ID: "shop", Grants: []string{"ORD.READ", "ORD.WRITE", "LIC.READ_REQUIREMENTS"}})
	tok := iss.Token(t, "shop", secret)
	calls := func(proto string) (place, get error) {
		client := ordersv1connect.NewOrdersServiceClient(&http.Client{Transport: bearer{tok: tok, base: h2ctest.Transport()}}, s.url, protocols[proto]...)
		ctx := context.Background()
		_, place = client.PlaceOrder(ctx, connect.NewRequest(&ordersv1.PlaceOrderRequest{Order: &ordersv1.Order{CustomerId: "c-1", Skus: []string{"sku-1"}, TotalCents: 100}}))
		_, get = client.GetOrder(ctx, connect.NewRequest(&ordersv1.GetOrderRequest{Id: "o-1"}))
		return place, get
	}
	for _, proto := range []string{"connect", "grpc"} {
		place, get := calls(proto)
		passed(t, proto+" PlaceOrder, fresh", place)
		passed(t, proto+" GetOrder, fresh", get)
	}

	down.Store(true)
	waitFor(t, 5*time.Second, func() error {
		if body := adminGet(t, s.admin+"/readyz"); !strings.Contains(body, `"status":"stale"`) {
			return fmt.Errorf("/readyz %s, want the revocations stale", body)
		}
		return nil
	})
	for _, proto := range []string{"connect", "grpc"} {
		place, get := calls(proto)
		if connect.CodeOf(place) != connect.CodeUnavailable || !strings.Contains(place.Error(), "revocations are stale") ||
			errorInfo(place).GetReason() != "REVOCATIONS_STALE" {
			t.Errorf("%s PlaceOrder, stale = %v (%v), want Unavailable, REVOCATIONS_STALE", proto, place, errorInfo(place))
		}
		if strings.Contains(place.Error(), strings.TrimSuffix(feedURL, "/revocations")) || strings.Contains(place.Error(), "502") {
			t.Errorf("%s PlaceOrder, stale = %v: tells the caller about the feed", proto, place)
		}
		passed(t, proto+" GetOrder, stale", get)
	}

	down.Store(false)
	waitFor(t, 5*time.Second, func() error {
		place, _ := calls("connect")
		if connect.CodeOf(place) == connect.CodeUnavailable {
			return fmt.Errorf("PlaceOrder = %v after the feed is back", place)
		}
		return nil
	})
	for _, proto := range []string{"connect", "grpc"} {
		place, _ := calls(proto)
		passed(t, proto+" PlaceOrder, fresh again", place)
	}
}
