package tlsfiles_test

import (
	"crypto/tls"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/portcullis/portcullis/gateway/tlsfiles"
	"github.com/portcullis/portcullis/internal/certtest"
)

// A listener that serves the certificate on disk and asks clients for
// one of the CAs on disk, both followed as they rotate.
func ExampleServerConfig() {
	dir, _ := os.MkdirTemp("", "tlsfiles")
	defer os.RemoveAll(dir)
	t := &testing.T{}
	ca := certtest.NewCA(t, "Example CA")
	certFile, keyFile := ca.Leaf(t, certtest.Spec{CommonName: "gateway"}).WriteFiles(t, dir, "server")
	ca.WriteFile(t, filepath.Join(dir, "clients.pem"))

	cert, err := tlsfiles.LoadKeyPair(certFile, keyFile)
	if err != nil {
		fmt.Println(err)
		return
	}
	cas, err := tlsfiles.LoadPool([]string{filepath.Join(dir, "clients.pem")})
	if err != nil {
		fmt.Println(err)
		return
	}
	cfg := tlsfiles.ServerConfig(&tls.Config{MinVersion: tls.VersionTLS12}, cert, cas, tls.VerifyClientCertIfGiven)
	fmt.Println(cfg.GetConfigForClient != nil, cert.Certificate().Leaf.Subject.CommonName)
	// Output: true gateway
}
