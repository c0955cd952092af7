package issuer_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/lestrrat-go/jwx/v2/jws"

	"github.com/portcullis/portcullis/gateway/token"
	licensingv1 "github.com/portcullis/portcullis/gen/example/licensing/v1"
	"github.com/portcullis/portcullis/gen/example/licensing/v1/licensingv1connect"
	"github.com/portcullis/portcullis/internal/gatewaytest"
	"github.com/portcullis/portcullis/internal/h2ctest"
	"github.com/portcullis/portcullis/internal/jwttest"
	"github.com/portcullis/portcullis/services/issuer"
	"github.com/portcullis/portcullis/services/issuer/issuertest"
	"github.com/portcullis/portcullis/services/licensing"
)

const (
	grantExchange = "urn:ietf:params:oauth:grant-type:token-exchange"
	extAudience   = "portcullis-exchange"
	otherResource = "https://reports.example"
)

// exchangeFixture is an external IdP, and an issuer trusting it for
// token exchange.
type exchangeFixture struct {
	idp    *jwttest.IdP
	signer *jwttest.Signer
	iss    *issuertest.Issuer
	// broker may exchange; plain may not.
	brokerSecret, plainSecret string
}

func newExchangeFixture(t *testing.T, public bool) *exchangeFixture {
	t.Helper()
	f := &exchangeFixture{signer: jwttest.NewEC("ext-1")}
	f.idp = jwttest.NewIdP(t, f.signer)
	f.iss = issuertest.Start(t, newCatalog(t), issuer.WithExchange(issuer.Exchange{
		Issuers: []issuer.ExternalIssuer{{
			Issuer:   token.Issuer{Issuer: f.idp.URL, Audiences: []string{extAudience}, Discover: true, Type: token.TypeAny},
			Subjects: map[string]string{"svc-billing": "billing"},
			Claims: []issuer.ClaimRule{
				{Claim: "groups", Value: "readers", Grants: []string{"LIC.READ_REQUIREMENTS"}},
				{Claim: "scope", Value: "orders", Grants: []string{"LIC.READ_ORDERS"}},
			},
		}},
		Resources: []string{otherResource},
		Public:    public,
	}))
	f.iss.AddClient(t, issuer.Client{ID: "billing", Grants: []string{"LIC.READ_ORDERS", "ORD.READ"}, Tier: "pro"})
	f.brokerSecret = f.iss.AddClient(t, issuer.Client{ID: "broker", Grants: []string{"ORD.READ"}, Exchange: true})
	f.plainSecret = f.iss.AddClient(t, issuer.Client{ID: "plain", Grants: []string{"ORD.READ"}})
	return f
}

// external mints a token of the external IdP for sub, valid for ttl, with
// extra claims.
func (f *exchangeFixture) external(sub string, ttl time.Duration, extra map[string]any) string {
	now := time.Now()
	c := map[string]any{"iss": f.idp.URL, "sub": sub, "aud": extAudience, "iat": now.Unix(), "exp": now.Add(ttl).Unix(), "jti": "ext-" + sub}
	for k, v := range extra {
		c[k] = v
	}
	return f.signer.Mint(map[string]any{"typ": "JWT"}, c)
}

// exchange posts a token exchange request, authenticated as id when id is
// not empty.
func (f *exchangeFixture) exchange(t *testing.T, id, secret string, params url.Values) response {
	t.Helper()
	return request(t, http.MethodPost, f.iss.URL+issuer.TokenPath, form(id, secret), params.Encode())
}

func exchangeParams(subject string, kv ...string) url.Values {
	v := url.Values{"grant_type": {grantExchange}, "subject_token": {subject}, "subject_token_type": {"urn:ietf:params:oauth:token-type:jwt"}}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == "" {
			v.Del(kv[i])
		} else {
			v.Set(kv[i], kv[i+1])
		}
	}
	return v
}

// exchanged is a successful answer and the claims of its token.
type exchanged struct {
	AccessToken     string `json:"access_token"`
	IssuedTokenType string `json:"issued_token_type"`
	TokenType       string `json:"token_type"`
	ExpiresIn       int64  `json:"expires_in"`
	Scope           string `json:"scope"`
	claims          map[string]any
	typ             string
}

func decodeExchanged(t *testing.T, f *exchangeFixture, r response) exchanged {
	t.Helper()
	if r.status != http.StatusOK {
		t.Fatalf("exchange: %d %s", r.status, r.body)
	}
	var e exchanged
	if err := json.Unmarshal(r.body, &e); err != nil {
		t.Fatal(err)
	}
	payload, err := jws.Verify([]byte(e.AccessToken), jws.WithKeySet(fetchJWKS(t, f.iss.URL)))
	if err != nil {
		t.Fatalf("the issued token does not verify against the issuer's JWKS: %v", err)
	}
	msg, err := jws.Parse([]byte(e.AccessToken))
	if err != nil {
		t.Fatal(err)
	}
	e.typ = msg.Signatures()[0].ProtectedHeaders().Type()
	if err := json.Unmarshal(payload, &e.claims); err != nil {
		t.Fatal(err)
	}
	return e
}

func TestTokenExchange(t *testing.T) {
	t.Parallel()
	f := newExchangeFixture(t, false)
	cases := []struct {
		name      string
		subject   string
		params    []string
		wantSub   string
		wantCID   string
		wantScope string
		wantAud   string
		wantAct   map[string]any
		wantTier  string
	}{
		{name: "subject mapped to a registry client", subject: f.external("svc-billing", 10*time.Minute, nil),
			wantSub: "svc-billing", wantCID: "billing", wantScope: "LIC.READ_ORDERS ORD.READ", wantAud: issuertest.Audience,
			wantAct: map[string]any{"sub": "broker"}, wantTier: "pro"},
		{name: "claim rules", subject: f.external("alice", 10*time.Minute, map[string]any{"groups": []string{"staff", "readers"}, "scope": "openid orders"}),
			wantSub: "alice", wantCID: "ext:alice", wantScope: "LIC.READ_REQUIREMENTS LIC.READ_ORDERS", wantAud: issuertest.Audience,
			wantAct: map[string]any{"sub": "broker"}},
		{name: "down-scoped", subject: f.external("svc-billing", 10*time.Minute, nil), params: []string{"scope", "ORD.READ"},
			wantSub: "svc-billing", wantCID: "billing", wantScope: "ORD.READ", wantAud: issuertest.Audience,
			wantAct: map[string]any{"sub": "broker"}, wantTier: "pro"},
		{name: "configured resource", subject: f.external("svc-billing", 10*time.Minute, nil), params: []string{"resource", otherResource},
			wantSub: "svc-billing", wantCID: "billing", wantScope: "LIC.READ_ORDERS ORD.READ", wantAud: otherResource,
			wantAct: map[string]any{"sub": "broker"}, wantTier: "pro"},
		{name: "own audience, access_token type", subject: f.external("svc-billing", 10*time.Minute, nil),
			params:  []string{"audience", issuertest.Audience, "subject_token_type", "urn:ietf:params:oauth:token-type:access_token", "requested_token_type", "urn:ietf:params:oauth:token-type:access_token"},
			wantSub: "svc-billing", wantCID: "billing", wantScope: "LIC.READ_ORDERS ORD.READ", wantAud: issuertest.Audience,
			wantAct: map[string]any{"sub": "broker"}, wantTier: "pro"},
		{name: "actor token", subject: f.external("alice", 10*time.Minute, map[string]any{"groups": []string{"readers"}}),
			params:  []string{"actor_token", f.external("robot", 10*time.Minute, nil), "actor_token_type", "urn:ietf:params:oauth:token-type:jwt"},
			wantSub: "alice", wantCID: "ext:alice", wantScope: "LIC.READ_REQUIREMENTS", wantAud: issuertest.Audience,
			wantAct: map[string]any{"sub": "robot", "iss": f.idp.URL}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := decodeExchanged(t, f, f.exchange(t, "broker", f.brokerSecret, exchangeParams(tc.subject, tc.params...)))
			if e.IssuedTokenType != "urn:ietf:params:oauth:token-type:access_token" || e.TokenType != "Bearer" {
				t.Errorf("issued_token_type %q, token_type %q", e.IssuedTokenType, e.TokenType)
			}
			if e.Scope != tc.wantScope {
				t.Errorf("scope %q, want %q", e.Scope, tc.wantScope)
			}
			// At most what the subject token has left: 600s when it was
			// minted, less the seconds a loaded machine took since.
			if e.ExpiresIn < 540 || e.ExpiresIn > 600 {
				t.Errorf("expires_in %d, want at most the subject token's 600s, and near it", e.ExpiresIn)
			}
			c := e.claims
			if e.typ != "at+jwt" {
				t.Errorf("typ %q", e.typ)
			}
			for _, name := range []string{"iat", "jti", "perms", "exp"} {
				if c[name] == nil {
					t.Errorf("no %s claim in %v", name, c)
				}
			}
			if c["jti"] == "ext-"+tc.wantSub {
				t.Error("the subject token's jti was copied")
			}
			if c["sub"] != tc.wantSub || c["client_id"] != tc.wantCID || c["aud"] != tc.wantAud || c["iss"] != f.iss.URL {
				t.Errorf("sub %v client_id %v aud %v iss %v", c["sub"], c["client_id"], c["aud"], c["iss"])
			}
			if tier, _ := c["tier"].(string); tier != tc.wantTier {
				t.Errorf("tier %q, want %q", tier, tc.wantTier)
			}
			act, _ := json.Marshal(c["act"])
			want, _ := json.Marshal(tc.wantAct)
			if string(act) != string(want) {
				t.Errorf("act %s, want %s", act, want)
			}
		})
	}
}

func TestTokenExchangeLifetimeBoundBySubject(t *testing.T) {
	t.Parallel()
	f := newExchangeFixture(t, false)
	e := decodeExchanged(t, f, f.exchange(t, "broker", f.brokerSecret, exchangeParams(f.external("svc-billing", 90*time.Second, nil))))
	if e.ExpiresIn > 90 || e.ExpiresIn < 80 {
		t.Errorf("expires_in %d, want at most the subject token's 90s", e.ExpiresIn)
	}
}

func TestTokenExchangeErrors(t *testing.T) {
	t.Parallel()
	f := newExchangeFixture(t, false)
	other := jwttest.NewEC("other")
	good := f.external("svc-billing", 10*time.Minute, nil)
	now := time.Now()
	expired := f.signer.Mint(nil, map[string]any{"iss": f.idp.URL, "sub": "svc-billing", "aud": extAudience, "iat": now.Add(-time.Hour).Unix(), "exp": now.Add(-30 * time.Minute).Unix()})
	forged := other.Mint(map[string]any{"kid": "ext-1"}, map[string]any{"iss": f.idp.URL, "sub": "svc-billing", "aud": extAudience, "exp": now.Add(time.Hour).Unix()})
	untrusted := other.Mint(nil, map[string]any{"iss": "https://elsewhere.example", "sub": "svc-billing", "aud": extAudience, "exp": now.Add(time.Hour).Unix()})
	wrongAud := f.signer.Mint(nil, map[string]any{"iss": f.idp.URL, "sub": "svc-billing", "aud": "someone-else", "exp": now.Add(time.Hour).Unix()})
	unmapped := f.external("mallory", 10*time.Minute, map[string]any{"groups": []string{"staff"}})
	own := f.iss.Token(t, "plain", f.plainSecret)
	cases := []struct {
		name       string
		id, secret string
		params     url.Values
		status     int
		code, desc string
	}{
		{"no subject_token", "broker", f.brokerSecret, exchangeParams(good, "subject_token", ""), 400, "invalid_request", "missing subject_token"},
		{"no subject_token_type", "broker", f.brokerSecret, exchangeParams(good, "subject_token_type", ""), 400, "invalid_request", "missing subject_token_type"},
		{"saml subject", "broker", f.brokerSecret, exchangeParams(good, "subject_token_type", "urn:ietf:params:oauth:token-type:saml2"), 400, "unsupported_token_type", "subject_token_type"},
		{"refresh token requested", "broker", f.brokerSecret, exchangeParams(good, "requested_token_type", "urn:ietf:params:oauth:token-type:refresh_token"), 400, "unsupported_token_type", "requested_token_type"},
		{"actor_token without type", "broker", f.brokerSecret, exchangeParams(good, "actor_token", good), 400, "invalid_request", "missing actor_token_type"},
		{"actor_token_type alone", "broker", f.brokerSecret, exchangeParams(good, "actor_token_type", "urn:ietf:params:oauth:token-type:jwt"), 400, "invalid_request", "actor_token_type without actor_token"},
		{"bad actor token", "broker", f.brokerSecret, exchangeParams(good, "actor_token", forged, "actor_token_type", "urn:ietf:params:oauth:token-type:jwt"), 400, "invalid_grant", "actor_token"},
		{"expired", "broker", f.brokerSecret, exchangeParams(expired), 400, "invalid_grant", "subject_token: token expired"},
		{"forged", "broker", f.brokerSecret, exchangeParams(forged), 400, "invalid_grant", "subject_token:"},
		{"untrusted issuer", "broker", f.brokerSecret, exchangeParams(untrusted), 400, "invalid_grant", "subject_token:"},
		{"the issuer's own token", "broker", f.brokerSecret, exchangeParams(own), 400, "invalid_grant", "subject_token:"},
		{"wrong audience", "broker", f.brokerSecret, exchangeParams(wrongAud), 400, "invalid_grant", "subject_token:"},
		{"garbage", "broker", f.brokerSecret, exchangeParams("not.a.jwt"), 400, "invalid_grant", "subject_token:"},
		{"no mapping", "broker", f.brokerSecret, exchangeParams(unmapped), 400, "invalid_grant", "no mapping rule"},
		{"unknown audience", "broker", f.brokerSecret, exchangeParams(good, "audience", "https://evil.example"), 400, "invalid_target", "https://evil.example"},
		{"unknown resource", "broker", f.brokerSecret, exchangeParams(good, "resource", "https://evil.example"), 400, "invalid_target", "https://evil.example"},
		{"audience and resource differ", "broker", f.brokerSecret, exchangeParams(good, "audience", issuertest.Audience, "resource", otherResource), 400, "invalid_target", "different targets"},
		{"scope beyond the mapping", "broker", f.brokerSecret, exchangeParams(good, "scope", "LIC.WRITE_ORDERS"), 400, "invalid_scope", "not granted"},
		{"unknown scope", "broker", f.brokerSecret, exchangeParams(good, "scope", "LIC.NOPE"), 400, "invalid_scope", "unknown permission"},
		{"client not flagged", "plain", f.plainSecret, exchangeParams(good), 400, "unauthorized_client", "may not exchange"},
		{"wrong secret", "broker", "wrong", exchangeParams(good), 401, "invalid_client", "authentication failed"},
		{"no client, not public", "", "", exchangeParams(good), 401, "invalid_client", "no client authentication"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := f.exchange(t, tc.id, tc.secret, tc.params)
			code, desc := r.oauthError(t)
			if r.status != tc.status || code != tc.code || !strings.Contains(desc, tc.desc) {
				t.Errorf("got %d %s %q, want %d %s containing %q", r.status, code, desc, tc.status, tc.code, tc.desc)
			}
			for _, secret := range []string{good, forged, expired} {
				if strings.Contains(desc, secret) {
					t.Error("the description echoes a token")
				}
			}
		})
	}
}

func TestTokenExchangePublic(t *testing.T) {
	t.Parallel()
	f := newExchangeFixture(t, true)
	e := decodeExchanged(t, f, f.exchange(t, "", "", exchangeParams(f.external("svc-billing", 10*time.Minute, nil))))
	if e.claims["act"] != nil {
		t.Errorf("act %v for a public exchange with no actor", e.claims["act"])
	}
	// A registered client still needs the flag.
	r := f.exchange(t, "plain", f.plainSecret, exchangeParams(f.external("svc-billing", 10*time.Minute, nil)))
	if code, _ := r.oauthError(t); code != "unauthorized_client" {
		t.Errorf("unflagged client: %s", code)
	}
}

func TestTokenExchangeDisabled(t *testing.T) {
	t.Parallel()
	iss := issuertest.Start(t, newCatalog(t))
	secret := iss.AddClient(t, issuer.Client{ID: "broker", Grants: []string{"ORD.READ"}, Exchange: true})
	r := request(t, http.MethodPost, iss.URL+issuer.TokenPath, form("broker", secret), exchangeParams("x.y.z").Encode())
	if code, desc := r.oauthError(t); r.status != 400 || code != "unsupported_grant_type" || !strings.HasSuffix(desc, "; use client_credentials") {
		t.Errorf("got %d %s %q", r.status, code, desc)
	}
	var m struct {
		GrantTypes []string `json:"grant_types_supported"`
	}
	json.Unmarshal([]byte(httptestGet(t, iss.Server.Handler(), issuer.MetadataPath)), &m)
	if slices.Contains(m.GrantTypes, grantExchange) {
		t.Errorf("grant_types_supported %v advertises token exchange", m.GrantTypes)
	}
}

func TestTokenExchangeMetadata(t *testing.T) {
	t.Parallel()
	f := newExchangeFixture(t, false)
	var m struct {
		GrantTypes []string `json:"grant_types_supported"`
	}
	if err := json.Unmarshal([]byte(httptestGet(t, f.iss.Server.Handler(), issuer.MetadataPath)), &m); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(m.GrantTypes, []string{"client_credentials", grantExchange}) {
		t.Errorf("grant_types_supported %v", m.GrantTypes)
	}
}

func TestWithExchangeInvalid(t *testing.T) {
	t.Parallel()
	cat := newCatalog(t)
	cases := []struct {
		name string
		x    issuer.Exchange
		want string
	}{
		{"no issuer", issuer.Exchange{}, "no trusted issuer"},
		{"unknown grant", issuer.Exchange{Issuers: []issuer.ExternalIssuer{{
			Issuer: token.Issuer{Issuer: "https://idp.example", Audiences: []string{"a"}, JWKS: jwttest.JWKS(jwttest.NewEC("k"))},
			Claims: []issuer.ClaimRule{{Claim: "groups", Value: "x", Grants: []string{"LIC.NOPE"}}},
		}}}, "LIC.NOPE"},
		{"empty rule", issuer.Exchange{Issuers: []issuer.ExternalIssuer{{
			Issuer: token.Issuer{Issuer: "https://idp.example", Audiences: []string{"a"}, JWKS: jwttest.JWKS(jwttest.NewEC("k"))},
			Claims: []issuer.ClaimRule{{Grants: []string{"ORD.READ"}}},
		}}}, "needs a claim and a value"},
		{"no key source", issuer.Exchange{Issuers: []issuer.ExternalIssuer{{Issuer: token.Issuer{Issuer: "https://idp.example", Audiences: []string{"a"}}}}}, "exchange:"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			_, err := issuer.New(issuer.Config{IssuerURL: "http://127.0.0.1:1", Audience: "a", KeyDir: dir + "/keys", RegistryPath: dir + "/r.yaml"},
				cat, issuer.WithExchange(tc.x), issuer.WithReloadInterval(0), issuer.WithHasher(issuertest.Hasher()), issuer.WithLogger(discardLogger()))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("New: %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

// TestExchangedTokenThroughGateway exchanges an external token with a
// plain HTTP POST, and calls a real gateway with the result: allowed by
// the mapped permissions, denied beyond them.
func TestExchangedTokenThroughGateway(t *testing.T) {
	t.Parallel()
	f := newExchangeFixture(t, false)
	_, lic := licensing.New().Handler()
	yaml := fmt.Sprintf(`
issuers:
  - issuer: %q
    audiences: [%q]
    discovery: true
    type: at+jwt
routes:
  - service: example.licensing.v1.LicensingService
    backend: %q
`, f.iss.URL, issuertest.Audience, h2ctest.Serve(t, lic))
	gw := gatewaytest.New(t, yaml)
	gwURL := h2ctest.Serve(t, gw.Handler())

	// Unmodified: a form POST with the standard library.
	params := exchangeParams(f.external("alice", 10*time.Minute, map[string]any{"groups": []string{"readers"}}))
	req, _ := http.NewRequest(http.MethodPost, f.iss.URL+issuer.TokenPath, strings.NewReader(params.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("broker", f.brokerSecret)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var out struct {
		AccessToken string `json:"access_token"`
	}
	err = json.NewDecoder(res.Body).Decode(&out)
	res.Body.Close()
	if err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("exchange: %d %v", res.StatusCode, err)
	}
	external := params.Get("subject_token")

	ctx := context.Background()
	call := func(tok string) licensingv1connect.LicensingServiceClient {
		return licensingv1connect.NewLicensingServiceClient(&http.Client{Transport: bearer{tok: tok, base: h2ctest.Transport()}}, gwURL)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err = call(out.AccessToken).ListRequirements(ctx, connect.NewRequest(&licensingv1.ListRequirementsRequest{Jurisdiction: "US-CA", BusinessKind: "restaurant"}))
		if err == nil || connect.CodeOf(err) != connect.CodeUnavailable || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond) // the gateway's first key fetch
	}
	if err != nil {
		t.Fatalf("allowed call: %v", err)
	}
	_, err = call(out.AccessToken).GetLicenceOrder(ctx, connect.NewRequest(&licensingv1.GetLicenceOrderRequest{Id: "lo-0001"}))
	if connect.CodeOf(err) != connect.CodePermissionDenied || !strings.Contains(err.Error(), "missing LIC.READ_ORDERS") {
		t.Errorf("call beyond the mapped permissions = %v, want PermissionDenied naming LIC.READ_ORDERS", err)
	}
	// The external token itself is not the gateway's to accept.
	_, err = call(external).ListRequirements(ctx, connect.NewRequest(&licensingv1.ListRequirementsRequest{Jurisdiction: "US-CA", BusinessKind: "restaurant"}))
	if connect.CodeOf(err) != connect.CodeUnauthenticated {
		t.Errorf("call with the external token = %v, want Unauthenticated", err)
	}
}

type bearer struct {
	tok  string
	base http.RoundTripper
}

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.tok)
	return b.base.RoundTrip(r)
}
