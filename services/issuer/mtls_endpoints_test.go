package issuer_test

import (
	"crypto/x509"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/portcullis/portcullis/gateway/token"
	"github.com/portcullis/portcullis/internal/certtest"
	"github.com/portcullis/portcullis/internal/jwttest"
	"github.com/portcullis/portcullis/services/issuer"
)

func TestCertificateClientIntrospectsAndRevokes(t *testing.T) {
	t.Parallel()
	m := startMTLS(t, nil)
	gwCert := certtest.SelfSigned(t, certtest.Spec{CommonName: "gateway"}).TLS()
	devCert := certtest.SelfSigned(t, certtest.Spec{CommonName: "device"}).TLS()
	m.add(t, issuer.Client{ID: "gateway", Introspect: true, CertificateAuth: issuer.CertificateAuth{Certificates: []*x509.Certificate{gwCert.Leaf}}})
	m.add(t, issuer.Client{ID: "device", Grants: []string{"ORD.READ"}, CertificateAuth: issuer.CertificateAuth{Certificates: []*x509.Certificate{devCert.Leaf}}})
	tok := m.token(t, &devCert, "device").accessToken(t)

	active := func() bool {
		t.Helper()
		r := m.post(t, &gwCert, issuer.IntrospectionPath, http.Header{}, "client_id=gateway&token="+tok)
		var got struct {
			Active bool `json:"active"`
		}
		if r.status != http.StatusOK || json.Unmarshal(r.body, &got) != nil {
			t.Fatalf("introspection %d %s", r.status, r.body)
		}
		return got.Active
	}
	if !active() {
		t.Fatal("a fresh token is inactive")
	}
	// Another client's certificate does not authenticate the gateway.
	wantInvalidClient(t, m.post(t, &devCert, issuer.IntrospectionPath, http.Header{}, "client_id=gateway&token="+tok), "client authentication failed")

	wantInvalidClient(t, m.post(t, &gwCert, issuer.RevocationPath, http.Header{}, "client_id=device&token="+tok), "client authentication failed")
	if r := m.post(t, &devCert, issuer.RevocationPath, http.Header{}, "client_id=device&token="+tok); r.status != http.StatusOK {
		t.Fatalf("revocation %d %s", r.status, r.body)
	}
	if active() {
		t.Error("a revoked token is active")
	}
}

func TestExchangeOverMutualTLS(t *testing.T) {
	t.Parallel()
	signer := jwttest.NewEC("ext-1")
	idp := jwttest.NewIdP(t, signer)
	m := startMTLS(t, nil, issuer.WithExchange(issuer.Exchange{Issuers: []issuer.ExternalIssuer{{
		Issuer:   token.Issuer{Issuer: idp.URL, Audiences: []string{extAudience}, Discover: true, Type: token.TypeAny},
		Subjects: map[string]string{"svc-billing": "billing", "svc-reader": "reader"},
	}}}))
	m.add(t, issuer.Client{ID: "billing", Grants: []string{"LIC.READ_ORDERS"}, CertificateBoundTokens: true})
	m.add(t, issuer.Client{ID: "reader", Grants: []string{"ORD.READ"}})
	brokerSecret := m.add(t, issuer.Client{ID: "broker", Exchange: true})
	cert := certtest.SelfSigned(t, certtest.Spec{CommonName: "broker"}).TLS()

	exchange := func(withCert bool, sub string) response {
		t.Helper()
		now := time.Now()
		subject := signer.Mint(map[string]any{"typ": "JWT"}, map[string]any{"iss": idp.URL, "sub": sub, "aud": extAudience, "iat": now.Unix(), "exp": now.Add(time.Hour).Unix(), "jti": "ext-" + sub})
		body := url.Values{"grant_type": {grantExchange}, "subject_token": {subject}, "subject_token_type": {"urn:ietf:params:oauth:token-type:jwt"}}.Encode()
		if !withCert {
			return m.post(t, nil, issuer.TokenPath, form("broker", brokerSecret), body)
		}
		return m.post(t, &cert, issuer.TokenPath, form("broker", brokerSecret), body)
	}
	wantBoundTo(t, exchange(true, "svc-billing").accessToken(t), cert)
	wantBoundTo(t, exchange(true, "svc-reader").accessToken(t), cert)
	if cnf, ok := cnfOf(t, exchange(false, "svc-reader").accessToken(t)); ok {
		t.Errorf("exchanged without a certificate: cnf %v", cnf)
	}
	r := exchange(false, "svc-billing") // billing gets only bound tokens
	if code, desc := r.oauthError(t); r.status != http.StatusBadRequest || code != "invalid_request" || !strings.Contains(desc, "'billing'") {
		t.Errorf("exchange for billing without a certificate: %d %s", r.status, r.body)
	}
}
