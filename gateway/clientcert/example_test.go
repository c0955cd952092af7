package clientcert_test

import (
	"context"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"net/url"
	"testing"

	"github.com/portcullis/portcullis/gateway/clientcert"
	"github.com/portcullis/portcullis/internal/certtest"
)

func Example() {
	cert := &x509.Certificate{Raw: []byte("the DER of a certificate"), Subject: pkix.Name{CommonName: "billing", Organization: []string{"Example"}}}
	ctx := clientcert.NewContext(context.Background(), clientcert.FromCertificate(cert))

	if id, ok := clientcert.FromContext(ctx); ok {
		fmt.Println(id.Subject)
		fmt.Println(id.Thumbprint)
	}
	_, ok := clientcert.FromContext(context.Background())
	fmt.Println(ok)
	// Output:
	// CN=billing,O=Example
	// RWiVO5X5pHhKM-S0JcLCR60sq90gNr8hjsGnAyLdl9I
	// false
}

// The certificate an Envoy in front of the gateway passes in
// x-forwarded-client-cert.
func ExampleParseHeader() {
	t := &testing.T{}
	ca := certtest.NewCA(t, "Example CA")
	leaf := ca.Leaf(t, certtest.Spec{CommonName: "billing", URIs: []string{"spiffe://example.org/billing"}})
	header := `By=spiffe://example.org/envoy;Cert="` + url.PathEscape(string(leaf.CertPEM())) + `";Subject="CN=billing"`

	cert, _, err := clientcert.ParseHeader([]string{header})
	if err != nil {
		fmt.Println(err)
		return
	}
	// Verify cert against the client CAs here, then:
	id := clientcert.FromCertificate(cert)
	fmt.Println(id.Subject, id.URIs)
	_, _, err = clientcert.ParseHeader([]string{`Hash=00;Subject="CN=billing"`})
	fmt.Println(err)
	// Output:
	// CN=billing [spiffe://example.org/billing]
	// no Cert is given
}
