package issuer_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/http"
	"testing"

	"connectrpc.com/connect"
	"google.golang.org/genproto/googleapis/rpc/errdetails"

	"github.com/portcullis/portcullis/gateway/authz"
	"github.com/portcullis/portcullis/gateway/clientcert"
	"github.com/portcullis/portcullis/gateway/token"
	"github.com/portcullis/portcullis/internal/certtest"
	"github.com/portcullis/portcullis/services/issuer"
	"github.com/portcullis/portcullis/services/issuer/issuertest"
)

// TestCertificateBoundTokenAtTheGateway verifies a token of the TLS issuer
// as the gateway does, with gateway/token (the key set found through the
// issuer's metadata, over TLS) and gateway/authz. The gateway's own TLS
// listener is what puts the identity of a call's client certificate in
// the context; this test puts it there with clientcert.NewContext, as
// that listener does.
func TestCertificateBoundTokenAtTheGateway(t *testing.T) {
	t.Parallel()
	ca := certtest.NewCA(t, "clients")
	m := startMTLS(t, ca.Pool())
	m.add(t, issuer.Client{ID: "billing", Grants: []string{"LIC.READ_ORDERS"}, CertificateAuth: issuer.CertificateAuth{SANURI: "spiffe://example.com/billing"}})
	name := certtest.Spec{CommonName: "billing", URIs: []string{"spiffe://example.com/billing"}}
	cert := ca.Leaf(t, name).TLS()
	tok := m.token(t, &cert, "billing").accessToken(t)

	ctx := context.Background()
	v, err := token.NewVerifier(ctx, []token.Issuer{{Issuer: m.srv.Issuer(), Audiences: []string{issuertest.Audience}, Discover: true}},
		token.WithHTTPClient(m.client(nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(v.Close)
	a, err := authz.New(m.cat, v)
	if err != nil {
		t.Fatal(err)
	}
	const procedure = "/example.licensing.v1.LicensingService/GetLicenceOrder" // requires LIC.READ_ORDERS
	header := http.Header{"Authorization": {"Bearer " + tok}}

	refused := func(ctx context.Context, what string) {
		t.Helper()
		_, err := a.Check(ctx, procedure, header)
		if connect.CodeOf(err) != connect.CodeUnauthenticated || !errors.Is(err, token.ErrUnbound) {
			t.Fatalf("%s: %v, want Unauthenticated, token unbound", what, err)
		}
		if got := reasonOf(err); got != authz.ReasonTokenUnbound {
			t.Errorf("%s: reason %q, want %q", what, got, authz.ReasonTokenUnbound)
		}
	}
	refused(ctx, "without a certificate")
	other := ca.Leaf(t, name).TLS() // same names, another certificate
	refused(clientcert.NewContext(ctx, clientcert.FromCertificate(other.Leaf)), "with another certificate")

	p, err := a.Check(clientcert.NewContext(ctx, clientcert.FromCertificate(cert.Leaf)), procedure, header)
	if err != nil {
		t.Fatalf("with the certificate: %v", err)
	}
	sum := sha256.Sum256(cert.Certificate[0])
	if want := base64.RawURLEncoding.EncodeToString(sum[:]); p.ClientID != "billing" || p.Confirmation.CertificateThumbprint != want {
		t.Errorf("principal %s bound to %q, want billing bound to %q", p.ClientID, p.Confirmation.CertificateThumbprint, want)
	}
}

// reasonOf returns the reason of the google.rpc.ErrorInfo of a connect
// error.
func reasonOf(err error) string {
	var ce *connect.Error
	if !errors.As(err, &ce) {
		return ""
	}
	for _, d := range ce.Details() {
		if v, err := d.Value(); err == nil {
			if info, ok := v.(*errdetails.ErrorInfo); ok {
				return info.Reason
			}
		}
	}
	return ""
}
