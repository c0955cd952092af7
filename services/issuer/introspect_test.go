package issuer_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/portcullis/portcullis/services/issuer"
	"github.com/portcullis/portcullis/services/issuer/issuertest"
)

// introspectRequest calls the introspection endpoint with Basic
// credentials (none when id is "").
func introspectRequest(t testing.TB, issuerURL, id, secret, body string) response {
	t.Helper()
	return request(t, "POST", issuerURL+issuer.IntrospectionPath, form(id, secret), body)
}

// members decodes an introspection answer.
func members(t testing.TB, res response) map[string]any {
	t.Helper()
	if res.status != http.StatusOK || res.header.Get("Content-Type") != "application/json" || res.header.Get("Cache-Control") != "no-store" {
		t.Fatalf("introspection: %d %v %s", res.status, res.header, res.body)
	}
	var m map[string]any
	if err := json.Unmarshal(res.body, &m); err != nil {
		t.Fatalf("introspection %s: %v", res.body, err)
	}
	return m
}

func TestIntrospection(t *testing.T) {
	t.Parallel()
	clk := newClock()
	iss := issuertest.Start(t, newCatalog(t), issuer.WithClock(clk.Now))
	other := issuertest.Start(t, newCatalog(t))
	gw := iss.AddClient(t, issuer.Client{ID: "gw", Introspect: true})
	secret := iss.AddClient(t, issuer.Client{ID: "reader", Grants: []string{"ORD.READ"}, Tier: "pro"})
	foreignSecret := other.AddClient(t, issuer.Client{ID: "reader", Grants: []string{"ORD.READ"}})
	tok := iss.Token(t, "reader", secret)
	revoked := iss.Token(t, "reader", secret)
	foreign := other.Token(t, "reader", foreignSecret)
	if res := revokeRequest(t, iss.URL, "reader", secret, "token="+revoked); res.status != 200 {
		t.Fatalf("revoke: %d %s", res.status, res.body)
	}

	c := claimsOf(t, tok)
	want := map[string]any{
		"active": true, "scope": "ORD.READ", "client_id": "reader", "sub": "reader",
		"exp": float64(c.Expiry), "iat": float64(c.IssuedAt), "nbf": float64(c.IssuedAt),
		"aud": issuertest.Audience, "iss": iss.URL, "jti": c.ID, "token_type": "Bearer",
		"perms": map[string]any{"ORD": float64(1)}, "tier": "pro",
	}
	// client_secret_post works as client_secret_basic does.
	post := request(t, "POST", iss.URL+issuer.IntrospectionPath, form("", ""),
		"client_id=gw&client_secret="+url.QueryEscape(gw)+"&token="+url.QueryEscape(tok)+"&token_type_hint=access_token")
	for name, res := range map[string]response{
		"basic": introspectRequest(t, iss.URL, "gw", gw, "token="+url.QueryEscape(tok)),
		"post":  post,
	} {
		got := members(t, res)
		if len(got) != len(want) {
			t.Errorf("%s: %v, want %v", name, got, want)
		}
		for k, v := range want {
			if gv, _ := json.Marshal(got[k]); string(gv) != mustJSON(t, v) {
				t.Errorf("%s: %s = %s, want %v", name, k, gv, v)
			}
		}
	}

	for name, body := range map[string]string{
		"revoked":       "token=" + revoked,
		"garbage":       "token=garbage",
		"bad signature": "token=" + tok[:len(tok)-4] + "AAAA",
		"other issuer":  "token=" + foreign,
	} {
		if res := introspectRequest(t, iss.URL, "gw", gw, body); string(res.body) != `{"active":false}` {
			t.Errorf("%s: %d %s, want {\"active\":false}", name, res.status, res.body)
		}
	}
	clk.Advance(time.Hour + 2*time.Minute)
	if res := introspectRequest(t, iss.URL, "gw", gw, "token="+tok); string(res.body) != `{"active":false}` {
		t.Errorf("expired: %d %s, want {\"active\":false}", res.status, res.body)
	}
	// Removing the client revokes the tokens it holds.
	fresh := "token=" + iss.Token(t, "reader", secret)
	if res := introspectRequest(t, iss.URL, "gw", gw, fresh); members(t, res)["active"] != true {
		t.Fatalf("fresh token: %s", res.body)
	}
	iss.RevokeClient(t, "reader")
	if res := introspectRequest(t, iss.URL, "gw", gw, fresh); string(res.body) != `{"active":false}` {
		t.Errorf("client revoked: %d %s, want {\"active\":false}", res.status, res.body)
	}
}

func mustJSON(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestIntrospectionRefusals(t *testing.T) {
	t.Parallel()
	iss := issuertest.Start(t, newCatalog(t))
	gw := iss.AddClient(t, issuer.Client{ID: "gw", Introspect: true})
	secret := iss.AddClient(t, issuer.Client{ID: "reader", Grants: []string{"ORD.READ"}})
	tok := "token=" + iss.Token(t, "reader", secret)
	for _, tc := range []struct {
		name              string
		id, secret, body  string
		status            int
		code, description string
	}{
		{"unauthenticated", "", "", tok, 401, "invalid_client", "no client authentication; use client_secret_basic or client_secret_post"},
		{"wrong secret", "gw", "nope", tok, 401, "invalid_client", "client authentication failed"},
		{"not allowed", "reader", secret, tok, 403, "unauthorized_client", "client 'reader' may not introspect tokens; register it with introspect: true"},
		{"no token", "gw", gw, "token_type_hint=access_token", 400, "invalid_request", "missing token"},
	} {
		res := introspectRequest(t, iss.URL, tc.id, tc.secret, tc.body)
		code, description := res.oauthError(t)
		if res.status != tc.status || code != tc.code || description != tc.description {
			t.Errorf("%s: %d %s, want %d %s %q", tc.name, res.status, res.body, tc.status, tc.code, tc.description)
		}
		if strings.Contains(string(res.body), "ey") {
			t.Errorf("%s: the answer echoes the token: %s", tc.name, res.body)
		}
	}
	if res := request(t, "GET", iss.URL+issuer.IntrospectionPath, nil, ""); res.status != 405 || res.header.Get("Allow") != "POST" {
		t.Errorf("GET: %d %v", res.status, res.header)
	}
}
