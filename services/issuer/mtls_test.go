package issuer_test

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"

	"github.com/portcullis/portcullis/gateway/catalog"
	adminv1 "github.com/portcullis/portcullis/gen/portcullis/admin/v1"
	"github.com/portcullis/portcullis/gen/portcullis/admin/v1/adminv1connect"
	"github.com/portcullis/portcullis/internal/certtest"
	"github.com/portcullis/portcullis/services/issuer"
	"github.com/portcullis/portcullis/services/issuer/issuertest"
)

// mtlsIssuer is an issuer served over TLS on 127.0.0.1, requesting client
// certificates.
type mtlsIssuer struct {
	srv      *issuer.Server
	hs       *httptest.Server
	registry string
	cat      *catalog.Catalog
}

// startMTLS starts an issuer with issuer.WithMutualTLS(clientCA) behind
// issuer.TLSConfig.
func startMTLS(t testing.TB, clientCA *x509.CertPool, opts ...issuer.Option) *mtlsIssuer {
	t.Helper()
	dir := t.TempDir()
	cat := newCatalog(t)
	hs := httptest.NewUnstartedServer(nil)
	hs.EnableHTTP2 = true
	m := &mtlsIssuer{hs: hs, registry: filepath.Join(dir, "clients.yaml"), cat: cat}
	srv, err := issuer.New(issuer.Config{
		IssuerURL:    "https://" + hs.Listener.Addr().String(),
		Audience:     issuertest.Audience,
		KeyDir:       filepath.Join(dir, "keys"),
		RegistryPath: m.registry,
	}, cat, append([]issuer.Option{
		issuer.WithHasher(fastHasher),
		issuer.WithReloadInterval(0),
		issuer.WithRevocationPollInterval(0),
		issuer.WithLogger(discardLogger()),
		issuer.WithMutualTLS(clientCA),
	}, opts...)...)
	if err != nil {
		hs.Listener.Close()
		t.Fatal(err)
	}
	m.srv = srv
	hs.Config.Handler = srv.Handler()
	hs.TLS = issuer.TLSConfig() // StartTLS adds the server's certificate
	hs.StartTLS()
	t.Cleanup(func() {
		hs.Close()
		srv.Close()
	})
	return m
}

// add registers c and reloads the issuer; it returns c's secret, if any.
func (m *mtlsIssuer) add(t testing.TB, c issuer.Client) string {
	t.Helper()
	secret, err := issuer.AddClient(m.registry, m.cat, c, issuer.WithHasher(fastHasher))
	if err != nil {
		t.Fatalf("add client %q: %v", c.ID, err)
	}
	if err := m.srv.Reload(); err != nil {
		t.Fatal(err)
	}
	return secret
}

// client returns an HTTP client of the issuer presenting cert, if not nil.
func (m *mtlsIssuer) client(cert *tls.Certificate) *http.Client {
	tr := m.hs.Client().Transport.(*http.Transport).Clone()
	if cert != nil {
		tr.TLSClientConfig.Certificates = []tls.Certificate{*cert}
	}
	return &http.Client{Transport: tr}
}

// post sends a form to path over a connection presenting cert.
func (m *mtlsIssuer) post(t testing.TB, cert *tls.Certificate, path string, header http.Header, body string) response {
	t.Helper()
	req, err := http.NewRequest("POST", m.srv.Issuer()+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header = header.Clone()
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	c := m.client(cert)
	res, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	c.CloseIdleConnections()
	return response{status: res.StatusCode, header: res.Header, body: b}
}

// token asks for a token as id, authenticated by cert alone.
func (m *mtlsIssuer) token(t testing.TB, cert *tls.Certificate, id string) response {
	t.Helper()
	return m.post(t, cert, issuer.TokenPath, http.Header{}, "grant_type=client_credentials&client_id="+url.QueryEscape(id))
}

// accessToken returns the access_token of a successful answer.
func (r response) accessToken(t testing.TB) string {
	t.Helper()
	if r.status != http.StatusOK {
		t.Fatalf("token endpoint answered %d %s", r.status, r.body)
	}
	var tr struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.Unmarshal(r.body, &tr); err != nil || tr.AccessToken == "" {
		t.Fatalf("token response %s: %v", r.body, err)
	}
	return tr.AccessToken
}

// cnfOf returns the cnf claim of a token, read from its payload (the
// signature is checked elsewhere: TestCertificateBoundTokenAtTheGateway),
// and whether it has one.
func cnfOf(t testing.TB, token string) (map[string]string, bool) {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("token has %d parts", len(parts))
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var claims struct {
		Cnf map[string]string `json:"cnf"`
	}
	if err := json.Unmarshal(payload, &claims); err != nil {
		t.Fatal(err)
	}
	return claims.Cnf, claims.Cnf != nil
}

// wantBoundTo checks that token's cnf is exactly the x5t#S256 of cert,
// computed here: base64url of the SHA-256 of the DER, and not hex.
func wantBoundTo(t testing.TB, token string, cert tls.Certificate) {
	t.Helper()
	sum := sha256.Sum256(cert.Certificate[0])
	want := base64.RawURLEncoding.EncodeToString(sum[:])
	cnf, ok := cnfOf(t, token)
	if !ok {
		t.Fatal("token has no cnf claim")
	}
	if len(cnf) != 1 || cnf["x5t#S256"] != want {
		t.Errorf("cnf = %v, want {x5t#S256: %s}", cnf, want)
	}
	if cnf["x5t#S256"] == hex.EncodeToString(sum[:]) {
		t.Error("cnf x5t#S256 is hex, not base64url")
	}
}

// wantInvalidClient checks an RFC 6749 §5.2 invalid_client answer that
// says nothing of the certificates or the client.
func wantInvalidClient(t testing.TB, r response, description string) {
	t.Helper()
	if r.status != http.StatusUnauthorized {
		t.Errorf("status %d, want 401 (%s)", r.status, r.body)
	}
	code, desc := r.oauthError(t)
	if code != "invalid_client" || !strings.Contains(desc, description) {
		t.Errorf("error %q %q, want invalid_client %q", code, desc, description)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	if r.header.Get("Cache-Control") != "no-store" || r.header.Get("WWW-Authenticate") == "" {
		t.Errorf("headers %v", r.header)
	}
	for _, secret := range []string{"CN=", "spiffe", "example.com", "BEGIN"} {
		if strings.Contains(string(r.body), secret) {
			t.Errorf("error body %s names %q", r.body, secret)
		}
	}
}

func TestTLSClientAuth(t *testing.T) {
	t.Parallel()
	ca, other := certtest.NewCA(t, "clients"), certtest.NewCA(t, "another CA")
	m := startMTLS(t, ca.Pool(), issuer.WithFailureLimit(100, time.Second)) // every failure below comes from 127.0.0.1
	right := certtest.Spec{
		CommonName: "billing", Organization: "Example",
		URIs:     []string{"spiffe://example.com/billing"},
		DNSNames: []string{"billing.example.com"},
	}
	wrong := certtest.Spec{
		CommonName: "intruder", Organization: "Example",
		URIs:     []string{"spiffe://example.com/intruder"},
		DNSNames: []string{"intruder.example.com"},
	}
	tests := []struct {
		name string
		auth issuer.CertificateAuth
	}{
		{"subject DN", issuer.CertificateAuth{SubjectDN: "CN=billing,O=Example"}},
		{"SAN URI", issuer.CertificateAuth{SANURI: "spiffe://example.com/billing"}},
		{"SAN DNS", issuer.CertificateAuth{SANDNS: "Billing.Example.com"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			id := "by-" + strings.ReplaceAll(strings.ToLower(tt.name), " ", "-")
			if secret := m.add(t, issuer.Client{ID: id, Grants: []string{"LIC.READ_ORDERS"}, CertificateAuth: tt.auth}); secret != "" {
				t.Error("AddClient gave a certificate client a secret")
			}
			good := ca.Leaf(t, right).TLS()
			wantBoundTo(t, m.token(t, &good, id).accessToken(t), good)

			bad := ca.Leaf(t, wrong).TLS()
			wantInvalidClient(t, m.token(t, &bad, id), "client authentication failed")
			foreign := other.Leaf(t, right).TLS() // names all the right things
			wantInvalidClient(t, m.token(t, &foreign, id), "client authentication failed")
			self := certtest.SelfSigned(t, right).TLS()
			wantInvalidClient(t, m.token(t, &self, id), "client authentication failed")
			wantInvalidClient(t, m.token(t, nil, id), "no client secret nor client certificate")
			// A certificate client has no secret to guess.
			wantInvalidClient(t, m.post(t, &good, issuer.TokenPath, form(id, ""), "grant_type=client_credentials"), "client authentication failed")
			wantInvalidClient(t, m.post(t, &good, issuer.TokenPath, form(id, "guess"), "grant_type=client_credentials"), "client authentication failed")
		})
	}
	t.Run("unknown client", func(t *testing.T) {
		t.Parallel()
		good := ca.Leaf(t, right).TLS()
		wantInvalidClient(t, m.token(t, &good, "nobody"), "client authentication failed")
	})
	t.Run("certificate without client_id", func(t *testing.T) {
		t.Parallel()
		good := ca.Leaf(t, right).TLS()
		r := m.post(t, &good, issuer.TokenPath, http.Header{}, "grant_type=client_credentials")
		wantInvalidClient(t, r, "without client_id")
	})
}

func TestTLSClientAuthWithoutClientCA(t *testing.T) {
	t.Parallel()
	ca := certtest.NewCA(t, "clients")
	m := startMTLS(t, nil) // self-signed clients only
	m.add(t, issuer.Client{ID: "billing", CertificateAuth: issuer.CertificateAuth{SubjectDN: "CN=billing"}})
	good := ca.Leaf(t, certtest.Spec{CommonName: "billing"}).TLS()
	wantInvalidClient(t, m.token(t, &good, "billing"), "client authentication failed")
}

func TestSelfSignedTLSClientAuth(t *testing.T) {
	t.Parallel()
	ca := certtest.NewCA(t, "clients")
	m := startMTLS(t, ca.Pool())
	name := certtest.Spec{CommonName: "device-7"}
	registered, second := certtest.SelfSigned(t, name).TLS(), certtest.SelfSigned(t, name).TLS()
	m.add(t, issuer.Client{ID: "device-7", Grants: []string{"ORD.READ"}, CertificateAuth: issuer.CertificateAuth{
		Certificates: []*x509.Certificate{registered.Leaf, second.Leaf},
	}})
	for _, cert := range []tls.Certificate{registered, second} {
		wantBoundTo(t, m.token(t, &cert, "device-7").accessToken(t), cert)
	}
	unregistered := certtest.SelfSigned(t, name).TLS() // same subject, another key
	wantInvalidClient(t, m.token(t, &unregistered, "device-7"), "client authentication failed")
	issued := ca.Leaf(t, name).TLS() // a CA counts for nothing here
	wantInvalidClient(t, m.token(t, &issued, "device-7"), "client authentication failed")
	wantInvalidClient(t, m.token(t, nil, "device-7"), "no client secret nor client certificate")

	clients, err := issuer.ListClients(m.registry)
	if err != nil {
		t.Fatal(err)
	}
	got := clients[0].CertificateAuth
	if got.Method() != issuer.AuthSelfSignedTLSClient || len(got.Certificates) != 2 || !got.Certificates[0].Equal(registered.Leaf) {
		t.Errorf("listed %+v", got)
	}
}

func TestSecretClientGetsBoundToken(t *testing.T) {
	t.Parallel()
	m := startMTLS(t, nil)
	secret := m.add(t, issuer.Client{ID: "reader", Grants: []string{"ORD.READ"}})
	mandatory := m.add(t, issuer.Client{ID: "bound-only", Grants: []string{"ORD.READ"}, CertificateBoundTokens: true})
	cert := certtest.SelfSigned(t, certtest.Spec{CommonName: "anything"}).TLS()
	body := "grant_type=client_credentials"

	// A certificate the client holds binds its token, whatever it names.
	wantBoundTo(t, m.post(t, &cert, issuer.TokenPath, form("reader", secret), body).accessToken(t), cert)
	if cnf, ok := cnfOf(t, m.post(t, nil, issuer.TokenPath, form("reader", secret), body).accessToken(t)); ok {
		t.Errorf("token without a certificate has cnf %v", cnf)
	}

	wantBoundTo(t, m.post(t, &cert, issuer.TokenPath, form("bound-only", mandatory), body).accessToken(t), cert)
	r := m.post(t, nil, issuer.TokenPath, form("bound-only", mandatory), body)
	if code, desc := r.oauthError(t); r.status != http.StatusBadRequest || code != "invalid_request" || !strings.Contains(desc, "tls_client_certificate_bound_access_tokens") {
		t.Errorf("without a certificate: %d %s, want 400 invalid_request", r.status, r.body)
	}
	if strings.Contains(string(r.body), mandatory) {
		t.Error("the answer echoes the secret")
	}
}

func TestBoundTokensNeedMutualTLS(t *testing.T) {
	t.Parallel()
	// Without issuer.WithMutualTLS, no token can be bound: a client that
	// must have bound tokens gets none.
	iss := issuertest.Start(t, newCatalog(t))
	secret := iss.AddClient(t, issuer.Client{ID: "bound-only", CertificateBoundTokens: true})
	r := request(t, "POST", iss.Server.TokenURL(), form("bound-only", secret), "grant_type=client_credentials")
	if code, _ := r.oauthError(t); r.status != http.StatusBadRequest || code != "invalid_request" {
		t.Errorf("%d %s, want 400 invalid_request", r.status, r.body)
	}
}

func TestIntrospectionShowsCnf(t *testing.T) {
	t.Parallel()
	m := startMTLS(t, nil)
	rsSecret := m.add(t, issuer.Client{ID: "gateway", Introspect: true})
	secret := m.add(t, issuer.Client{ID: "reader", Grants: []string{"ORD.READ"}})
	cert := certtest.SelfSigned(t, certtest.Spec{CommonName: "reader"}).TLS()
	body := "grant_type=client_credentials"
	bound := m.post(t, &cert, issuer.TokenPath, form("reader", secret), body).accessToken(t)
	bearer := m.post(t, nil, issuer.TokenPath, form("reader", secret), body).accessToken(t)

	introspect := func(tok string) map[string]any {
		r := m.post(t, nil, issuer.IntrospectionPath, form("gateway", rsSecret), "token="+tok)
		if r.status != http.StatusOK {
			t.Fatalf("introspection %d %s", r.status, r.body)
		}
		var got map[string]any
		if err := json.Unmarshal(r.body, &got); err != nil {
			t.Fatal(err)
		}
		if got["active"] != true {
			t.Fatalf("introspection %s", r.body)
		}
		return got
	}
	sum := sha256.Sum256(cert.Certificate[0])
	want := map[string]any{"x5t#S256": base64.RawURLEncoding.EncodeToString(sum[:])}
	if got := introspect(bound)["cnf"]; !jsonEqual(got, want) {
		t.Errorf("cnf of a bound token = %v, want %v", got, want)
	}
	if got, ok := introspect(bearer)["cnf"]; ok {
		t.Errorf("cnf of a bearer token = %v", got)
	}
}

func jsonEqual(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}

func TestMetadataMutualTLS(t *testing.T) {
	t.Parallel()
	read := func(h http.Handler) map[string]any {
		var m map[string]any
		if err := json.Unmarshal([]byte(httptestGet(t, h, issuer.MetadataPath)), &m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	ca := certtest.NewCA(t, "clients")
	withCA := read(startMTLS(t, ca.Pool()).srv.Handler())
	if withCA["tls_client_certificate_bound_access_tokens"] != true {
		t.Errorf("tls_client_certificate_bound_access_tokens = %v", withCA["tls_client_certificate_bound_access_tokens"])
	}
	for _, key := range []string{"token_endpoint_auth_methods_supported", "revocation_endpoint_auth_methods_supported", "introspection_endpoint_auth_methods_supported"} {
		want := []any{"client_secret_basic", "client_secret_post", "tls_client_auth", "self_signed_tls_client_auth"}
		if !jsonEqual(withCA[key], want) {
			t.Errorf("%s = %v, want %v", key, withCA[key], want)
		}
	}
	selfOnly := read(startMTLS(t, nil).srv.Handler())
	if want := []any{"client_secret_basic", "client_secret_post", "self_signed_tls_client_auth"}; !jsonEqual(selfOnly["token_endpoint_auth_methods_supported"], want) {
		t.Errorf("without a client CA: %v, want %v", selfOnly["token_endpoint_auth_methods_supported"], want)
	}
	plain := read(issuertest.Start(t, newCatalog(t)).Server.Handler())
	if _, ok := plain["tls_client_certificate_bound_access_tokens"]; ok {
		t.Error("an issuer without mutual TLS claims bound tokens")
	}
	if want := []any{"client_secret_basic", "client_secret_post"}; !jsonEqual(plain["token_endpoint_auth_methods_supported"], want) {
		t.Errorf("without mutual TLS: %v", plain["token_endpoint_auth_methods_supported"])
	}
}

// TestAdminCreatesCertificateClients registers certificate clients
// through the administration service, with no file edit: one of
// tls_client_auth by its SAN URI, with bound tokens, and one of
// self_signed_tls_client_auth by its certificate. Neither gets a secret,
// each gets a token with its certificate alone, and both are listed with
// how they authenticate.
func TestAdminCreatesCertificateClients(t *testing.T) {
	t.Parallel()
	ca := certtest.NewCA(t, "clients")
	m := startMTLS(t, ca.Pool(), issuer.WithAdmin())
	admin := m.admin(t)
	ctx := context.Background()

	billing := ca.Leaf(t, certtest.Spec{CommonName: "billing", URIs: []string{"spiffe://example.com/billing"}}).TLS()
	self := certtest.SelfSigned(t, certtest.Spec{CommonName: "edge"})
	for _, tc := range []struct {
		req    *adminv1.CreateClientRequest
		method string
		cert   tls.Certificate
	}{
		{&adminv1.CreateClientRequest{Id: "billing", Grants: []string{"LIC.READ_ORDERS"},
			CertificateAuth: &adminv1.CertificateAuth{SanUri: "spiffe://example.com/billing"}, CertificateBoundTokens: true},
			issuer.AuthTLSClient, billing},
		{&adminv1.CreateClientRequest{Id: "edge", Grants: []string{"LIC.READ_REQUIREMENTS"},
			CertificateAuth: &adminv1.CertificateAuth{CertificatesPem: []string{string(self.CertPEM())}}},
			issuer.AuthSelfSignedTLSClient, self.TLS()},
	} {
		id := tc.req.GetId()
		res, err := admin.CreateClient(ctx, connect.NewRequest(tc.req))
		if err != nil {
			t.Fatalf("create %s: %v", id, err)
		}
		if c := res.Msg.GetClient(); res.Msg.GetSecret() != "" || c.GetTokenEndpointAuthMethod() != tc.method {
			t.Errorf("create %s: %v with a secret of %d characters, want %s and none", id, c, len(res.Msg.GetSecret()), tc.method)
		}
		wantBoundTo(t, m.token(t, &tc.cert, id).accessToken(t), tc.cert)
		wantInvalidClient(t, m.post(t, nil, issuer.TokenPath, form(id, ""), "grant_type=client_credentials"), "client authentication failed")
	}
	listed, err := admin.ListClients(ctx, connect.NewRequest(&adminv1.ListClientsRequest{}))
	if err != nil {
		t.Fatal(err)
	}
	byID := map[string]*adminv1.Client{}
	for _, c := range listed.Msg.GetClients() {
		byID[c.GetId()] = c
	}
	if c := byID["billing"]; c.GetCertificateAuth().GetSanUri() != "spiffe://example.com/billing" || !c.GetCertificateBoundTokens() {
		t.Errorf("listed billing = %v", c)
	}
	if c := byID["edge"]; len(c.GetCertificateAuth().GetCertificatesPem()) != 1 || c.GetCertificateAuth().GetCertificatesPem()[0] != string(self.CertPEM()) {
		t.Errorf("listed edge = %v", c)
	}
	if c := byID["admin"]; c.GetTokenEndpointAuthMethod() != issuer.AuthClientSecret || c.GetCertificateAuth() != nil {
		t.Errorf("listed admin = %v", c)
	}
	if _, err := admin.RotateSecret(ctx, connect.NewRequest(&adminv1.RotateSecretRequest{Id: "billing"})); connect.CodeOf(err) != connect.CodeInvalidArgument || !strings.Contains(err.Error(), "has no secret to rotate") {
		t.Errorf("rotating a certificate client's secret: %v, want InvalidArgument", err)
	}

	for name, tc := range map[string]struct {
		auth *adminv1.CertificateAuth
		want string
	}{
		"empty":      {&adminv1.CertificateAuth{}, "names no subject_dn, san_uri, san_dns or certificate"},
		"not PEM":    {&adminv1.CertificateAuth{CertificatesPem: []string{"MIIB..."}}, "certificates_pem[0] is not one PEM certificate"},
		"two in one": {&adminv1.CertificateAuth{CertificatesPem: []string{string(self.CertPEM()) + string(self.CertPEM())}}, "certificates_pem[0] is not one PEM certificate"},
		"two names":  {&adminv1.CertificateAuth{SubjectDn: "CN=x", SanDns: "x.example.com"}, "needs exactly one of"},
		"not X.509":  {&adminv1.CertificateAuth{CertificatesPem: []string{"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"}}, "certificates_pem[0]"},
		"expired":    {&adminv1.CertificateAuth{CertificatesPem: []string{string(certtest.SelfSigned(t, certtest.Spec{CommonName: "old", NotBefore: time.Now().Add(-48 * time.Hour), NotAfter: time.Now().Add(-24 * time.Hour)}).CertPEM())}}, "certificates_pem[0] expired on"},
	} {
		_, err := admin.CreateClient(ctx, connect.NewRequest(&adminv1.CreateClientRequest{Id: "bad", CertificateAuth: tc.auth}))
		if connect.CodeOf(err) != connect.CodeInvalidArgument || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want InvalidArgument %q", name, err, tc.want)
		}
	}
}

// TestAdminCertificateClientNeedsAClientCA: an issuer with no client CA
// verifies no tls_client_auth chain, so the administration service
// refuses such a client, and takes a self-signed one.
func TestAdminCertificateClientNeedsAClientCA(t *testing.T) {
	t.Parallel()
	admin := startMTLS(t, nil, issuer.WithAdmin()).admin(t)
	ctx := context.Background()
	_, err := admin.CreateClient(ctx, connect.NewRequest(&adminv1.CreateClientRequest{Id: "billing", CertificateAuth: &adminv1.CertificateAuth{SanDns: "billing.example.com"}}))
	if connect.CodeOf(err) != connect.CodeFailedPrecondition || !strings.Contains(err.Error(), "no client CA") {
		t.Errorf("a tls_client_auth client without a client CA: %v, want FailedPrecondition", err)
	}
	self := certtest.SelfSigned(t, certtest.Spec{CommonName: "edge"})
	if _, err := admin.CreateClient(ctx, connect.NewRequest(&adminv1.CreateClientRequest{Id: "edge", CertificateAuth: &adminv1.CertificateAuth{CertificatesPem: []string{string(self.CertPEM())}}})); err != nil {
		t.Errorf("a self-signed client without a client CA: %v", err)
	}
}

// admin registers an administrator with a secret and returns a client of
// the administration service calling with its token.
func (m *mtlsIssuer) admin(t *testing.T) adminv1connect.ClientAdminServiceClient {
	t.Helper()
	secret := m.add(t, issuer.Client{ID: "admin", Grants: adminGrants})
	tok := m.post(t, nil, issuer.TokenPath, form("admin", secret), "grant_type=client_credentials").accessToken(t)
	bearer := connect.UnaryInterceptorFunc(func(next connect.UnaryFunc) connect.UnaryFunc {
		return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
			req.Header().Set("Authorization", "Bearer "+tok)
			return next(ctx, req)
		}
	})
	return adminv1connect.NewClientAdminServiceClient(m.client(nil), m.srv.Issuer(), connect.WithInterceptors(bearer))
}
