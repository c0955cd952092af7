package rest_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/portcullis/portcullis/services/issuer"
)

// TestBindings calls every kind of binding the example services declare,
// through the REST layer, the gateway and the backends.
func TestBindings(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	secret := s.issuer.AddClient(t, issuer.Client{ID: "clerk", Grants: []string{
		"LIC.READ_REQUIREMENTS", "LIC.READ_ORDERS", "LIC.WRITE_ORDERS", "ORD.READ", "ORD.WRITE",
	}})
	tok := s.issuer.Token(t, "clerk", secret)
	tests := []struct {
		name, method, path, token, body string
		want                            map[string]any // JSON path, dot-separated → value
		absent                          []string       // top-level keys the body must not have
	}{
		{
			name: "GET, public", method: "GET", path: "/v1/jurisdictions",
			want: map[string]any{"jurisdictions.0.code": "DE-BE", "jurisdictions.0.name": "Berlin"},
		},
		{
			name: "GET with query parameters", method: "GET", path: "/v1/requirements?jurisdiction=US-CA&business_kind=restaurant", token: tok,
			want: map[string]any{"requirements.0.id": "us-ca-food-facility", "requirements.2.id": "us-ca-seller", "requirements.2.feeCents": "0"},
		},
		{
			name: "additional binding: path variable and a query parameter by JSON name", method: "GET", path: "/v1/jurisdictions/US-CA/requirements?businessKind=retail", token: tok,
			want: map[string]any{"requirements.0.id": "us-ca-seller"},
		},
		{
			name: "GET with a path variable", method: "GET", path: "/v1/orders/ord-0001", token: tok,
			want: map[string]any{"order.id": "ord-0001", "order.customerId": "cust-ada", "order.totalCents": "129900"},
		},
		{
			name: "response_body", method: "GET", path: "/v1/licence-orders/lo-0001", token: tok,
			want:   map[string]any{"id": "lo-0001", "status": "LICENCE_ORDER_STATUS_GRANTED", "createTime": "2026-01-15T09:00:00Z"},
			absent: []string{"order"},
		},
		{
			name: "POST with body *", method: "POST", path: "/v1/licence-orders", token: tok,
			body: `{"requirementId":"us-ca-seller","businessId":"biz-acme"}`,
			want: map[string]any{"order.requirementId": "us-ca-seller", "order.businessId": "biz-acme", "order.status": "LICENCE_ORDER_STATUS_RECEIVED", "order.createdBy": "clerk"},
		},
		{
			name: "POST with a named body field and response_body", method: "POST", path: "/v1/orders", token: tok,
			body:   `{"customerId":"cust-ada","skus":["sku-grinder"]}`,
			want:   map[string]any{"customerId": "cust-ada", "skus.0": "sku-grinder", "placedBy": "clerk"},
			absent: []string{"order"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			resp, body := call(t, tt.method, s.url+tt.path, tt.token, tt.body)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d, body %s", resp.StatusCode, body)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q, want application/json", ct)
			}
			got := decode(t, body)
			for path, want := range tt.want {
				if v := get(got, jsonPath(path)...); v != want {
					t.Errorf("%s = %v, want %v in %s", path, v, want, body)
				}
			}
			for _, key := range tt.absent {
				if _, ok := got[key]; ok {
					t.Errorf("body has %q: %s", key, body)
				}
			}
		})
	}
}

// TestErrors: refusals of the gateway and errors of the backend reach REST
// callers as JSON with the HTTP status of their code and the headers that
// explain them.
func TestErrors(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	secret := s.issuer.AddClient(t, issuer.Client{ID: "reader", Grants: []string{"LIC.READ_REQUIREMENTS", "ORD.READ"}})
	reader := s.issuer.Token(t, "reader", secret)
	secret = s.issuer.AddClient(t, issuer.Client{ID: "writer", Grants: []string{"LIC.READ_REQUIREMENTS", "ORD.WRITE"}})
	writer := s.issuer.Token(t, "writer", secret)
	tests := []struct {
		name, method, path, token, body string
		status                          int
		code                            float64 // google.rpc.Code
		message                         string  // contained in the message
		detail                          string  // a detail's @type
		header, headerValue             string  // a response header and a part of its value
	}{
		{
			name: "backend NotFound", method: "GET", path: "/v1/orders/ord-9999", token: reader,
			status: http.StatusNotFound, code: 5, message: `order "ord-9999" not found`, detail: "type.googleapis.com/google.rpc.ResourceInfo",
		},
		{
			name: "backend InvalidArgument", method: "GET", path: "/v1/requirements?business_kind=retail", token: reader,
			status: http.StatusBadRequest, code: 3, message: "jurisdiction", detail: "type.googleapis.com/google.rpc.BadRequest",
		},
		{
			name: "gateway PermissionDenied", method: "POST", path: "/v1/licence-orders", token: reader,
			body:   `{"requirementId":"us-ca-seller","businessId":"biz-acme"}`,
			status: http.StatusForbidden, code: 7, message: "missing LIC.READ_ORDERS, LIC.WRITE_ORDERS", detail: "type.googleapis.com/google.rpc.ErrorInfo",
		},
		{
			name: "gateway Unauthenticated", method: "GET", path: "/v1/orders/ord-0001",
			status: http.StatusUnauthorized, code: 16, detail: "type.googleapis.com/google.rpc.ErrorInfo",
			header: "WWW-Authenticate", headerValue: "Bearer",
		},
		{
			name: "bad token", method: "GET", path: "/v1/orders/ord-0001", token: "not-a-jwt",
			status: http.StatusUnauthorized, code: 16, header: "WWW-Authenticate", headerValue: `error="invalid_token"`,
		},
		{
			name: "unknown query parameter", method: "GET", path: "/v1/requirements?jurisdiction=US-CA&colour=red", token: reader,
			status: http.StatusBadRequest, code: 3, message: `query parameter "colour": example.licensing.v1.ListRequirementsRequest has no field "colour"`,
		},
		{
			name: "query parameter into a scalar", method: "GET", path: "/v1/requirements?jurisdiction.code=US-CA", token: reader,
			status: http.StatusBadRequest, code: 3, message: `field "jurisdiction" of example.licensing.v1.ListRequirementsRequest is not a message`,
		},
		{
			name: "body that is not JSON", method: "POST", path: "/v1/orders", token: writer, body: `{"customerId":`,
			status: http.StatusBadRequest, code: 3,
		},
		{
			name: "method not bound", method: "DELETE", path: "/v1/orders/ord-0001", token: reader,
			status: http.StatusMethodNotAllowed, header: "Allow", headerValue: "GET",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			resp, body := call(t, tt.method, s.url+tt.path, tt.token, tt.body)
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d; body %s", resp.StatusCode, tt.status, body)
			}
			if tt.header != "" && !strings.Contains(resp.Header.Get(tt.header), tt.headerValue) {
				t.Errorf("%s %q, want it to hold %q", tt.header, resp.Header.Get(tt.header), tt.headerValue)
			}
			if tt.code == 0 {
				return
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q, want application/json; body %q", ct, body)
			}
			got := decode(t, body)
			if got["code"] != tt.code {
				t.Errorf("code %v, want %v in %s", got["code"], tt.code, body)
			}
			if msg, _ := got["message"].(string); !strings.Contains(msg, tt.message) {
				t.Errorf("message %q, want it to hold %q", msg, tt.message)
			}
			if tt.detail != "" && !strings.Contains(body, `"@type":"`+tt.detail+`"`) {
				t.Errorf("no %s detail in %s", tt.detail, body)
			}
			if tt.token != "" && len(tt.token) > 20 && strings.Contains(body, tt.token[len(tt.token)-20:]) {
				t.Error("the error holds the token")
			}
		})
	}

	t.Run("unknown path goes to the next handler", func(t *testing.T) {
		t.Parallel()
		resp, body := call(t, "GET", s.url+"/v2/nothing", reader, "")
		if resp.StatusCode != http.StatusNotFound || !strings.Contains(body, `"code":"unimplemented"`) {
			t.Errorf("status %d body %q, want the gateway's 404 unimplemented", resp.StatusCode, body)
		}
	})
}

// TestSameDecisionPath: a REST call is decided, logged and counted as the
// RPC it resolves to.
func TestSameDecisionPath(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	secret := s.issuer.AddClient(t, issuer.Client{ID: "reader", Grants: []string{"LIC.READ_REQUIREMENTS"}})
	reader := s.issuer.Token(t, "reader", secret)
	if resp, body := call(t, "GET", s.url+"/v1/licence-orders/lo-0001", reader, ""); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("status %d body %s, want 403", resp.StatusCode, body)
	}
	if resp, body := call(t, "GET", s.url+"/v1/requirements?jurisdiction=US-CA&business_kind=retail", reader, ""); resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d body %s, want 200", resp.StatusCode, body)
	}
	logs := s.logs.String()
	for _, want := range [][]string{
		{`"procedure":"/example.licensing.v1.LicensingService/GetLicenceOrder"`, `"outcome":"denied"`, `"client_id":"reader"`, `"missing_permissions":["LIC.READ_ORDERS"]`},
		{`"procedure":"/example.licensing.v1.LicensingService/ListRequirements"`, `"outcome":"allowed"`, `"client_id":"reader"`},
	} {
		if !anyLineHasAll(logs, want) {
			t.Errorf("no access line with %q in\n%s", want, logs)
		}
	}
}

// TestRateLimited: the method's rate limit applies to its REST route.
func TestRateLimited(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	// ListJurisdictions is public: 60 a minute per address, burst 10.
	for i := range 20 {
		resp, body := call(t, "GET", s.url+"/v1/jurisdictions", "", "")
		if resp.StatusCode == http.StatusOK {
			continue
		}
		if resp.StatusCode != http.StatusTooManyRequests {
			t.Fatalf("call %d: status %d, want 429; body %s", i+1, resp.StatusCode, body)
		}
		if got := decode(t, body)["code"]; got != 8.0 {
			t.Errorf("code %v, want 8 (ResourceExhausted)", got)
		}
		for _, h := range []string{"Retry-After", "RateLimit", "RateLimit-Policy"} {
			if resp.Header.Get(h) == "" {
				t.Errorf("429 lacks %s", h)
			}
		}
		return
	}
	t.Fatal("20 calls in a row were never limited")
}

func anyLineHasAll(text string, parts []string) bool {
	for line := range strings.SplitSeq(text, "\n") {
		all := true
		for _, p := range parts {
			all = all && strings.Contains(line, p)
		}
		if all {
			return true
		}
	}
	return false
}

// jsonPath splits "a.0.b" into keys and indexes.
func jsonPath(path string) []any {
	var out []any
	for p := range strings.SplitSeq(path, ".") {
		var i int
		if _, err := fmt.Sscanf(p, "%d", &i); err == nil {
			out = append(out, i)
		} else {
			out = append(out, p)
		}
	}
	return out
}
