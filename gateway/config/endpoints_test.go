package config_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/portcullis/portcullis/gateway/config"
)

// TestRouteEndpoints reads a route of replicas: endpoints and dns, with
// their defaults.
func TestRouteEndpoints(t *testing.T) {
	t.Parallel()
	cfg, err := config.Parse("gw.yaml", []byte(`routes:
  - service: a.B
    endpoints: ["http://b-0:1", "http://b-1:1"]
    dns: {name: "b.default.svc:1"}
    balancer: least_request
`), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	r := cfg.Routes[0]
	if len(r.Endpoints) != 2 || r.DNS == nil || r.DNS.Scheme != "http" || r.DNS.Refresh.Std() != 10*time.Second || r.Balancer != "least_request" {
		t.Errorf("route %+v, dns %+v", r, r.DNS)
	}
	h := cfg.Health
	if !h.Outlier.IsEnabled() || h.Outlier.ConsecutiveFailures != 5 || h.Outlier.BaseEjectionTime.Std() != 5*time.Second ||
		h.Outlier.MaxEjectionTime.Std() != 2*time.Minute || h.Outlier.MaxEjectionPercent != 50 {
		t.Errorf("outlier defaults %+v", h.Outlier)
	}
	if r := h.Retries; r.MaxAttempts != 3 || r.MaxBodyBytes != 64<<10 || r.BudgetRatio != 0.2 || r.MinPerSecond != 10 || r.Window.Std() != 10*time.Second {
		t.Errorf("retries defaults %+v", r)
	}
}

// TestRouteEndpointsMistakes wants each mistake with its place.
func TestRouteEndpointsMistakes(t *testing.T) {
	t.Parallel()
	tests := []struct{ yaml, want string }{
		{"routes: [{service: a.B}]", `1:10: routes[0].backend: is required (or endpoints, or dns)`},
		{"routes: [{service: a.B, backend: \"http://b:1\", endpoints: [\"http://c:1\"]}]", `1:34: routes[0].backend: is set with endpoints or dns: give one backend URL, or the replicas in endpoints and/or dns`},
		{"routes: [{service: a.B, endpoints: [\"http://c:1\", \"ftp://d\"]}]", `1:51: routes[0].endpoints[1]: "ftp://d" is not an http:// (h2c) or https:// URL`},
		{"routes: [{service: a.B, endpoints: [\"http://c:1\", \"https://d:1\"]}]", `1:51: routes[0].endpoints[1]: is https://, but the route's other endpoints are http://`},
		{"routes: [{service: a.B, endpoints: [\"https://c:1\"], dns: {name: \"c:1\"}}]", `1:58: routes[0].dns.scheme: is http://, but the route's other endpoints are https://`},
		{"routes: [{service: a.B, dns: {name: c}}]", `1:37: routes[0].dns.name: "c" is not host:port`},
		{"routes: [{service: a.B, dns: {name: \"c:1\", scheme: ftp}}]", `1:52: routes[0].dns.scheme: "ftp" is not http or https`},
		{"routes: [{service: a.B, dns: {name: \"c:1\", refresh: 1ms}}]", `1:53: routes[0].dns.refresh: 1ms is less than 100ms`},
		{"routes: [{service: a.B, endpoints: [\"http://c:1\"], ca_file: ca.pem}]", `1:61: routes[0].ca_file: is set, but the backend is not https`},
		{"routes: [{service: a.B, endpoints: [\"http://c:1\"], balancer: random}]", `1:62: routes[0].balancer: "random" is not round_robin or least_request`},
		{base + "health: {outlier: {max_ejection_time: 1s}}", `2:39: health.outlier.max_ejection_time: 1s is less than base_ejection_time (5s)`},
		{base + "health: {outlier: {max_ejection_percent: 101}}", `2:42: health.outlier.max_ejection_percent: 101 is not between 0 and 100`},
		{base + "health: {retries: {max_attempts: 9}}", `2:34: health.retries.max_attempts: 9 is not between 1 and 8`},
		{base + "health: {retries: {budget_ratio: 1.5}}", `2:34: health.retries.budget_ratio: 1.5 is not between 0 and 1`},
		{base + "health: {retries: {window: 10ms}}", `2:28: health.retries.window: 10ms is less than 1s`},
	}
	for _, tt := range tests {
		t.Run(tt.yaml, func(t *testing.T) {
			t.Parallel()
			got := parseMistakes(t, tt.yaml+"\n")
			var all []string
			for _, m := range got {
				all = append(all, fmt.Sprintf("%d:%d: %s: %s", m.Line, m.Column, m.Path, m.Message))
			}
			found := false
			for _, s := range all {
				found = found || s == tt.want
			}
			if !found {
				t.Errorf("mistakes:\n%q\nwant: %s", all, tt.want)
			}
		})
	}
}
