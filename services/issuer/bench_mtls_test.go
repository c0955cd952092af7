package issuer_test

import (
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/portcullis/portcullis/internal/certtest"
	"github.com/portcullis/portcullis/services/issuer"
)

// BenchmarkTokenEndpointCertificate measures a token request in process,
// the TLS handshake left out: "secret" is a client with a cached secret
// and no certificate (the baseline), "secret, bound" the same client
// presenting a certificate, "tls_client_auth" a chain verified against
// the client CA, "self_signed" a registered certificate.
func BenchmarkTokenEndpointCertificate(b *testing.B) {
	ca := certtest.NewCA(b, "clients")
	leaf := ca.Leaf(b, certtest.Spec{CommonName: "billing"}).TLS()
	self := certtest.SelfSigned(b, certtest.Spec{CommonName: "device"}).TLS()
	m := startMTLS(b, ca.Pool())
	secret := m.add(b, issuer.Client{ID: "reader", Grants: []string{"ORD.READ"}})
	m.add(b, issuer.Client{ID: "billing", Grants: []string{"ORD.READ"}, CertificateAuth: issuer.CertificateAuth{SubjectDN: "CN=billing"}})
	m.add(b, issuer.Client{ID: "device", Grants: []string{"ORD.READ"}, CertificateAuth: issuer.CertificateAuth{Certificates: []*x509.Certificate{self.Leaf}}})
	h := m.srv.Handler()
	for _, bc := range []struct {
		name   string
		header http.Header
		body   string
		cert   *tls.Certificate
	}{
		{"secret", form("reader", secret), "grant_type=client_credentials", nil},
		{"secret, bound", form("reader", secret), "grant_type=client_credentials", &self},
		{"tls_client_auth", form("", ""), "grant_type=client_credentials&client_id=billing", &leaf},
		{"self_signed", form("", ""), "grant_type=client_credentials&client_id=device", &self},
	} {
		b.Run(bc.name, func(b *testing.B) {
			state := &tls.ConnectionState{Version: tls.VersionTLS13, HandshakeComplete: true}
			if bc.cert != nil {
				state.PeerCertificates = []*x509.Certificate{bc.cert.Leaf}
			}
			b.ReportAllocs()
			for b.Loop() {
				req := httptest.NewRequest("POST", issuer.TokenPath, strings.NewReader(bc.body))
				req.Header = bc.header
				req.TLS = state
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				if rec.Code != http.StatusOK {
					b.Fatalf("status %d: %s", rec.Code, rec.Body)
				}
			}
		})
	}
}
