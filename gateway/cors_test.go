package gateway_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/portcullis/portcullis/internal/h2ctest"
	"github.com/portcullis/portcullis/services/issuer"
	"github.com/portcullis/portcullis/services/orders"
)

// TestCORSIsTheGateways: a backend's own CORS headers never reach the
// browser beside the gateway's (two Access-Control-Allow-Origin make the
// browser refuse the answer), and a refusal carries the gateway's.
func TestCORSIsTheGateways(t *testing.T) {
	t.Parallel()
	_, ord := orders.New().Handler()
	backend := h2ctest.Serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Access-Control-Allow-Origin", "*")
		w.Header().Set("Access-Control-Expose-Headers", "X-Backend")
		ord.ServeHTTP(w, r)
	}))
	const origin = "https://app.example.com"
	s := serveGateway(t, fmt.Sprintf(`
  - {service: example.orders.v1.OrdersService, backend: %q}
cors: {allowed_origins: [%q]}
health: {interval: 0s}
`, backend, origin))
	secret := s.iss.AddClient(t, issuer.Client{ID: "page", Grants: []string{"ORD.READ"}})
	tok := s.iss.Token(t, "page", secret)
	call := func(tok, body string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, s.url+"/example.orders.v1.OrdersService/GetOrder", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Origin", origin)
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		resp, err := h2ctest.Client(t).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	resp := call("", `{"id":"ord-0001"}`) // no token: 401
	if got := resp.Header.Values("Access-Control-Allow-Origin"); resp.StatusCode != http.StatusUnauthorized || len(got) != 1 || got[0] != origin {
		t.Errorf("refused call: %d, Access-Control-Allow-Origin %q; want 401 and %q once", resp.StatusCode, got, origin)
	}
	resp = call(tok, `{"id":"ord-0001"}`) // reaches the backend
	if got := resp.Header.Values("Access-Control-Allow-Origin"); resp.StatusCode != http.StatusOK || len(got) != 1 || got[0] != origin {
		t.Errorf("forwarded call: %d, Access-Control-Allow-Origin %q; want 200 and %q once", resp.StatusCode, got, origin)
	}
	if got := resp.Header.Get("Access-Control-Expose-Headers"); strings.Contains(got, "X-Backend") {
		t.Errorf("the backend's Access-Control-Expose-Headers came through: %q", got)
	}
}
