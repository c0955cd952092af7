package gateway_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"

	"github.com/portcullis/portcullis/gateway"
	"github.com/portcullis/portcullis/gateway/config"
	licensingv1 "github.com/portcullis/portcullis/gen/example/licensing/v1"
	"github.com/portcullis/portcullis/internal/gatewaytest"
	"github.com/portcullis/portcullis/internal/h2ctest"
	"github.com/portcullis/portcullis/internal/logtest"
	"github.com/portcullis/portcullis/services/issuer"
	"github.com/portcullis/portcullis/services/issuer/issuertest"
	"github.com/portcullis/portcullis/services/licensing"
)

// opaqueStack is a gateway that introspects every token of the bundled
// issuer, through a front that counts the introspection requests and can
// be taken down.
type opaqueStack struct {
	*stack
	front    *httptest.Server
	requests atomic.Int64
	logs     *logtest.Buffer
}

func newOpaqueStack(t *testing.T, cacheMax time.Duration, extra string) *opaqueStack {
	t.Helper()
	iss := gatewaytest.Issuer(t)
	gwSecret := iss.AddClient(t, issuer.Client{ID: "gw", Introspect: true})
	o := &opaqueStack{logs: new(logtest.Buffer)}
	handler := iss.Server.Handler()
	o.front = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == issuer.IntrospectionPath {
			o.requests.Add(1)
		}
		handler.ServeHTTP(w, r)
	}))
	t.Cleanup(o.front.Close)
	_, lic := licensing.New().Handler()
	yaml := fmt.Sprintf(`
issuers:
  - issuer: %q
    audiences: [%q]
    introspection:
      url: %q
      client_id: gw
      client_secret_env: GW_SECRET
      cache_max: %s
routes:
  - service: example.licensing.v1.LicensingService
    backend: %q
revocation:
  source: none
`, iss.URL, issuertest.Audience, o.front.URL+issuer.IntrospectionPath, cacheMax, h2ctest.Serve(t, lic)) + extra
	cfg, err := config.Parse("test.yaml", []byte(yaml), func(name string) (string, bool) { return gwSecret, name == "GW_SECRET" })
	if err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.NewTextHandler(o.logs, nil))
	gw, err := gateway.New(context.Background(), cfg, gateway.WithLogger(logger))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = gw.Close() })
	o.stack = &stack{issuer: iss, gateway: gw, url: h2ctest.Serve(t, gw.Handler()), admin: h2ctest.Serve(t, gw.AdminHandler())}
	waitReady(t, o.admin)
	return o
}

func listRequest() *connect.Request[licensingv1.ListRequirementsRequest] {
	return connect.NewRequest(&licensingv1.ListRequirementsRequest{Jurisdiction: "US-CA", BusinessKind: "restaurant"})
}

// An issuer declared opaque has its tokens introspected, in Connect and
// gRPC alike: the permissions of the introspection answer decide, one
// request serves a token until the cache bound, a revocation at the
// issuer refuses the token within it, and a token that is not a JWT is
// introspected too.
func TestOpaqueIssuerThroughGateway(t *testing.T) {
	t.Parallel()
	o := newOpaqueStack(t, time.Second, "")
	secret := o.issuer.AddClient(t, issuer.Client{ID: "reader", Grants: []string{"LIC.READ_REQUIREMENTS"}})
	tok := o.issuer.Token(t, "reader", secret)
	ctx := context.Background()
	for _, name := range []string{"connect", "grpc"} {
		client := o.licensingClient(tok, protocols[name]...)
		if _, err := client.ListRequirements(ctx, listRequest()); err != nil {
			t.Fatalf("%s: allowed call: %v", name, err)
		}
		_, err := client.GetLicenceOrder(ctx, connect.NewRequest(&licensingv1.GetLicenceOrderRequest{Id: "lo-0001"}))
		if connect.CodeOf(err) != connect.CodePermissionDenied || !strings.Contains(err.Error(), "missing LIC.READ_ORDERS") {
			t.Errorf("%s: call needing an ungranted permission = %v, want PermissionDenied naming LIC.READ_ORDERS", name, err)
		}
	}
	if n := o.requests.Load(); n != 1 {
		t.Errorf("%d introspection requests for 4 calls with one token, want 1", n)
	}

	for _, name := range []string{"connect", "grpc"} {
		_, err := o.licensingClient("an-opaque-token-the-issuer-never-issued", protocols[name]...).ListRequirements(ctx, listRequest())
		if connect.CodeOf(err) != connect.CodeUnauthenticated || !strings.Contains(err.Error(), "token not active") {
			t.Errorf("%s: unknown opaque token = %v, want Unauthenticated: token not active", name, err)
		}
	}

	// RFC 7009 revocation at the issuer: refused within the cache bound.
	res, err := http.PostForm(o.issuer.Server.RevocationURL(), url.Values{"token": {tok}, "client_id": {"reader"}, "client_secret": {secret}})
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("revoke: %v %v", res, err)
	}
	res.Body.Close()
	start := time.Now()
	for {
		_, err := o.licensingClient(tok, connect.WithGRPC()).ListRequirements(ctx, listRequest())
		if connect.CodeOf(err) == connect.CodeUnauthenticated && strings.Contains(err.Error(), "token not active") {
			break
		}
		if err != nil {
			t.Fatalf("revoked token: %v, want Unauthenticated: token not active", err)
		}
		if time.Since(start) > 1500*time.Millisecond {
			t.Fatal("revoked token still accepted past the 1s cache bound")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if strings.Contains(o.logs.String(), tok) || strings.Contains(o.logs.String(), secret) {
		t.Errorf("the logs hold the token or the secret:\n%s", o.logs)
	}
}

// N concurrent calls with one new token make one introspection request.
func TestOpaqueIssuerSingleFlight(t *testing.T) {
	t.Parallel()
	o := newOpaqueStack(t, time.Minute, "")
	secret := o.issuer.AddClient(t, issuer.Client{ID: "reader", Grants: []string{"LIC.READ_REQUIREMENTS"}})
	tok := o.issuer.Token(t, "reader", secret)
	const n = 32
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			opts := protocols["connect"]
			if i%2 == 1 {
				opts = protocols["grpc"]
			}
			_, err := o.licensingClient(tok, opts...).ListRequirements(context.Background(), listRequest())
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("concurrent call: %v", err)
		}
	}
	if got := o.requests.Load(); got != 1 {
		t.Errorf("%d introspection requests for %d concurrent calls with one new token, want 1", got, n)
	}
}

// When the introspection endpoint is down, tokens it has not answered for
// are refused with Unavailable, not let through nor called invalid.
func TestOpaqueIssuerDownFailsClosed(t *testing.T) {
	t.Parallel()
	o := newOpaqueStack(t, time.Minute, "")
	secret := o.issuer.AddClient(t, issuer.Client{ID: "reader", Grants: []string{"LIC.READ_REQUIREMENTS"}})
	tok := o.issuer.Token(t, "reader", secret)
	o.front.Close()
	for _, name := range []string{"connect", "grpc"} {
		_, err := o.licensingClient(tok, protocols[name]...).ListRequirements(context.Background(), listRequest())
		if connect.CodeOf(err) != connect.CodeUnavailable || !strings.Contains(err.Error(), "token introspection unavailable") {
			t.Errorf("%s: endpoint down = %v, want Unavailable: token introspection unavailable", name, err)
		}
	}
	if logs := o.logs.String(); !strings.Contains(logs, "token introspection failed") || strings.Contains(logs, tok) || strings.Contains(logs, secret) {
		t.Errorf("logs: want the failure logged, without token or secret:\n%s", logs)
	}
}

// The address guard lets through, from an address it holds back, a caller
// whose opaque token has an active introspection answer at hand, as it
// does a caller whose JWT it has verified; a token it has no answer for is
// held back with the address, with no introspection request.
func TestOpaqueTokenPassesTheGuard(t *testing.T) {
	t.Parallel()
	o := newOpaqueStack(t, time.Minute, "guard: {failures: 3, period: 1m, cooldown: 1m}\n")
	secret := o.issuer.AddClient(t, issuer.Client{ID: "reader", Grants: []string{"LIC.READ_REQUIREMENTS"}})
	known := o.issuer.Token(t, "reader", secret)
	ctx := context.Background()
	if _, err := o.licensingClient(known, connect.WithGRPC()).ListRequirements(ctx, listRequest()); err != nil {
		t.Fatalf("first call: %v", err)
	}
	for i := range 3 {
		_, err := o.licensingClient(fmt.Sprintf("forged-%d", i), connect.WithGRPC()).ListRequirements(ctx, listRequest())
		if connect.CodeOf(err) != connect.CodeUnauthenticated {
			t.Fatalf("forged token %d: %v, want Unauthenticated", i, err)
		}
	}
	asked := o.requests.Load()
	_, err := o.licensingClient(o.issuer.Token(t, "reader", secret), connect.WithGRPC()).ListRequirements(ctx, listRequest())
	if connect.CodeOf(err) != connect.CodeResourceExhausted {
		t.Fatalf("a token with no answer at hand, from the held-back address: %v, want ResourceExhausted", err)
	}
	if n := o.requests.Load(); n != asked {
		t.Errorf("the guard's refusal made %d introspection requests, want none", n-asked)
	}
	for _, name := range []string{"connect", "grpc"} {
		if _, err := o.licensingClient(known, protocols[name]...).ListRequirements(ctx, listRequest()); err != nil {
			t.Errorf("%s: the token with an active answer at hand, from the held-back address: %v", name, err)
		}
	}
}
