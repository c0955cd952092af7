package issuer_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"google.golang.org/protobuf/reflect/protoregistry"

	"github.com/portcullis/portcullis/gateway/catalog"
	"github.com/portcullis/portcullis/gateway/clientcert"

	"github.com/portcullis/portcullis/services/issuer"
)

func ExampleWithMutualTLS() {
	cat, err := catalog.New(protoregistry.GlobalFiles)
	if err != nil {
		log.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "issuer")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	registry := filepath.Join(dir, "clients.yaml")

	// A device with a self-signed certificate, registered without a secret.
	device := exampleSelfSigned("device-7")
	if _, err := issuer.AddClient(registry, cat, issuer.Client{
		ID:              "device-7",
		Grants:          []string{"ORD.READ"},
		CertificateAuth: issuer.CertificateAuth{Certificates: []*x509.Certificate{device.Leaf}},
	}); err != nil {
		log.Fatal(err)
	}

	hs := httptest.NewUnstartedServer(nil)
	srv, err := issuer.New(issuer.Config{
		IssuerURL:    "https://" + hs.Listener.Addr().String(),
		Audience:     "portcullis",
		KeyDir:       filepath.Join(dir, "keys"),
		RegistryPath: registry,
	}, cat, issuer.WithMutualTLS(nil), issuer.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()
	hs.Config.Handler = srv.Handler()
	hs.TLS = issuer.TLSConfig() // in production: issuer.TLSConfig(cert)
	hs.StartTLS()
	defer hs.Close()

	// The device authenticates with its certificate and client_id.
	tr := hs.Client().Transport.(*http.Transport).Clone()
	tr.TLSClientConfig.Certificates = []tls.Certificate{device}
	res, err := (&http.Client{Transport: tr}).PostForm(srv.TokenURL(), url.Values{"grant_type": {"client_credentials"}, "client_id": {"device-7"}})
	if err != nil {
		log.Fatal(err)
	}
	defer res.Body.Close()
	var body struct {
		AccessToken string `json:"access_token"`
	}
	json.NewDecoder(res.Body).Decode(&body)

	// Its token is bound to the certificate.
	fmt.Println(res.Status)
	fmt.Println(strings.Contains(tokenPayload(body.AccessToken), `"cnf":{"x5t#S256":"`+clientcert.Thumbprint(device.Leaf.Raw)+`"}`))
	// Output:
	// 200 OK
	// true
}

// exampleSelfSigned makes a self-signed client certificate.
func exampleSelfSigned(name string) tls.Certificate {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		log.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: name},
		NotBefore:    time.Now().Add(-time.Minute),
		NotAfter:     time.Now().Add(time.Hour),
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		log.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		log.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
}

// tokenPayload returns the claims of a JWS in compact form, unverified.
func tokenPayload(tok string) string {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return ""
	}
	b, _ := base64.RawURLEncoding.DecodeString(parts[1])
	return string(b)
}
