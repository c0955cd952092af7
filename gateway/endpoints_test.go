package gateway_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"

	licensingv1 "github.com/portcullis/portcullis/gen/example/licensing/v1"
	"github.com/portcullis/portcullis/internal/gatewaytest"
	"github.com/portcullis/portcullis/internal/h2ctest"
	"github.com/portcullis/portcullis/services/issuer"
	"github.com/portcullis/portcullis/services/issuer/issuertest"
	"github.com/portcullis/portcullis/services/licensing"
	"github.com/portcullis/portcullis/services/orders"
)

// TestRouteEndpoints routes the licensing service to three replicas, one
// of them dead: every call succeeds on the live two, /readyz lists the
// three with their state, and /metrics counts per endpoint.
func TestRouteEndpoints(t *testing.T) {
	t.Parallel()
	iss := gatewaytest.Issuer(t)
	var served [2]atomic.Int64
	var live [2]string
	for i := range live {
		_, lic := licensing.New().Handler()
		live[i] = h2ctest.Serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if !strings.HasPrefix(r.URL.Path, "/grpc.health.v1.") {
				served[i].Add(1)
			}
			lic.ServeHTTP(w, r)
		}))
	}
	dead := "http://" + deadAddr
	_, ord := orders.New().Handler()
	s := startGateway(t, iss, fmt.Sprintf(`
issuers:
  - {issuer: %q, audiences: [%q], discovery: true, type: at+jwt}
routes:
  - service: example.licensing.v1.LicensingService
    endpoints: [%q, %q, %q]
    balancer: least_request
  - service: example.orders.v1.OrdersService
    backend: %q
health:
  interval: 100ms
  outlier: {consecutive_failures: 2, base_ejection_time: 10s}
`, iss.URL, issuertest.Audience, live[0], live[1], dead, h2ctest.Serve(t, ord)))

	secret := iss.AddClient(t, issuer.Client{ID: "reader", Grants: []string{"LIC.READ_REQUIREMENTS"}})
	client := s.licensingClient(iss.Token(t, "reader", secret), connect.WithGRPC())
	for range 30 {
		if _, err := client.ListRequirements(context.Background(), connect.NewRequest(&licensingv1.ListRequirementsRequest{Jurisdiction: "US-CA", BusinessKind: "restaurant"})); err != nil {
			t.Fatal(err)
		}
	}
	if served[0].Load() == 0 || served[1].Load() == 0 || served[0].Load()+served[1].Load() != 30 {
		t.Errorf("the live replicas served %d and %d of 30 calls", served[0].Load(), served[1].Load())
	}

	var states map[string]string
	waitFor(t, 5*time.Second, func() error {
		ready := readyz(t, s.admin)
		byRoute, _ := ready["endpoints"].(map[string]any)
		list, _ := byRoute["example.licensing.v1.LicensingService"].([]any)
		states = map[string]string{}
		for _, e := range list {
			m, _ := e.(map[string]any)
			url, _ := m["url"].(string)
			state, _ := m["state"].(string)
			states[url] = state
		}
		if len(states) != 3 || states[live[0]] != "up" || states[live[1]] != "up" || states[dead] == "up" {
			return fmt.Errorf("/readyz endpoints %v", byRoute)
		}
		if ready["status"] != "ready" || ready["code"] != http.StatusOK {
			return fmt.Errorf("/readyz = %v, want ready: the route has live endpoints", ready)
		}
		return nil
	})
	t.Logf("endpoint states: %v", states)

	metrics := adminGet(t, s.admin+"/metrics")
	for _, want := range []string{"portcullis_backend_endpoint_requests", "portcullis_backend_endpoint_failures", "portcullis_backend_endpoint_ejections",
		"portcullis_backend_endpoint_up", "portcullis_backend_retries", `endpoint="` + dead + `"`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	for _, line := range strings.Split(metrics, "\n") {
		if strings.HasPrefix(line, "portcullis_backend_endpoint_up{") && strings.Contains(line, `endpoint="`+dead+`"`) && !strings.HasSuffix(line, " 0") {
			t.Errorf("dead endpoint: %s", line)
		}
	}
}
