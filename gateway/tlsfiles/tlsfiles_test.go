package tlsfiles_test

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io/fs"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/portcullis/portcullis/gateway/tlsfiles"
	"github.com/portcullis/portcullis/internal/certtest"
	"github.com/portcullis/portcullis/internal/logtest"
)

// TestKeyPairReload rotates a certificate on disk: the next use after the
// check interval serves the new one; a broken new file is logged, never
// its key, and the previous certificate kept.
func TestKeyPairReload(t *testing.T) {
	t.Parallel()
	ca := certtest.NewCA(t, "CA")
	dir := t.TempDir()
	first := ca.Leaf(t, certtest.Spec{CommonName: "first"})
	certFile, keyFile := first.WriteFiles(t, dir, "srv")
	var log logtest.Buffer
	k, err := tlsfiles.LoadKeyPair(certFile, keyFile, tlsfiles.WithCheckInterval(0), tlsfiles.WithLogger(slog.New(slog.NewJSONHandler(&log, nil))))
	if err != nil {
		t.Fatal(err)
	}
	if cn := k.Certificate().Leaf.Subject.CommonName; cn != "first" {
		t.Fatalf("loaded %q, want first", cn)
	}

	second := ca.Leaf(t, certtest.Spec{CommonName: "second"})
	second.WriteFiles(t, dir, "srv")
	if cn := k.Certificate().Leaf.Subject.CommonName; cn != "second" {
		t.Fatalf("after rotation %q, want second", cn)
	}

	// A key that is not the certificate's: refused, second kept.
	third := ca.Leaf(t, certtest.Spec{CommonName: "third"})
	key := string(first.KeyPEM(t))
	certtest.Write(t, certFile, third.CertPEM())
	certtest.Write(t, keyFile, []byte(key))
	if cn := k.Certificate().Leaf.Subject.CommonName; cn != "second" {
		t.Errorf("after a mismatched pair %q, want second kept", cn)
	}
	if !strings.Contains(log.String(), "refused; the previous one is kept") {
		t.Errorf("log lacks the refusal:\n%s", log.String())
	}
	body := strings.Split(key, "\n")[1]
	if strings.Contains(log.String(), body) {
		t.Error("log holds the private key")
	}
	// The right key follows: the pair is whole again.
	certtest.Write(t, keyFile, third.KeyPEM(t))
	if cn := k.Certificate().Leaf.Subject.CommonName; cn != "third" {
		t.Errorf("after the matching key %q, want third", cn)
	}
}

// TestCheckInterval reads the files again only once the interval passed.
func TestCheckInterval(t *testing.T) {
	t.Parallel()
	ca := certtest.NewCA(t, "CA")
	dir := t.TempDir()
	certFile, keyFile := ca.Leaf(t, certtest.Spec{CommonName: "first"}).WriteFiles(t, dir, "srv")
	k, err := tlsfiles.LoadKeyPair(certFile, keyFile, tlsfiles.WithCheckInterval(200*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	ca.Leaf(t, certtest.Spec{CommonName: "second"}).WriteFiles(t, dir, "srv")
	if cn := k.Certificate().Leaf.Subject.CommonName; cn != "first" {
		t.Errorf("within the interval %q, want first", cn)
	}
	time.Sleep(250 * time.Millisecond)
	if cn := k.Certificate().Leaf.Subject.CommonName; cn != "second" {
		t.Errorf("after the interval %q, want second", cn)
	}
}

func TestLoadErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty.pem")
	certtest.Write(t, empty, []byte("not pem"))
	if _, err := tlsfiles.LoadPool([]string{empty}); err == nil || !strings.Contains(err.Error(), "empty.pem holds no PEM certificate") {
		t.Errorf("LoadPool of a file without PEM = %v", err)
	}
	if _, err := tlsfiles.LoadKeyPair(empty, empty); err == nil || !strings.Contains(err.Error(), "empty.pem") {
		t.Errorf("LoadKeyPair of a file without PEM = %v", err)
	}
	if _, err := tlsfiles.LoadKeyPair(filepath.Join(dir, "none.pem"), empty); !errors.Is(err, fs.ErrNotExist) {
		t.Error("LoadKeyPair of a missing file succeeded")
	}
}

// TestServerConfigRotation handshakes with a listener of [ServerConfig]
// while its client CA bundle and its certificate rotate: new handshakes
// follow the files.
func TestServerConfigRotation(t *testing.T) {
	t.Parallel()
	oldCA, newCA := certtest.NewCA(t, "old CA"), certtest.NewCA(t, "new CA")
	dir := t.TempDir()
	certFile, keyFile := oldCA.Leaf(t, certtest.Spec{CommonName: "server-1", IPs: certtest.Loopback}).WriteFiles(t, dir, "srv")
	caFile := filepath.Join(dir, "clients.pem")
	oldCA.WriteFile(t, caFile)
	cert, err := tlsfiles.LoadKeyPair(certFile, keyFile, tlsfiles.WithCheckInterval(0))
	if err != nil {
		t.Fatal(err)
	}
	cas, err := tlsfiles.LoadPool([]string{caFile}, tlsfiles.WithCheckInterval(0))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", tlsfiles.ServerConfig(&tls.Config{MinVersion: tls.VersionTLS12}, cert, cas, tls.RequireAndVerifyClientCert))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_ = c.(*tls.Conn).Handshake()
				_, _ = c.Write([]byte("x"))
			}()
		}
	}()
	both := x509.NewCertPool()
	both.AddCert(oldCA.Cert)
	both.AddCert(newCA.Cert)
	dial := func(client *certtest.Leaf) (string, error) {
		c, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{RootCAs: both, Certificates: []tls.Certificate{client.TLS()}})
		if err != nil {
			return "", err
		}
		defer c.Close()
		if _, err := c.Read(make([]byte, 1)); err != nil {
			return "", err
		}
		return c.ConnectionState().PeerCertificates[0].Subject.CommonName, nil
	}
	oldClient, newClient := oldCA.Leaf(t, certtest.Spec{CommonName: "a"}), newCA.Leaf(t, certtest.Spec{CommonName: "b"})
	if cn, err := dial(oldClient); err != nil || cn != "server-1" {
		t.Fatalf("old CA's client: %q %v", cn, err)
	}
	if _, err := dial(newClient); err == nil {
		t.Fatal("new CA's client accepted before the bundle names it")
	}
	certtest.Write(t, caFile, append(oldCA.PEM(), newCA.PEM()...))
	newCA.Leaf(t, certtest.Spec{CommonName: "server-2", IPs: certtest.Loopback}).WriteFiles(t, dir, "srv")
	for _, c := range []*certtest.Leaf{oldClient, newClient} {
		if cn, err := dial(c); err != nil || cn != "server-2" {
			t.Errorf("after rotation, client %s: %q %v; want server-2", c.Cert.Subject.CommonName, cn, err)
		}
	}
	certtest.Write(t, caFile, newCA.PEM())
	if _, err := dial(oldClient); err == nil {
		t.Error("old CA's client accepted after the bundle dropped it")
	}
}
