// Package certtest makes the X.509 certificates tests need: a CA, and
// leaves it signs (or that sign themselves) with a chosen subject, subject
// alternative names and validity, written as PEM files.
//
//	ca := certtest.NewCA(t, "Test CA")
//	server := ca.Leaf(t, certtest.Spec{CommonName: "gateway", DNSNames: []string{"localhost"}, IPs: certtest.Loopback})
//	client := ca.Leaf(t, certtest.Spec{CommonName: "billing", URIs: []string{"spiffe://example.org/billing"}})
//	server.WriteFiles(t, dir, "server") // dir/server.pem, dir/server-key.pem
package certtest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// Loopback is the IP SAN of servers on 127.0.0.1.
var Loopback = []net.IP{net.IPv4(127, 0, 0, 1)}

// CA is a certificate authority that signs leaves.
type CA struct {
	Cert *x509.Certificate
	Key  *ecdsa.PrivateKey
}

// Leaf is a certificate and its key.
type Leaf struct {
	Cert *x509.Certificate
	Key  *ecdsa.PrivateKey
}

// Spec says what a leaf certificate holds.
type Spec struct {
	CommonName   string
	Organization string
	DNSNames     []string
	IPs          []net.IP
	URIs         []string
	// NotBefore and NotAfter bound its validity; zero: from an hour ago to
	// a day from now.
	NotBefore, NotAfter time.Time
}

// NewCA returns a new self-signed CA named name.
func NewCA(t testing.TB, name string) *CA {
	t.Helper()
	key := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber:          serial(t),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &CA{Cert: cert, Key: key}
}

// Leaf returns a new certificate signed by ca, usable by TLS servers and
// clients alike.
func (ca *CA) Leaf(t testing.TB, s Spec) *Leaf {
	t.Helper()
	return newLeaf(t, s, ca.Cert, ca.Key)
}

// SelfSigned returns a new certificate that signs itself, as a device or a
// client without a CA presents.
func SelfSigned(t testing.TB, s Spec) *Leaf {
	t.Helper()
	return newLeaf(t, s, nil, nil)
}

// newLeaf returns a new certificate of s signed by parent, or by itself
// when parent is nil.
func newLeaf(t testing.TB, s Spec, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) *Leaf {
	t.Helper()
	key := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber: serial(t),
		Subject:      pkix.Name{CommonName: s.CommonName},
		DNSNames:     s.DNSNames,
		IPAddresses:  s.IPs,
		NotBefore:    s.NotBefore,
		NotAfter:     s.NotAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	if s.Organization != "" {
		tmpl.Subject.Organization = []string{s.Organization}
	}
	if tmpl.NotBefore.IsZero() {
		tmpl.NotBefore = time.Now().Add(-time.Hour)
	}
	if tmpl.NotAfter.IsZero() {
		tmpl.NotAfter = time.Now().Add(24 * time.Hour)
	}
	for _, raw := range s.URIs {
		u, err := url.Parse(raw)
		if err != nil {
			t.Fatal(err)
		}
		tmpl.URIs = append(tmpl.URIs, u)
	}
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &Leaf{Cert: cert, Key: key}
}

// Pool returns a pool holding ca alone.
func (ca *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.Cert)
	return p
}

// PEM returns ca's certificate in PEM.
func (ca *CA) PEM() []byte { return CertPEM(ca.Cert) }

// WriteFile writes ca's certificate to path, in PEM.
func (ca *CA) WriteFile(t testing.TB, path string) {
	t.Helper()
	write(t, path, ca.PEM())
}

// TLS returns l as a TLS certificate.
func (l *Leaf) TLS() tls.Certificate {
	return tls.Certificate{Certificate: [][]byte{l.Cert.Raw}, PrivateKey: l.Key, Leaf: l.Cert}
}

// CertPEM returns l's certificate in PEM.
func (l *Leaf) CertPEM() []byte { return CertPEM(l.Cert) }

// KeyPEM returns l's private key in PEM (PKCS #8).
func (l *Leaf) KeyPEM(t testing.TB) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(l.Key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

// WriteFiles writes l to dir/name.pem and its key to dir/name-key.pem, and
// returns both paths.
func (l *Leaf) WriteFiles(t testing.TB, dir, name string) (certFile, keyFile string) {
	t.Helper()
	certFile, keyFile = filepath.Join(dir, name+".pem"), filepath.Join(dir, name+"-key.pem")
	write(t, certFile, l.CertPEM())
	write(t, keyFile, l.KeyPEM(t))
	return certFile, keyFile
}

// CertPEM returns c in PEM.
func CertPEM(c *x509.Certificate) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
}

// Write replaces the file at path with data as a rotation does: written
// beside it, then renamed over it, so that no reader sees half a file.
func Write(t testing.TB, path string, data []byte) {
	t.Helper()
	write(t, path, data)
}

func write(t testing.TB, path string, data []byte) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func newKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

func serial(t testing.TB) *big.Int {
	t.Helper()
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		t.Fatal(err)
	}
	return n
}
