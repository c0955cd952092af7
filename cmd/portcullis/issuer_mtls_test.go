package main

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestIssuerServeMutualTLS(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	registry, keys := filepath.Join(dir, "clients.yaml"), filepath.Join(dir, "keys")
	caCert, caKey := makeCert(t, &x509.Certificate{Subject: pkix.Name{CommonName: "test CA"}, IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}, nil, nil)
	serverCert, serverKey := makeCert(t, &x509.Certificate{Subject: pkix.Name{CommonName: "issuer"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}, caCert, caKey)
	spiffe, _ := url.Parse("spiffe://example.com/billing")
	clientCert, clientKey := makeCert(t, &x509.Certificate{Subject: pkix.Name{CommonName: "billing"}, URIs: []*url.URL{spiffe}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}, caCert, caKey)
	writePEM(t, filepath.Join(dir, "ca.pem"), "CERTIFICATE", caCert.Raw)
	writePEM(t, filepath.Join(dir, "server.pem"), "CERTIFICATE", serverCert.Raw)
	der, err := x509.MarshalPKCS8PrivateKey(serverKey)
	if err != nil {
		t.Fatal(err)
	}
	writePEM(t, filepath.Join(dir, "server-key.pem"), "PRIVATE KEY", der)

	code, stdout, stderr := runCLI(t, "clients", "add", "billing", "--grant", "ORD.READ", "--tls-san-uri", "spiffe://example.com/billing", "--registry", registry)
	if code != 0 || stdout != "client_id:                  billing\ntoken_endpoint_auth_method: tls_client_auth\n" {
		t.Fatalf("clients add = %d, %q, %q", code, stdout, stderr)
	}

	ctx, cancel := context.WithCancel(context.Background())
	out, outW := io.Pipe()
	exit := make(chan int, 1)
	go func() {
		exit <- run(ctx, []string{"issuer", "serve", "--listen", "127.0.0.1:0", "--keys", keys, "--registry", registry, "--log-level", "error",
			"--tls-cert", filepath.Join(dir, "server.pem"), "--tls-key", filepath.Join(dir, "server-key.pem"), "--client-ca", filepath.Join(dir, "ca.pem")}, outW, io.Discard)
		outW.Close()
	}()
	lines := bufio.NewScanner(out)
	if !lines.Scan() || !strings.HasPrefix(lines.Text(), "Token issuer https://127.0.0.1:") {
		t.Fatalf("issuer serve printed %q", lines.Text())
	}
	issuerURL := strings.TrimPrefix(lines.Text(), "Token issuer ")
	go io.Copy(io.Discard, out)

	roots := x509.NewCertPool()
	roots.AddCert(caCert)
	post := func(cert *tls.Certificate) (int, map[string]any) {
		t.Helper()
		tlsConfig := &tls.Config{RootCAs: roots}
		if cert != nil {
			tlsConfig.Certificates = []tls.Certificate{*cert}
		}
		c := &http.Client{Transport: &http.Transport{TLSClientConfig: tlsConfig}}
		defer c.CloseIdleConnections()
		res, err := c.PostForm(issuerURL+"/oauth2/token", url.Values{"grant_type": {"client_credentials"}, "client_id": {"billing"}})
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var body map[string]any
		if err := json.NewDecoder(res.Body).Decode(&body); err != nil {
			t.Fatal(err)
		}
		return res.StatusCode, body
	}
	status, body := post(&tls.Certificate{Certificate: [][]byte{clientCert.Raw}, PrivateKey: clientKey})
	tok, _ := body["access_token"].(string)
	if status != http.StatusOK || tok == "" {
		t.Fatalf("with the certificate: %d %v", status, body)
	}
	payload, err := base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[1])
	if err != nil {
		t.Fatal(err)
	}
	var claims struct {
		Cnf map[string]string `json:"cnf"`
	}
	json.Unmarshal(payload, &claims)
	sum := sha256.Sum256(clientCert.Raw)
	if want := base64.RawURLEncoding.EncodeToString(sum[:]); claims.Cnf["x5t#S256"] != want {
		t.Errorf("cnf %v, want x5t#S256 %s", claims.Cnf, want)
	}
	if status, body := post(nil); status != http.StatusUnauthorized || body["error"] != "invalid_client" {
		t.Errorf("without a certificate: %d %v", status, body)
	}

	cancel()
	if code := <-exit; code != 0 {
		t.Errorf("issuer serve exited %d after the interrupt", code)
	}
}

func TestIssuerServeClientCAWithoutTLS(t *testing.T) {
	t.Parallel()
	code, _, stderr := runCLI(t, "issuer", "serve", "--listen", "127.0.0.1:0", "--client-ca", "ca.pem")
	if code != 2 || !strings.Contains(stderr, "need --tls-cert") {
		t.Errorf("issuer serve --client-ca without --tls-cert = %d, %q", code, stderr)
	}
}

// makeCert makes a certificate from tmpl, signed by parent (self-signed
// when nil).
func makeCert(t *testing.T, tmpl, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl.SerialNumber = big.NewInt(time.Now().UnixNano())
	tmpl.NotBefore, tmpl.NotAfter = time.Now().Add(-time.Hour), time.Now().Add(time.Hour)
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
	return cert, key
}

func writePEM(t *testing.T, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}
