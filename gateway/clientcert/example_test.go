package clientcert_test

import (
	"context"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"

	"github.com/portcullis/portcullis/gateway/clientcert"
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
