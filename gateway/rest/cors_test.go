package rest_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/portcullis/portcullis/internal/h2ctest"

	"github.com/portcullis/portcullis/gateway/cors"
)

// TestCORSForRESTRoutes: the CORS policy of a service applies to its REST
// paths, found with ServicePath, and REST refusals carry the CORS headers.
func TestCORSForRESTRoutes(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	const app, shop = "https://app.example.com", "https://shop.example.com"
	c, err := cors.New(cors.Policy{AllowedOrigins: []string{app}}, map[string]cors.Policy{
		"/example.orders.v1.OrdersService/": {AllowedOrigins: []string{shop}},
	}, cors.WithRouteResolver(s.rest.ServicePath))
	if err != nil {
		t.Fatal(err)
	}
	url := h2ctest.Serve(t, c.Wrap(s.rest))
	send := func(method, path, origin string, header map[string]string) *http.Response {
		t.Helper()
		req, err := http.NewRequest(method, url+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Origin", origin)
		for k, v := range header {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	preflight := map[string]string{"Access-Control-Request-Method": "GET", "Access-Control-Request-Headers": "authorization"}
	if got := send("OPTIONS", "/v1/orders/ord-0001", shop, preflight).Header.Get("Access-Control-Allow-Origin"); got != shop {
		t.Errorf("orders preflight from %s: Access-Control-Allow-Origin %q", shop, got)
	}
	if got := send("OPTIONS", "/v1/orders/ord-0001", app, preflight).Header.Get("Access-Control-Allow-Origin"); got != "" {
		t.Errorf("orders preflight from %s: Access-Control-Allow-Origin %q", app, got)
	}
	if got := send("OPTIONS", "/v1/jurisdictions", app, preflight).Header.Get("Access-Control-Allow-Origin"); got != app {
		t.Errorf("licensing preflight from %s: Access-Control-Allow-Origin %q", app, got)
	}
	resp := send("GET", "/v1/orders/ord-0001", shop, nil)
	if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("Access-Control-Allow-Origin") != shop {
		t.Errorf("REST call without a token: %d, Access-Control-Allow-Origin %q; want 401 for %s", resp.StatusCode, resp.Header.Get("Access-Control-Allow-Origin"), shop)
	}
	if !strings.Contains(resp.Header.Get("Access-Control-Expose-Headers"), "Www-Authenticate") || resp.Header.Get("WWW-Authenticate") == "" {
		t.Errorf("401 exposes %q with WWW-Authenticate %q", resp.Header.Get("Access-Control-Expose-Headers"), resp.Header.Get("WWW-Authenticate"))
	}
	resp = send("GET", "/v1/jurisdictions", app, nil)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Access-Control-Allow-Origin") != app {
		t.Errorf("public REST call: %d, Access-Control-Allow-Origin %q", resp.StatusCode, resp.Header.Get("Access-Control-Allow-Origin"))
	}
}
