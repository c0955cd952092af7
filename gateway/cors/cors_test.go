package cors_test

import (
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portcullis/portcullis/internal/h2ctest"

	"github.com/portcullis/portcullis/gateway/cors"
	"github.com/portcullis/portcullis/services/issuer"
)

var appPolicy = cors.Policy{
	AllowedOrigins:   []string{"https://app.example.com", "https://*.example.org", "http://localhost:5173"},
	AllowCredentials: true,
	MaxAge:           10 * time.Minute,
	AllowedHeaders:   []string{"X-Tenant"},
	ExposedHeaders:   []string{"X-Extra"},
}

func wrap(t *testing.T, def cors.Policy, routes map[string]cors.Policy, inner http.Handler, opts ...cors.Option) string {
	t.Helper()
	c, err := cors.New(def, routes, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return h2ctest.Serve(t, c.Wrap(inner))
}

func TestPreflight(t *testing.T) {
	t.Parallel()
	inner := &counter{}
	url := wrap(t, appPolicy, nil, inner) + "/example.licensing.v1.LicensingService/ListRequirements"
	tests := []struct {
		name, origin, method, headers string
		allowed                       bool
	}{
		{name: "exact origin, Connect headers", origin: "https://app.example.com", method: "POST", headers: "authorization,connect-protocol-version,content-type", allowed: true},
		{name: "exact origin, gRPC-Web headers", origin: "https://app.example.com", method: "POST", headers: "content-type,x-grpc-web,x-user-agent", allowed: true},
		{name: "pattern, subdomain", origin: "https://shop.example.org", method: "GET", allowed: true},
		{name: "pattern, deeper subdomain, REST method, policy header", origin: "https://eu.shop.example.org", method: "PATCH", headers: "content-type,x-tenant", allowed: true},
		{name: "localhost with port", origin: "http://localhost:5173", method: "POST", headers: "content-type", allowed: true},
		{name: "pattern does not match the apex", origin: "https://example.org", method: "GET"},
		{name: "pattern does not match another port", origin: "https://shop.example.org:8443", method: "GET"},
		{name: "other origin", origin: "https://evil.example.net", method: "POST", headers: "content-type"},
		{name: "other scheme", origin: "http://app.example.com", method: "POST"},
		{name: "other port", origin: "https://app.example.com:8443", method: "POST"},
		{name: "suffix lookalike", origin: "https://app.example.com.evil.net", method: "POST"},
		{name: "header not allowed", origin: "https://app.example.com", method: "POST", headers: "content-type,x-secret"},
		{name: "method not allowed", origin: "https://app.example.com", method: "TRACE"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			resp := preflight(t, url, tt.origin, tt.method, tt.headers)
			if resp.StatusCode != http.StatusNoContent {
				t.Errorf("status %d, want 204", resp.StatusCode)
			}
			if !listHas(strings.Join(resp.Header.Values("Vary"), ","), "Origin") {
				t.Errorf("Vary %q lacks Origin", resp.Header.Values("Vary"))
			}
			got := corsHeaders(resp.Header)
			if !tt.allowed {
				if len(got) != 0 {
					t.Errorf("refused preflight carries CORS headers %v", got)
				}
				return
			}
			want := http.Header{
				"Access-Control-Allow-Origin":      {tt.origin},
				"Access-Control-Allow-Methods":     {tt.method},
				"Access-Control-Allow-Credentials": {"true"},
				"Access-Control-Max-Age":           {"600"},
			}
			if tt.headers != "" {
				want["Access-Control-Allow-Headers"] = []string{tt.headers}
			}
			if !equalHeaders(got, want) {
				t.Errorf("CORS headers\n got %v\nwant %v", got, want)
			}
		})
	}
	t.Cleanup(func() {
		if n := inner.n.Load(); n != 0 {
			t.Errorf("%d preflights reached the inner handler", n)
		}
	})
}

func TestActualRequests(t *testing.T) {
	t.Parallel()
	inner := &counter{}
	url := wrap(t, appPolicy, nil, inner) + "/v1/jurisdictions"
	wantExposed := []string{
		"Grpc-Status", "Grpc-Message", "Grpc-Status-Details-Bin", "Connect-Content-Encoding",
		"RateLimit", "RateLimit-Policy", "Retry-After", "WWW-Authenticate", "X-Extra",
	}
	tests := []struct {
		name, origin string
		allowed      bool
	}{
		{name: "allowed origin", origin: "https://app.example.com", allowed: true},
		{name: "allowed by pattern", origin: "https://a.example.org", allowed: true},
		{name: "other origin", origin: "https://evil.example.net"},
		{name: "no origin"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			header := map[string]string{}
			if tt.origin != "" {
				header["Origin"] = tt.origin
			}
			resp, body := request(t, http.MethodGet, url, "", header)
			if resp.StatusCode != http.StatusOK || body != "inner" {
				t.Fatalf("status %d body %q, want the inner handler's 200", resp.StatusCode, body)
			}
			if !listHas(strings.Join(resp.Header.Values("Vary"), ","), "Origin") {
				t.Errorf("Vary %q lacks Origin", resp.Header.Values("Vary"))
			}
			got := corsHeaders(resp.Header)
			if !tt.allowed {
				if len(got) != 0 {
					t.Errorf("response carries CORS headers %v", got)
				}
				return
			}
			if o := got.Get("Access-Control-Allow-Origin"); o != tt.origin {
				t.Errorf("Access-Control-Allow-Origin %q, want %q", o, tt.origin)
			}
			if c := got.Get("Access-Control-Allow-Credentials"); c != "true" {
				t.Errorf("Access-Control-Allow-Credentials %q, want true", c)
			}
			for _, name := range wantExposed {
				if !listHas(got.Get("Access-Control-Expose-Headers"), name) {
					t.Errorf("Access-Control-Expose-Headers %q lacks %s", got.Get("Access-Control-Expose-Headers"), name)
				}
			}
		})
	}
}

func TestAnyOrigin(t *testing.T) {
	t.Parallel()
	url := wrap(t, cors.Policy{AllowedOrigins: []string{"*"}}, nil, &counter{}) + "/v1/jurisdictions"
	resp := preflight(t, url, "https://anyone.example", "GET", "")
	if got := resp.Header.Get("Access-Control-Allow-Origin"); resp.StatusCode != http.StatusNoContent || got != "*" {
		t.Errorf("preflight: %d, Access-Control-Allow-Origin %q, want 204 and *", resp.StatusCode, got)
	}
	if got := resp.Header.Get("Access-Control-Allow-Credentials"); got != "" {
		t.Errorf("Access-Control-Allow-Credentials %q without credentials", got)
	}
	resp, _ = request(t, http.MethodGet, url, "", map[string]string{"Origin": "https://anyone.example"})
	if got := resp.Header.Get("Access-Control-Allow-Origin"); got != "*" {
		t.Errorf("actual request: Access-Control-Allow-Origin %q, want *", got)
	}
}

func TestZeroPolicyAllowsNothing(t *testing.T) {
	t.Parallel()
	inner := &counter{}
	url := wrap(t, cors.Policy{}, nil, inner) + "/v1/jurisdictions"
	resp := preflight(t, url, "https://app.example.com", "GET", "")
	if got := corsHeaders(resp.Header); resp.StatusCode != http.StatusNoContent || len(got) != 0 {
		t.Errorf("preflight: %d %v, want 204 without CORS headers", resp.StatusCode, got)
	}
	resp, _ = request(t, http.MethodGet, url, "", map[string]string{"Origin": "https://app.example.com"})
	if got := corsHeaders(resp.Header); len(got) != 0 {
		t.Errorf("actual request carries %v", got)
	}
	if n := inner.n.Load(); n != 1 {
		t.Errorf("inner handler reached %d times, want once (not by the preflight)", n)
	}
}

func TestOriginCaseIgnored(t *testing.T) {
	t.Parallel()
	url := wrap(t, cors.Policy{AllowedOrigins: []string{"HTTPS://App.Example.COM"}}, nil, &counter{}) + "/v1/x"
	resp, _ := request(t, http.MethodGet, url, "", map[string]string{"Origin": "https://app.example.com"})
	if got := resp.Header.Get("Access-Control-Allow-Origin"); got != "https://app.example.com" {
		t.Errorf("Access-Control-Allow-Origin %q, want https://app.example.com", got)
	}
}

// TestRefusalsCarryCORS: the gateway's own refusals, written by its inner
// handlers, reach a browser script with the headers that explain them.
func TestRefusalsCarryCORS(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	const origin = "https://app.example.com"
	url := wrap(t, cors.Policy{AllowedOrigins: []string{origin}}, nil, s.gateway.Handler())
	secret := s.issuer.AddClient(t, issuer.Client{ID: "reader", Grants: []string{"LIC.READ_REQUIREMENTS"}})
	reader := s.issuer.Token(t, "reader", secret)
	connectJSON := func(tok string) map[string]string {
		h := map[string]string{"Origin": origin, "Content-Type": "application/json"}
		if tok != "" {
			h["Authorization"] = "Bearer " + tok
		}
		return h
	}
	check := func(t *testing.T, resp *http.Response, status int, exposed string) {
		t.Helper()
		if resp.StatusCode != status {
			t.Errorf("status %d, want %d", resp.StatusCode, status)
		}
		if got := resp.Header.Get("Access-Control-Allow-Origin"); got != origin {
			t.Errorf("Access-Control-Allow-Origin %q, want %q", got, origin)
		}
		if exposed == "" {
			return
		}
		if resp.Header.Get(exposed) == "" {
			t.Errorf("response lacks %s", exposed)
		}
		if !listHas(resp.Header.Get("Access-Control-Expose-Headers"), exposed) {
			t.Errorf("Access-Control-Expose-Headers %q lacks %s", resp.Header.Get("Access-Control-Expose-Headers"), exposed)
		}
	}

	t.Run("preflight answered before authentication", func(t *testing.T) {
		resp := preflight(t, url+"/example.licensing.v1.LicensingService/CreateLicenceOrder", origin, "POST", "authorization,content-type")
		if resp.StatusCode != http.StatusNoContent || resp.Header.Get("Access-Control-Allow-Origin") != origin {
			t.Errorf("preflight: %d, Access-Control-Allow-Origin %q; want 204 for %s", resp.StatusCode, resp.Header.Get("Access-Control-Allow-Origin"), origin)
		}
		if got := resp.Header.Get("WWW-Authenticate"); got != "" {
			t.Errorf("preflight reached authentication: WWW-Authenticate %q", got)
		}
	})
	t.Run("401 without a token", func(t *testing.T) {
		resp, body := request(t, http.MethodPost, url+"/example.licensing.v1.LicensingService/ListRequirements", `{"jurisdiction":"US-CA"}`, connectJSON(""))
		check(t, resp, http.StatusUnauthorized, "WWW-Authenticate")
		if !strings.Contains(body, `"code":"unauthenticated"`) {
			t.Errorf("body %s, want the Connect error", body)
		}
	})
	t.Run("403 missing a permission", func(t *testing.T) {
		resp, body := request(t, http.MethodPost, url+"/example.licensing.v1.LicensingService/CreateLicenceOrder", `{"requirementId":"us-ca-seller","businessId":"biz-acme"}`, connectJSON(reader))
		check(t, resp, http.StatusForbidden, "")
		if !strings.Contains(body, "missing LIC.READ_ORDERS, LIC.WRITE_ORDERS") {
			t.Errorf("body %s, want the missing permissions", body)
		}
	})
	t.Run("gRPC-Web 401 in headers", func(t *testing.T) {
		h := map[string]string{"Origin": origin, "Content-Type": "application/grpc-web+proto", "X-Grpc-Web": "1"}
		resp, _ := request(t, http.MethodPost, url+"/example.licensing.v1.LicensingService/ListRequirements", "\x00\x00\x00\x00\x00", h)
		check(t, resp, http.StatusOK, "Grpc-Status")
		if got := resp.Header.Get("Grpc-Status"); got != "16" {
			t.Errorf("Grpc-Status %q, want 16 (Unauthenticated)", got)
		}
	})
	t.Run("429 over the rate limit", func(t *testing.T) {
		// ListJurisdictions is public: 60 a minute per address, burst 10.
		for range 20 {
			resp, _ := request(t, http.MethodPost, url+"/example.licensing.v1.LicensingService/ListJurisdictions", `{}`, connectJSON(""))
			if resp.StatusCode == http.StatusOK {
				continue
			}
			check(t, resp, http.StatusTooManyRequests, "Retry-After")
			check(t, resp, http.StatusTooManyRequests, "RateLimit-Policy")
			return
		}
		t.Fatal("20 calls in a row were never limited")
	})
}

func TestPerRoutePolicy(t *testing.T) {
	t.Parallel()
	const app, shop = "https://app.example.com", "https://shop.example.com"
	var mu sync.Mutex
	var asked []string
	resolve := func(method, path string) (string, bool) {
		mu.Lock()
		asked = append(asked, method+" "+path)
		mu.Unlock()
		if strings.HasPrefix(path, "/v1/orders") {
			return "/example.orders.v1.OrdersService/", true
		}
		return "", false
	}
	inner := &counter{}
	url := wrap(t, cors.Policy{AllowedOrigins: []string{app}}, map[string]cors.Policy{
		"/example.orders.v1.OrdersService/": {AllowedOrigins: []string{shop}, MaxAge: time.Hour},
	}, inner, cors.WithRouteResolver(resolve))
	tests := []struct {
		name, path, method string
		allowed, refused   string // origins
		maxAge             string
	}{
		{name: "RPC path of the route", path: "/example.orders.v1.OrdersService/GetOrder", method: "POST", allowed: shop, refused: app, maxAge: "3600"},
		{name: "RPC path of another service", path: "/example.licensing.v1.LicensingService/ListJurisdictions", method: "POST", allowed: app, refused: shop},
		{name: "REST path of the route", path: "/v1/orders/ord-0001", method: "GET", allowed: shop, refused: app, maxAge: "3600"},
		{name: "REST path of another service", path: "/v1/jurisdictions", method: "GET", allowed: app, refused: shop},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			resp := preflight(t, url+tt.path, tt.allowed, tt.method, "")
			if got := resp.Header.Get("Access-Control-Allow-Origin"); got != tt.allowed {
				t.Errorf("preflight from %s: Access-Control-Allow-Origin %q", tt.allowed, got)
			}
			if got := resp.Header.Get("Access-Control-Max-Age"); got != tt.maxAge {
				t.Errorf("preflight from %s: Access-Control-Max-Age %q, want %q", tt.allowed, got, tt.maxAge)
			}
			if got := corsHeaders(preflight(t, url+tt.path, tt.refused, tt.method, "").Header); len(got) != 0 {
				t.Errorf("preflight from %s: %v, want no CORS headers", tt.refused, got)
			}
			resp, _ = request(t, tt.method, url+tt.path, "", map[string]string{"Origin": tt.allowed})
			if got := resp.Header.Get("Access-Control-Allow-Origin"); got != tt.allowed {
				t.Errorf("%s from %s: Access-Control-Allow-Origin %q", tt.method, tt.allowed, got)
			}
			resp, _ = request(t, tt.method, url+tt.path, "", map[string]string{"Origin": tt.refused})
			if got := corsHeaders(resp.Header); len(got) != 0 {
				t.Errorf("%s from %s: %v, want no CORS headers", tt.method, tt.refused, got)
			}
		})
	}
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		// A preflight is resolved with the method it asks for; RPC paths
		// of a route never need the resolver.
		if !slices.Contains(asked, "GET /v1/orders/ord-0001") {
			t.Errorf("resolver asked %q, want GET /v1/orders/ord-0001 among them", asked)
		}
		for _, a := range asked {
			if strings.Contains(a, "OrdersService") || strings.HasPrefix(a, "OPTIONS") {
				t.Errorf("resolver asked %q", a)
			}
		}
	})
}

func TestNewRejectsInvalidPolicies(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		policy cors.Policy
		routes map[string]cors.Policy
		want   []string
	}{
		{name: "any origin with credentials", policy: cors.Policy{AllowedOrigins: []string{"*"}, AllowCredentials: true}, want: []string{`"*" cannot go with allow_credentials`}},
		{name: "any origin among others", policy: cors.Policy{AllowedOrigins: []string{"*", "https://a.example.com"}}, want: []string{`"*" allows every origin and stands alone`}},
		{name: "no scheme", policy: cors.Policy{AllowedOrigins: []string{"app.example.com"}}, want: []string{`allowed_origins[0] "app.example.com": an origin is scheme://host[:port]`}},
		{name: "path", policy: cors.Policy{AllowedOrigins: []string{"https://app.example.com/"}}, want: []string{"without path, query, fragment or user"}},
		{name: "user", policy: cors.Policy{AllowedOrigins: []string{"https://me@app.example.com"}}, want: []string{"without path, query, fragment or user"}},
		{name: "default port", policy: cors.Policy{AllowedOrigins: []string{"https://app.example.com:443"}}, want: []string{"browsers leave the default port out: write https://app.example.com"}},
		{name: "bad port", policy: cors.Policy{AllowedOrigins: []string{"https://app.example.com:99999"}}, want: []string{`port "99999" is not a number from 1 to 65535`}},
		{name: "null origin", policy: cors.Policy{AllowedOrigins: []string{"null"}}, want: []string{`the "null" origin`}},
		{name: "wildcard not leading", policy: cors.Policy{AllowedOrigins: []string{"https://app.*.example.com"}}, want: []string{`one wildcard, a leading "*." in the host`}},
		{name: "wildcard without dot", policy: cors.Policy{AllowedOrigins: []string{"https://*example.com"}}, want: []string{`one wildcard, a leading "*." in the host`}},
		{name: "two wildcards", policy: cors.Policy{AllowedOrigins: []string{"https://*.*.example.com"}}, want: []string{`one wildcard`}},
		{name: "wildcard over a top-level domain", policy: cors.Policy{AllowedOrigins: []string{"https://*.com"}}, want: []string{"a DNS name of at least two labels"}},
		{name: "wildcard scheme", policy: cors.Policy{AllowedOrigins: []string{"*://app.example.com"}}, want: []string{"an origin is scheme://host[:port]"}},
		{name: "wildcard port", policy: cors.Policy{AllowedOrigins: []string{"https://app.example.com:*"}}, want: []string{`port "*"`}},
		{name: "unicode host", policy: cors.Policy{AllowedOrigins: []string{"https://bücher.example"}}, want: []string{"punycode"}},
		{name: "negative max age", policy: cors.Policy{MaxAge: -time.Second}, want: []string{"max_age -1s is negative"}},
		{name: "fractional max age", policy: cors.Policy{MaxAge: 1500 * time.Millisecond}, want: []string{"max_age 1.5s is not a whole number of seconds"}},
		{name: "header wildcard", policy: cors.Policy{AllowedHeaders: []string{"*"}}, want: []string{`allowed_headers[0]: name the headers instead of "*"`}},
		{name: "bad header", policy: cors.Policy{ExposedHeaders: []string{"X Bad"}}, want: []string{`exposed_headers[0] "X Bad" is not a header name`}},
		{name: "route not a service path", routes: map[string]cors.Policy{"/example.orders.v1.OrdersService": {}}, want: []string{`route "/example.orders.v1.OrdersService" is not a service path`}},
		{name: "invalid route policy", routes: map[string]cors.Policy{"/a.B/": {AllowedOrigins: []string{"*"}, AllowCredentials: true}}, want: []string{"cors: route /a.B/: allowed_origins"}},
		{name: "every problem at once", policy: cors.Policy{AllowedOrigins: []string{"null", "https://*.com"}, MaxAge: -1}, want: []string{`"null"`, "two labels", "negative"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := cors.New(tt.policy, tt.routes)
			if err == nil {
				t.Fatalf("New accepted the policy: %v", c)
			}
			for _, want := range tt.want {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q lacks %q", err, want)
				}
			}
		})
	}
}

func TestNewAcceptsOrigins(t *testing.T) {
	t.Parallel()
	for _, origin := range []string{
		"https://app.example.com", "http://localhost:5173", "http://127.0.0.1:8080", "http://[::1]:3000",
		"https://*.example.com", "https://*.example.com:8443", "capacitor://localhost", "https://xn--bcher-kva.example",
	} {
		if err := (cors.Policy{AllowedOrigins: []string{origin}}).Validate(); err != nil {
			t.Errorf("%s: %v", origin, err)
		}
	}
}

func equalHeaders(a, b http.Header) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if !slices.Equal(v, b[k]) {
			return false
		}
	}
	return true
}
